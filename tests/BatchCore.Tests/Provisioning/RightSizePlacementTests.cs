using BatchCore.Model;
using BatchCore.Provisioning;

namespace BatchCore.Tests.Provisioning;

/// <summary>Drain-aware placement and billing of managed instances (ProvisioningOptions.RightSizePlacement).</summary>
public class RightSizePlacementTests
{
    [Fact]
    public async Task SmallJob_PassesOverAMostlyIdleLargeInstance_WhichThenScalesIn()
    {
        var resources = ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, types: ["c6i"]);
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(resources));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 16, memory: 16_000, runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(2)); // the c6i.4xlarge ran its job and is idle

        var small = (await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 2_000, runSeconds: 3_600))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(small));
        Assert.Equal(["c6i.4xlarge", "c6i.large"], (await ManagedCe.HostsAsync(engine)).Select(h => h.Type).Order().ToList());

        // The large instance is not kept alive by the small job: it goes after the scale-down delay.
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(25));
        Assert.Equal("c6i.large", Assert.Single(await ManagedCe.HostsAsync(engine)).Type);
    }

    [Fact]
    public async Task SmallJob_UsesTheIdleLargeInstance_WhenRightSizePlacementIsOff()
    {
        var resources = ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, types: ["c6i"]);
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(resources, new ProvisioningOptions { RightSizePlacement = false }));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 16, memory: 16_000, runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(2));

        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 2_000, runSeconds: 3_600));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        Assert.Equal("c6i.4xlarge", Assert.Single(await ManagedCe.HostsAsync(engine)).Type);
    }

    [Fact]
    public async Task SmallJob_FillsTheHoleOfABusyLargeInstance()
    {
        var resources = ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, types: ["c6i"]);
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(resources));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 12, memory: 12_000, runSeconds: 3_600)); // c6i.4xlarge, 3/4 used
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1));

        var small = (await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 2_000, runSeconds: 600))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(small));
        Assert.Equal("c6i.4xlarge", Assert.Single(await ManagedCe.HostsAsync(engine)).Type);
    }

    [Fact]
    public async Task SmallJob_UsesTheLargeInstance_WhenNoRightSizedLaunchIsPossible()
    {
        // maxvCpus 16 with BEST_FIT on-demand: no c6i.large may be added next to the c6i.4xlarge.
        var resources = ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT, max: 16, types: ["c6i"]);
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(resources));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 16, memory: 16_000, runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(2));

        var small = (await engine.SubmitJobAsync(TestEngine.Job(vcpus: 2, memory: 2_000, runSeconds: 600))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(small));
        Assert.Equal("c6i.4xlarge", Assert.Single(await ManagedCe.HostsAsync(engine)).Type);
    }

    private static SubmitJobRequest Timed(double vcpus, double runSeconds, int timeoutSeconds) =>
        TestEngine.Job(vcpus: vcpus, memory: (int)(vcpus * 1_000), runSeconds: runSeconds) with
        {
            Timeout = new JobTimeout { AttemptDurationSeconds = timeoutSeconds },
        };

    [Fact]
    public async Task SmallJob_WhoseTimeoutOutlastsTheLargeInstancesJobs_GetsARightSizedInstance()
    {
        var resources = ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, types: ["c6i"]);
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(resources));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(Timed(vcpus: 9, runSeconds: 3_600, timeoutSeconds: 3_600)); // c6i.4xlarge, 9 of 16 vCPUs
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1));

        // 2 vCPUs fit the hole, but the job may run 2 h: it would keep the 16-vCPU instance billed after its 1-h job.
        var small = (await engine.SubmitJobAsync(Timed(vcpus: 2, runSeconds: 600, timeoutSeconds: 7_200))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(small));
        Assert.Equal(["c6i.4xlarge", "c6i.large"], (await ManagedCe.HostsAsync(engine)).Select(h => h.Type).Order().ToList());
    }

    [Fact]
    public async Task SmallJob_WhoseTimeoutEndsBeforeTheLargeInstancesJobs_FillsItsHole()
    {
        var resources = ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, types: ["c6i"]);
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(resources));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(Timed(vcpus: 9, runSeconds: 3_600, timeoutSeconds: 3_600));
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1));

        var small = (await engine.SubmitJobAsync(Timed(vcpus: 2, runSeconds: 600, timeoutSeconds: 1_800))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(small));
        Assert.Equal("c6i.4xlarge", Assert.Single(await ManagedCe.HostsAsync(engine)).Type);
    }

    [Fact]
    public async Task SmallJob_SkipsALargeInstanceItWouldOutlast_ForAnotherWhoseJobsOutlastIt()
    {
        var resources = ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, types: ["c6i"]);
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(resources));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(Timed(vcpus: 9, runSeconds: 3_600, timeoutSeconds: 3_600));    // c6i.4xlarge, 7 vCPUs free, busy 1 h
        await engine.SubmitJobAsync(Timed(vcpus: 17, runSeconds: 10_800, timeoutSeconds: 10_800)); // c6i.8xlarge, 15 vCPUs free, busy 3 h
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1));

        // Best fit would pick the 4xlarge (fewest free vCPUs); the job's 2 h would outlast it, not the 8xlarge.
        var small = (await engine.SubmitJobAsync(Timed(vcpus: 2, runSeconds: 600, timeoutSeconds: 7_200))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(small));
        Assert.Equal(["c6i.4xlarge", "c6i.8xlarge"], (await ManagedCe.HostsAsync(engine)).Select(h => h.Type).Order().ToList());
        var host = await engine.Run(core => core.HostOfJob(small), CancellationToken.None);
        Assert.StartsWith("c6i.8xlarge", host, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Billing_HasASixtySecondMinimum()
    {
        // A Fargate task of 5 s is billed for 60 s (AWS per-second billing, one-minute minimum).
        await using var scope = new DrainOnDispose(await ManagedCe.CreateAsync(new ComputeResource { Type = CRType.FARGATE, MaxvCpus = 100 }));
        var engine = scope.Engine;
        await engine.SubmitJobAsync(TestEngine.Job(vcpus: 1, memory: 2_048, runSeconds: 5));
        await engine.RunUntilIdleAsync();

        var cost = await engine.Run(core => core.CollectSimulationTotals().CostUsd, CancellationToken.None);
        var perHour = InstanceCatalog.Default.Fargate.PricePerHour(1, 2_048, false);
        Assert.Equal(perHour / 60, cost, 1e-9);
    }

    private sealed class DrainOnDispose(BatchEngine engine) : IAsyncDisposable
    {
        public BatchEngine Engine { get; } = engine;

        public async ValueTask DisposeAsync() => await ManagedCe.DrainAndDisposeAsync(Engine);
    }
}
