namespace BatchCore.Provisioning;

/// <summary>How managed compute environments get hosts. Defaults in one place (<see cref="ProvisioningDefaults"/>).</summary>
public sealed record ProvisioningOptions
{
    /// <summary>The instance catalog. The default is <see cref="InstanceCatalog.Default"/>.</summary>
    public InstanceCatalog? Catalog { get; init; }

    /// <summary>How long a simulated EC2 instance takes to boot (the fixed part). The default is zero (instant).</summary>
    public TimeSpan Ec2BootTime { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// Extra random boot time, uniformly 0..this, drawn from the engine's seeded <see cref="Random"/>; with
    /// <see cref="Ec2BootTime"/> this is the boot-time distribution. The default is zero.
    /// </summary>
    public TimeSpan Ec2BootJitter { get; init; } = TimeSpan.Zero;

    /// <summary>How long a Fargate task takes to start (AWS: about 30 s). The default is zero (instant).</summary>
    public TimeSpan FargateStartTime { get; init; } = TimeSpan.Zero;

    /// <summary>Idle instances are kept this long before scale-in unless the CE sets minScaleDownDelayMinutes. The default is 20 minutes (AWS's minimum).</summary>
    public TimeSpan DefaultScaleDownDelay { get; init; } = TimeSpan.FromMinutes(20);

    /// <summary>
    /// Scale-in is evaluated on this grid (a host idle past its delay goes at the next check), which keeps the check
    /// O(hosts) per interval instead of per idle event. <see cref="TimeSpan.Zero"/> checks at the exact due time.
    /// The default is 1 minute.
    /// </summary>
    public TimeSpan ScaleInCheckInterval { get; init; } = ProvisioningDefaults.ScaleInCheckInterval;

    /// <summary>Simulate spot interruptions with the catalog's rates. The default is false.</summary>
    public bool SimulateSpotInterruptions { get; init; }

    /// <summary>
    /// Apply AWS's launch rate limits (token buckets): EC2 RunInstances <see cref="Ec2LaunchBucket"/> and Fargate
    /// RunTask <see cref="FargateLaunchBucket"/>. The default is true.
    /// </summary>
    public bool EnforceLaunchRateLimits { get; init; } = true;

    /// <summary>EC2 RunInstances: bucket size 1,000, refilled 2 per second (AWS EC2 API throttling, resource rate limits).</summary>
    public TokenBucketOptions Ec2LaunchBucket { get; init; } = ProvisioningDefaults.Ec2LaunchBucket;

    /// <summary>Fargate tasks launched: bucket size 100, refilled 20 per second (AWS Fargate launch rate quota).</summary>
    public TokenBucketOptions FargateLaunchBucket { get; init; } = ProvisioningDefaults.FargateLaunchBucket;

    /// <summary>
    /// Simulated capacity per instance type: at most this many instances of the type run at once in this engine
    /// (on-demand and spot together). A type at its limit is "unavailable": BEST_FIT waits for it, the progressive and
    /// spot strategies pick another type. Types not listed are unlimited. The default is none (all unlimited).
    /// </summary>
    public IReadOnlyDictionary<string, int>? InstanceTypeCapacity { get; init; }

    /// <summary>
    /// Size a scale-out for the waiting demand: when no host fits a RUNNABLE job, the RUNNABLE jobs of the CE's queues
    /// are packed onto booting and new instances at once, instead of one instance per job and cycle. The default is true.
    /// </summary>
    public bool DemandSizedScaleOut { get; init; } = true;

    /// <summary>
    /// Drain-aware placement in managed EC2/Spot CEs: a job is not started on a mostly idle instance (at most a quarter
    /// allocated, has run jobs before) at least twice the size of the type the allocation strategy would launch for it
    /// when that type can be launched now; it waits for the right-sized instance instead, and the large one scales in.
    /// Trades a boot of wait for not keeping a large instance billed. The default is true.
    /// </summary>
    public bool RightSizePlacement { get; init; } = true;

    /// <summary>The driver kind for hosts of managed CEs with the <c>simulated</c> provider. The default is <c>simulated</c>.</summary>
    public string ManagedHostDriver { get; init; } = "simulated";

    /// <summary>The driver kind for hosts of managed CEs with the <c>local</c> provider. The default is <c>process</c>.</summary>
    public string LocalHostDriver { get; init; } = "process";

    /// <summary>vCPUs the <c>local</c> provider may carve. The default is the machine's processor count.</summary>
    public int? LocalVcpus { get; init; }

    /// <summary>Memory (MiB) the <c>local</c> provider may carve. The default is the memory available to the process.</summary>
    public long? LocalMemoryMiB { get; init; }
}

/// <summary>A token bucket: <see cref="Capacity"/> tokens, refilled at <see cref="RefillPerSecond"/>; one token per launch.</summary>
/// <param name="Capacity">Bucket size (burst).</param>
/// <param name="RefillPerSecond">Tokens added per second.</param>
public sealed record TokenBucketOptions(int Capacity, double RefillPerSecond);

/// <summary>Provisioning defaults, in one place.</summary>
public static class ProvisioningDefaults
{
    /// <summary>AWS EC2 RunInstances resource rate limit: bucket 1,000, refill 2/s.</summary>
    public static readonly TokenBucketOptions Ec2LaunchBucket = new(1_000, 2);

    /// <summary>AWS Fargate task launch rate: bucket 100, refill 20/s.</summary>
    public static readonly TokenBucketOptions FargateLaunchBucket = new(100, 20);

    /// <summary>Scale-in check grid: 1 minute.</summary>
    public static readonly TimeSpan ScaleInCheckInterval = TimeSpan.FromMinutes(1);
}
