namespace BatchCore.Model;

/// <summary>AWS <c>SubmitJob</c> request.</summary>
public sealed record SubmitJobRequest
{
    /// <summary>≤128 chars, first alphanumeric, then letters, digits, hyphens and underscores.</summary>
    public string? JobName { get; init; }
    /// <summary>Name or ARN.</summary>
    public string? JobQueue { get; init; }
    /// <summary><c>name</c>, <c>name:revision</c> or ARN; without a revision the latest ACTIVE one.</summary>
    public string? JobDefinition { get; init; }
    /// <summary>Required exactly when the queue has a fair-share policy.</summary>
    public string? ShareIdentifier { get; init; }
    public int? SchedulingPriorityOverride { get; init; }
    public ArrayProperties? ArrayProperties { get; init; }
    /// <summary>≤20 dependencies.</summary>
    public IReadOnlyList<JobDependency>? DependsOn { get; init; }
    public IReadOnlyDictionary<string, string>? Parameters { get; init; }
    public ContainerOverrides? ContainerOverrides { get; init; }
    public RetryStrategy? RetryStrategy { get; init; }
    public bool? PropagateTags { get; init; }
    public JobTimeout? Timeout { get; init; }
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
    public ConsumableResourceProperties? ConsumableResourcePropertiesOverride { get; init; }
    /// <summary>AWS's overrides for multi-node parallel jobs: refused with a clear error (BatchCore has no multinode job definitions).</summary>
    public object? NodeOverrides { get; init; }
    /// <summary>AWS's overrides for EKS jobs: refused with a clear error (no EKS job definitions).</summary>
    public object? EksPropertiesOverride { get; init; }
    /// <summary>AWS's overrides for <c>ecsProperties</c> job definitions: refused with a clear error (use <see cref="ContainerOverrides"/>).</summary>
    public object? EcsPropertiesOverride { get; init; }
    /// <summary>BatchCore extensions: array concurrency cap, simulated run time.</summary>
    public SubmitJobExtensions? Extensions { get; init; }
}

/// <summary>AWS <c>ArrayProperties</c>.</summary>
public sealed record ArrayProperties
{
    /// <summary>2–10,000 children.</summary>
    public int? Size { get; init; }
}

/// <summary>AWS <c>JobDependency</c>, plus BatchCore's failure-tolerant condition.</summary>
public sealed record JobDependency
{
    public string? JobId { get; init; }
    /// <summary><see cref="ArrayJobDependency"/>: N_TO_N or SEQUENTIAL, or null.</summary>
    public string? Type { get; init; }
    /// <summary>BatchCore extension: the dependency's condition.</summary>
    public JobDependencyExtensions? Extensions { get; init; }
}

/// <summary>BatchCore extension to a dependency.</summary>
public sealed record JobDependencyExtensions
{
    /// <summary>
    /// <c>SUCCEEDED</c> (the default, AWS's rule: the dependent runs only after the dependency succeeded) or
    /// <c>ANY</c> (like Slurm's <c>afterany</c>: the dependent runs once the dependency ended in any state).
    /// </summary>
    public string? Condition { get; init; }
}

/// <summary>BatchCore extensions to SubmitJob.</summary>
public sealed record SubmitJobExtensions
{
    /// <summary>At most this many children of an array job STARTING or RUNNING at once (like Slurm's <c>%N</c>).</summary>
    public int? ArrayMaxConcurrency { get; init; }
    /// <summary>For simulated hosts: how long each attempt runs. The default is 0 seconds.</summary>
    public double? SimulatedRunTimeSeconds { get; init; }
    /// <summary>For simulated hosts: the exit code of each attempt. The default is 0.</summary>
    public int? SimulatedExitCode { get; init; }
    /// <summary>For simulated hosts: attempts 1..N exit with <see cref="SimulatedExitCode"/>, later ones with 0.</summary>
    public int? SimulatedFailingAttempts { get; init; }
}

/// <summary>AWS <c>ContainerOverrides</c>.</summary>
public sealed record ContainerOverrides
{
    public IReadOnlyList<string>? Command { get; init; }
    public IReadOnlyList<KeyValuePair>? Environment { get; init; }
    public IReadOnlyList<ResourceRequirement>? ResourceRequirements { get; init; }
    public string? InstanceType { get; init; }
    /// <summary>Deprecated by AWS: overrides only a definition's legacy <c>vcpus</c>, not a VCPU resource requirement.</summary>
    public int? Vcpus { get; init; }
    /// <summary>Deprecated by AWS: overrides only a definition's legacy <c>memory</c> (MiB), not a MEMORY resource requirement.</summary>
    public int? Memory { get; init; }
}

/// <summary>AWS <c>SubmitJob</c> response.</summary>
public sealed record SubmitJobResponse
{
    // The engine hands out the ARN's prefix and formats the ARN only when it is read: most callers keep the id only.
    private readonly string? _arnPrefix;
    private string? _jobArn;

    /// <summary>Creates a response.</summary>
    public SubmitJobResponse(string JobArn, string JobName, string JobId)
    {
        _jobArn = JobArn;
        this.JobName = JobName;
        this.JobId = JobId;
    }

    private SubmitJobResponse(string jobName, string jobId, string arnPrefix, bool lazy)
    {
        _ = lazy;
        _arnPrefix = arnPrefix;
        JobName = jobName;
        JobId = jobId;
    }

    /// <summary>A response whose <see cref="JobArn"/> is <paramref name="arnPrefix"/> + <paramref name="jobId"/>, formatted when read.</summary>
    internal static SubmitJobResponse WithArnPrefix(string jobName, string jobId, string arnPrefix) => new(jobName, jobId, arnPrefix, lazy: true);

    /// <summary>The job's ARN, <c>arn:aws:batch:region:account:job/jobId</c>.</summary>
    public string JobArn
    {
        get => _jobArn ??= _arnPrefix + JobId;
        init => _jobArn = value;
    }

    public string JobName { get; init; }

    public string JobId { get; init; }

    public void Deconstruct(out string JobArn, out string JobName, out string JobId)
    {
        JobArn = this.JobArn;
        JobName = this.JobName;
        JobId = this.JobId;
    }

    public bool Equals(SubmitJobResponse? other) =>
        other is not null && JobArn == other.JobArn && JobName == other.JobName && JobId == other.JobId;

    public override int GetHashCode() => HashCode.Combine(JobArn, JobName, JobId);
}

/// <summary>AWS <c>JobDetail</c>: a snapshot of one job.</summary>
public sealed record JobDetail
{
    public required string JobArn { get; init; }
    public required string JobName { get; init; }
    public required string JobId { get; init; }
    public required string JobQueue { get; init; }
    public required string Status { get; init; }
    public string? ShareIdentifier { get; init; }
    public int? SchedulingPriority { get; init; }
    public IReadOnlyList<AttemptDetail> Attempts { get; init; } = [];
    public string? StatusReason { get; init; }
    public required long CreatedAt { get; init; }
    public RetryStrategy? RetryStrategy { get; init; }
    public long? StartedAt { get; init; }
    public long? StoppedAt { get; init; }
    public IReadOnlyList<JobDependency> DependsOn { get; init; } = [];
    public required string JobDefinition { get; init; }
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();
    public ContainerDetail? Container { get; init; }
    public ArrayPropertiesDetail? ArrayProperties { get; init; }
    public JobTimeout? Timeout { get; init; }
    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();
    public bool? PropagateTags { get; init; }
    public IReadOnlyList<string> PlatformCapabilities { get; init; } = [];
    public bool IsCancelled { get; init; }
    public bool IsTerminated { get; init; }
    public ConsumableResourceProperties? ConsumableResourceProperties { get; init; }
}

/// <summary>AWS <c>ContainerDetail</c>: the job's container as resolved from definition and overrides.</summary>
public sealed record ContainerDetail
{
    public string? Image { get; init; }
    public IReadOnlyList<string> Command { get; init; } = [];
    public IReadOnlyList<KeyValuePair> Environment { get; init; } = [];
    public IReadOnlyList<ResourceRequirement> ResourceRequirements { get; init; } = [];
    public int? ExitCode { get; init; }
    public string? Reason { get; init; }
    public string? LogStreamName { get; init; }
    public string? ContainerInstanceArn { get; init; }
    public string? TaskArn { get; init; }
    public LinuxParameters? LinuxParameters { get; init; }
    public bool? Privileged { get; init; }
}

/// <summary>AWS <c>AttemptDetail</c>.</summary>
public sealed record AttemptDetail
{
    public AttemptContainerDetail? Container { get; init; }
    public long? StartedAt { get; init; }
    public long? StoppedAt { get; init; }
    public string? StatusReason { get; init; }
}

/// <summary>AWS <c>AttemptContainerDetail</c>.</summary>
public sealed record AttemptContainerDetail
{
    public string? ContainerInstanceArn { get; init; }
    public string? TaskArn { get; init; }
    public int? ExitCode { get; init; }
    public string? Reason { get; init; }
    public string? LogStreamName { get; init; }
}

/// <summary>AWS <c>ArrayPropertiesDetail</c> (parent: size and statusSummary; child: index).</summary>
public sealed record ArrayPropertiesDetail
{
    public IReadOnlyDictionary<string, int>? StatusSummary { get; init; }
    public long? StatusSummaryLastUpdatedAt { get; init; }
    public int? Size { get; init; }
    public int? Index { get; init; }
}

/// <summary>AWS <c>ListJobs</c> request.</summary>
public sealed record ListJobsRequest
{
    /// <summary>Name or ARN. Exactly one of JobQueue and ArrayJobId.</summary>
    public string? JobQueue { get; init; }
    public string? ArrayJobId { get; init; }
    /// <summary>When omitted, only RUNNING jobs are listed (AWS's rule).</summary>
    public string? JobStatus { get; init; }
    /// <summary>1–1,000 (status) or 1–100 (filters). The default is the maximum.</summary>
    public int? MaxResults { get; init; }
    public string? NextToken { get; init; }
    /// <summary>One filter at a time.</summary>
    public IReadOnlyList<KeyValuesPair>? Filters { get; init; }
}

/// <summary>AWS <c>KeyValuesPair</c> (a ListJobs filter).</summary>
public sealed record KeyValuesPair
{
    public string? Name { get; init; }
    public IReadOnlyList<string>? Values { get; init; }
}

/// <summary>AWS <c>ListJobs</c> response.</summary>
public sealed record ListJobsResponse(IReadOnlyList<JobSummary> JobSummaryList, string? NextToken);

/// <summary>AWS <c>JobSummary</c>.</summary>
public sealed record JobSummary
{
    public required string JobArn { get; init; }
    public required string JobId { get; init; }
    public required string JobName { get; init; }
    public required long CreatedAt { get; init; }
    public required string Status { get; init; }
    public string? StatusReason { get; init; }
    public long? StartedAt { get; init; }
    public long? StoppedAt { get; init; }
    /// <summary>
    /// When the job was scheduled for execution: the scheduler placed its current or last attempt on a host (RUNNABLE →
    /// STARTING; AWS's service jobs enter SCHEDULED then). Null before, and for a job RUNNABLE again or ended without being
    /// placed since. Journaled: the same after an engine restart (null for attempts recorded by a format 1–3 journal).
    /// </summary>
    public long? ScheduledAt { get; init; }
    public AttemptContainerDetail? Container { get; init; }
    public ArrayPropertiesDetail? ArrayProperties { get; init; }
    public required string JobDefinition { get; init; }
    public string? ShareIdentifier { get; init; }
    /// <summary>What the job is configured to use: its vCPUs (<c>VCPU</c>).</summary>
    public IReadOnlyList<JobCapacityUsageSummary>? CapacityUsage { get; init; }
}

/// <summary>AWS <c>JobCapacityUsageSummary</c>.</summary>
/// <param name="CapacityUnit"><c>VCPU</c>.</param>
/// <param name="Quantity">How many.</param>
public sealed record JobCapacityUsageSummary(string CapacityUnit, double Quantity);

/// <summary>A job changed state; what <c>WatchJobsAsync</c> streams.</summary>
/// <param name="JobId">The job.</param>
/// <param name="JobName">Its name.</param>
/// <param name="Status">The new status.</param>
/// <param name="PreviousStatus">The status before.</param>
/// <param name="StatusReason">Why, when there is a reason.</param>
/// <param name="Timestamp">When, in epoch milliseconds of the engine's clock.</param>
public sealed record JobStateChange(string JobId, string JobName, string Status, string PreviousStatus, string? StatusReason, long Timestamp);
