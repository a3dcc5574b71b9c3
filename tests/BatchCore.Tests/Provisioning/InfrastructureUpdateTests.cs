using BatchCore.Model;
using BatchCore.Provisioning;

namespace BatchCore.Tests.Provisioning;

/// <summary>
/// UpdateComputeEnvironment's infrastructure updates (AWS): the CE is UPDATING while its instances are replaced — the old
/// ones take no new jobs and go once idle, new jobs land on instances with the new settings, and what still runs on the
/// old ones is terminated at once or after jobExecutionTimeoutMinutes.
/// </summary>
public sealed class InfrastructureUpdateTests
{
    private static readonly ProvisioningOptions Instant = new() { DemandSizedScaleOut = false };

    private static async Task<(BatchEngine Engine, string Running)> RunningOnOldInstanceAsync()
    {
        var engine = await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, max: 16, types: ["c6i.large"]), Instant);
        var running = await engine.SubmitJobAsync(TestEngine.Job("long", runSeconds: 3_600));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(running.JobId));
        return (engine, running.JobId);
    }

    private static async Task<ComputeEnvironmentDetail> CeAsync(BatchEngine engine) => (await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments.Single();

    [Fact]
    public async Task InstanceTypeChange_DrainsTheOldInstances_AndPlacesNewJobsOnNewOnes_ThenTerminatesAfterTheTimeout()
    {
        var (engine, running) = await RunningOnOldInstanceAsync();
        await using var _ = engine;

        await engine.UpdateComputeEnvironmentAsync(new()
        {
            ComputeEnvironment = "ce",
            ComputeResources = new() { InstanceTypes = ["m6i.large"] },
            UpdatePolicy = new() { JobExecutionTimeoutMinutes = 2 },
        });
        Assert.Equal(ResourceStatus.UPDATING, (await CeAsync(engine)).Status);

        // The old c6i.large has a free vCPU, but a new job goes to a new m6i.large.
        var next = await engine.SubmitJobAsync(TestEngine.Job("next", runSeconds: 10));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var hosts = await ManagedCe.HostsAsync(engine);
        Assert.Equal(["c6i.large", "m6i.large"], hosts.Select(h => h.Type).Order(StringComparer.Ordinal));
        Assert.Contains("m6i", (await engine.DescribeAsync(next.JobId)).Container!.ContainerInstanceArn, StringComparison.Ordinal);

        // jobExecutionTimeoutMinutes: the job on the old instance is terminated, the instance goes, the update ends.
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(2));
        await engine.RunUntilIdleAsync();
        var terminated = await engine.DescribeAsync(running);
        Assert.Equal((JobStatus.FAILED, true), (terminated.Status, terminated.IsTerminated));
        Assert.Contains("infrastructure update", terminated.StatusReason, StringComparison.Ordinal);
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(next.JobId));
        Assert.DoesNotContain(await ManagedCe.HostsAsync(engine), h => h.Type == "c6i.large");
        Assert.Equal(ResourceStatus.VALID, (await CeAsync(engine)).Status);
    }

    /// <summary>
    /// A second infrastructure update does not move the first one's deadline: each replaced instance keeps the
    /// jobExecutionTimeoutMinutes of the update that replaced it (here 2 minutes, then 30 for the instance the first
    /// update launched), and the environment is VALID once the last replaced instance is gone.
    /// </summary>
    [Fact]
    public async Task SecondUpdate_KeepsTheFirstUpdatesDeadline()
    {
        var (engine, first) = await RunningOnOldInstanceAsync();
        await using var _ = engine;
        await engine.UpdateComputeEnvironmentAsync(new()
        {
            ComputeEnvironment = "ce", ComputeResources = new() { InstanceTypes = ["m6i.large"] }, UpdatePolicy = new() { JobExecutionTimeoutMinutes = 2 },
        });
        var second = (await engine.SubmitJobAsync(TestEngine.Job("second", runSeconds: 3_600))).JobId; // on a new m6i.large
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1));

        await engine.UpdateComputeEnvironmentAsync(new()
        {
            ComputeEnvironment = "ce", ComputeResources = new() { InstanceTypes = ["r6i.large"] }, UpdatePolicy = new() { JobExecutionTimeoutMinutes = 30 },
        });
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1.5));

        Assert.Equal(JobStatus.FAILED, await engine.StatusAsync(first)); // at 2 minutes, as its update said
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(second));
        Assert.Equal(ResourceStatus.UPDATING, (await CeAsync(engine)).Status);

        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(29));
        Assert.Equal(JobStatus.FAILED, await engine.StatusAsync(second)); // 30 minutes after the second update
        await engine.RunUntilIdleAsync();
        Assert.Empty(await ManagedCe.HostsAsync(engine));
        Assert.Equal(ResourceStatus.VALID, (await CeAsync(engine)).Status);
    }

    /// <summary>AWS: a job queue takes only VALID compute environments; one being updated is not, until the update ends.</summary>
    [Fact]
    public async Task UpdatingComputeEnvironment_CannotJoinAJobQueue()
    {
        var (engine, running) = await RunningOnOldInstanceAsync();
        await using var _ = engine;
        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ce", ComputeResources = new() { InstanceTypes = ["m6i.large"] }, UpdatePolicy = new() { JobExecutionTimeoutMinutes = 2 } });
        Assert.Equal(ResourceStatus.UPDATING, (await CeAsync(engine)).Status);

        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.CreateJobQueueAsync(new()
        {
            JobQueueName = "q2", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
        }));
        Assert.Contains("ce is UPDATING; a job queue takes only VALID compute environments", e.Message, StringComparison.Ordinal);
        await engine.UpdateJobQueueAsync(new() { JobQueue = "q", ComputeEnvironmentOrder = [new() { Order = 5, ComputeEnvironment = "ce" }] }); // already its queue's

        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(3));
        Assert.Equal(JobStatus.FAILED, await engine.StatusAsync(running));
        Assert.Equal(ResourceStatus.VALID, (await CeAsync(engine)).Status);
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q2", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
    }

    [Fact]
    public async Task TerminateJobsOnUpdate_TerminatesAtOnce()
    {
        var (engine, running) = await RunningOnOldInstanceAsync();
        await using var _ = engine;

        await engine.UpdateComputeEnvironmentAsync(new()
        {
            ComputeEnvironment = "ce",
            ComputeResources = new() { SecurityGroupIds = ["sg-2"] },
            UpdatePolicy = new() { TerminateJobsOnUpdate = true },
        });
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        await engine.RunUntilIdleAsync();

        Assert.Equal(JobStatus.FAILED, await engine.StatusAsync(running));
        Assert.Empty(await ManagedCe.HostsAsync(engine)); // the old instance went; no job asked for a new one
        Assert.Equal(ResourceStatus.VALID, (await CeAsync(engine)).Status);
    }

    [Fact]
    public async Task JobsThatEndBeforeTheTimeout_EndNormally_AndTheUpdateEndsWithThem()
    {
        var engine = await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, max: 16, types: ["c6i.large"]), Instant);
        await using var _ = engine;
        var job = await engine.SubmitJobAsync(TestEngine.Job("short", runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ce", ComputeResources = new() { InstanceTypes = ["m6i.large"] } });
        Assert.Equal(ResourceStatus.UPDATING, (await CeAsync(engine)).Status);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(61));

        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(job.JobId));
        Assert.Empty(await ManagedCe.HostsAsync(engine));
        Assert.Equal(ResourceStatus.VALID, (await CeAsync(engine)).Status);
    }

    public static TheoryData<string, ComputeResourceUpdate> InfrastructureFields => new()
    {
        { "image version", new() { UpdateToLatestImageVersion = true } },
        { "tags", new() { Tags = new Dictionary<string, string> { ["team"] = "data" } } },
        { "launch template", new() { LaunchTemplate = new() { LaunchTemplateName = "lt", Version = "$Latest" } } },
        { "placement group", new() { PlacementGroup = "pg" } },
        { "ec2 configuration", new() { Ec2Configuration = [new() { ImageType = "ECS_AL2023" }] } },
        { "subnets", new() { Subnets = ["subnet-2"] } },
        { "strategy", new() { AllocationStrategy = CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED, Type = CRType.SPOT } },
    };

    [Theory]
    [MemberData(nameof(InfrastructureFields))]
    public async Task EveryInfrastructureField_ReplacesTheInstances(string field, ComputeResourceUpdate update)
    {
        _ = field;
        var (engine, _) = await RunningOnOldInstanceAsync();
        await using var __ = engine;

        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ce", ComputeResources = update });

        Assert.Equal(ResourceStatus.UPDATING, (await CeAsync(engine)).Status);
    }

    /// <summary>minvCpus is met again with new instances once the replaced ones are gone.</summary>
    [Fact]
    public async Task MinvCpus_IsRestoredWithNewInstances_WhenTheUpdateEnds()
    {
        var engine = await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, max: 16, min: 2, types: ["c6i.large"]), Instant);
        await using var _ = engine;
        var job = await engine.SubmitJobAsync(TestEngine.Job("short", runSeconds: 60));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(["c6i.large"], (await ManagedCe.HostsAsync(engine)).Select(h => h.Type));

        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ce", ComputeResources = new() { InstanceTypes = ["m6i.large"] } });
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(61));

        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(job.JobId));
        Assert.Equal(["m6i.large"], (await ManagedCe.HostsAsync(engine)).Select(h => h.Type));
        Assert.Equal(ResourceStatus.VALID, (await CeAsync(engine)).Status);
    }

    [Fact]
    public async Task ScalingUpdate_AndAnUnchangedValue_ReplaceNothing()
    {
        var (engine, running) = await RunningOnOldInstanceAsync();
        await using var _ = engine;

        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ce", ComputeResources = new() { MaxvCpus = 32, InstanceTypes = ["c6i.large"] } });

        Assert.Equal(ResourceStatus.VALID, (await CeAsync(engine)).Status);
        await engine.SubmitJobAsync(TestEngine.Job("beside", runSeconds: 10));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Single(await ManagedCe.HostsAsync(engine)); // the second job shares the running instance
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(running));
    }

    [Fact]
    public async Task JobExecutionTimeout_OutsideAwsRange_IsRejected()
    {
        var (engine, _) = await RunningOnOldInstanceAsync();
        await using var __ = engine;
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.UpdateComputeEnvironmentAsync(new()
        {
            ComputeEnvironment = "ce",
            ComputeResources = new() { InstanceTypes = ["m6i.large"] },
            UpdatePolicy = new() { JobExecutionTimeoutMinutes = 7_201 },
        }));
        Assert.Contains("updatePolicy.jobExecutionTimeoutMinutes must be between 1 and 7200, was 7201", e.Message, StringComparison.Ordinal);
        Assert.Equal(ResourceStatus.VALID, (await CeAsync(engine)).Status); // nothing applied
    }
}
