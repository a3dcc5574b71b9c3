using BatchCore.Model;
using BatchCore.Placement;

namespace BatchCore.Dispatch;

/// <summary>A compute environment as the scheduling loop keeps it: its settings, hosts and provisioned vCPUs.</summary>
internal sealed class ComputeEnvironmentState
{
    public required string Name { get; init; }
    public required string Arn { get; init; }
    /// <summary>MANAGED or UNMANAGED.</summary>
    public required string Type { get; init; }
    public required string State { get; set; }
    public string Status { get; set; } = ResourceStatus.VALID;
    public string? StatusReason { get; set; }
    public ComputeResource? Resources { get; set; }
    public int? UnmanagedvCpus { get; set; }
    public string? ServiceRole { get; set; }
    public Dictionary<string, string> Tags { get; init; } = new(StringComparer.Ordinal);
    public IReadOnlyList<HostSpec>? HostSpecs { get; init; }
    public string? Provider { get; init; }
    public IReadOnlyDictionary<string, string>? ProviderSettings { get; init; }
    /// <summary>The provider that supplies this UNMANAGED CE's hosts at run time (e.g. Slurm); null when <c>hosts</c> lists them.</summary>
    public Hosts.HostProvider? HostProvider { get; set; }
    public long CreatedOrder { get; init; }

    public HostIndex Index { get; } = new();

    /// <summary>Hosts by name.</summary>
    public Dictionary<string, Host> Hosts { get; } = new(StringComparer.Ordinal);

    /// <summary>EC2 or FARGATE: the platform of every host of this CE.</summary>
    public string Platform => IsFargate ? PlatformCapability.FARGATE : PlatformCapability.EC2;
    public bool IsManaged => Type == CEType.MANAGED;
    public bool IsFargate => Resources?.Type is CRType.FARGATE or CRType.FARGATE_SPOT;
    public bool IsSpot => Resources?.Type is CRType.SPOT or CRType.FARGATE_SPOT;
    /// <summary>x86_64 or arm64 for EC2 environments whose instance types say so; null when mixed or unknown.</summary>
    public string? Architecture { get; set; }

    /// <summary>
    /// Nominal vCPUs of all hosts, booting ones included: what maxvCpus limits. A long: an UNMANAGED environment may list
    /// (or a provider report) thousands of hosts of up to a million vCPUs each, past int.MaxValue.
    /// </summary>
    public long ProvisionedVcpus { get; set; }

    /// <summary>vCPU-milli in use by STARTING and RUNNING attempts.</summary>
    public long UsedVcpuMilli { get; set; }

    public int MinvCpus => Resources?.MinvCpus ?? 0;
    public int MaxvCpus => Resources?.MaxvCpus ?? int.MaxValue;

    /// <summary>Queues that list this CE (AWS: a CE in a queue cannot be deleted).</summary>
    public List<JobQueueState> Queues { get; } = [];

    /// <summary>Whether new placements may go here (AWS: DISABLED or INVALID CEs get none).</summary>
    /// <summary>ENABLED and VALID, or UPDATING (an infrastructure update places new jobs on the new instances).</summary>
    public bool AcceptsPlacements => State == ResourceState.ENABLED && Status is ResourceStatus.VALID or ResourceStatus.UPDATING;

    /// <summary>An infrastructure update's deadline for the jobs on the instances it replaces, while it runs.</summary>
    public TimerEntry? UpdateTimer { get; set; }

    /// <summary>The largest request any host of this environment could ever hold (null: unknown/unbounded).</summary>
    public ResourceVector? MaxHostShape { get; set; }

    /// <summary>Cost accounting: host-seconds and price, for the simulator's report.</summary>
    public double AccruedCostUsd { get; set; }
    public int PeakHosts { get; set; }
    public bool ScaleInTimerArmed { get; set; }

    /// <summary>Host count, readable from other threads (gauges).</summary>
    public int HostCount => Volatile.Read(ref _hostCount);
    internal int _hostCount;
    /// <summary>Hosts whose driver runs in-process handlers (<c>inprocess</c>) and hosts whose driver runs commands or images.</summary>
    internal int _handlerHosts, _commandHosts;

    /// <summary>
    /// Whether the environment has a host for the job's kind: a job whose definition names an in-process handler needs
    /// an <c>inprocess</c> host, any other job a host that runs commands or images (process, docker, slurm); the engine's
    /// simulated hosts run both. A managed environment is judged by the driver it launches hosts with.
    /// AWS has no in-process jobs, so it has no such rule: without it, a queue over an in-process and a process
    /// environment sent a handler job to the process host when the first was full, where it failed for want of a command.
    /// </summary>
    public bool RunsKindOf(Jobs.JobSpec spec) => ProvisionedDriverKind is { } kind
        ? kind == "simulated" || (kind == global::BatchCore.Hosts.InProcess.InProcessHostDriverDefaults.Kind) == spec.IsHandlerJob
        : spec.IsHandlerJob ? _commandHosts < _hostCount || _hostCount == 0 : _handlerHosts < _hostCount || _hostCount == 0;

    /// <summary>
    /// A managed environment: the driver kind of the hosts it launches (decides <see cref="RunsKindOf"/> even before it
    /// has any); null for an unmanaged one, whose hosts are counted.
    /// </summary>
    public string? ProvisionedDriverKind { get; set; }

    /// <summary>vCPU-milli of all hosts, readable from other threads (gauges).</summary>
    public long CapacityVcpuMilli => Volatile.Read(ref _capacityVcpuMilli);
    internal long _capacityVcpuMilli;
    /// <summary>Σ nominal vCPUs × seconds of removed hosts (live hosts are added on query): the simulator's denominator.</summary>
    public double ProvisionedVcpuSeconds { get; set; }

    /// <summary>The expanded instanceTypes (strategy order), cached for <see cref="AllowedTypesFor"/>.</summary>
    public List<Provisioning.InstanceType>? AllowedTypesCache { get; set; }
    public ComputeResource? AllowedTypesFor { get; set; }

    /// <summary>The provisioning cycle in which this CE last sized a scale-out for its waiting demand.</summary>
    public long ScaleOutCycle { get; set; } = -1;

    /// <summary>RUNNABLE jobs of the CE's queues when its scale-out was last sized: growth triggers a new sizing.</summary>
    public int LastSizedRunnable { get; set; }

    /// <summary>The armed scale-in check (cancelled when an earlier one is needed).</summary>
    public TimerEntry? ScaleInTimer { get; set; }
}
