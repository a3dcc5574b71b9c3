using BatchCore.Hosts;

namespace BatchCore.Placement;

using TimerEntryRef = BatchCore.Dispatch.TimerEntry;

/// <summary>
/// One host of a compute environment, as the scheduling loop sees it. Owned and mutated by the loop only.
/// </summary>
internal sealed class Host
{
    public Host(int id, string name, Dispatch.ComputeEnvironmentState ce, ResourceVector capacity, HostDriver driver)
    {
        Id = id;
        Name = name;
        ComputeEnvironment = ce;
        Capacity = capacity;
        Free = capacity;
        Driver = driver;
    }

    /// <summary>Unique for the engine's lifetime; FirstFit order.</summary>
    public int Id { get; }
    public string Name { get; }
    public Dispatch.ComputeEnvironmentState ComputeEnvironment { get; }
    /// <summary>Usable capacity: nominal minus the host's memory reserve.</summary>
    public ResourceVector Capacity { get; set; }
    public ResourceVector Free { get; set; }
    public HostDriver Driver { get; }
    /// <summary>EC2 or FARGATE.</summary>
    public string Platform { get; init; } = Model.PlatformCapability.EC2;
    /// <summary>x86_64 or arm64.</summary>
    public string Architecture { get; set; } = "x86_64";
    public string? InstanceType { get; init; }
    public bool Spot { get; init; }
    /// <summary>On-demand (or spot) price per hour, for reports.</summary>
    public double PricePerHour { get; init; }
    /// <summary>Nominal vCPUs counted against the CE's maxvCpus.</summary>
    public int NominalVcpus { get; set; }
    /// <summary>When the host becomes usable (booting until then).</summary>
    public long ReadyAtMs { get; set; }
    public bool Ready { get; set; } = true;
    /// <summary>Leaving: takes no new attempts (scale-in, spot interruption, host lost, infrastructure update).</summary>
    public bool Draining { get; set; }
    /// <summary>
    /// A stand-in, made at recovery for attempts re-attached on a host provider's host that the provider has not reported
    /// again yet: draining (takes no new jobs) and sized to those attempts, until the provider reports the host
    /// (EngineCore.AdoptReportedHost) or <see cref="BatchEngineOptions.ProvidedHostRecoveryTimeout"/> passes.
    /// </summary>
    public bool AwaitingReport { get; set; }
    /// <summary>
    /// Replaced by an infrastructure update (draining): when what still runs on it is terminated, by the policy of the
    /// update that replaced it. -1: not replaced by one.
    /// </summary>
    public long ReplacedDeadlineMs { get; set; } = -1;
    /// <summary>Fargate: one task per host; removed when its attempt ends.</summary>
    public bool SingleUse { get; init; }
    public int RunningAttempts { get; set; }
    public long IdleSinceMs { get; set; }

    /// <summary>
    /// The latest time a running attempt's declared timeout lets it run to (start + attemptDurationSeconds), kept as a
    /// running maximum while the host is busy and reset when it goes idle; <see cref="long.MaxValue"/> once an attempt
    /// without a timeout runs. Drain-aware placement reads it (EngineCore.PassOver).
    /// </summary>
    public long DeclaredBusyUntilMs { get; set; }
    public long LaunchedAtMs { get; set; }

    // HostIndex bookkeeping: an intrusive doubly-linked list per free-vCPU bucket (no allocation on moves).
    internal int Bucket = -1;
    internal Host? PrevInBucket;
    internal Host? NextInBucket;
    internal int SlotInAll = -1;
    // HostIndex's first-fit tree: the host's leaf (stable while it is indexed) and its architecture's bit.
    internal int TreeSlot = -1;
    internal int ArchBit;

    public bool Accepts => Ready && !Draining;

    /// <summary>Booting hosts: capacity not yet promised to waiting jobs in this cycle.</summary>
    public ResourceVector PlannedFree { get; set; }

    public TimerEntryRef? InterruptionTimer { get; set; }

    /// <summary>Its spot interruption notice was given (the attempts end 2 minutes later): not the same as <see cref="Draining"/>, which other causes set too.</summary>
    public bool SpotNoticeGiven { get; set; }

    /// <summary>The head of the list of attempts running here (<see cref="Jobs.Job.NextOnHost"/>), kept by the loop.</summary>
    internal Jobs.Job? FirstAttempt;
}
