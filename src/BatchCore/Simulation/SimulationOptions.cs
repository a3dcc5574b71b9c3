namespace BatchCore.Simulation;

/// <summary>What to replay and how. Defaults in <see cref="SimulationDefaults"/>.</summary>
public sealed record SimulationOptions
{
    /// <summary>A workload file (<c>.swf</c>, <c>.swf.gz</c>, <c>.jsonl</c>); ignored when <see cref="Workload"/> is set.</summary>
    public string? WorkloadPath { get; init; }

    /// <summary><c>swf</c>, <c>jsonl</c> or null to decide by the file name. The default is null.</summary>
    public string? WorkloadFormat { get; init; }

    /// <summary>An in-memory workload (generators, tests); wins over <see cref="WorkloadPath"/>.</summary>
    public Workload? Workload { get; init; }

    /// <summary>Replay only the first this many jobs. The default is all.</summary>
    public int? MaxJobs { get; init; }

    /// <summary>Built-in profiles to run: any of <c>ec2</c>, <c>spot</c>, <c>fargate</c>, or <c>all</c>. The default is <c>all</c>.</summary>
    public IReadOnlyList<string> Profiles { get; init; } = ["all"];

    /// <summary>
    /// User profiles (already-built CreateComputeEnvironment requests), run after the built-in ones. When set and
    /// <see cref="Profiles"/> is left at its default, only these run.
    /// </summary>
    public IReadOnlyList<SimulationProfile>? CustomProfiles { get; init; }

    /// <summary>Seed of every random choice (ids, boot times, interruptions). The default is 1.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Submit times are divided by this (10 = ten times faster arrivals); run times are not. The default is 1.</summary>
    public double TimeScale { get; init; } = 1;

    /// <summary>maxvCpus of the built-in profiles. The default is 10,000.</summary>
    public int MaxvCpus { get; init; } = SimulationDefaults.MaxvCpus;

    /// <summary>EC2 boot time: this fixed part plus <see cref="Ec2BootJitter"/>. The default is 2 minutes.</summary>
    public TimeSpan Ec2BootTime { get; init; } = SimulationDefaults.Ec2BootTime;

    /// <summary>EC2 boot time's random part, uniform 0..this (seeded). The default is 2 minutes.</summary>
    public TimeSpan Ec2BootJitter { get; init; } = SimulationDefaults.Ec2BootJitter;

    /// <summary>Fargate task start time. The default is 30 seconds.</summary>
    public TimeSpan FargateStartTime { get; init; } = SimulationDefaults.FargateStartTime;

    /// <summary>Simulate Spot and Fargate Spot interruptions (catalog rates). The default is true.</summary>
    public bool SpotInterruptions { get; init; } = true;

    /// <summary>Attempts per job (retryStrategy.attempts): interrupted spot attempts retry. The default is 3.</summary>
    public int Attempts { get; init; } = 3;

    /// <summary>Most time-series points kept per profile (older points are thinned). The default is 2,000.</summary>
    public int MaxSeriesPoints { get; init; } = 2_000;

    /// <summary>
    /// Add a <see cref="CostBreakdown"/> to each profile's report: where the cost above the lower bound goes (idle,
    /// boot, unused vCPUs, type premium, billing minimum). Costs a pass over every attempt. The default is false.
    /// </summary>
    public bool IncludeCostBreakdown { get; init; }

    /// <summary>Engine options to start from (placement strategy, quotas...); virtual time and the seed are set by the simulator.</summary>
    public BatchEngineOptions? Engine { get; init; }
}

/// <summary>The simulator's defaults.</summary>
public static class SimulationDefaults
{
    /// <summary>maxvCpus of built-in profiles.</summary>
    public const int MaxvCpus = 10_000;

    /// <summary>EC2 boot time, fixed part (instance launch plus ECS agent registration).</summary>
    public static readonly TimeSpan Ec2BootTime = TimeSpan.FromMinutes(2);

    /// <summary>EC2 boot time, random part.</summary>
    public static readonly TimeSpan Ec2BootJitter = TimeSpan.FromMinutes(2);

    /// <summary>Fargate task start (AWS: about 30 s).</summary>
    public static readonly TimeSpan FargateStartTime = TimeSpan.FromSeconds(30);
}
