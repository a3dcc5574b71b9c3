using System.Threading.Channels;
using BatchCore.Logs;

namespace BatchCore;

/// <summary>
/// How a <see cref="BatchEngine"/> behaves. Validated and copied when the engine is created; defaults live in
/// <see cref="BatchEngineDefaults"/>.
/// </summary>
public sealed record BatchEngineOptions
{
    /// <summary>The region in ARNs. The default is <c>local</c>.</summary>
    public string Region { get; init; } = BatchEngineDefaults.Region;

    /// <summary>The account in ARNs. The default is <c>000000000000</c>.</summary>
    public string AccountId { get; init; } = BatchEngineDefaults.AccountId;

    /// <summary>
    /// Where time comes from when <see cref="VirtualTime"/> is false. The default is <see cref="TimeProvider.System"/>.
    /// </summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Run on a virtual clock that moves only when <see cref="BatchEngine.RunUntilIdleAsync"/> or
    /// <see cref="BatchEngine.AdvanceTimeAsync"/> asks: the simulator's and the tests' mode. The default is false.
    /// </summary>
    public bool VirtualTime { get; init; }

    /// <summary>The virtual clock's start. The default is 2026-01-01T00:00:00Z.</summary>
    public DateTimeOffset VirtualStart { get; init; } = BatchEngineDefaults.VirtualStart;

    /// <summary>
    /// Seed of every random choice the engine makes (job ids, simulated faults). The default is 1. A journaling engine
    /// (<see cref="Journal.JournalOptions.Durability"/>) seeds its job ids randomly instead, when its state directory is
    /// new and again at every recovery, so that engines sharing a machine never make the same ids.
    /// </summary>
    public int Seed { get; init; } = 1;

    /// <summary>AWS's quotas, enforced by default.</summary>
    public BatchQuotas Quotas { get; init; } = new();

    /// <summary>Allow <c>timeout.attemptDurationSeconds</c> below AWS's 60 s minimum (≥1 s). The default is false.</summary>
    public bool AllowShortTimeouts { get; init; }

    /// <summary>Memory an EC2 host keeps for itself, as the ECS agent does (AWS: 32 MiB). The default is 32 MiB.</summary>
    public int HostMemoryReserveMiB { get; init; } = BatchEngineDefaults.HostMemoryReserveMiB;

    /// <summary>
    /// Called with an unexpected error the engine survived (a bug in BatchCore or in a driver, such as a driver whose
    /// Terminate throws): the engine keeps serving and keeps the error in <see cref="BatchEngine.LastLoopError"/>. Called on
    /// the scheduling loop, and during <see cref="BatchEngine.StopAsync"/> also on the stopping thread (so it must be
    /// thread-safe). The Generic Host integration logs it. Must not block; what it throws is ignored. The default is null.
    /// </summary>
    public Action<Exception>? UnexpectedError { get; init; }

    /// <summary>Time between SIGTERM and SIGKILL when an attempt is terminated or times out (AWS: 30 s).</summary>
    public TimeSpan TerminationGracePeriod { get; init; } = BatchEngineDefaults.TerminationGracePeriod;

    /// <summary>
    /// After a restart, how long an attempt that ran on a host provider's host (a Slurm node) and that the provider's
    /// driver took back waits for the provider to report that host again. Recovery runs before any provider has
    /// reported its hosts, so such an attempt is held on a stand-in host that takes no new jobs; when the provider
    /// reports the host, the host takes over (its reported capacity, less what the attempts use) and the attempts run
    /// on. When it is not reported in time, the attempts are stopped and end as host failures
    /// (<see cref="Model.StatusReasons.EngineRestarted"/>), retried per retryStrategy. The default is 5 minutes.
    /// </summary>
    public TimeSpan ProvidedHostRecoveryTimeout { get; init; } = BatchEngineDefaults.ProvidedHostRecoveryTimeout;

    /// <summary>
    /// How long a job that reached SUCCEEDED or FAILED stays visible (DescribeJobs, ListJobs, dependsOn) before the
    /// engine forgets it, with its array children (AWS keeps ended jobs at least 7 days). A job that a retained job
    /// names in <c>dependsOn</c> is kept until that job goes too. Bounds the memory of a long-running engine: at 10
    /// jobs/s, 7 days is ~6 million jobs (~1.5 GB). Jobs are forgotten lazily, when later jobs end. The journal applies
    /// the same rule when it recovers and compacts. <see cref="Timeout.InfiniteTimeSpan"/> keeps them for the engine's
    /// lifetime (the simulator does). The default is 7 days.
    /// </summary>
    public TimeSpan TerminalJobRetention { get; init; } = BatchEngineDefaults.TerminalJobRetention;

    /// <summary>
    /// How long a job definition revision stays after DeregisterJobDefinition made it INACTIVE (AWS: "Job definitions are
    /// permanently deleted after 180 days"). Past it the revision is gone from DescribeJobDefinitions, SubmitJob and the
    /// tagging calls; its revision number is not given out again, and jobs that ran with it keep it. The journal applies
    /// the same rule when it recovers (deregistrations are journaled with their time).
    /// <see cref="Timeout.InfiniteTimeSpan"/> keeps INACTIVE revisions for the engine's lifetime. The default is 180 days.
    /// </summary>
    public TimeSpan InactiveJobDefinitionRetention { get; init; } = BatchEngineDefaults.InactiveJobDefinitionRetention;

    /// <summary>
    /// How many API requests may wait for the scheduling loop before callers wait too (back-pressure).
    /// The default is 65,536; when full, callers wait asynchronously (<see cref="BoundedChannelFullMode.Wait"/>).
    /// </summary>
    public int RequestQueueCapacity { get; init; } = BatchEngineDefaults.RequestQueueCapacity;

    /// <summary>How a job is placed on a host. The default is <see cref="Placement.PlacementStrategy.BestFit"/>.</summary>
    public Placement.PlacementStrategy PlacementStrategy { get; init; } = Placement.PlacementStrategy.BestFit;

    /// <summary>
    /// Place a window of waiting jobs together (largest first) when at least this many wait in one queue. 0 turns
    /// batch placement off. The default is 32.
    /// </summary>
    public int BatchPlacementThreshold { get; init; } = BatchEngineDefaults.BatchPlacementThreshold;

    /// <summary>
    /// Keep plain array children on the engine's simulated hosts without an object each until something looks at one
    /// (see docs/architecture.md, "Virtual array children"). Always on; tests and benchmarks turn it off to compare with
    /// the per-child path.
    /// </summary>
    internal bool VirtualArrayChildren { get; init; } = true;

    /// <summary>How far past a blocked head a backfilling queue looks per scheduling cycle. The default is 1,000.</summary>
    public int BackfillScanLimit { get; init; } = BatchEngineDefaults.BackfillScanLimit;

    /// <summary>Where attempts' logs go. The default is a new <see cref="InMemoryLogStore"/>.</summary>
    public LogStore? LogStore { get; init; }

    /// <summary>Host drivers by kind (<c>process</c>, <c>docker</c>, ...). The simulated driver is always present.</summary>
    public IReadOnlyDictionary<string, Func<Model.HostSpec, Hosts.HostDriver>>? DriverFactories { get; init; }

    /// <summary>
    /// Host providers by name (<c>slurm</c>, ...): an UNMANAGED compute environment whose <c>provider</c> names one gets
    /// its hosts from it at run time instead of from <c>hosts</c>. The factory receives the creation request (its
    /// <c>providerSettings</c>) and throws <see cref="BatchClientException"/> for bad settings. The default is none.
    /// </summary>
    public IReadOnlyDictionary<string, Func<Model.CreateComputeEnvironmentRequest, Hosts.HostProvider>>? HostProviders { get; init; }

    /// <summary>
    /// Resolves a job definition's <c>containerProperties.secrets</c>: given a secret (its environment variable name and
    /// its <c>valueFrom</c>, on AWS a Secrets Manager or SSM Parameter Store ARN or name), returns the value the job gets
    /// in that variable, or throws when it cannot. Every driver that runs jobs (process, docker, Slurm, in-process: the
    /// handler's <c>Environment</c>) calls it off the engine's loop before it starts an attempt; an attempt whose secrets cannot be resolved — or that has secrets while no resolver
    /// is set — does not start and fails with AWS's <c>ResourceInitializationError</c>, as on AWS. The default is none.
    /// </summary>
    public Func<Model.Secret, CancellationToken, ValueTask<string>>? SecretResolver { get; init; }

    /// <summary>Durability: none (in memory, the default) or a journal in a state directory.</summary>
    public Journal.JournalOptions Journal { get; init; } = new();

    /// <summary>How managed compute environments get hosts. The default provisions simulated hosts instantly.</summary>
    public Provisioning.ProvisioningOptions Provisioning { get; init; } = new();
}

/// <summary>AWS Batch's service quotas (reference §2.7), configurable.</summary>
public sealed record BatchQuotas
{
    public int MaxJobQueues { get; init; } = 50;
    public int MaxComputeEnvironments { get; init; } = 50;
    public int MaxComputeEnvironmentsPerQueue { get; init; } = 3;
    public int MaxDependencies { get; init; } = 20;
    public int MaxArraySize { get; init; } = 10_000;
    public int MaxSubmittedJobs { get; init; } = 1_000_000;
    public int MaxTags { get; init; } = 50;
    public int MaxActiveShareIdentifiers { get; init; } = 500;
    public int MaxConsumableResources { get; init; } = 50_000;
    /// <summary>A SubmitJob request's size as JSON, in bytes (AWS: 30 KiB).</summary>
    public int MaxSubmitJobPayloadBytes { get; init; } = 30 * 1024;
    /// <summary>A job definition's size as JSON, in bytes (AWS: 24 KiB).</summary>
    public int MaxJobDefinitionBytes { get; init; } = 24 * 1024;
}

/// <summary>The engine's defaults, in one place.</summary>
public static class BatchEngineDefaults
{
    public const string Region = "local";
    public const string AccountId = "000000000000";
    public const int HostMemoryReserveMiB = 32;
    public const int RequestQueueCapacity = 65_536;
    public const int BatchPlacementThreshold = 32;
    public const int BackfillScanLimit = 1_000;
    public static readonly TimeSpan TerminationGracePeriod = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan ProvidedHostRecoveryTimeout = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan TerminalJobRetention = TimeSpan.FromDays(7);
    public static readonly TimeSpan InactiveJobDefinitionRetention = TimeSpan.FromDays(180);
    public static readonly DateTimeOffset VirtualStart = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// The ARN partition of <paramref name="region"/>, as AWS names them: <c>aws-cn</c> for the China regions
    /// (<c>cn-…</c>), <c>aws-us-gov</c> for GovCloud (<c>us-gov-…</c>), <c>aws</c> for every other (and for <c>local</c>).
    /// </summary>
    public static string Partition(string region) =>
        region.StartsWith("cn-", StringComparison.Ordinal) ? "aws-cn"
        : region.StartsWith("us-gov-", StringComparison.Ordinal) ? "aws-us-gov"
        : "aws";
}
