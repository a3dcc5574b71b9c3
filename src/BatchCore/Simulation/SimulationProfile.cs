using BatchCore.Model;

namespace BatchCore.Simulation;

/// <summary>
/// A compute setup to replay a workload on: one compute environment (any <see cref="CreateComputeEnvironmentRequest"/>,
/// the hook for user specs) behind one job queue per queue name the workload uses.
/// </summary>
/// <param name="Name">The profile's name in the report.</param>
/// <param name="ComputeEnvironment">The CE to create; its name is used as is.</param>
public sealed record SimulationProfile(string Name, CreateComputeEnvironmentRequest ComputeEnvironment)
{
    /// <summary>The built-in profile names, in report order.</summary>
    public static IReadOnlyList<string> BuiltInNames { get; } = ["ec2", "spot", "fargate"];

    /// <summary><c>ec2</c>: MANAGED EC2, instance types <c>optimal</c>, BEST_FIT_PROGRESSIVE, minvCpus 0.</summary>
    public static SimulationProfile Ec2(int maxvCpus = SimulationDefaults.MaxvCpus) => new("ec2", Managed("ec2", CRType.EC2, CRAllocationStrategy.BEST_FIT_PROGRESSIVE, maxvCpus));

    /// <summary><c>spot</c>: MANAGED SPOT, <c>optimal</c>, SPOT_PRICE_CAPACITY_OPTIMIZED, bidPercentage 100.</summary>
    public static SimulationProfile Spot(int maxvCpus = SimulationDefaults.MaxvCpus) => new("spot", Managed("spot", CRType.SPOT, CRAllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED, maxvCpus) with
    {
        ComputeResources = Managed("spot", CRType.SPOT, CRAllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED, maxvCpus).ComputeResources! with { BidPercentage = 100 },
    });

    /// <summary><c>fargate</c>: MANAGED FARGATE.</summary>
    public static SimulationProfile Fargate(int maxvCpus = SimulationDefaults.MaxvCpus) => new("fargate", new CreateComputeEnvironmentRequest
    {
        ComputeEnvironmentName = "fargate",
        Type = CEType.MANAGED,
        ComputeResources = new ComputeResource { Type = CRType.FARGATE, MaxvCpus = maxvCpus, Subnets = ["subnet-sim"], SecurityGroupIds = ["sg-sim"] },
    });

    /// <summary>A built-in profile by name (<c>ec2</c>, <c>spot</c>, <c>fargate</c>).</summary>
    public static SimulationProfile BuiltIn(string name, int maxvCpus = SimulationDefaults.MaxvCpus) => name switch
    {
        "ec2" => Ec2(maxvCpus),
        "spot" => Spot(maxvCpus),
        "fargate" => Fargate(maxvCpus),
        _ => throw new BatchClientException($"profile must be ec2, spot, fargate or all, was {name}"),
    };

    /// <summary>Whether the CE runs Fargate tasks (job definitions then need platformCapabilities FARGATE).</summary>
    public bool IsFargate => ComputeEnvironment.ComputeResources?.Type is CRType.FARGATE or CRType.FARGATE_SPOT;

    private static CreateComputeEnvironmentRequest Managed(string name, string type, string strategy, int maxvCpus) => new()
    {
        ComputeEnvironmentName = name,
        Type = CEType.MANAGED,
        ComputeResources = new ComputeResource
        {
            Type = type,
            AllocationStrategy = strategy,
            MinvCpus = 0,
            MaxvCpus = maxvCpus,
            InstanceTypes = ["optimal"],
            Subnets = ["subnet-sim"],
            SecurityGroupIds = ["sg-sim"],
            InstanceRole = "ecsInstanceRole",
        },
    };
}
