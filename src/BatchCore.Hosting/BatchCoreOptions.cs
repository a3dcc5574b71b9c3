using BatchCore.Hosts.InProcess;
using BatchCore.Model;

namespace BatchCore.Hosting;

/// <summary>
/// What <see cref="BatchCoreServiceCollectionExtensions.AddBatchCore(Microsoft.Extensions.DependencyInjection.IServiceCollection, Action{BatchCoreOptions})"/>
/// sets up: the engine's options, and the AWS-shaped resources the hosted service creates at start — in code, or bound
/// from the configuration section <c>BatchCore</c> with the same bodies as AWS's requests (e.g.
/// <c>BatchCore:JobQueues:0:Priority</c>). Defaults live in <see cref="BatchCoreHostingDefaults"/>.
/// </summary>
public sealed class BatchCoreOptions
{
    /// <summary>
    /// The engine's options, bound from <c>BatchCore:Engine</c> too: its values (<c>Region</c>, <c>Seed</c>,
    /// <c>TerminationGracePeriod</c>, <c>TerminalJobRetention</c>, <c>PlacementStrategy</c>, ...), <c>Quotas</c>,
    /// <c>Journal</c> (e.g. <c>BatchCore:Engine:Journal:StateDirectory</c>) and <c>Provisioning</c>. Code only, as objects
    /// and delegates are not configuration values (a key for one fails the start naming it): <c>TimeProvider</c>,
    /// <c>LogStore</c>, <c>DriverFactories</c>, <c>HostProviders</c>, <c>SecretResolver</c>, <c>UnexpectedError</c> and
    /// <c>Provisioning.Catalog</c>; so are <c>VirtualTime</c> and <c>VirtualStart</c>, the simulator's and the tests'
    /// clock, which only code advances (from configuration a hosted engine would run on a clock that never moves by
    /// itself). The hosting layer adds the <c>inprocess</c> and <c>process</c> drivers and a shared
    /// log store unless these options set them.
    /// </summary>
    /// <value>The default is <c>new BatchEngineOptions()</c>.</value>
    public BatchEngineOptions Engine { get; set; } = new();

    /// <summary>AWS <c>CreateConsumableResource</c> bodies, created first.</summary>
    public IList<CreateConsumableResourceRequest> ConsumableResources { get; } = [];

    /// <summary>AWS <c>CreateSchedulingPolicy</c> bodies, created before the queues that name them.</summary>
    public IList<CreateSchedulingPolicyRequest> SchedulingPolicies { get; } = [];

    /// <summary>AWS <c>CreateComputeEnvironment</c> bodies (with BatchCore's <c>hosts</c>).</summary>
    public IList<CreateComputeEnvironmentRequest> ComputeEnvironments { get; } = [];

    /// <summary>AWS <c>CreateJobQueue</c> bodies.</summary>
    public IList<CreateJobQueueRequest> JobQueues { get; } = [];

    /// <summary>AWS <c>RegisterJobDefinition</c> bodies (with BatchCore's <c>extensions.handler</c>).</summary>
    public IList<RegisterJobDefinitionRequest> JobDefinitions { get; } = [];

    /// <summary>
    /// Graceful stop, step 2: how long the hosted service waits for STARTING and RUNNING attempts to end by themselves
    /// after it stopped taking jobs (<see cref="BatchEngine.StopTakingJobsAsync"/>).
    /// </summary>
    /// <value>The default is 30 seconds.</value>
    public TimeSpan DrainTimeout { get; set; } = BatchCoreHostingDefaults.DrainTimeout;

    /// <summary>
    /// Graceful stop, step 3: how long <see cref="BatchEngine.StopAsync"/> waits for the attempts it terminated (the
    /// engine's <see cref="BatchEngineOptions.TerminationGracePeriod"/> applies to each).
    /// </summary>
    /// <value>The default is 10 seconds.</value>
    public TimeSpan TerminateTimeout { get; set; } = BatchCoreHostingDefaults.TerminateTimeout;

    /// <summary>How long the health check waits for the scheduling loop to answer.</summary>
    /// <value>The default is 5 seconds.</value>
    public TimeSpan HealthCheckTimeout { get; set; } = BatchCoreHostingDefaults.HealthCheckTimeout;

    /// <summary>
    /// Whether the hosted service logs every job state change (Information for SUCCEEDED/FAILED, a failed job's with its
    /// container's reason, e.g. <c>CannotStartContainerError: ...</c>; Debug otherwise).
    /// </summary>
    /// <value>The default is true; nothing is watched when neither level is enabled at start.</value>
    public bool LogJobStateChanges { get; set; } = true;

    /// <summary>Whether the <c>process</c> driver (<see cref="Hosts.Process.ProcessHostDriver"/>) is available to hosts.</summary>
    /// <value>The default is true.</value>
    public bool EnableProcessDriver { get; set; } = true;

    /// <summary>
    /// Adds an UNMANAGED compute environment of one host run by <paramref name="driver"/> — by default this machine's
    /// cores and memory running in-process handlers.
    /// </summary>
    /// <returns>These options.</returns>
    public BatchCoreOptions AddLocalComputeEnvironment(string name, double? vcpus = null, int? memoryMiB = null,
        string driver = InProcessHostDriverDefaults.Kind)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ComputeEnvironments.Add(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = name,
            Type = CEType.UNMANAGED,
            Hosts =
            [
                new HostSpec
                {
                    HostName = name + "-host",
                    Driver = driver,
                    Vcpus = vcpus ?? Environment.ProcessorCount,
                    MemoryMiB = memoryMiB ?? BatchCoreHostingDefaults.MachineMemoryMiB(),
                },
            ],
        });
        return this;
    }

    /// <summary>Adds a job queue over compute environments, in order.</summary>
    /// <returns>These options.</returns>
    public BatchCoreOptions AddJobQueue(string name, int priority, params string[] computeEnvironments)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var order = new List<ComputeEnvironmentOrder>(computeEnvironments.Length);
        for (var i = 0; i < computeEnvironments.Length; i++)
        {
            order.Add(new ComputeEnvironmentOrder { Order = i + 1, ComputeEnvironment = computeEnvironments[i] });
        }

        JobQueues.Add(new CreateJobQueueRequest { JobQueueName = name, Priority = priority, ComputeEnvironmentOrder = order });
        return this;
    }

    /// <summary>Registers a job definition that runs the in-process handler <paramref name="handler"/>.</summary>
    /// <returns>These options.</returns>
    public BatchCoreOptions AddHandlerJobDefinition(string name, string handler, double vcpus = 1, int memoryMiB = 128,
        RetryStrategy? retryStrategy = null, int? timeoutSeconds = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        JobDefinitions.Add(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = name,
            Type = JobDefinitionType.container,
            ContainerProperties = new ContainerProperties
            {
                ResourceRequirements =
                [
                    new(ResourceType.VCPU, vcpus.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                    new(ResourceType.MEMORY, memoryMiB.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ],
            },
            RetryStrategy = retryStrategy,
            Timeout = timeoutSeconds is null ? null : new JobTimeout { AttemptDurationSeconds = timeoutSeconds },
            Extensions = new JobDefinitionExtensions { Handler = handler },
        });
        return this;
    }
}

/// <summary>The hosting layer's defaults, in one place.</summary>
public static class BatchCoreHostingDefaults
{
    /// <summary>The configuration section <c>AddBatchCore(IConfiguration)</c> reads when given the root: <c>BatchCore</c>.</summary>
    public const string SectionName = "BatchCore";

    /// <summary>The health check's registration name: <c>batchcore</c>.</summary>
    public const string HealthCheckName = "batchcore";

    /// <summary>The default of <see cref="BatchCoreOptions.DrainTimeout"/>: 30 seconds.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The default of <see cref="BatchCoreOptions.TerminateTimeout"/>: 10 seconds.</summary>
    public static readonly TimeSpan TerminateTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The default of <see cref="BatchCoreOptions.HealthCheckTimeout"/>: 5 seconds.</summary>
    public static readonly TimeSpan HealthCheckTimeout = TimeSpan.FromSeconds(5);

    /// <summary>This machine's memory in MiB as the GC sees it (container limits included).</summary>
    public static int MachineMemoryMiB() =>
        (int)Math.Min(int.MaxValue, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024 * 1024));
}
