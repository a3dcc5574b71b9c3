using BatchCore.Model;
using BatchCore.Provisioning;

namespace BatchCore.Tests.Provisioning;

/// <summary>Builds engines with one MANAGED compute environment and a queue over it, on virtual time.</summary>
internal static class ManagedCe
{
    /// <summary>
    /// Runs the engine until idle, then disposes it: disposing with attempts still running waits the termination grace
    /// period in wall time (the virtual clock does not move during shutdown).
    /// </summary>
    public static async Task DrainAndDisposeAsync(BatchEngine engine)
    {
        await engine.RunUntilIdleAsync();
        await engine.DisposeAsync();
    }

    public static async Task<BatchEngine> CreateAsync(ComputeResource resources, ProvisioningOptions? provisioning = null, int seed = 1,
        string? state = null)
    {
        var engine = TestEngine.Create(new BatchEngineOptions { Seed = seed, Provisioning = provisioning ?? new ProvisioningOptions() });
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.MANAGED,
            State = state,
            ComputeResources = resources with
            {
                Subnets = resources.Subnets ?? ["subnet-1"],
                SecurityGroupIds = resources.SecurityGroupIds ?? ["sg-1"],
                InstanceRole = resources.Type is CRType.FARGATE or CRType.FARGATE_SPOT ? null : resources.InstanceRole ?? "ecsInstanceRole",
            },
        });
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "q",
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
        });
        var def = TestEngine.Definition("def");
        if (resources.Type is CRType.FARGATE or CRType.FARGATE_SPOT)
        {
            def = def with
            {
                PlatformCapabilities = [PlatformCapability.FARGATE],
                ContainerProperties = def.ContainerProperties! with { ExecutionRoleArn = "arn:aws:iam::000000000000:role/exec", ResourceRequirements = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, "2048")] },
            };
        }

        await engine.RegisterJobDefinitionAsync(def);
        return engine;
    }

    public static ComputeResource Ec2(string strategy, int max = 256, int min = 0, IReadOnlyList<string>? types = null, string type = CRType.EC2, int? bid = null) => new()
    {
        Type = type,
        AllocationStrategy = strategy,
        MinvCpus = min,
        MaxvCpus = max,
        InstanceTypes = types ?? ["optimal"],
        BidPercentage = bid,
        SpotIamFleetRole = type == CRType.SPOT && strategy is (null or CRAllocationStrategy.BEST_FIT) ? "arn:aws:iam::000000000000:role/fleet" : null,
    };

    /// <summary>Hosts of the engine's CEs, read on the loop.</summary>
    public static Task<List<(string Name, string? Type, int Vcpus, bool Ready, bool Spot)>> HostsAsync(BatchEngine engine) =>
        engine.Run(core => core.SimulationHosts(), CancellationToken.None);

    /// <summary>Provisioned vCPUs of the engine's CEs (EC2 instances: whole vCPUs).</summary>
    public static Task<int> ProvisionedAsync(BatchEngine engine) => engine.Run(core => (int)core.SampleForSimulation().ProvisionedVcpus, CancellationToken.None);
}
