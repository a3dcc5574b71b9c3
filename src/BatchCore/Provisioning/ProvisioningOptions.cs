namespace BatchCore.Provisioning;

/// <summary>How managed compute environments get hosts. Defaults in one place.</summary>
public sealed record ProvisioningOptions
{
    /// <summary>The instance catalog. The default is <see cref="InstanceCatalog.Default"/>.</summary>
    public InstanceCatalog? Catalog { get; init; }

    /// <summary>How long a simulated EC2 instance takes to boot. The default is zero (instant).</summary>
    public TimeSpan Ec2BootTime { get; init; } = TimeSpan.Zero;

    /// <summary>Extra random boot time, uniformly 0..this. The default is zero.</summary>
    public TimeSpan Ec2BootJitter { get; init; } = TimeSpan.Zero;

    /// <summary>How long a Fargate task takes to start. The default is zero (instant).</summary>
    public TimeSpan FargateStartTime { get; init; } = TimeSpan.Zero;

    /// <summary>Idle instances are kept this long before scale-in unless the CE sets minScaleDownDelayMinutes. The default is 20 minutes (AWS's minimum).</summary>
    public TimeSpan DefaultScaleDownDelay { get; init; } = TimeSpan.FromMinutes(20);

    /// <summary>Simulate spot interruptions with the catalog's rates. The default is false.</summary>
    public bool SimulateSpotInterruptions { get; init; }

    /// <summary>The driver kind for hosts of managed CEs with the <c>simulated</c> provider. The default is <c>simulated</c>.</summary>
    public string ManagedHostDriver { get; init; } = "simulated";

    /// <summary>The driver kind for hosts of managed CEs with the <c>local</c> provider. The default is <c>process</c>.</summary>
    public string LocalHostDriver { get; init; } = "process";

    /// <summary>vCPUs the <c>local</c> provider may carve. The default is the machine's processor count.</summary>
    public int? LocalVcpus { get; init; }

    /// <summary>Memory (MiB) the <c>local</c> provider may carve. The default is the memory available to the process.</summary>
    public long? LocalMemoryMiB { get; init; }
}
