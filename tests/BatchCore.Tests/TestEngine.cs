using BatchCore.Model;

namespace BatchCore.Tests;

/// <summary>Builds engines on the virtual clock with a small standard setup, for deterministic tests.</summary>
internal static class TestEngine
{
    public static BatchEngine Create(BatchEngineOptions? options = null) =>
        new((options ?? new BatchEngineOptions()) with { VirtualTime = true, AllowShortTimeouts = true, BatchPlacementThreshold = options?.BatchPlacementThreshold ?? 0 });

    /// <summary>An UNMANAGED CE with simulated hosts of the given shape, a queue over it, and a definition.</summary>
    public static async Task<BatchEngine> WithQueueAsync(int hosts = 2, double vcpus = 4, int memoryMiB = 8192, BatchEngineOptions? options = null,
        string queue = "q", string ce = "ce", JobQueueExtensions? extensions = null, string? policyArn = null)
    {
        var engine = Create(options);
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = ce,
            Type = CEType.UNMANAGED,
            Hosts = Enumerable.Range(0, hosts).Select(i => new HostSpec { HostName = $"{ce}-h{i}", Vcpus = vcpus, MemoryMiB = memoryMiB }).ToList(),
        });
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = queue,
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = ce }],
            Extensions = extensions,
            SchedulingPolicyArn = policyArn,
        });
        await engine.RegisterJobDefinitionAsync(Definition("def"));
        return engine;
    }

    /// <summary>A MANAGED EC2 environment of c6i.large instances, up to 16 vCPUs.</summary>
    public static CreateComputeEnvironmentRequest ManagedEc2(string name = "m") => new()
    {
        ComputeEnvironmentName = name,
        Type = CEType.MANAGED,
        ComputeResources = new()
        {
            Type = CRType.EC2, AllocationStrategy = CRAllocationStrategy.BEST_FIT_PROGRESSIVE, MaxvCpus = 16, InstanceTypes = ["c6i.large"],
            Subnets = ["subnet-1"], SecurityGroupIds = ["sg-1"], InstanceRole = "ecsInstanceRole",
        },
    };

    public static RegisterJobDefinitionRequest Definition(string name, double vcpus = 1, int memory = 1024, RetryStrategy? retry = null, int? timeout = null) => new()
    {
        JobDefinitionName = name,
        Type = JobDefinitionType.container,
        ContainerProperties = new ContainerProperties
        {
            Image = "busybox",
            Command = ["echo", "hello"],
            ResourceRequirements =
            [
                new(ResourceType.VCPU, vcpus.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new(ResourceType.MEMORY, memory.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ],
        },
        RetryStrategy = retry,
        Timeout = timeout is null ? null : new JobTimeout { AttemptDurationSeconds = timeout },
    };

    public static SubmitJobRequest Job(string name = "job", string queue = "q", string def = "def", double runSeconds = 10, int exitCode = 0,
        int? failingAttempts = null, int? arraySize = null, IReadOnlyList<JobDependency>? dependsOn = null, double? vcpus = null, int? memory = null,
        string? share = null, int? arrayMaxConcurrency = null) => new()
    {
        JobName = name,
        JobQueue = queue,
        JobDefinition = def,
        ArrayProperties = arraySize is null ? null : new ArrayProperties { Size = arraySize },
        DependsOn = dependsOn,
        ShareIdentifier = share,
        ContainerOverrides = vcpus is null && memory is null ? null : new ContainerOverrides
        {
            ResourceRequirements = new List<ResourceRequirement>
            {
                new(ResourceType.VCPU, (vcpus ?? 1).ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new(ResourceType.MEMORY, (memory ?? 1024).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            },
        },
        Extensions = new SubmitJobExtensions
        {
            SimulatedRunTimeSeconds = runSeconds,
            SimulatedExitCode = exitCode,
            SimulatedFailingAttempts = failingAttempts,
            ArrayMaxConcurrency = arrayMaxConcurrency,
        },
    };

    public static async Task<JobDetail> DescribeAsync(this BatchEngine engine, string jobId) =>
        (await engine.DescribeJobsAsync([jobId])).Single();

    public static async Task<string> StatusAsync(this BatchEngine engine, string jobId) =>
        (await engine.DescribeAsync(jobId)).Status;
}
