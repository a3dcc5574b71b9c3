using BatchCore.Model;
using BatchCore.Placement;

namespace BatchCore.Jobs;

/// <summary>
/// One job (or array child) as the scheduling loop keeps it. Mutated by the loop only; users see
/// <see cref="JobDetail"/> snapshots. Kept small: what children share lives in <see cref="Spec"/>.
/// </summary>
internal sealed class Job
{
    private string? _id;

    // id: null for an array child, whose id (parentId:index) is built when first asked.
    public Job(string? id, string name, Dispatch.JobQueueState queue, JobSpec spec, long seq, long createdAt)
    {
        _id = id;
        Name = name;
        Queue = queue;
        Spec = spec;
        Seq = seq;
        CreatedAt = createdAt;
    }

    /// <summary>
    /// The job id. Array children's ids are built on first use: the dispatch path never needs them, so placing 10,000
    /// children creates no 10,000 strings (describe, journal, logs and watchers do ask for them).
    /// </summary>
    public string Id => _id ??= Parent!.Id + ":" + ArrayIndex.ToString(System.Globalization.CultureInfo.InvariantCulture);
    public string Name { get; }
    public Dispatch.JobQueueState Queue { get; }
    public JobSpec Spec { get; }
    /// <summary>Submission order; retried jobs get a smaller number to go to the front of the queue.</summary>
    public long Seq { get; set; }
    public long CreatedAt { get; }
    public JobState State { get; set; }
    public string? StatusReason { get; set; }
    public long? StartedAt { get; set; }
    public long? StoppedAt { get; set; }
    public bool IsCancelled { get; set; }
    public bool IsTerminated { get; set; }
    /// <summary>A CancelJob on a PENDING job waits for its dependencies to finish (AWS).</summary>
    public string? PendingCancelReason { get; set; }

    public List<AttemptRecord>? Attempts { get; set; }
    public int AttemptCount => Attempts?.Count ?? 0;
    /// <summary>How many attempts the journal already has.</summary>
    public int JournaledAttempts { get; set; }

    // The running attempt.
    public Host? Host { get; set; }
    public long AttemptToken { get; set; }
    public long AttemptStartedAt { get; set; }
    /// <summary>The driver's re-attach handle of the running attempt (journaled), or null.</summary>
    public string? AttemptHandle { get; set; }
    public bool TimedOut { get; set; }
    public string? TerminateReason { get; set; }
    /// <summary>Set when the host, not the job, ended the attempt (spot interruption, host lost).</summary>
    public string? HostLostReason { get; set; }
    public Dispatch.TimerEntry? TimeoutTimer { get; set; }
    /// <summary>The simulated attempt's start or exit timer.</summary>
    public Dispatch.TimerEntry? SimTimer { get; set; }

    // Dependencies: how many are not yet satisfied, and who waits on this job.
    public int UnmetDependencies { get; set; }
    public List<Dependent>? Dependents { get; set; }
    public bool DependencyFailed { get; set; }

    // Arrays: a parent has children; a child has a parent and an index.
    public Job? Parent { get; set; }
    public int ArrayIndex { get; set; } = -1;
    public Job[]? Children { get; set; }
    public int ArraySize { get; set; }
    public int[]? StatusSummary { get; set; }
    public long StatusSummaryLastUpdatedAt { get; set; }
    public int RunningChildren { get; set; }
    /// <summary>Children in the ready queue (not parked).</summary>
    public int ReadyChildren { get; set; }

    /// <summary>When the job became the blocked head of its queue (for jobStateTimeLimitActions).</summary>
    public long HeadSince { get; set; } = -1;
    /// <summary>Set when the job reached RUNNABLE, for wait-time statistics and the queue snapshot.</summary>
    public long RunnableSince { get; set; }
    public bool InReadyQueue { get; set; }
    /// <summary>Position in the batch-placement window (scratch).</summary>
    public int BatchSlot { get; set; }

    /// <summary>The submitter's activity, to link attempt traces to (null when nobody traced the submit).</summary>
    public System.Diagnostics.ActivityContext? SubmitterContext { get; set; }

    /// <summary>The running attempt's trace activity, when traced.</summary>
    public System.Diagnostics.Activity? Activity { get; set; }

    public bool IsArrayParent => ArraySize > 0 && Parent is null;

    /// <summary>Tags changed by TagResource after submission (copy-on-write of the spec's tags).</summary>
    public Dictionary<string, string>? MutableTags { get; set; }

    /// <summary>Array children held back by the array concurrency cap (BatchCore extension), in order.</summary>
    public Queue<Job>? Parked { get; set; }

    /// <summary>Whether the children were created while the parent still waited on dependencies.</summary>
    public bool ChildrenGated { get; set; }
}

/// <summary>An edge from a dependency to the job waiting on it.</summary>
/// <param name="Job">The waiting job.</param>
/// <param name="AnyState">BatchCore's failure-tolerant extension: satisfied by any terminal state.</param>
internal readonly record struct Dependent(Job Job, bool AnyState);
