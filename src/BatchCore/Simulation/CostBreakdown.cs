namespace BatchCore.Simulation;

/// <summary>
/// Where a replay's cost goes, in USD; the parts add up to <see cref="ProfileReport.CostUsd"/> (within rounding).
/// Computed per host from its lifetime and the attempts that ran on it.
/// </summary>
public sealed record CostBreakdown
{
    /// <summary>Σ attempt RUNNING time × the vCPUs the job asked for × the cheapest price per vCPU of any type (or Fargate size) that fits the job: the lower bound's share (retried attempts included).</summary>
    public double JobsAtCheapestUsd { get; init; }

    /// <summary>The same vCPU-seconds × (the host's price per vCPU − the cheapest): jobs on types dearer per vCPU than the cheapest that fits.</summary>
    public double TypePremiumUsd { get; init; }

    /// <summary>Unused vCPUs of a busy host while it runs exactly one job and is the smallest allowed size that fits that job (odd vCPU counts rounded up to a size; a Fargate task padded to a valid size).</summary>
    public double SizeRoundingUsd { get; init; }

    /// <summary>Unused vCPUs of a host running exactly one job that a smaller allowed size would hold (a large host kept up by one small job).</summary>
    public double OneJobOnLargerHostUsd { get; init; }

    /// <summary>Unused vCPUs of hosts running several jobs: fragmentation, and large hosts kept up by a few small jobs.</summary>
    public double UnusedOnBusyHostsUsd { get; init; }

    /// <summary>Hosts running nothing between two jobs.</summary>
    public double IdleBetweenJobsUsd { get; init; }

    /// <summary>Hosts running nothing after their last job (or never used) until scale-in — the scale-down delay — or, kept for minvCpus, until the end of the replay.</summary>
    public double IdleBeforeScaleInUsd { get; init; }

    /// <summary>Launch → ready (an EC2 boot, a Fargate task's start), billed.</summary>
    public double BootUsd { get; init; }

    /// <summary>The 60-second billing minimum beyond a host's actual lifetime.</summary>
    public double MinimumBillingUsd { get; init; }

    /// <summary>Per instance type (or Fargate size): hosts launched, host-hours and cost.</summary>
    public IReadOnlyList<InstanceTypeCost> ByInstanceType { get; init; } = [];

    /// <summary>Σ of the parts.</summary>
    public double TotalUsd => JobsAtCheapestUsd + TypePremiumUsd + SizeRoundingUsd + OneJobOnLargerHostUsd + UnusedOnBusyHostsUsd + IdleBetweenJobsUsd
        + IdleBeforeScaleInUsd + BootUsd + MinimumBillingUsd;
}

/// <summary>One instance type's share of a replay's cost.</summary>
/// <param name="InstanceType">The type (or <c>fargate</c>).</param>
/// <param name="Hosts">Hosts launched.</param>
/// <param name="HostHours">Σ host lifetime, hours.</param>
/// <param name="CostUsd">Σ billed cost.</param>
/// <param name="HostVcpuHours">Σ host lifetime × the host's vCPUs (real capacity), hours.</param>
/// <param name="UsedVcpuHours">Σ attempt RUNNING time × vCPUs on those hosts, hours.</param>
public sealed record InstanceTypeCost(string InstanceType, int Hosts, double HostHours, double CostUsd, double HostVcpuHours, double UsedVcpuHours);
