using BatchCore.Model;
using BatchCore.Provisioning;

namespace BatchCore.Tests.Provisioning;

/// <summary>One test per allocation strategy (AWS §2.5), plus maxvCpus, bidPercentage, scale-in and DISABLED.</summary>
public class AllocationStrategyTests
{
    private static readonly ProvisioningOptions Instant = new() { DemandSizedScaleOut = false };

    [Fact]
    public async Task BestFit_PicksTheCheapestFittingType()
    {
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT, types: ["m6i", "c6i", "r6i"]), Instant));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000, runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        var hosts = await ManagedCe.HostsAsync(engine);
        Assert.Equal("c6i.large", Assert.Single(hosts).Type);
    }

    [Fact]
    public async Task BestFit_WaitsWhenItsTypeIsUnavailable()
    {
        var options = Instant with { InstanceTypeCapacity = new Dictionary<string, int> { ["c6i.large"] = 1 } };
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT, types: ["m6i", "c6i"]), options));
        var engine = scope.Engine;
        var first = (await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000, runSeconds: 60))).JobId;
        var second = (await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000, runSeconds: 60))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        // AWS BEST_FIT: no other type (m6i.large would fit); the job waits for c6i.large.
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(first));
        Assert.Equal(JobStatus.RUNNABLE, await engine.StatusAsync(second));
        Assert.All(await ManagedCe.HostsAsync(engine), h => Assert.Equal("c6i.large", h.Type));

        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(second));
    }

    [Fact]
    public async Task BestFitProgressive_PrefersCostPerVcpu_AndMovesOnWhenUnavailable()
    {
        var options = Instant with { InstanceTypeCapacity = new Dictionary<string, int> { ["c6i.large"] = 1 } };
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, types: ["m6i", "c6i.large", "c7i"]), options));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000, runSeconds: 60));
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000, runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        // c6i $0.0425/vCPU-h, then c7i $0.0446, then m6i $0.048: the second job goes to the next cheapest per vCPU.
        var types = (await ManagedCe.HostsAsync(engine)).Select(h => h.Type).Order().ToList();
        Assert.Equal(["c6i.large", "c7i.large"], types);
    }

    [Fact]
    public async Task BestFitProgressiveOrdered_FollowsTheListOrder_ExplicitTypeKeepsItsPosition()
    {
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE_ORDERED, types: ["r6i", "m6i.xlarge", "m6i", "c6i"]), Instant));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000, runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        // The first entry (family r6i) expands best-fit size first: r6i.large, though c6i.large is cheaper.
        Assert.Equal("r6i.large", Assert.Single(await ManagedCe.HostsAsync(engine)).Type);
    }

    [Fact]
    public async Task BestFitProgressiveOrdered_SkipsTypesThatCannotFit()
    {
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE_ORDERED, types: ["c6i.large", "m6i.xlarge", "c6i"]), Instant));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 4, memory: 6000, runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        Assert.Equal("m6i.xlarge", Assert.Single(await ManagedCe.HostsAsync(engine)).Type);
    }

    [Fact]
    public async Task SpotCapacityOptimized_PrefersTheLeastInterruptedPool()
    {
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED, types: ["c7i", "c6i", "m6i"], type: CRType.SPOT), Instant));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000, runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        // m6i: <5 %/month interruptions (catalog model); c6i 5–10 %, c7i 10–15 %.
        var host = Assert.Single(await ManagedCe.HostsAsync(engine));
        Assert.Equal("m6i.large", host.Type);
        Assert.True(host.Spot);
    }

    [Fact]
    public async Task SpotPriceCapacityOptimized_TakesTheCheapestAmongTheBestCapacityPools()
    {
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED, types: ["c7i", "c6i", "m6i", "r6i"], type: CRType.SPOT), Instant));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000, runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        // m6i and r6i have the lowest rate; c6i (5–10 %) is within twice of it and cheapest per vCPU at spot prices.
        Assert.Equal("c6i.large", Assert.Single(await ManagedCe.HostsAsync(engine)).Type);
    }

    [Fact]
    public async Task SpotCapacityOptimizedPrioritized_CapacityTierFirst_ThenListOrder()
    {
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED_PRIORITIZED, types: ["c7i", "r6i", "m6i"], type: CRType.SPOT), Instant));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000, runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        // c7i is first in the list but in a worse capacity tier; r6i and m6i share the best tier, r6i is listed first.
        Assert.Equal("r6i.large", Assert.Single(await ManagedCe.HostsAsync(engine)).Type);
    }

    [Fact]
    public async Task BidPercentage_ExcludesTypesWhoseSpotPriceIsAboveIt()
    {
        // Spot ratios in the catalog: r6i 0.33, c6i 0.37, m6i 0.38, c7i 0.40. A 35 % bid leaves only r6i.
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED, types: ["c6i", "m6i", "r6i"], type: CRType.SPOT, bid: 35), Instant));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000, runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        Assert.Equal("r6i.large", Assert.Single(await ManagedCe.HostsAsync(engine)).Type);
    }

    [Fact]
    public async Task BestFitOnDemand_NeverExceedsMaxvCpus()
    {
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT, max: 6, types: ["c6i"]), Instant));
        var engine = scope.Engine;
        for (var i = 0; i < 3; i++)
        {
            await engine.SubmitJobAsync(TestEngine.Job(vcpus: 4, memory: 3000, runSeconds: 60));
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.True(await ManagedCe.ProvisionedAsync(engine) <= 6);
        await engine.RunUntilIdleAsync();
    }

    [Fact]
    public async Task BestFitProgressive_MayExceedMaxvCpusByOneInstance()
    {
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, max: 6, types: ["c6i"]), Instant));
        var engine = scope.Engine;
        for (var i = 0; i < 3; i++)
        {
            await engine.SubmitJobAsync(TestEngine.Job(vcpus: 4, memory: 3000, runSeconds: 60));
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(8, await ManagedCe.ProvisionedAsync(engine)); // 4 + one more c6i.xlarge, then no more
    }

    [Fact]
    public async Task DesiredvCpus_FollowsDemand_AndIdleHostsScaleInAfterTheDelay()
    {
        var resources = ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, types: ["c6i"]) with { ScalingPolicy = new ComputeScalingPolicy { MinScaleDownDelayMinutes = 30 } };
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(resources, new ProvisioningOptions { Ec2BootTime = TimeSpan.FromMinutes(2) }));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000, runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var ce = (await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments.Single();
        Assert.Equal(2, ce.ComputeResources!.DesiredvCpus);

        // Booted at 2 min, job done at 3 min; idle until 33 min, removed at the next check.
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(32));
        Assert.Single(await ManagedCe.HostsAsync(engine));
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(2));
        Assert.Empty(await ManagedCe.HostsAsync(engine));
        Assert.Equal(0, (await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments.Single().ComputeResources!.DesiredvCpus);
    }

    [Fact]
    public async Task Disabled_NoScaleOut_IdleScaleInToMinvCpus()
    {
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, min: 4, types: ["c6i.large"]), Instant));
        var engine = scope.Engine;
        Assert.Equal(4, await ManagedCe.ProvisionedAsync(engine));
        for (var i = 0; i < 4; i++)
        {
            await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000, runSeconds: 60));
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(8, await ManagedCe.ProvisionedAsync(engine));
        await engine.UpdateComputeEnvironmentAsync(new UpdateComputeEnvironmentRequest { ComputeEnvironment = "ce", State = ResourceState.DISABLED });
        var waiting = (await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromHours(2));

        Assert.Equal(JobStatus.RUNNABLE, await engine.StatusAsync(waiting));
        Assert.Equal(4, await ManagedCe.ProvisionedAsync(engine)); // scaled in to minvCpus, not below
    }

    [Fact]
    public async Task DemandSizedScaleOut_PacksWaitingJobsOntoFewInstances()
    {
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, types: ["c6i"]),
            new ProvisioningOptions { Ec2BootTime = TimeSpan.FromMinutes(2) }));
        var engine = scope.Engine;
        for (var i = 0; i < 64; i++)
        {
            await engine.SubmitJobAsync(TestEngine.Job(vcpus: 1, memory: 1000, runSeconds: 600));
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var hosts = await ManagedCe.HostsAsync(engine);
        Assert.Equal(64, hosts.Sum(h => h.Vcpus)); // exactly the demand, not one instance per job and cycle
        Assert.True(hosts.Count < 64);
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(3));
        await engine.RunUntilIdleAsync();
        Assert.Equal(64, engine.Statistics.Succeeded);
    }

    [Fact]
    public async Task DemandSizedScaleOut_PacksTheWindowTighterThanFirstFitDecreasing()
    {
        // 4+2+2 and 3+3+2 vCPUs fill two 8-vCPU instances exactly; largest first, first fit opens three (4+3, 3+2+2, 2).
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT, types: ["c6i.2xlarge"]),
            new ProvisioningOptions { Ec2BootTime = TimeSpan.FromMinutes(2) }));
        var engine = scope.Engine;
        // One command: the six jobs wait together when the scale-out is sized.
        var requests = new[] { 4, 2, 2, 3, 3, 2 }.Select(v => TestEngine.Job(vcpus: v, memory: 256, runSeconds: 600)).ToList();
        await engine.Run(core => requests.Select(r => core.SubmitJob(r).JobId).ToList(), CancellationToken.None);

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var hosts = await ManagedCe.HostsAsync(engine);
        Assert.Equal(2, hosts.Count);
        Assert.All(hosts, h => Assert.Equal("c6i.2xlarge", h.Type));
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(3));
        await engine.RunUntilIdleAsync();
        Assert.Equal(6, engine.Statistics.Succeeded);
    }

    [Fact]
    public async Task Ec2LaunchRate_IsLimitedByTheTokenBucket()
    {
        var options = new ProvisioningOptions { DemandSizedScaleOut = false, Ec2LaunchBucket = new TokenBucketOptions(5, 1) };
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, types: ["c6i.large"]), options));
        var engine = scope.Engine;
        for (var i = 0; i < 10; i++)
        {
            await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 3000, runSeconds: 600));
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromMilliseconds(1));
        Assert.Equal(5, (await ManagedCe.HostsAsync(engine)).Count);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(10, (await ManagedCe.HostsAsync(engine)).Count);
    }

    [Fact]
    public async Task FargateLaunchRate_IsLimitedByTheTokenBucket()
    {
        var options = new ProvisioningOptions { FargateLaunchBucket = new TokenBucketOptions(3, 1) };
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(new ComputeResource { Type = CRType.FARGATE, MaxvCpus = 100 }, options));
        var engine = scope.Engine;
        for (var i = 0; i < 6; i++)
        {
            await engine.SubmitJobAsync(TestEngine.Job(vcpus: 1, memory: 2048, runSeconds: 600));
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromMilliseconds(1));
        Assert.Equal(3, (await ManagedCe.HostsAsync(engine)).Count);
        await engine.RunUntilIdleAsync();
        Assert.Equal(6, engine.Statistics.Succeeded);
    }

    [Fact]
    public async Task SpotInterruption_FailsTheAttemptWithAReason_AndRetries()
    {
        var options = Instant with { SimulateSpotInterruptions = true };
        var catalog = InstanceCatalog.Default;
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED, types: ["c6i.large"], type: CRType.SPOT), options, seed: 14)); // a seed whose draws interrupt the first attempt
        var engine = scope.Engine;
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy { Attempts = 10 }));
        // A 2,000-hour job on a pool interrupted ~7 % a month is interrupted a few times.
        var id = (await engine.SubmitJobAsync(TestEngine.Job(def: "retry", vcpus: 2, memory: 3000, runSeconds: 2_000 * 3600.0))).JobId;
        await engine.RunUntilIdleAsync();

        var job = await engine.DescribeAsync(id);
        Assert.True(engine.Statistics.SpotInterruptions > 0);
        Assert.True(job.Attempts.Count > 1);
        Assert.Contains(job.Attempts, a => a.StatusReason == StatusReasons.SpotInterrupted);
        _ = catalog;
    }

    /// <summary>
    /// instanceTypes written for AWS resolve: older and burstable families (c4, m5, t2, t3, g4dn, …) as families or
    /// sizes, and each size's shape and price come from the catalog.
    /// </summary>
    [Theory]
    [InlineData("c5", "c5.large", 2, 4096)]
    [InlineData("t2.small", "t2.small", 1, 2048)]
    [InlineData("m4", "m4.large", 2, 8192)]
    [InlineData("g4dn", "g4dn.xlarge", 4, 16384)]
    [InlineData("r5a", "r5a.large", 2, 16384)]
    [InlineData("m7g", "m7g.medium", 1, 4096)]
    public async Task InstanceTypes_WrittenForAws_Resolve(string entry, string smallest, int vcpus, int memoryMiB)
    {
        var expanded = InstanceCatalog.Default.Expand(entry);
        Assert.NotEmpty(expanded);
        var first = expanded.MinBy(t => t.Vcpus * 1_000_000L + t.MemoryMiB)!;
        Assert.Equal((smallest, vcpus, memoryMiB), (first.Name, first.Vcpus, first.MemoryMiB));
        Assert.True(first.OnDemandPricePerHour > 0);

        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, types: [entry]), Instant));
        await scope.Engine.SubmitJobAsync(TestEngine.Job(vcpus: 1, memory: 512, runSeconds: 60));
        await scope.Engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Contains(Assert.Single(await ManagedCe.HostsAsync(scope.Engine)).Type, expanded.Select(t => t.Name));
    }

    private sealed class DrainOnDispose(BatchEngine engine) : IAsyncDisposable
    {
        public BatchEngine Engine { get; } = engine;

        public async ValueTask DisposeAsync() => await ManagedCe.DrainAndDisposeAsync(Engine);
    }
}
