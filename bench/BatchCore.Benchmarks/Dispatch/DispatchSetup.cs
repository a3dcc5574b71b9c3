using System.Globalization;
using BatchCore.Model;

namespace BatchCore.Benchmarks.Dispatch;

/// <summary>Builds the engines the dispatch benchmarks measure: simulated hosts, virtual time, long run times.</summary>
internal static class DispatchSetup
{
    public const string Queue = "q";

    /// <summary>An UNMANAGED CE of <paramref name="hosts"/> simulated hosts that together hold <paramref name="jobs"/> 1-vCPU jobs.</summary>
    public static BatchEngine Ec2(int hosts, int jobs, bool capacity = true, BatchEngineOptions? options = null)
    {
        var slots = capacity ? (jobs + hosts - 1) / hosts : 0;
        var engine = new BatchEngine((options ?? new BatchEngineOptions()) with { VirtualTime = true });
        var hostSpecs = new List<HostSpec>(hosts);
        for (var i = 0; i < hosts; i++)
        {
            // slots == 0: 1 vCPU hosts and 2-vCPU jobs, so every job stays queued (RUNNABLE).
            hostSpecs.Add(new HostSpec { HostName = "h" + i.ToString(CultureInfo.InvariantCulture), Vcpus = Math.Max(1, slots), MemoryMiB = (Math.Max(1, slots) * 1024) + 32 });
        }

        engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = hostSpecs }).GetAwaiter().GetResult();
        CreateQueue(engine);
        Register(engine, fargate: false, vcpus: capacity ? 1 : 2);
        return engine;
    }

    /// <summary>A MANAGED FARGATE CE: one single-use host is launched per job.</summary>
    public static BatchEngine Fargate(int jobs)
    {
        var engine = new BatchEngine(new BatchEngineOptions
        {
            VirtualTime = true,
            Quotas = new BatchQuotas { MaxSubmittedJobs = 10_000_000 },
            // Dispatch cost, not the Fargate launch rate: settling does not advance virtual time, so a token bucket
            // would hold all but the first burst of launches (the quick run found this: "placed 100 of 100000").
            Provisioning = new BatchCore.Provisioning.ProvisioningOptions { EnforceLaunchRateLimits = false },
        });
        engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.MANAGED,
            ComputeResources = new ComputeResource
            {
                Type = CRType.FARGATE, MaxvCpus = jobs, Subnets = ["subnet-1"], SecurityGroupIds = ["sg-1"],
            },
        }).GetAwaiter().GetResult();
        CreateQueue(engine);
        Register(engine, fargate: true, vcpus: 1);
        return engine;
    }

    private static void CreateQueue(BatchEngine engine) =>
        engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = Queue, Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
        }).GetAwaiter().GetResult();

    private static void Register(BatchEngine engine, bool fargate, int vcpus) =>
        engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "def",
            Type = JobDefinitionType.container,
            PlatformCapabilities = fargate ? [PlatformCapability.FARGATE] : null,
            ContainerProperties = new ContainerProperties
            {
                Image = "busybox",
                Command = ["sleep", "3600"],
                ExecutionRoleArn = fargate ? "arn:aws:iam::000000000000:role/exec" : null,
                ResourceRequirements =
                [
                    new(ResourceType.VCPU, vcpus.ToString(CultureInfo.InvariantCulture)),
                    new(ResourceType.MEMORY, fargate ? "2048" : "1024"),
                ],
            },
        }).GetAwaiter().GetResult();

    /// <summary>
    /// Submits <paramref name="jobs"/> jobs as array jobs of up to 10,000 children (AWS's maximum), each running
    /// <paramref name="runSeconds"/> of simulated time (by default long enough that every job stays placed). Returns
    /// how many array jobs (parents) it submitted.
    /// </summary>
    public static async Task<int> SubmitArraysAsync(BatchEngine engine, int jobs, double runSeconds = 1_000_000)
    {
        var arrays = 0;
        for (var left = jobs; left > 0; left -= 10_000)
        {
            var size = Math.Min(10_000, left);
            arrays += size >= 2 ? 1 : 0;
            await engine.SubmitJobAsync(new SubmitJobRequest
            {
                JobName = "bench",
                JobQueue = Queue,
                JobDefinition = "def",
                ArrayProperties = size >= 2 ? new ArrayProperties { Size = size } : null,
                Extensions = new SubmitJobExtensions { SimulatedRunTimeSeconds = runSeconds },
            }).ConfigureAwait(false);
        }

        return arrays;
    }

    /// <summary>Waits until the loop settled everything submitted; returns the engine's placement count.</summary>
    public static Task<long> SettleAsync(BatchEngine engine) =>
        engine.Run(c => { c.Settle(); return c.Statistics.Placements; }, CancellationToken.None);
}
