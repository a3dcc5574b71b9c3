using System.Text.Json;
using BatchCore.Model;
using BatchCore.Simulation;

namespace BatchCore.Tests.Simulation;

public class SimulatorTests
{
    private static SimulationOptions Small(Workload w, params string[] profiles) => new() { Workload = w, Profiles = profiles, Seed = 5 };

    [Fact]
    public async Task SameSeed_GivesByteIdenticalJson_WallClockAside()
    {
        var w = WorkloadGenerator.Bursts(3, 40, 600, 300, seed: 2);
        var a = await Simulator.RunAsync(Small(w, "all"), ct: TestContext.Current.CancellationToken);
        var b = await Simulator.RunAsync(Small(w, "all"), ct: TestContext.Current.CancellationToken);

        Assert.Equal(a.ToJson(includeWallClock: false), b.ToJson(includeWallClock: false));
        Assert.DoesNotContain("dispatchedPerWallSecond", a.ToJson(includeWallClock: false), StringComparison.Ordinal);
        Assert.Contains("dispatchedPerWallSecond", a.ToJson(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Report_HasTheDocumentedJsonShape()
    {
        var w = WorkloadGenerator.Steady(200, 1, 120, seed: 3);
        var report = await Simulator.RunAsync(Small(w, "ec2", "fargate"), ct: TestContext.Current.CancellationToken);

        using var doc = JsonDocument.Parse(report.ToJson());
        var profiles = doc.RootElement.GetProperty("profiles");
        Assert.Equal(2, profiles.GetArrayLength());
        var ec2 = profiles[0];
        string[] leading = ["profile", "jobs", "unrunnable", "makespanSeconds", "waitSeconds", "utilization", "peakHosts", "costUsd", "costLowerBoundUsd", "costRatio", "dispatchedPerWallSecond"];
        Assert.Equal(leading, ec2.EnumerateObject().Take(leading.Length).Select(p => p.Name));
        Assert.Equal("ec2", ec2.GetProperty("profile").GetString());
        Assert.Equal(200, ec2.GetProperty("jobs").GetInt32());
        var wait = ec2.GetProperty("waitSeconds");
        Assert.True(wait.GetProperty("p50").GetDouble() <= wait.GetProperty("p95").GetDouble());
        Assert.True(wait.GetProperty("p95").GetDouble() <= wait.GetProperty("p99").GetDouble());
        var util = ec2.GetProperty("utilization").GetDouble();
        Assert.InRange(util, 0.01, 1.0);
        Assert.True(ec2.GetProperty("costRatio").GetDouble() >= 1.0, "cost is never below the lower bound");
        Assert.Contains("ec2", report.ToTable(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CostBreakdown_PartsAddUpToTheCost_AndTheJobsShareIsTheBound()
    {
        var w = WorkloadGenerator.Bursts(3, 40, 600, 300, seed: 2);
        var report = await Simulator.RunAsync(Small(w, "ec2", "fargate") with { IncludeCostBreakdown = true }, ct: TestContext.Current.CancellationToken);

        foreach (var p in report.Profiles)
        {
            var b = Assert.IsType<CostBreakdown>(p.CostBreakdown);
            Assert.Equal(p.CostUsd, b.TotalUsd, p.CostUsd * 1e-9);
            Assert.Equal(p.CostUsd, b.ByInstanceType.Sum(t => t.CostUsd), p.CostUsd * 1e-9);
            Assert.Equal(p.UsedVcpuSeconds / 3_600, b.ByInstanceType.Sum(t => t.UsedVcpuHours), 1e-6);
            Assert.True(b.BootUsd >= 0 && b.IdleBeforeScaleInUsd >= 0 && b.SizeRoundingUsd >= 0 && b.UnusedOnBusyHostsUsd >= 0);
        }

        var ec2 = report.Profiles[0];
        Assert.Equal(ec2.CostLowerBoundUsd, ec2.CostBreakdown!.JobsAtCheapestUsd, 1e-6); // no retries, no timeouts
        Assert.True(ec2.CostBreakdown.BootUsd > 0, "EC2 instances boot for minutes and are billed for it");
        Assert.Contains("\"costBreakdown\"", report.ToJson(), StringComparison.Ordinal);
        Assert.Contains("idle before scale-in", report.ToTable(), StringComparison.Ordinal);
        var plain = await Simulator.RunAsync(Small(w, "ec2"), ct: TestContext.Current.CancellationToken);
        Assert.Null(plain.Profiles[0].CostBreakdown);
        Assert.DoesNotContain("costBreakdown", plain.ToJson(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Timeout_StopsTheJob_AndTheBoundCountsOnlyTheTimeItMayRun()
    {
        var w = new Workload { Jobs = [new WorkloadJob(0, 2, 2048, 0, 600, TimeoutSeconds: 120), new WorkloadJob(0, 2, 2048, 0, 600)] };
        var report = await Simulator.RunAsync(Small(w, "ec2"), ct: TestContext.Current.CancellationToken);

        var ec2 = report.Profiles[0];
        Assert.Equal(1, ec2.Failed); // AWS: an attempt past its timeout is stopped, and not retried
        var perVcpuHour = BatchCore.Provisioning.InstanceCatalog.Default.Find("c6i.large")!.OnDemandPricePerHour / 2;
        Assert.Equal(2 * (120 + 600) / 3_600.0 * perVcpuHour, ec2.CostLowerBoundUsd, 1e-9);
        Assert.True(ec2.CostRatio >= 1.0);
    }

    [Fact]
    public async Task JobsLargerThanAnyHost_AreCountedUnrunnable_WithTheReason()
    {
        var w = new Workload
        {
            Jobs = [new WorkloadJob(0, 2, 4096, 0, 60), new WorkloadJob(0, 32, 65536, 0, 60), new WorkloadJob(1, 1, 2048, 1, 60), new WorkloadJob(2, 500, 1024, 0, 60)],
        };
        var report = await Simulator.RunAsync(Small(w, "ec2", "fargate"), ct: TestContext.Current.CancellationToken);

        var ec2 = report.Profiles[0];
        Assert.Equal(2, ec2.Unrunnable); // the GPU job (optimal has no GPUs) and the 500-vCPU job
        Assert.Equal(2, ec2.Jobs);
        var fargate = report.Profiles[1];
        Assert.Equal(3, fargate.Unrunnable);
        Assert.Equal(1, fargate.UnrunnableReasons["GPU requested; Fargate has no GPUs"]);
        Assert.Equal(2, fargate.UnrunnableReasons["vCPUs exceed the largest Fargate size (16 vCPU)"]);
    }

    [Fact]
    public async Task FargateJobs_StartAfterAbout30Seconds_Ec2JobsAfterABoot()
    {
        var w = new Workload { Jobs = [new WorkloadJob(0, 1, 2048, 0, 600)] };
        var report = await Simulator.RunAsync(Small(w, "ec2", "fargate"), ct: TestContext.Current.CancellationToken);

        Assert.InRange(report.Profiles[0].Wait.P50, 120, 240); // 2 min + up to 2 min jitter
        Assert.Equal(30, report.Profiles[1].Wait.P50);
        Assert.Equal(600 + 30, report.Profiles[1].MakespanSeconds);
    }

    [Fact]
    public async Task CustomProfiles_AcceptBuiltCreateRequests()
    {
        var profile = new SimulationProfile("gpu", new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "gpu",
            Type = CEType.MANAGED,
            ComputeResources = new ComputeResource
            {
                Type = CRType.EC2, AllocationStrategy = CRAllocationStrategy.BEST_FIT_PROGRESSIVE, MinvCpus = 0, MaxvCpus = 64,
                InstanceTypes = ["g5"], Subnets = ["s"], SecurityGroupIds = ["g"], InstanceRole = "r",
            },
        });
        var w = new Workload { Jobs = [new WorkloadJob(0, 4, 8192, 1, 60, JobQueue: "a"), new WorkloadJob(0, 4, 8192, 1, 60, JobQueue: "b", ShareIdentifier: "x")] };
        var report = await Simulator.RunAsync(new SimulationOptions { Workload = w, CustomProfiles = [profile], Seed = 1 }, ct: TestContext.Current.CancellationToken);

        var p = Assert.Single(report.Profiles);
        Assert.Equal("gpu", p.Profile);
        Assert.Equal(2, p.Jobs);
        Assert.True(p.CostUsd > 0);
    }

    [Fact]
    public async Task TimeScale_CompressesSubmitTimes()
    {
        var w = new Workload { Jobs = [new WorkloadJob(0, 1, 2048, 0, 60), new WorkloadJob(10_000, 1, 2048, 0, 60)] };
        var slow = await Simulator.RunAsync(Small(w, "fargate"), ct: TestContext.Current.CancellationToken);
        var fast = await Simulator.RunAsync(Small(w, "fargate") with { TimeScale = 100 }, ct: TestContext.Current.CancellationToken);

        Assert.Equal(10_000 + 90, slow.Profiles[0].MakespanSeconds);
        Assert.Equal(100 + 90, fast.Profiles[0].MakespanSeconds);
    }

    [Fact]
    public async Task Kth_Subset_ReplaysOnEveryProfile()
    {
        var kth = SwfWorkload.Read(SwfWorkloadTests.KthPath()).Take(1_500);
        var progress = new List<double>();
        var report = await Simulator.RunAsync(new SimulationOptions { Workload = kth, Seed = 1, TimeScale = 20 }, new SyncProgress(progress.Add), TestContext.Current.CancellationToken);

        Assert.Equal(["ec2", "spot", "fargate"], report.Profiles.Select(p => p.Profile));
        Assert.All(report.Profiles, p => Assert.Equal(1_500, p.Jobs + p.Unrunnable));
        Assert.True(report.Profiles[2].Unrunnable > 0); // jobs over 16 processors
        Assert.Equal(1.0, progress[^1]);
        Assert.All(report.Profiles, p => Assert.True(p.Series!.TimeSeconds.Count > 10));
    }

    [Fact]
    public async Task Options_AreValidated()
    {
        var w = new Workload { Jobs = [new WorkloadJob(0, 1, 2048, 0, 60)] };
        await Assert.ThrowsAsync<BatchClientException>(() => Simulator.RunAsync(Small(w, "ec3")));
        await Assert.ThrowsAsync<BatchClientException>(() => Simulator.RunAsync(Small(w, "ec2") with { TimeScale = 0 }));
        await Assert.ThrowsAsync<BatchClientException>(() => Simulator.RunAsync(new SimulationOptions()));
    }

    private static SimulationProfile Managed(string name, string type, int minvCpus) => new(name, new CreateComputeEnvironmentRequest
    {
        ComputeEnvironmentName = name,
        Type = CEType.MANAGED,
        ComputeResources = new ComputeResource
        {
            Type = type,
            AllocationStrategy = type == CRType.SPOT ? CRAllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED : CRAllocationStrategy.BEST_FIT_PROGRESSIVE,
            MinvCpus = minvCpus, MaxvCpus = 64, InstanceTypes = ["c6i"], Subnets = ["s"], SecurityGroupIds = ["g"], InstanceRole = "r",
        },
    });

    /// <summary>
    /// A SPOT environment keeps minvCpus by replacing interrupted instances, each with a new interruption timer: the
    /// replay ends when the last job ended (no scale-in is left), not when the timers run out (never).
    /// </summary>
    [Fact]
    public async Task SpotEnvironmentWithMinvCpus_Finishes_BillingTheMinimumUpToTheLastJobEnd()
    {
        var w = new Workload { Jobs = [new WorkloadJob(0, 2, 2048, 0, 600)] };
        var options = new SimulationOptions { Workload = w, CustomProfiles = [Managed("spot-min", CRType.SPOT, 2)], Seed = 1, Ec2BootJitter = TimeSpan.Zero };

        var report = await Simulator.RunAsync(options, ct: TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

        var p = Assert.Single(report.Profiles);
        Assert.Equal(1, p.Jobs);
        Assert.Equal(120 + 600, p.MakespanSeconds); // the minimum instance boots, then runs the job
        var price = BatchCore.Provisioning.InstanceCatalog.Default.Find("c6i.large")!.SpotPricePerHour;
        Assert.True(double.IsFinite(p.CostUsd));
        Assert.Equal((120 + 600) / 3_600.0 * price, p.CostUsd, 1e-9);
    }

    /// <summary>The drain after the last submission stops when the replay is cancelled.</summary>
    [Fact]
    public async Task Cancelling_StopsTheDrain()
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var w = new Workload { Jobs = [new WorkloadJob(0, 2, 2048, 0, 600)] };
        var options = new SimulationOptions { Workload = w, CustomProfiles = [Managed("spot-min", CRType.SPOT, 2)], Seed = 1 };

        // The last progress report comes after the last submission: cancel there, while the jobs still run.
        var run = Simulator.RunAsync(options, new SyncProgress(v =>
        {
            if (v < 1)
            {
                cts.Cancel();
            }
        }), cts.Token);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken));
    }

    /// <summary>
    /// The end of a replay is the last job's end or the last scale-in, whichever is later: an instance above minvCpus
    /// scales in 20 minutes after its job (on the minute grid), and the minimum instance is billed up to then too.
    /// </summary>
    [Fact]
    public async Task Ec2EnvironmentWithMinvCpus_BillsTheMinimumUpToTheLastScaleIn()
    {
        var price = BatchCore.Provisioning.InstanceCatalog.Default.Find("c6i.large")!.OnDemandPricePerHour;
        var one = new Workload { Jobs = [new WorkloadJob(0, 2, 2048, 0, 600)] };
        var options = new SimulationOptions { Workload = one, CustomProfiles = [Managed("ec2-min", CRType.EC2, 2)], Seed = 1, Ec2BootJitter = TimeSpan.Zero, IncludeCostBreakdown = true };

        var alone = Assert.Single((await Simulator.RunAsync(options, ct: TestContext.Current.CancellationToken)).Profiles);
        Assert.Equal((120 + 600) / 3_600.0 * price, alone.CostUsd, 1e-9); // nothing scales in: billed up to the job's end

        var two = new Workload { Jobs = [new WorkloadJob(0, 2, 2048, 0, 600), new WorkloadJob(0, 2, 2048, 0, 600)] };
        var p = Assert.Single((await Simulator.RunAsync(options with { Workload = two }, ct: TestContext.Current.CancellationToken)).Profiles);
        Assert.Equal(2, p.Jobs);
        var type = Assert.Single(p.CostBreakdown!.ByInstanceType);
        Assert.Equal(2, type.Hosts);
        // Both instances: launch at 0 → the second scales in at 720 + 20 min; the minimum one is billed as long.
        Assert.Equal(2 * (720 + 1_200) / 3_600.0, type.HostHours, 1e-9);
        Assert.Equal(2 * (720 + 1_200) / 3_600.0 * price, p.CostUsd, 1e-9);
    }

    /// <summary>AWS's MEMORY minimum is 4 MiB: a smaller request is unrunnable, never run with the definition's 2,048 MiB.</summary>
    [Fact]
    public async Task MemoryBelowFourMiB_IsUnrunnable_NotRunWithTheDefinitionsMemory()
    {
        var w = new Workload { Jobs = [new WorkloadJob(0, 1, 2, 0, 60), new WorkloadJob(0, 1, 2048, 0, 60)] };

        var report = await Simulator.RunAsync(Small(w, "ec2", "fargate"), ct: TestContext.Current.CancellationToken);

        Assert.All(report.Profiles, p =>
        {
            Assert.Equal(1, p.Jobs);
            Assert.Equal(1, p.Unrunnable);
            Assert.Equal(1, p.UnrunnableReasons["memory below 4 MiB (AWS minimum)"]);
        });
    }

    /// <summary>
    /// Beyond what SubmitJob takes (1,000,000 vCPUs; a run time of 10^9 s): unrunnable, counted with the reason; the
    /// replay used to stop on the submission's error.
    /// </summary>
    [Fact]
    public async Task JobsBeyondTheEnginesLimits_AreUnrunnable_NotAnErrorThatStopsTheReplay()
    {
        var w = new Workload { Jobs = [new WorkloadJob(0, 1_500_000, 2048, 0, 60), new WorkloadJob(0, 1, 2048, 0, 1.5e9), new WorkloadJob(0, 1, 2048, 0, 60)] };

        var report = await Simulator.RunAsync(Small(w, "ec2"), ct: TestContext.Current.CancellationToken);

        var p = Assert.Single(report.Profiles);
        Assert.Equal(1, p.Jobs);
        Assert.Equal(1, p.UnrunnableReasons["vCPUs above 1,000,000 (the engine's maximum)"]);
        Assert.Equal(1, p.UnrunnableReasons["run time not a number of seconds from 0 to 10^9"]);
    }

    /// <summary>AWS: VCPU is at least 1 on EC2; fractions are for Fargate. Such jobs are unrunnable on EC2 and Spot, and run on Fargate.</summary>
    [Fact]
    public async Task FractionalVcpus_AreUnrunnableOnEc2_AndRunOnFargate()
    {
        var w = new Workload { Jobs = [new WorkloadJob(0, 0.5, 1024, 0, 60), new WorkloadJob(0, 1, 2048, 0, 60)] };

        var report = await Simulator.RunAsync(Small(w, "all"), ct: TestContext.Current.CancellationToken);

        foreach (var p in report.Profiles.Where(p => p.Profile != "fargate"))
        {
            Assert.Equal(1, p.Jobs);
            Assert.Equal(1, p.UnrunnableReasons["vCPUs below 1 (AWS minimum on EC2)"]);
        }

        var fargate = report.Profiles.Single(p => p.Profile == "fargate");
        Assert.Equal(2, fargate.Jobs);
        Assert.Equal(0, fargate.Unrunnable);
    }

    /// <summary>A 0.25-vCPU Fargate task provisions 0.25 vCPU, not 1: utilization and the cost breakdown use its real size.</summary>
    [Fact]
    public async Task FargateTaskBelowOneVcpu_CountsItsRealSize()
    {
        var w = new Workload { Jobs = [new WorkloadJob(0, 0.25, 512, 0, 3_600)] };

        var report = await Simulator.RunAsync(Small(w, "fargate") with { IncludeCostBreakdown = true }, ct: TestContext.Current.CancellationToken);

        var p = report.Profiles[0];
        Assert.True(p.Utilization > 0.98, $"utilization {p.Utilization}"); // 3,600 of 3,630 s (the 30-s start)
        Assert.Equal(0.25 * 3_630, p.ProvisionedVcpuSeconds, 1e-6);
        var b = p.CostBreakdown!;
        Assert.True(b.TypePremiumUsd >= 0, $"type premium {b.TypePremiumUsd}");
        Assert.Equal(p.CostLowerBoundUsd, b.JobsAtCheapestUsd, 1e-9);
        Assert.Equal(0.25 * 3_630 / 3_600, Assert.Single(b.ByInstanceType).HostVcpuHours, 1e-9);
        Assert.Equal(0.25, p.Series!.ProvisionedVcpus.Max());
    }

    /// <summary>
    /// On Fargate a job asking 3 vCPUs runs on a 4-vCPU task: the job used 3 (its share of the bound), the fourth is
    /// size rounding — as on EC2, where a job's odd vCPUs rounded up to an instance size are reported the same way.
    /// </summary>
    [Fact]
    public async Task FargatePadding_IsSizeRounding_NotUsedVcpus()
    {
        var w = new Workload { Jobs = [new WorkloadJob(0, 3, 3072, 0, 3_600)] };

        var report = await Simulator.RunAsync(Small(w, "fargate") with { IncludeCostBreakdown = true }, ct: TestContext.Current.CancellationToken);

        var p = report.Profiles[0];
        Assert.Equal(3 * 3_600, p.UsedVcpuSeconds, 1e-6);
        var b = p.CostBreakdown!;
        Assert.Equal(p.CostLowerBoundUsd, b.JobsAtCheapestUsd, 1e-9);
        Assert.Equal(p.CostLowerBoundUsd / 3, b.SizeRoundingUsd, 1e-9); // one vCPU-hour of four at the same price per vCPU
        Assert.Equal(0, b.TypePremiumUsd, 1e-12);
        Assert.Equal(p.CostUsd, b.TotalUsd, 1e-9);
    }

    /// <summary>
    /// The series says what the summary says: running vCPUs are what the jobs asked for (3), as utilization counts them;
    /// the task's padded size (4) shows as provisioned — the same split as on EC2, where a host rounded up is provisioned
    /// and not running.
    /// </summary>
    [Fact]
    public async Task FargatePadding_SeriesRunningVcpusAreAsked_ProvisionedArePadded()
    {
        var w = new Workload { Jobs = [new WorkloadJob(0, 3, 3072, 0, 3_600), new WorkloadJob(0, 0.25, 512, 0, 3_600)] };

        var report = await Simulator.RunAsync(Small(w, "fargate"), ct: TestContext.Current.CancellationToken);

        var s = report.Profiles[0].Series!;
        Assert.Equal(3.25, s.RunningVcpus.Max(), 1e-9);
        Assert.Equal(4.25, s.ProvisionedVcpus.Max(), 1e-9);
        Assert.Equal(0, s.RunningVcpus[^1]);
    }

    /// <summary>A Fargate task's 30-s start is billed as its boot, not as idle time between jobs.</summary>
    [Fact]
    public async Task FargateStart_IsBoot_NotIdle()
    {
        var w = new Workload { Jobs = [new WorkloadJob(0, 1, 2048, 0, 600)] };

        var report = await Simulator.RunAsync(Small(w, "fargate") with { IncludeCostBreakdown = true }, ct: TestContext.Current.CancellationToken);

        var p = report.Profiles[0];
        var b = p.CostBreakdown!;
        Assert.Equal(0, b.IdleBetweenJobsUsd);
        Assert.Equal(p.CostUsd * 30 / 630, b.BootUsd, 1e-9);
        Assert.Equal(p.CostUsd, b.TotalUsd, 1e-9);
    }

    private sealed class SyncProgress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }
}
