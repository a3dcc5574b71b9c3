namespace BatchCore.Model;

/// <summary>AWS <c>CreateJobQueue</c> request.</summary>
public sealed record CreateJobQueueRequest
{
    public string? JobQueueName { get; init; }
    /// <summary><see cref="ResourceState"/>. The default is ENABLED.</summary>
    public string? State { get; init; }
    public string? SchedulingPolicyArn { get; init; }
    /// <summary>Higher runs first among queues that share a compute environment. Required.</summary>
    public int? Priority { get; init; }
    public IReadOnlyList<ComputeEnvironmentOrder>? ComputeEnvironmentOrder { get; init; }
    public IReadOnlyList<JobStateTimeLimitAction>? JobStateTimeLimitActions { get; init; }
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
    /// <summary>
    /// <see cref="Model.JobQueueType"/>: <c>ECS</c> or <c>ECS_FARGATE</c>, matching the compute environments; when left
    /// out, taken from them. Cannot be updated.
    /// </summary>
    public string? JobQueueType { get; init; }
    /// <summary>BatchCore extensions: backfill and a cap on running jobs.</summary>
    public JobQueueExtensions? Extensions { get; init; }
}

/// <summary>AWS <c>ComputeEnvironmentOrder</c>.</summary>
public sealed record ComputeEnvironmentOrder
{
    public int Order { get; init; }
    /// <summary>Name or ARN.</summary>
    public string? ComputeEnvironment { get; init; }
}

/// <summary>AWS <c>JobStateTimeLimitAction</c>.</summary>
public sealed record JobStateTimeLimitAction
{
    /// <summary>The status reason a head-of-queue job must have for the action to apply, logged as the reason.</summary>
    public string? Reason { get; init; }
    /// <summary>Only RUNNABLE.</summary>
    public string? State { get; init; }
    /// <summary>600–86,400 seconds.</summary>
    public int MaxTimeSeconds { get; init; }
    /// <summary>Only CANCEL.</summary>
    public string? Action { get; init; }
}

/// <summary>
/// BatchCore extensions to a job queue, beyond AWS (§4 of the reference: what AWS users ask for).
/// </summary>
public sealed record JobQueueExtensions
{
    /// <summary>
    /// Let later jobs that fit start ahead of a FIFO head that cannot be placed. The default is false: AWS's strict
    /// head-of-line blocking.
    /// </summary>
    public bool Backfill { get; init; }

    /// <summary>At most this many jobs of the queue STARTING or RUNNING at once. The default is no cap.</summary>
    public int? MaxRunningJobs { get; init; }
}

/// <summary>AWS <c>UpdateJobQueue</c> request.</summary>
public sealed record UpdateJobQueueRequest
{
    /// <summary>Name or ARN.</summary>
    public string? JobQueue { get; init; }
    public string? State { get; init; }
    public string? SchedulingPolicyArn { get; init; }
    public int? Priority { get; init; }
    public IReadOnlyList<ComputeEnvironmentOrder>? ComputeEnvironmentOrder { get; init; }
    public IReadOnlyList<JobStateTimeLimitAction>? JobStateTimeLimitActions { get; init; }
    public JobQueueExtensions? Extensions { get; init; }
}

/// <summary>AWS <c>CreateJobQueue</c> / <c>UpdateJobQueue</c> response.</summary>
public sealed record JobQueueResponse(string JobQueueName, string JobQueueArn);

/// <summary>AWS <c>DescribeJobQueues</c> request.</summary>
public sealed record DescribeJobQueuesRequest
{
    /// <summary>≤100 names or ARNs; none: every job queue.</summary>
    public IReadOnlyList<string>? JobQueues { get; init; }
    /// <summary>1–100 per page; without it, up to 100 and a <c>nextToken</c> when there are more (AWS).</summary>
    public int? MaxResults { get; init; }
    /// <summary>The <c>nextToken</c> of the previous page.</summary>
    public string? NextToken { get; init; }
}

/// <summary>AWS <c>DescribeJobQueues</c> response: one page, oldest queue first, and the token of the next page (null on the last).</summary>
public sealed record DescribeJobQueuesResponse(IReadOnlyList<JobQueueDetail> JobQueues, string? NextToken);

/// <summary>AWS <c>JobQueueDetail</c>.</summary>
public sealed record JobQueueDetail
{
    public required string JobQueueName { get; init; }
    public required string JobQueueArn { get; init; }
    public required string State { get; init; }
    public required string Status { get; init; }
    public string? StatusReason { get; init; }
    public string? SchedulingPolicyArn { get; init; }
    public required int Priority { get; init; }
    public required IReadOnlyList<ComputeEnvironmentOrder> ComputeEnvironmentOrder { get; init; }
    public IReadOnlyList<JobStateTimeLimitAction> JobStateTimeLimitActions { get; init; } = [];
    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();
    /// <summary><c>ECS</c> or <c>ECS_FARGATE</c> (<see cref="Model.JobQueueType"/>).</summary>
    public string? JobQueueType { get; init; }
    public JobQueueExtensions? Extensions { get; init; }
}

/// <summary>AWS <c>GetJobQueueSnapshot</c> response: the first RUNNABLE jobs in dispatch order and capacity use.</summary>
public sealed record JobQueueSnapshot
{
    /// <summary>The first 100 RUNNABLE jobs in the order the queue would dispatch them.</summary>
    public required FrontOfQueueDetail FrontOfQueue { get; init; }
    /// <summary>vCPUs held by the queue's STARTING and RUNNING jobs, in total and (fair share) per share identifier.</summary>
    public required QueueSnapshotUtilizationDetail QueueUtilization { get; init; }
}

/// <summary>AWS <c>FrontOfQueueDetail</c>.</summary>
public sealed record FrontOfQueueDetail(IReadOnlyList<FrontOfQueueJobSummary> Jobs, long LastUpdatedAt);

/// <summary>AWS <c>FrontOfQueueJobSummary</c>: a RUNNABLE job and when it reached its place (here: became RUNNABLE).</summary>
public sealed record FrontOfQueueJobSummary(string JobArn, long EarliestTimeAtPosition);

/// <summary>AWS <c>QueueSnapshotUtilizationDetail</c>.</summary>
public sealed record QueueSnapshotUtilizationDetail
{
    public required IReadOnlyList<QueueSnapshotCapacityUsage> TotalCapacityUsage { get; init; }
    /// <summary>Fair-share queues only.</summary>
    public FairshareUtilizationDetail? FairshareUtilization { get; init; }
    public long LastUpdatedAt { get; init; }
}

/// <summary>AWS <c>QueueSnapshotCapacityUsage</c> (unit <c>VCPU</c>).</summary>
public sealed record QueueSnapshotCapacityUsage(string CapacityUnit, double Quantity);

/// <summary>AWS <c>FairshareUtilizationDetail</c>: shares holding capacity, and the 20 that hold the most.</summary>
public sealed record FairshareUtilizationDetail(long ActiveShareCount, IReadOnlyList<FairshareCapacityUtilization> TopCapacityUtilization);

/// <summary>AWS <c>FairshareCapacityUtilization</c>.</summary>
public sealed record FairshareCapacityUtilization(string ShareIdentifier, IReadOnlyList<FairshareCapacityUsage> CapacityUsage);

/// <summary>AWS <c>FairshareCapacityUsage</c> (unit <c>VCPU</c>).</summary>
public sealed record FairshareCapacityUsage(string CapacityUnit, double Quantity);
