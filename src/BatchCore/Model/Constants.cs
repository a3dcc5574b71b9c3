namespace BatchCore.Model;

// AWS Batch's string enumerations, spelled exactly as AWS spells them (like the AWS SDK's ConstantClass values), so a
// spec written for AWS reads the same here. Requests carry strings; the engine validates them and names the field.

/// <summary><c>JobStatus</c>: the seven states of an AWS Batch job.</summary>
public static class JobStatus
{
    public const string SUBMITTED = nameof(SUBMITTED);
    public const string PENDING = nameof(PENDING);
    public const string RUNNABLE = nameof(RUNNABLE);
    public const string STARTING = nameof(STARTING);
    public const string RUNNING = nameof(RUNNING);
    public const string SUCCEEDED = nameof(SUCCEEDED);
    public const string FAILED = nameof(FAILED);

    /// <summary>All states in lifecycle order.</summary>
    public static readonly IReadOnlyList<string> All = [SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED];
}

/// <summary><c>CEType</c>.</summary>
public static class CEType
{
    public const string MANAGED = nameof(MANAGED);
    public const string UNMANAGED = nameof(UNMANAGED);
}

/// <summary><c>CEState</c> / <c>JQState</c>.</summary>
public static class ResourceState
{
    public const string ENABLED = nameof(ENABLED);
    public const string DISABLED = nameof(DISABLED);
}

/// <summary><c>JobQueueType</c>. BatchCore runs ECS-style container jobs: <c>ECS</c> (EC2, Spot and UNMANAGED compute
/// environments) and <c>ECS_FARGATE</c>; <c>EKS</c> and <c>SAGEMAKER_TRAINING</c> queues are refused.</summary>
public static class JobQueueType
{
    public const string ECS = nameof(ECS);
    public const string ECS_FARGATE = nameof(ECS_FARGATE);
    public const string EKS = nameof(EKS);
    public const string SAGEMAKER_TRAINING = nameof(SAGEMAKER_TRAINING);
}

/// <summary><c>CEStatus</c> / <c>JQStatus</c>.</summary>
public static class ResourceStatus
{
    public const string CREATING = nameof(CREATING);
    public const string UPDATING = nameof(UPDATING);
    public const string DELETING = nameof(DELETING);
    public const string DELETED = nameof(DELETED);
    public const string VALID = nameof(VALID);
    public const string INVALID = nameof(INVALID);
}

/// <summary><c>CRType</c>: the kind of capacity a compute environment uses.</summary>
public static class CRType
{
    public const string EC2 = nameof(EC2);
    public const string SPOT = nameof(SPOT);
    public const string FARGATE = nameof(FARGATE);
    public const string FARGATE_SPOT = nameof(FARGATE_SPOT);
}

/// <summary><c>CRAllocationStrategy</c>.</summary>
public static class CRAllocationStrategy
{
    public const string BEST_FIT = nameof(BEST_FIT);
    public const string BEST_FIT_PROGRESSIVE = nameof(BEST_FIT_PROGRESSIVE);
    public const string BEST_FIT_PROGRESSIVE_ORDERED = nameof(BEST_FIT_PROGRESSIVE_ORDERED);
    public const string SPOT_CAPACITY_OPTIMIZED = nameof(SPOT_CAPACITY_OPTIMIZED);
    public const string SPOT_PRICE_CAPACITY_OPTIMIZED = nameof(SPOT_PRICE_CAPACITY_OPTIMIZED);
    public const string SPOT_CAPACITY_OPTIMIZED_PRIORITIZED = nameof(SPOT_CAPACITY_OPTIMIZED_PRIORITIZED);

    public static readonly IReadOnlyList<string> All =
    [
        BEST_FIT, BEST_FIT_PROGRESSIVE, BEST_FIT_PROGRESSIVE_ORDERED, SPOT_CAPACITY_OPTIMIZED,
        SPOT_PRICE_CAPACITY_OPTIMIZED, SPOT_CAPACITY_OPTIMIZED_PRIORITIZED,
    ];
}

/// <summary><c>ResourceType</c> of a resource requirement.</summary>
public static class ResourceType
{
    public const string VCPU = nameof(VCPU);
    public const string MEMORY = nameof(MEMORY);
    public const string GPU = nameof(GPU);
}

/// <summary><c>PlatformCapability</c>.</summary>
public static class PlatformCapability
{
    public const string EC2 = nameof(EC2);
    public const string FARGATE = nameof(FARGATE);
}

/// <summary><c>JobDefinitionType</c>.</summary>
public static class JobDefinitionType
{
    public const string container = nameof(container);
    public const string multinode = nameof(multinode);
}

/// <summary><c>ArrayJobDependency</c>: how an array job's children depend on another job.</summary>
public static class ArrayJobDependency
{
    public const string N_TO_N = nameof(N_TO_N);
    public const string SEQUENTIAL = nameof(SEQUENTIAL);
}

/// <summary><c>RetryAction</c> (matched case-insensitively, as AWS does).</summary>
public static class RetryAction
{
    public const string RETRY = nameof(RETRY);
    public const string EXIT = nameof(EXIT);
}

/// <summary><c>JobStateTimeLimitActionsAction</c> and <c>...State</c>.</summary>
public static class JobStateTimeLimitActionsValues
{
    public const string CANCEL = nameof(CANCEL);
    public const string RUNNABLE = nameof(RUNNABLE);
}

/// <summary>Consumable resource types.</summary>
public static class ConsumableResourceType
{
    public const string REPLENISHABLE = nameof(REPLENISHABLE);
    public const string NON_REPLENISHABLE = nameof(NON_REPLENISHABLE);
}

/// <summary>The <c>ListJobs</c> filter names.</summary>
public static class ListJobsFilterName
{
    public const string JOB_NAME = nameof(JOB_NAME);
    public const string JOB_DEFINITION = nameof(JOB_DEFINITION);
    public const string BEFORE_CREATED_AT = nameof(BEFORE_CREATED_AT);
    public const string AFTER_CREATED_AT = nameof(AFTER_CREATED_AT);
    public const string SHARE_IDENTIFIER = nameof(SHARE_IDENTIFIER);
}

/// <summary>The <c>ListJobsByConsumableResource</c> filter names.</summary>
public static class ListJobsByConsumableResourceFilterName
{
    public const string JOB_STATUS = nameof(JOB_STATUS);
    public const string JOB_NAME = nameof(JOB_NAME);
}

/// <summary>The <c>ListConsumableResources</c> filter name.</summary>
public static class ListConsumableResourcesFilterName
{
    public const string CONSUMABLE_RESOURCE_NAME = nameof(CONSUMABLE_RESOURCE_NAME);
}

/// <summary>The status reasons AWS Batch reports, and BatchCore's own in AWS's style.</summary>
public static class StatusReasons
{
    public const string InsufficientInstanceCapacity = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY";
    public const string ComputeEnvironmentMaxResource = "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE";
    public const string JobResourceRequirement = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT";
    public const string DependentJobFailed = "Dependent Job failed";
    public const string TimeoutExceeded = "Job attempt duration exceeded timeout";
    public const string Essential = "Essential container in task exited";
    public const string HostTerminated = "Host EC2 (instance) terminated.";
    public const string SpotInterrupted = "Host EC2 (instance) terminated: Spot interruption.";
    public const string CancelledByEngine = "Job cancelled by the engine";
    public const string EngineRestarted = "Host terminated: the engine stopped while the attempt ran";

    /// <summary>AWS's longest status reason.</summary>
    internal const int MaxLength = 255;

    /// <summary>A whole reason, capped at AWS's <see cref="MaxLength"/> characters.</summary>
    internal static string Cap(string reason) => reason.Length <= MaxLength ? reason : reason[..MaxLength];
}
