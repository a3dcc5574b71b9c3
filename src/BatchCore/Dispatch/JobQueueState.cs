using BatchCore.Jobs;
using BatchCore.Model;
using BatchCore.Queues;

namespace BatchCore.Dispatch;

/// <summary>A job queue as the loop keeps it: settings plus its RUNNABLE jobs in dispatch order.</summary>
internal sealed class JobQueueState
{
    public required string Name { get; init; }
    /// <summary>Jobs of this queue forgotten by the current retention sweep, still on <see cref="AllJobs"/> until it ends.</summary>
    public int ForgottenJobs { get; set; }
    public required string Arn { get; init; }
    public required int Priority { get; set; }
    public required string State { get; set; }
    public string Status { get; set; } = ResourceStatus.VALID;
    public long CreatedOrder { get; init; }
    public ComputeEnvironmentState[] ComputeEnvironments { get; set; } = [];
    public IReadOnlyList<ComputeEnvironmentOrder> ComputeEnvironmentOrder { get; set; } = [];
    public SchedulingPolicyState? Policy { get; set; }
    public IReadOnlyList<JobStateTimeLimitAction> TimeLimitActions { get; set; } = [];
    public JobQueueExtensions? Extensions { get; set; }
    /// <summary>
    /// ECS or ECS_FARGATE: given at creation or taken from its compute environments then. Updates cannot change it, except
    /// when a journal written before the rule moved the queue to the other platform (then it follows the replayed order).
    /// </summary>
    public string Type { get; set; } = JobQueueType.ECS;
    public Dictionary<string, string> Tags { get; init; } = new(StringComparer.Ordinal);

    /// <summary>FIFO order of RUNNABLE jobs (queues without a scheduling policy).</summary>
    public JobDeque Fifo { get; } = new();

    /// <summary>Fair-share state per share identifier (queues with a scheduling policy).</summary>
    public Dictionary<string, ShareState> Shares { get; } = new(StringComparer.Ordinal);

    public int RunnableCount { get; set; }
    /// <summary>STARTING + RUNNING.</summary>
    public int RunningCount { get; set; }
    /// <summary>vCPU-milli of STARTING + RUNNING jobs.</summary>
    public long RunningVcpuMilli { get; set; }
    /// <summary>The head that could not be placed, and the capacity version then: skip it until something changes.</summary>
    public Job? BlockedHead { get; set; }
    public long BlockedVersion { get; set; } = -1;
    /// <summary>The last blocked head's explanation, reused for heads of the same shape within a second (<c>Explained</c>).</summary>
    public string? ExplainedReason { get; set; }
    public string? ExplainedCategory { get; set; }
    public Jobs.JobSpec? ExplainedSpec { get; set; }
    public long ExplainedAtMs { get; set; }
    /// <summary>Every job ever submitted here, for ListJobs.</summary>
    public JobList AllJobs { get; } = new();

    public bool IsFairShare => Policy is not null;
    public bool Backfill => Extensions?.Backfill == true;
    public int MaxRunning => Extensions?.MaxRunningJobs ?? int.MaxValue;

    /// <summary>The job whose head-of-queue time limit timer is armed.</summary>
    public Job? TimedHead { get; set; }
    public TimerEntry? HeadTimer { get; set; }
}

/// <summary>
/// One share identifier of a fair-share queue: its decayed, weighted usage and its RUNNABLE jobs
/// (higher schedulingPriority first, then submission order).
/// </summary>
internal sealed class ShareState
{
    public ShareState(string id, double weight)
    {
        Id = id;
        Weight = weight;
    }

    public string Id { get; }
    public double Weight { get; set; }
    /// <summary>vCPU-seconds, exponentially decayed over the policy's shareDecaySeconds.</summary>
    public double DecayedUsage { get; private set; }
    /// <summary>Undecayed vCPU-seconds, for reports and the fairness property.</summary>
    public double TotalUsage { get; private set; }
    public long LastUpdateMs { get; private set; } = -1;
    public long RunningVcpuMilli { get; set; }
    /// <summary>Jobs of this share in SUBMITTED..RUNNING (AWS: the share is active).</summary>
    public int ActiveJobs { get; set; }
    public SortedSet<Job> Ready { get; } = new(ReadyOrder.Instance);
    public bool BlockedThisCycle { get; set; }

    /// <summary>Brings usage up to <paramref name="nowMs"/>: U ← U·e^(−Δ/τ) + r·τ·(1 − e^(−Δ/τ)).</summary>
    public void Accrue(long nowMs, double decaySeconds)
    {
        if (LastUpdateMs < 0)
        {
            LastUpdateMs = nowMs;
            return;
        }

        var dt = (nowMs - LastUpdateMs) / 1000.0;
        if (dt <= 0)
        {
            return;
        }

        var rate = RunningVcpuMilli / 1000.0;
        var f = Math.Exp(-dt / decaySeconds);
        DecayedUsage = (DecayedUsage * f) + (rate * decaySeconds * (1 - f));
        TotalUsage += rate * dt;
        LastUpdateMs = nowMs;
    }

    public double WeightedUsage => DecayedUsage * Weight;

    /// <summary>Recovery: the usage rebuilt from the recovered attempts, as of <paramref name="nowMs"/>.</summary>
    public void Restore(double decayedUsage, double totalUsage, long nowMs)
    {
        DecayedUsage = decayedUsage;
        TotalUsage = totalUsage;
        LastUpdateMs = nowMs;
    }

    /// <summary>
    /// The fair-share order of shares, lowest first: weighted decayed usage, with running work counted a little so that
    /// shares alternate within one instant instead of one share taking every free slot before usage has accrued. The
    /// dispatcher and GetJobQueueSnapshot both order by it. <paramref name="decayedUsage"/> must be current.
    /// </summary>
    public double Score(double decayedUsage, long runningVcpuMilli, double decaySeconds) =>
        (decayedUsage + (runningVcpuMilli / 1000.0 * decaySeconds * 0.1)) * Weight;

    /// <summary><see cref="DecayedUsage"/> brought to <paramref name="nowMs"/> without changing it (queries).</summary>
    public double DecayedUsageAt(long nowMs, double decaySeconds)
    {
        var dt = (nowMs - LastUpdateMs) / 1000.0;
        if (LastUpdateMs < 0 || dt <= 0)
        {
            return DecayedUsage;
        }

        var f = Math.Exp(-dt / decaySeconds);
        return (DecayedUsage * f) + (RunningVcpuMilli / 1000.0 * decaySeconds * (1 - f));
    }

    private sealed class ReadyOrder : IComparer<Job>
    {
        public static readonly ReadyOrder Instance = new();

        public int Compare(Job? x, Job? y)
        {
            if (ReferenceEquals(x, y))
            {
                return 0;
            }

            var c = y!.Spec.SchedulingPriority.CompareTo(x!.Spec.SchedulingPriority);
            if (c != 0)
            {
                return c;
            }

            c = x.Seq.CompareTo(y.Seq);
            if (c != 0)
            {
                return c;
            }

            // Children share their parent's number: index order (numeric, and no child id is formatted to compare).
            return ReferenceEquals(x.Parent, y.Parent) && x.Parent is not null
                ? x.ArrayIndex.CompareTo(y.ArrayIndex)
                : string.CompareOrdinal(x.Id, y.Id);
        }
    }
}
