using System.Runtime.CompilerServices;
using BatchCore.Model;
using BatchCore.Placement;

namespace BatchCore.Jobs;

/// <summary>
/// One job (or array child) as the scheduling loop keeps it. Mutated by the loop only; users see
/// <see cref="JobDetail"/> snapshots. Kept small: an array child is this class alone and reads its name, queue, spec
/// and creation time from its parent (a <see cref="TopJob"/>, which holds them), what children share lives in
/// <see cref="Spec"/>, and what few jobs need in <see cref="JobCold"/>.
/// </summary>
internal class Job
{
    private JobCold? _cold;

    /// <summary>A top-level job (<see cref="TopJob"/>).</summary>
    protected Job()
    {
    }

    /// <summary>
    /// Child <paramref name="index"/> of the array job <paramref name="parent"/>. Its id (parentId:index) is built when
    /// first asked; its name, queue, spec, creation time and submission order are the array's.
    /// </summary>
    public Job(TopJob parent, int index)
    {
        Parent = parent;
        ArrayIndex = index;
    }

    /// <summary>The top-level job that holds this job's shared facts: its parent, or itself.</summary>
    private TopJob Top => Unsafe.As<TopJob>(Parent ?? this);

    private JobCold Cold => _cold ??= new JobCold();

    /// <summary>
    /// The job id. Array children's ids are built on first use and kept by the array (<see cref="ArrayChildren.IdOf"/>):
    /// the dispatch path never needs them, so placing 10,000 children creates no 10,000 strings (describe, journal, logs
    /// and watchers do ask for them).
    /// </summary>
    public string Id => Parent is { } parent ? parent.Children!.IdOf(ArrayIndex) : Unsafe.As<TopJob>(this).JobId;

    /// <summary>
    /// Whether <see cref="Id"/> was built (always for top-level jobs). A child whose id nobody asked for has no waiter and
    /// no watcher keyed by it: finding it by id (<c>TryGetJob</c>) builds the id.
    /// </summary>
    public bool HasId => Parent is not { } parent || parent.Children!.HasIdAt(ArrayIndex);
    public string Name => Top.JobName;
    public Dispatch.JobQueueState Queue => Top.JobQueue;
    public JobSpec Spec => Top.JobSpec;

    /// <summary>
    /// Submission order; retried jobs get a smaller number to go to the front of the queue. An array child has its
    /// array's until it is given its own (a retry: kept in its cold part, so a plain child carries no number).
    /// </summary>
    public long Seq
    {
        get => Parent is { } parent ? (HasFlag(Flags.OwnSeq) ? _cold!.Seq : parent.TopSeq) : Unsafe.As<TopJob>(this).TopSeq;
        set
        {
            if (Parent is null)
            {
                Unsafe.As<TopJob>(this).TopSeq = value;
            }
            else
            {
                Cold.Seq = value;
                SetFlag(Flags.OwnSeq, true);
            }
        }
    }

    /// <summary>Whether this array child was given a submission order of its own (see <see cref="Seq"/>).</summary>
    public bool HasOwnSeq => HasFlag(Flags.OwnSeq);

    // The job's yes/no facts, one byte.
    [Flags]
    private enum Flags : byte
    {
        Cancelled = 1,
        Terminated = 2,
        TimedOut = 4,
        DependencyFailed = 8,
        Forgotten = 16,
        InReadyQueue = 32,
        OwnSeq = 64,
        StaleInDeque = 128,
    }

    private Flags _flags;

    private bool HasFlag(Flags flag) => (_flags & flag) != 0;

    private void SetFlag(Flags flag, bool value) => _flags = value ? _flags | flag : _flags & ~flag;
    /// <summary>When the job was submitted; array children: when the array created them (all at once).</summary>
    public long CreatedAt => Parent is { } parent ? parent.Children!.CreatedAt : Unsafe.As<TopJob>(this).JobCreatedAt;
    public JobState State { get; set; }
    public string? StatusReason { get; set; }
    /// <summary>When the first attempt reached RUNNING, or null. Kept as a plain long (no Nullable padding).</summary>
    public long? StartedAt
    {
        get => _startedAt == NoTime ? null : _startedAt;
        set => _startedAt = value ?? NoTime;
    }

    /// <summary>When the job (or its last attempt) stopped, or null.</summary>
    public long? StoppedAt
    {
        get => _stoppedAt == NoTime ? null : _stoppedAt;
        set => _stoppedAt = value ?? NoTime;
    }

    private const long NoTime = long.MinValue;
    private long _startedAt = NoTime;
    private long _stoppedAt = NoTime;
    public bool IsCancelled
    {
        get => HasFlag(Flags.Cancelled);
        set => SetFlag(Flags.Cancelled, value);
    }

    public bool IsTerminated
    {
        get => HasFlag(Flags.Terminated);
        set => SetFlag(Flags.Terminated, value);
    }
    /// <summary>A CancelJob on a PENDING job waits for its dependencies to finish (AWS).</summary>
    public string? PendingCancelReason
    {
        get => _cold?.PendingCancelReason;
        set
        {
            if (value is not null || _cold is not null)
            {
                Cold.PendingCancelReason = value;
            }
        }
    }

    // null, the Host of a plain first success, the one AttemptRecord, or a List<AttemptRecord> (AttemptList reads it)
    private object? _attempts;

    /// <summary>The attempts so far, oldest first.</summary>
    public AttemptList Attempts => new(_attempts, AttemptStartedAt, _stoppedAt);
    public int AttemptCount => Attempts.Count;

    public void AddAttempt(AttemptRecord attempt) => _attempts = Attempts.Append(attempt);

    /// <summary>
    /// The first attempt exited 0 on <paramref name="host"/> and the job succeeds: kept as the host alone, its record is
    /// built from it, <see cref="AttemptStartedAt"/> and <see cref="StoppedAt"/> when read (they do not change once the
    /// job has ended).
    /// </summary>
    public void AddPlainSuccess(Host host)
    {
        System.Diagnostics.Debug.Assert(_attempts is null, "a plain success is the first attempt");
        _attempts = host;
    }

    /// <summary>The host of a plain first success (see <see cref="AddPlainSuccess"/>), else null.</summary>
    public Host? PlainSuccessHost => _attempts as Host;

    /// <summary>Whether the job has its cold part (something beyond the common child's fields was ever set).</summary>
    public bool HasCold => _cold is not null;

    /// <summary>Recovery: the attempts a snapshot's full record lists.</summary>
    public void ReplaceAttempts(List<AttemptRecord> attempts) => _attempts = attempts.Count switch
    {
        0 => null,
        1 => attempts[0],
        _ => attempts,
    };
    /// <summary>How many attempts the journal already has.</summary>
    public int JournaledAttempts { get; set; }

    // The running attempt.
    public Host? Host { get; set; }
    public long AttemptToken { get; set; }
    public long AttemptStartedAt { get; set; }
    /// <summary>The driver's re-attach handle of the running attempt (journaled), or null.</summary>
    public string? AttemptHandle
    {
        get => _cold?.AttemptHandle;
        set
        {
            if (value is not null || _cold is not null)
            {
                Cold.AttemptHandle = value;
            }
        }
    }
    public bool TimedOut
    {
        get => HasFlag(Flags.TimedOut);
        set => SetFlag(Flags.TimedOut, value);
    }
    public string? TerminateReason
    {
        get => _cold?.TerminateReason;
        set
        {
            if (value is not null || _cold is not null)
            {
                Cold.TerminateReason = value;
            }
        }
    }
    /// <summary>Set when the host, not the job, ended the attempt (spot interruption, host lost).</summary>
    public string? HostLostReason
    {
        get => _cold?.HostLostReason;
        set
        {
            if (value is not null || _cold is not null)
            {
                Cold.HostLostReason = value;
            }
        }
    }
    public Dispatch.TimerEntry? TimeoutTimer
    {
        get => _cold?.TimeoutTimer;
        set
        {
            if (value is not null || _cold is not null)
            {
                Cold.TimeoutTimer = value;
            }
        }
    }
    /// <summary>
    /// The engine's simulated hosts: the sequence number of the attempt's live start or exit timer on the loop's timer
    /// queue (the job itself is the queue element, no timer object), 0 when none. A timer whose number differs is stale.
    /// </summary>
    public long SimTimerSeq { get; set; }

    /// <summary>The running attempts of one host, as an intrusive list (no allocation per attempt): see <see cref="Host.FirstAttempt"/>.</summary>
    internal Job? PrevOnHost;
    internal Job? NextOnHost;

    // Dependencies: how many are not yet satisfied, and who waits on this job.
    public int UnmetDependencies { get; set; }
    public List<Dependent>? Dependents
    {
        get => _cold?.Dependents;
        set
        {
            if (value is not null || _cold is not null)
            {
                Cold.Dependents = value;
            }
        }
    }
    public bool DependencyFailed
    {
        get => HasFlag(Flags.DependencyFailed);
        set => SetFlag(Flags.DependencyFailed, value);
    }

    /// <summary>Past its retention and dropped from the engine's tables (top-level jobs; a child goes with its parent).</summary>
    public bool Forgotten
    {
        get => HasFlag(Flags.Forgotten);
        set => SetFlag(Flags.Forgotten, value);
    }

    /// <summary>How many retained jobs name this job (or one of its children) in <c>dependsOn</c>: it is kept while any is.</summary>
    public int DependedOnBy
    {
        get => _cold?.DependedOnBy ?? 0;
        set
        {
            if (value != 0 || _cold is not null)
            {
                Cold.DependedOnBy = value;
            }
        }
    }

    // Arrays: a parent has children; a child has a parent and an index.
    public TopJob? Parent { get; }
    public int ArrayIndex { get; } = -1;
    /// <summary>An array parent's children (a child that ended plainly is folded there: see <see cref="ArrayChildren"/>).</summary>
    public ArrayChildren? Children
    {
        get => _cold?.Children;
        set
        {
            if (value is not null || _cold is not null)
            {
                Cold.Children = value;
            }
        }
    }
    public int ArraySize
    {
        get => _cold?.ArraySize ?? 0;
        set
        {
            if (value != 0 || _cold is not null)
            {
                Cold.ArraySize = value;
            }
        }
    }
    public int[]? StatusSummary
    {
        get => _cold?.StatusSummary;
        set
        {
            if (value is not null || _cold is not null)
            {
                Cold.StatusSummary = value;
            }
        }
    }
    public long StatusSummaryLastUpdatedAt
    {
        get => _cold?.StatusSummaryLastUpdatedAt ?? 0;
        set
        {
            if (value != 0 || _cold is not null)
            {
                Cold.StatusSummaryLastUpdatedAt = value;
            }
        }
    }
    public int RunningChildren
    {
        get => _cold?.RunningChildren ?? 0;
        set
        {
            if (value != 0 || _cold is not null)
            {
                Cold.RunningChildren = value;
            }
        }
    }
    /// <summary>Children in the ready queue (not parked).</summary>
    public int ReadyChildren
    {
        get => _cold?.ReadyChildren ?? 0;
        set
        {
            if (value != 0 || _cold is not null)
            {
                Cold.ReadyChildren = value;
            }
        }
    }

    /// <summary>When the job became the blocked head of its queue (for jobStateTimeLimitActions).</summary>
    public long HeadSince
    {
        get => _cold?.HeadSince ?? -1;
        set
        {
            if (value != -1 || _cold is not null)
            {
                Cold.HeadSince = value;
            }
        }
    }
    /// <summary>Set when the job reached RUNNABLE, for wait-time statistics and the queue snapshot.</summary>
    public long RunnableSince
    {
        get => _queueTime;
        set => _queueTime = value;
    }

    /// <summary>
    /// When the scheduler placed the job's current or last attempt on a host (RUNNABLE → STARTING: AWS's scheduledAt), or
    /// null: not placed since it was last RUNNABLE, or not known (recovered from a format 1–3 record, which did not carry it).
    /// </summary>
    public long? ScheduledAt
    {
        get => (State is JobState.Starting or JobState.Running || State.IsTerminal()) && _queueTime != NoTime ? _queueTime : null;
        set => _queueTime = value ?? NoTime;
    }

    // RunnableSince while the job waits, ScheduledAt once it is placed: one field, a job is never both at once.
    private long _queueTime;
    public bool InReadyQueue
    {
        get => HasFlag(Flags.InReadyQueue);
        set => SetFlag(Flags.InReadyQueue, value);
    }

    /// <summary>A FIFO still holds a tombstone entry of this job (it left the queue other than from the front): see <see cref="Queues.JobDeque"/>.</summary>
    public bool StaleInDeque
    {
        get => HasFlag(Flags.StaleInDeque);
        set => SetFlag(Flags.StaleInDeque, value);
    }

    /// <summary>The submitter's activity, to link attempt traces to (null when nobody traced the submit).</summary>
    public System.Diagnostics.ActivityContext? SubmitterContext
    {
        get => _cold?.SubmitterContext;
        set
        {
            if (value is not null || _cold is not null)
            {
                Cold.SubmitterContext = value;
            }
        }
    }

    /// <summary>The running attempt's trace activity, when traced.</summary>
    public System.Diagnostics.Activity? Activity
    {
        get => _cold?.Activity;
        set
        {
            if (value is not null || _cold is not null)
            {
                Cold.Activity = value;
            }
        }
    }

    public bool IsArrayParent => ArraySize > 0 && Parent is null;

    /// <summary>Tags changed by TagResource after submission (copy-on-write of the spec's tags).</summary>
    public Dictionary<string, string>? MutableTags
    {
        get => _cold?.MutableTags;
        set
        {
            if (value is not null || _cold is not null)
            {
                Cold.MutableTags = value;
            }
        }
    }

    /// <summary>Array children held back by the array concurrency cap (BatchCore extension), in order.</summary>
    public Queue<Job>? Parked
    {
        get => _cold?.Parked;
        set
        {
            if (value is not null || _cold is not null)
            {
                Cold.Parked = value;
            }
        }
    }

    /// <summary>Whether the children were created while the parent still waited on dependencies.</summary>
    public bool ChildrenGated
    {
        get => _cold?.ChildrenGated ?? false;
        set
        {
            if (value || _cold is not null)
            {
                Cold.ChildrenGated = value;
            }
        }
    }
}

/// <summary>A job submitted by SubmitJob: it holds what its array children (if any) share.</summary>
internal sealed class TopJob(string id, string name, Dispatch.JobQueueState queue, JobSpec spec, long seq, long createdAt) : Job
{
    public readonly string JobId = id;
    /// <summary>Its submission order (<see cref="Job.Seq"/>), which its children share.</summary>
    public long TopSeq = seq;
    public readonly string JobName = name;
    public readonly Dispatch.JobQueueState JobQueue = queue;
    public readonly JobSpec JobSpec = spec;
    public readonly long JobCreatedAt = createdAt;
}

/// <summary>An edge from a dependency to the job waiting on it.</summary>
/// <param name="Job">The waiting job.</param>
/// <param name="AnyState">BatchCore's failure-tolerant extension: satisfied by any terminal state.</param>
internal readonly record struct Dependent(Job Job, bool AnyState);

/// <summary>
/// What few jobs need — array bookkeeping, dependents, cancel/terminate reasons, tracing, a timeout timer, the time a
/// blocked head has waited — kept out of
/// <see cref="Job"/> so that the common job (an array child placed and run) stays small: it is allocated on first write
/// of a non-default value, never by a read or by writing a default.
/// </summary>
internal sealed class JobCold
{
    public long HeadSince = -1;
    public long Seq; // an array child's own submission order (a retry)
    public int DependedOnBy;
    public string? PendingCancelReason;
    public string? AttemptHandle;
    public string? TerminateReason;
    public string? HostLostReason;
    public Dispatch.TimerEntry? TimeoutTimer;
    public List<Dependent>? Dependents;
    public ArrayChildren? Children;
    public int ArraySize;
    public int[]? StatusSummary;
    public long StatusSummaryLastUpdatedAt;
    public int RunningChildren;
    public int ReadyChildren;
    public System.Diagnostics.ActivityContext? SubmitterContext;
    public System.Diagnostics.Activity? Activity;
    public Dictionary<string, string>? MutableTags;
    public Queue<Job>? Parked;
    public bool ChildrenGated;
}
