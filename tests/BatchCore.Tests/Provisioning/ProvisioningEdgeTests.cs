using BatchCore.Model;
using BatchCore.Provisioning;

namespace BatchCore.Tests.Provisioning;

/// <summary>
/// Managed environments where BatchCore differed from AWS's rules (found by an audit of provisioning): spot
/// interruptions of draining and deleted environments' instances, a queue's fallback environment scaling out for jobs
/// the first takes, Fargate's fractional vCPUs, updates AWS refuses, misleading reasons, minvCpus over maxvCpus.
/// </summary>
public sealed class ProvisioningEdgeTests
{
    private static readonly CancellationToken Ct = TestContext.Current.CancellationToken;

    private static CreateComputeEnvironmentRequest Managed(string name, string type, string strategy, int max, int min = 0, string[]? types = null) => new()
    {
        ComputeEnvironmentName = name,
        Type = CEType.MANAGED,
        ComputeResources = new()
        {
            Type = type, AllocationStrategy = strategy, MinvCpus = min, MaxvCpus = max, InstanceTypes = types ?? ["c6i.large"],
            Subnets = ["subnet-1"], SecurityGroupIds = ["sg-1"], InstanceRole = "ecsInstanceRole",
        },
    };

    private static Task<global::BatchCore.Placement.Host> HostAsync(BatchEngine engine, string ce, string? type = null) =>
        engine.Run(c => c.SimulationHosts().Where(h => type is null || h.Type == type).Select(h => c.HostNamed(ce, h.Name)).First(h => h is not null)!, Ct);

    /// <summary>
    /// AWS terminates a deleted environment's instances. One still running a job was only drained; when its spot
    /// interruption came, it was "replaced" to keep minvCpus — an instance of a deleted environment, never terminated,
    /// holding its type's capacity from every other environment.
    /// </summary>
    [Fact]
    public async Task SpotInterruptionOfADeletedEnvironmentsInstance_LaunchesNoReplacement()
    {
        await using var engine = TestEngine.Create(new BatchEngineOptions { Provisioning = new ProvisioningOptions { InstanceTypeCapacity = new Dictionary<string, int> { ["c6i.large"] = 1 } } });
        await engine.CreateComputeEnvironmentAsync(Managed("old", CRType.SPOT, CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED, 16, min: 2), Ct);
        await engine.CreateComputeEnvironmentAsync(Managed("other", CRType.EC2, CRAllocationStrategy.BEST_FIT, 16), Ct);
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "old" }] }, Ct);
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"), Ct);
        await engine.SubmitJobAsync(TestEngine.Job("long", runSeconds: 3600), Ct);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1), Ct);
        var host = await HostAsync(engine, "old");

        await engine.UpdateJobQueueAsync(new() { JobQueue = "q", ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "other" }] }, Ct);
        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "old", State = ResourceState.DISABLED }, Ct);
        await engine.DeleteComputeEnvironmentAsync("old", Ct);
        await engine.Run(c => { c.InterruptSpotHost(host); return 0; }, Ct); // the notice
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(3), Ct); // the interruption

        var next = await engine.SubmitJobAsync(TestEngine.Job("next", runSeconds: 10), Ct);
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(5), Ct);
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(next.JobId)); // the only c6i.large slot is free again
        Assert.DoesNotContain(await ManagedCe.HostsAsync(engine), h => h.Spot);
    }

    /// <summary>
    /// A host already draining (here for an infrastructure update) still gets the 2-minute notice before its jobs end,
    /// and the instance that keeps minvCpus is of the environment's new instanceTypes, not the reclaimed one's.
    /// </summary>
    [Fact]
    public async Task SpotInterruptionDuringAnInfrastructureUpdate_GivesTheNotice_AndReplacesWithTheNewType()
    {
        await using var engine = await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED, max: 16, min: 2, types: ["c6i.large"], type: CRType.SPOT));
        var job = await engine.SubmitJobAsync(TestEngine.Job("long", runSeconds: 3600), Ct);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1), Ct);
        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ce", ComputeResources = new() { InstanceTypes = ["m6i.large"] } }, Ct);
        var host = await HostAsync(engine, "ce", "c6i.large");
        var noticeAt = engine.UtcNow.ToUnixTimeMilliseconds();

        await engine.Run(c => { c.InterruptSpotHost(host); return 0; }, Ct);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1), Ct);
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(job.JobId)); // the notice: 2 minutes

        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(3), Ct);
        var attempt = (await engine.DescribeAsync(job.JobId)).Attempts[0];
        Assert.Equal(StatusReasons.SpotInterrupted, attempt.StatusReason);
        Assert.Equal(120_000, attempt.StoppedAt - noticeAt);
        Assert.DoesNotContain(await ManagedCe.HostsAsync(engine), h => h.Type == "c6i.large");
    }

    /// <summary>
    /// AWS uses a queue's next environment only when the ones before cannot provide. The fallback environment used to be
    /// sized for every waiting job too, and launched instances for jobs the first one took (then billed them idle).
    /// Once the first is at maxvCpus, the fallback does scale out.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public async Task AFallbackEnvironment_ScalesOutOnlyForWhatTheFirstCannotTake(int bootMinutes)
    {
        await using var engine = TestEngine.Create(new BatchEngineOptions { Provisioning = new ProvisioningOptions { Ec2BootTime = TimeSpan.FromMinutes(bootMinutes) } });
        await engine.CreateComputeEnvironmentAsync(Managed("first", CRType.SPOT, CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED, 4), Ct);
        await engine.CreateComputeEnvironmentAsync(Managed("fallback", CRType.EC2, CRAllocationStrategy.BEST_FIT_PROGRESSIVE, 64, types: ["m6i.large"]), Ct);
        await engine.CreateJobQueueAsync(new()
        {
            JobQueueName = "q", Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "first" }, new() { Order = 2, ComputeEnvironment = "fallback" }],
        }, Ct);
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"), Ct);
        for (var i = 0; i < 4; i++)
        {
            await engine.SubmitJobAsync(TestEngine.Job("j" + i, runSeconds: 600), Ct);
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(bootMinutes) + TimeSpan.FromSeconds(5), Ct);
        Assert.DoesNotContain(await ManagedCe.HostsAsync(engine), h => h.Type == "m6i.large");
        Assert.Equal(4, (await engine.ListJobsAsync(new() { JobQueue = "q" }, Ct)).JobSummaryList.Count); // all RUNNING, on the first

        // The first is full and at maxvCpus (4): more jobs go to the fallback.
        for (var i = 0; i < 2; i++)
        {
            await engine.SubmitJobAsync(TestEngine.Job("more" + i, runSeconds: 600), Ct);
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(bootMinutes) + TimeSpan.FromSeconds(5), Ct);
        Assert.Contains(await ManagedCe.HostsAsync(engine), h => h.Type == "m6i.large");
        Assert.Equal(6, (await engine.ListJobsAsync(new() { JobQueue = "q" }, Ct)).JobSummaryList.Count);
        await engine.RunUntilIdleAsync(Ct);
    }

    /// <summary>Fargate's maxvCpus counts the tasks' own vCPUs: four 0.25-vCPU tasks fit in 1, and two 0.5-vCPU tasks are 1 desired vCPU.</summary>
    [Fact]
    public async Task FargateFractionalTasks_CountTheirOwnVcpus()
    {
        await using var engine = await ManagedCe.CreateAsync(new ComputeResource { Type = CRType.FARGATE, MaxvCpus = 1 });
        var def = TestEngine.Definition("small") with { PlatformCapabilities = [PlatformCapability.FARGATE] };
        def = def with
        {
            ContainerProperties = def.ContainerProperties! with
            {
                ExecutionRoleArn = "arn:aws:iam::000000000000:role/exec",
                ResourceRequirements = [new(ResourceType.VCPU, "0.25"), new(ResourceType.MEMORY, "512")],
            },
        };
        await engine.RegisterJobDefinitionAsync(def, Ct);
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add((await engine.SubmitJobAsync(TestEngine.Job("f" + i, def: "small", runSeconds: 600), Ct)).JobId);
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1), Ct);
        var statuses = new List<string>();
        foreach (var id in ids)
        {
            statuses.Add(await engine.StatusAsync(id));
        }

        Assert.Equal(4, statuses.Count(s => s == JobStatus.RUNNING));
        Assert.Equal(JobStatus.RUNNABLE, statuses[4]);
        Assert.Equal(1, (await engine.DescribeComputeEnvironmentsAsync(ct: Ct)).ComputeEnvironments.Single().ComputeResources!.DesiredvCpus);
        await engine.RunUntilIdleAsync(Ct);
    }

    /// <summary>AWS: "BEST_FIT isn't supported when updating a compute environment".</summary>
    [Fact]
    public async Task UpdateToBestFit_IsRefused()
    {
        await using var engine = await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, max: 16, types: ["c6i.large"]));
        var e = await Assert.ThrowsAsync<BatchClientException>(() =>
            engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ce", ComputeResources = new() { AllocationStrategy = CRAllocationStrategy.BEST_FIT } }, Ct));
        Assert.Contains("computeResources.allocationStrategy BEST_FIT is not supported when updating", e.Message, StringComparison.Ordinal);
        Assert.Equal(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, (await engine.DescribeComputeEnvironmentsAsync(ct: Ct)).ComputeEnvironments.Single().ComputeResources!.AllocationStrategy);
    }

    /// <summary>A job queue's environments share one architecture (CreateJobQueue's rule): an update may not make one arm64 beside an x86_64 one.</summary>
    [Fact]
    public async Task UpdateThatWouldSplitAQueuesArchitecture_IsRefused()
    {
        await using var engine = TestEngine.Create();
        foreach (var name in new[] { "a", "b" })
        {
            await engine.CreateComputeEnvironmentAsync(Managed(name, CRType.EC2, CRAllocationStrategy.BEST_FIT_PROGRESSIVE, 16), Ct);
        }

        await engine.CreateJobQueueAsync(new()
        {
            JobQueueName = "q", Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "a" }, new() { Order = 2, ComputeEnvironment = "b" }],
        }, Ct);
        var e = await Assert.ThrowsAsync<BatchClientException>(() =>
            engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "b", ComputeResources = new() { InstanceTypes = ["c6g.large"] } }, Ct));
        Assert.Contains("computeResources.instanceTypes would make b arm64, but job queue q also uses a (x86_64)", e.Message, StringComparison.Ordinal);

        await engine.CreateComputeEnvironmentAsync(Managed("alone", CRType.EC2, CRAllocationStrategy.BEST_FIT_PROGRESSIVE, 16), Ct);
        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "alone", ComputeResources = new() { InstanceTypes = ["c6g.large"] } }, Ct); // in no queue: fine
    }

    /// <summary>Fargate tasks held back by the launch rate wait for capacity; they are not at maxvCpus (a time-limit action keyed on that would cancel them).</summary>
    [Fact]
    public async Task FargateLaunchRateLimit_IsNotReportedAsMaxResource()
    {
        await using var engine = await ManagedCe.CreateAsync(new ComputeResource { Type = CRType.FARGATE, MaxvCpus = 10_000 });
        var ids = new List<string>();
        for (var i = 0; i < 150; i++)
        {
            ids.Add((await engine.SubmitJobAsync(TestEngine.Job("f" + i, runSeconds: 600), Ct)).JobId);
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromMilliseconds(1), Ct);
        var waiting = (await engine.DescribeJobsAsync(ids[100..], Ct)).Where(d => d.Status == JobStatus.RUNNABLE).ToList();
        Assert.NotEmpty(waiting);
        Assert.All(waiting, d => Assert.DoesNotContain("COMPUTE_ENVIRONMENT_MAX_RESOURCE", d.StatusReason ?? "", StringComparison.Ordinal));
        await engine.RunUntilIdleAsync(Ct);
    }

    /// <summary>BEST_FIT On-Demand never goes over maxvCpus (AWS), not even to reach minvCpus.</summary>
    [Fact]
    public async Task MinvCpus_DoesNotTakeBestFitOnDemandOverMaxvCpus()
    {
        await using var engine = await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT, max: 3, min: 3, types: ["c6i.large"]));
        Assert.Equal(2, await ManagedCe.ProvisionedAsync(engine));
    }

    /// <summary>
    /// An environment's provisioned vCPUs were an int: 2,148 listed hosts of a million vCPUs each (each within the host
    /// limit) summed past int.MaxValue and wrapped negative.
    /// </summary>
    [Fact]
    public async Task ProvisionedVcpus_OfManyLargeHosts_DoNotOverflow()
    {
        const int Hosts = 2_148;
        await using var engine = TestEngine.Create();
        await engine.CreateComputeEnvironmentAsync(new()
        {
            ComputeEnvironmentName = "big",
            Type = CEType.UNMANAGED,
            Hosts = [.. Enumerable.Range(0, Hosts).Select(i => new HostSpec { HostName = $"h{i}", Vcpus = 1_000_000, MemoryMiB = 1024 })],
        }, Ct);
        Assert.Equal(Hosts * 1_000_000L, await engine.Run(c => c.ProvisionedVcpusOf("big"), Ct));
    }
}
