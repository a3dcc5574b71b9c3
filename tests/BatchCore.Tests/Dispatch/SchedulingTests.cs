using BatchCore.Model;

namespace BatchCore.Tests.Dispatch;

public class SchedulingTests
{
    [Fact]
    public async Task Fifo_HeadOfLineBlocking_LaterSmallJobWaits()
    {
        // One host of 4 vCPU; a 2-vCPU job runs; the head needs 4 vCPU and blocks a 1-vCPU job behind it (AWS FIFO).
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 4);
        var running = await engine.SubmitJobAsync(TestEngine.Job("running", vcpus: 2, runSeconds: 100));
        var big = await engine.SubmitJobAsync(TestEngine.Job("big", vcpus: 4, runSeconds: 10));
        var small = await engine.SubmitJobAsync(TestEngine.Job("small", vcpus: 1, runSeconds: 10));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(running.JobId));
        Assert.Equal(JobStatus.RUNNABLE, await engine.StatusAsync(big.JobId));
        Assert.Equal(JobStatus.RUNNABLE, await engine.StatusAsync(small.JobId));
        Assert.StartsWith(StatusReasons.InsufficientInstanceCapacity, (await engine.DescribeAsync(big.JobId)).StatusReason, StringComparison.Ordinal);
        await engine.RunUntilIdleAsync();
        Assert.True((await engine.DescribeAsync(small.JobId)).StartedAt >= (await engine.DescribeAsync(big.JobId)).StartedAt);
    }

    [Fact]
    public async Task BlockedHeads_OfOneShapeWithinASecond_ShareOneExplanation_LaterOnesAreCountedAgain()
    {
        // One 1-vCPU host; six 1-vCPU children of 0.4 s each: every child is the blocked head once (child k from 0.4(k-1) s).
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        var array = (await engine.SubmitJobAsync(TestEngine.Job("a", vcpus: 1, runSeconds: 0.4, arraySize: 6))).JobId;
        const string expected = StatusReasons.InsufficientInstanceCapacity + " - 0/1 hosts available, 1 insufficient vCPU";

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(0.1));
        var first = await engine.DescribeAsync(array + ":1");
        Assert.Equal((JobStatus.RUNNABLE, expected), (first.Status, first.StatusReason));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(0.4)); // child 0 ended at 0.4 s, child 1 runs, child 2 waits
        var second = await engine.DescribeAsync(array + ":2");
        Assert.Equal(JobStatus.RUNNABLE, second.Status);
        Assert.Same(first.StatusReason, second.StatusReason); // no new pass over the hosts, no new string

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(0.8)); // child 4 became the head at 1.2 s: explained anew
        var third = await engine.DescribeAsync(array + ":4");
        Assert.Equal((JobStatus.RUNNABLE, expected), (third.Status, third.StatusReason));
        Assert.NotSame(first.StatusReason, third.StatusReason);
        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(array));
    }

    [Fact]
    public async Task Backfill_LetsLaterJobThatFitsStartAheadOfBlockedHead()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 4, extensions: new JobQueueExtensions { Backfill = true });
        await engine.SubmitJobAsync(TestEngine.Job("running", vcpus: 2, runSeconds: 100));
        var big = await engine.SubmitJobAsync(TestEngine.Job("big", vcpus: 4, runSeconds: 10));
        var small = await engine.SubmitJobAsync(TestEngine.Job("small", vcpus: 1, runSeconds: 10));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.RUNNABLE, await engine.StatusAsync(big.JobId));
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(small.JobId));
    }

    [Fact]
    public async Task JobThatFitsNoComputeEnvironment_StaysRunnable_WithMisconfigurationReason()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 2, memoryMiB: 4096);
        var r = await engine.SubmitJobAsync(TestEngine.Job("huge", vcpus: 8));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(10));
        var job = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.RUNNABLE, job.Status);
        Assert.StartsWith(StatusReasons.JobResourceRequirement, job.StatusReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostMemoryReserve_JobAskingNominalMemoryDoesNotFit()
    {
        // AWS/ECS: the agent reserves 32 MiB, so a job asking for a host's nominal memory does not fit it.
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 2, memoryMiB: 4096);
        var r = await engine.SubmitJobAsync(TestEngine.Job("exact", vcpus: 1, memory: 4096));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.StartsWith(StatusReasons.JobResourceRequirement, (await engine.DescribeAsync(r.JobId)).StatusReason, StringComparison.Ordinal);
        var ok = await engine.SubmitJobAsync(TestEngine.Job("fits", vcpus: 1, memory: 4064));
        await engine.CancelJobAsync(r.JobId, "unblock");
        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(ok.JobId));
    }

    [Fact]
    public async Task HigherPriorityQueue_IsServedFirst_OnSharedComputeEnvironment()
    {
        await using var engine = TestEngine.Create();
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 1, MemoryMiB = 4096 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "low", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "high", Priority = 10, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        await engine.SubmitJobAsync(TestEngine.Job("blocker", queue: "low", runSeconds: 10)); // takes the only host
        var low = await engine.SubmitJobAsync(TestEngine.Job("low", queue: "low"));
        var high = await engine.SubmitJobAsync(TestEngine.Job("high", queue: "high"));
        await engine.RunUntilIdleAsync();
        Assert.True((await engine.DescribeAsync(high.JobId)).StartedAt < (await engine.DescribeAsync(low.JobId)).StartedAt);
    }

    [Fact]
    public async Task ComputeEnvironmentOrder_FallsThroughWhenFirstIsFullOrDisabled()
    {
        await using var engine = TestEngine.Create();
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "first", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "f", Vcpus = 1, MemoryMiB = 4096 }] });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "second", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "s", Vcpus = 1, MemoryMiB = 4096 }] });
        await engine.CreateJobQueueAsync(new()
        {
            JobQueueName = "q",
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 2, ComputeEnvironment = "second" }, new() { Order = 1, ComputeEnvironment = "first" }],
        });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        var a = await engine.SubmitJobAsync(TestEngine.Job("a", runSeconds: 100));
        var b = await engine.SubmitJobAsync(TestEngine.Job("b", runSeconds: 100));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(b.JobId)); // fell through to the second CE
        Assert.Contains("/first/", await Arn(engine, a.JobId), StringComparison.Ordinal);
        Assert.Contains("/second/", await Arn(engine, b.JobId), StringComparison.Ordinal);

        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "first", State = ResourceState.DISABLED });
        await engine.RunUntilIdleAsync();
        var c = await engine.SubmitJobAsync(TestEngine.Job("c"));
        await engine.RunUntilIdleAsync();
        var jc = await engine.DescribeAsync(c.JobId);
        Assert.Contains("/second/", jc.Attempts[0].Container!.ContainerInstanceArn, StringComparison.Ordinal);
    }

    private static async Task<string> Arn(BatchEngine engine, string jobId)
    {
        await engine.RunUntilIdleAsync();
        return (await engine.DescribeAsync(jobId)).Attempts[0].Container!.ContainerInstanceArn!;
    }

    [Fact]
    public async Task DisabledQueue_RejectsNewJobs_ButRunsQueuedOnes()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        await engine.SubmitJobAsync(TestEngine.Job("a", runSeconds: 10));
        var b = await engine.SubmitJobAsync(TestEngine.Job("b", runSeconds: 10));
        await engine.UpdateJobQueueAsync(new() { JobQueue = "q", State = ResourceState.DISABLED });
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(TestEngine.Job("c")));
        Assert.Contains("DISABLED", e.Message, StringComparison.Ordinal);
        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(b.JobId));
    }

    [Fact]
    public async Task MaxRunningJobs_CapsTheQueue()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4, extensions: new JobQueueExtensions { MaxRunningJobs = 1 });
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await engine.SubmitJobAsync(TestEngine.Job($"j{i}", runSeconds: 10))).JobId);
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var running = await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q" });
        Assert.Single(running.JobSummaryList);
        await engine.RunUntilIdleAsync();
        var jobs = await engine.DescribeJobsAsync(ids);
        Assert.All(jobs, j => Assert.Equal(JobStatus.SUCCEEDED, j.Status));
        Assert.Equal(30_000, jobs.Max(j => j.StoppedAt!.Value) - jobs.Min(j => j.CreatedAt));
    }

    [Fact]
    public async Task ConsumableResource_LimitsConcurrency_AndIsReleased()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4);
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "licence", TotalQuantity = 1 });
        var req = TestEngine.Job("x", runSeconds: 10) with
        {
            ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = [new() { ConsumableResource = "licence", Quantity = 1 }] },
        };
        var a = await engine.SubmitJobAsync(req with { JobName = "a" });
        var b = await engine.SubmitJobAsync(req with { JobName = "b" });
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(a.JobId));
        Assert.Equal(JobStatus.RUNNABLE, await engine.StatusAsync(b.JobId));
        Assert.Equal(1, (await engine.DescribeConsumableResourceAsync("licence")).InUseQuantity);
        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(b.JobId));
        Assert.Equal(0, (await engine.DescribeConsumableResourceAsync("licence")).InUseQuantity);
    }

    /// <summary>
    /// AWS: an update below what jobs hold "reduces the available quantity immediately and, as jobs finish, [...] reduces
    /// the total (available) quantity so that it eventually arrives at the new number". A SET below the quantity in use
    /// used to describe a negative availableQuantity.
    /// </summary>
    [Theory]
    [InlineData("SET", 1L)]
    [InlineData("REMOVE", 3L)]
    public async Task UpdateConsumableResource_BelowWhatJobsHold_LeavesNothingAvailable_UntilTheyEnd(string operation, long quantity)
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4);
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "licence", TotalQuantity = 4 });
        var req = TestEngine.Job("x", runSeconds: 10) with
        {
            ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = [new() { ConsumableResource = "licence", Quantity = 3 }] },
        };
        var a = await engine.SubmitJobAsync(req with { JobName = "a" });
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(a.JobId));

        await engine.UpdateConsumableResourceAsync(new() { ConsumableResource = "licence", Operation = operation, Quantity = quantity });
        var held = await engine.DescribeConsumableResourceAsync("licence");
        Assert.Equal((3L, 3L, 0L), (held.TotalQuantity, held.InUseQuantity, held.AvailableQuantity));
        var listed = Assert.Single((await engine.ListConsumableResourcesAsync(new())).ConsumableResources);
        Assert.Equal((3L, 3L), (listed.TotalQuantity, listed.InUseQuantity));

        var one = TestEngine.Job("one", runSeconds: 10) with
        {
            ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = [new() { ConsumableResource = "licence", Quantity = 1 }] },
        };
        var b = await engine.SubmitJobAsync(one);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(JobStatus.RUNNABLE, await engine.StatusAsync(b.JobId)); // a holds more than the new total

        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(b.JobId));
        var after = await engine.DescribeConsumableResourceAsync("licence");
        Assert.Equal((1L, 0L, 1L), (after.TotalQuantity, after.InUseQuantity, after.AvailableQuantity));
    }

    /// <summary>
    /// A non-replenishable resource set below what a job holds: the job uses its units up, and what is left is the new
    /// total capped by what exists. It used to end with a negative totalQuantity (1 - 3).
    /// </summary>
    [Fact]
    public async Task UpdateConsumableResource_NonReplenishableBelowWhatJobsHold_EndsAtWhatIsLeft()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4);
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "credits", TotalQuantity = 4, ResourceType = ConsumableResourceType.NON_REPLENISHABLE });
        var a = await engine.SubmitJobAsync(TestEngine.Job("a", runSeconds: 10) with
        {
            ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = [new() { ConsumableResource = "credits", Quantity = 3 }] },
        });
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        await engine.UpdateConsumableResourceAsync(new() { ConsumableResource = "credits", Operation = "SET", Quantity = 1 });
        var held = await engine.DescribeConsumableResourceAsync("credits");
        Assert.Equal((3L, 3L, 0L), (held.TotalQuantity, held.InUseQuantity, held.AvailableQuantity));

        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(a.JobId));
        var after = await engine.DescribeConsumableResourceAsync("credits");
        Assert.Equal((0L, 0L, 0L), (after.TotalQuantity, after.InUseQuantity, after.AvailableQuantity));
    }

    /// <summary>
    /// AWS is silent; deleting it used to leave the waiting job RUNNABLE for good (a resource created again under the
    /// name did not release it) and the running one holding a quantity of nothing.
    /// </summary>
    [Fact]
    public async Task DeleteConsumableResource_NeededByJobsThatHaveNotEnded_IsRefused_ThenAllowedOnceTheyEnded()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4);
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "licence", TotalQuantity = 1 });
        var req = TestEngine.Job("x", runSeconds: 10) with
        {
            ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = [new() { ConsumableResource = "licence", Quantity = 1 }] },
        };
        var a = await engine.SubmitJobAsync(req with { JobName = "a" });
        await engine.SubmitJobAsync(req with { JobName = "b" });
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.DeleteConsumableResourceAsync("licence"));
        Assert.Equal($"consumableResource licence is needed by job {a.JobId} (RUNNING) and 1 other job(s) that have not ended: delete it once they have ended, or cancel or terminate them", e.Message);
        Assert.Equal(1, (await engine.DescribeConsumableResourceAsync("licence")).InUseQuantity);

        await engine.RunUntilIdleAsync();
        await engine.DeleteConsumableResourceAsync("licence");
        await Assert.ThrowsAsync<BatchClientException>(() => engine.DescribeConsumableResourceAsync("licence"));
    }

    [Fact]
    public async Task JobStateTimeLimitAction_CancelsStuckHead_AndNextAdvances()
    {
        await using var engine = TestEngine.Create();
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 2, MemoryMiB = 4096 }] });
        await engine.CreateJobQueueAsync(new()
        {
            JobQueueName = "q",
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
            JobStateTimeLimitActions = [new() { Reason = StatusReasons.JobResourceRequirement, State = "RUNNABLE", Action = "CANCEL", MaxTimeSeconds = 600 }],
        });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        var stuck = await engine.SubmitJobAsync(TestEngine.Job("stuck", vcpus: 16));
        var next = await engine.SubmitJobAsync(TestEngine.Job("next"));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(599));
        Assert.Equal(JobStatus.RUNNABLE, await engine.StatusAsync(stuck.JobId));
        await engine.RunUntilIdleAsync();
        var job = await engine.DescribeAsync(stuck.JobId);
        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Equal(StatusReasons.JobResourceRequirement, job.StatusReason);
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(next.JobId));
    }

    /// <summary>
    /// UpdateJobQueue's jobStateTimeLimitActions apply to the head already waiting: a raised limit cancels it at the new
    /// time (not never), a lowered one at the new time (not the old).
    /// </summary>
    [Theory]
    [InlineData(600, 1_200)]
    [InlineData(1_200, 600)]
    public async Task JobStateTimeLimitAction_Updated_AppliesToTheWaitingHead(int before, int after)
    {
        await using var engine = TestEngine.Create();
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 2, MemoryMiB = 4096 }] });
        JobStateTimeLimitAction Action(int seconds) => new() { Reason = StatusReasons.JobResourceRequirement, State = "RUNNABLE", Action = "CANCEL", MaxTimeSeconds = seconds };
        await engine.CreateJobQueueAsync(new()
        {
            JobQueueName = "q",
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
            JobStateTimeLimitActions = [Action(before)],
        });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        var stuck = await engine.SubmitJobAsync(TestEngine.Job("stuck", vcpus: 16));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(100));
        await engine.UpdateJobQueueAsync(new() { JobQueue = "q", JobStateTimeLimitActions = [Action(after)] });

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(after - 100 - 1));
        Assert.Equal(JobStatus.RUNNABLE, await engine.StatusAsync(stuck.JobId));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(2));
        Assert.Equal(JobStatus.FAILED, await engine.StatusAsync(stuck.JobId));
    }

    /// <summary>
    /// The active share identifiers quota counts a share that comes back: one whose jobs all ended is not active, and
    /// submitting to it again makes it active (it used to pass the quota because the queue still knew it).
    /// </summary>
    [Fact]
    public async Task ActiveShareIdentifiers_QuotaCountsAShareThatComesBack()
    {
        var options = new BatchEngineOptions { Quotas = new BatchQuotas { MaxActiveShareIdentifiers = 1 } };
        await using var engine = TestEngine.Create(options);
        var policy = await engine.CreateSchedulingPolicyAsync(new() { Name = "fair" });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 4, MemoryMiB = 8192 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, SchedulingPolicyArn = policy.Arn, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        await engine.SubmitJobAsync(TestEngine.Job("a1", runSeconds: 10, share: "a"));
        await engine.RunUntilIdleAsync(); // share a: no active job any more
        await engine.SubmitJobAsync(TestEngine.Job("b1", runSeconds: 1_000, share: "b"));

        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(TestEngine.Job("a2", share: "a")));
        Assert.Contains("already has 1 active share identifiers", e.Message, StringComparison.Ordinal);
        await engine.SubmitJobAsync(TestEngine.Job("b2", share: "b")); // the active one takes more
    }

    [Fact]
    public async Task RetriedJob_GoesToTheFrontOfTheQueue()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy { Attempts = 2 }));
        var a = await engine.SubmitJobAsync(TestEngine.Job("a", def: "retry", exitCode: 1, failingAttempts: 1, runSeconds: 10));
        var b = await engine.SubmitJobAsync(TestEngine.Job("b", runSeconds: 10));
        await engine.RunUntilIdleAsync();
        var ja = await engine.DescribeAsync(a.JobId);
        var jb = await engine.DescribeAsync(b.JobId);
        Assert.Equal(2, ja.Attempts.Count);
        Assert.True(ja.StoppedAt <= jb.StartedAt, "the retried job ran again before the job queued behind it");
    }

    [Fact]
    public async Task FargateProfile_EachJobGetsItsOwnRightSizedHost()
    {
        await using var engine = TestEngine.Create();
        await engine.CreateComputeEnvironmentAsync(new()
        {
            ComputeEnvironmentName = "fg",
            Type = CEType.MANAGED,
            ComputeResources = new() { Type = CRType.FARGATE, MaxvCpus = 4, Subnets = ["s"], SecurityGroupIds = ["g"] },
        });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "fg" }] });
        var fdef = TestEngine.Definition("fdef", vcpus: 1, memory: 2048);
        await engine.RegisterJobDefinitionAsync(fdef with
        {
            PlatformCapabilities = [PlatformCapability.FARGATE],
            ContainerProperties = fdef.ContainerProperties! with { ExecutionRoleArn = "arn:aws:iam::000000000000:role/exec" },
        });
        var ids = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            ids.Add((await engine.SubmitJobAsync(TestEngine.Job($"f{i}", def: "fdef", runSeconds: 60))).JobId);
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var jobs = await engine.DescribeJobsAsync(ids);
        Assert.Equal(4, jobs.Count(j => j.Status == JobStatus.RUNNING)); // maxvCpus 4, one 1-vCPU task per job
        Assert.StartsWith(StatusReasons.ComputeEnvironmentMaxResource, jobs.First(j => j.Status == JobStatus.RUNNABLE).StatusReason, StringComparison.Ordinal);
        await engine.RunUntilIdleAsync();
        Assert.All(await engine.DescribeJobsAsync(ids), j => Assert.Equal(JobStatus.SUCCEEDED, j.Status));
    }

    [Fact]
    public async Task ManagedEc2_ScalesOutForDemand_WithinMaxvCpus()
    {
        await using var engine = TestEngine.Create();
        await engine.CreateComputeEnvironmentAsync(new()
        {
            ComputeEnvironmentName = "ec2",
            Type = CEType.MANAGED,
            ComputeResources = new() { Type = CRType.EC2, MinvCpus = 0, MaxvCpus = 8, InstanceTypes = ["m6i.large"], AllocationStrategy = CRAllocationStrategy.BEST_FIT_PROGRESSIVE },
        });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ec2" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        for (var i = 0; i < 12; i++)
        {
            await engine.SubmitJobAsync(TestEngine.Job($"j{i}", runSeconds: 60));
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var ce = (await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments.Single();
        Assert.Equal(8, ce.ComputeResources!.DesiredvCpus);
        var running = await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q" });
        Assert.Equal(8, running.JobSummaryList.Count);
        await engine.RunUntilIdleAsync();
        var after = (await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments.Single();
        Assert.Equal(0, after.ComputeResources!.DesiredvCpus); // idle instances scaled in to minvCpus
    }

    [Fact]
    public async Task FairShare_RequiresShareIdentifier_AndFavoursLowerWeight()
    {
        await using var engine = TestEngine.Create();
        var policy = await engine.CreateSchedulingPolicyAsync(new()
        {
            Name = "fs",
            FairsharePolicy = new() { ShareDecaySeconds = 600, ShareDistribution = [new() { ShareIdentifier = "a", WeightFactor = 1 }, new() { ShareIdentifier = "b", WeightFactor = 0.5 }] },
        });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 3, MemoryMiB = 16384 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, SchedulingPolicyArn = policy.Arn, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(TestEngine.Job("x")));
        Assert.Contains("shareIdentifier", e.Message, StringComparison.Ordinal);
        for (var i = 0; i < 300; i++)
        {
            await engine.SubmitJobAsync(TestEngine.Job($"a{i}", share: "a", runSeconds: 60));
            await engine.SubmitJobAsync(TestEngine.Job($"b{i}", share: "b", runSeconds: 60));
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromHours(1)); // both shares stay busy all along
        var usage = await engine.Run(c => c.ShareUsage("q"), TestContext.Current.CancellationToken);
        var ratio = usage["b"] / usage["a"];
        Assert.InRange(ratio, 1.8, 2.2); // weight 0.5 gets twice the compute of weight 1
    }

    /// <summary>
    /// GetJobQueueSnapshot of a fair-share queue lists RUNNABLE jobs in the order the dispatcher starts them: shares of
    /// different weights and past usage, capacity for 6 of 12 jobs given at once — the 6 that start are the snapshot's
    /// first 6, which are not the first 6 submitted. Its utilization counts what then runs, per share.
    /// </summary>
    [Fact]
    public async Task FairShareSnapshot_FrontOfQueue_IsTheDispatchOrder()
    {
        await using var engine = TestEngine.Create();
        var policy = await engine.CreateSchedulingPolicyAsync(new()
        {
            Name = "fs",
            FairsharePolicy = new()
            {
                ShareDecaySeconds = 3600,
                ShareDistribution = [new() { ShareIdentifier = "a", WeightFactor = 1 }, new() { ShareIdentifier = "b", WeightFactor = 0.5 }, new() { ShareIdentifier = "c", WeightFactor = 2 }],
            },
        });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 6, MemoryMiB = 16384 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, SchedulingPolicyArn = policy.Arn, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        for (var i = 0; i < 3; i++)
        {
            await engine.SubmitJobAsync(TestEngine.Job($"warm{i}", share: "b", runSeconds: 600)); // b has used capacity before
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(15));
        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ce", State = ResourceState.DISABLED });
        var submitted = new List<string>();
        foreach (var share in new[] { "a", "b", "c" })
        {
            for (var i = 0; i < 4; i++)
            {
                submitted.Add((await engine.SubmitJobAsync(TestEngine.Job($"{share}{i}", share: share, runSeconds: 3600))).JobId);
            }
        }

        await engine.RunUntilIdleAsync();
        var snapshot = await engine.GetJobQueueSnapshotAsync("q");
        var order = snapshot.FrontOfQueue.Jobs.Select(j => j.JobArn[(j.JobArn.LastIndexOf('/') + 1)..]).ToList();
        Assert.Equal(submitted.Order(), order.Order()); // every RUNNABLE job, once
        Assert.NotEqual(submitted.Take(6).Order(), order.Take(6).Order());

        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ce", State = ResourceState.ENABLED });
        var started = (await engine.DescribeJobsAsync(submitted)).Where(j => j.Status is JobStatus.STARTING or JobStatus.RUNNING).Select(j => j.JobId);
        Assert.Equal(order.Take(6).Order(), started.Order());

        var utilization = (await engine.GetJobQueueSnapshotAsync("q")).QueueUtilization;
        Assert.Equal(6, utilization.TotalCapacityUsage.Single(u => u.CapacityUnit == ResourceType.VCPU).Quantity);
        var shares = utilization.FairshareUtilization!.TopCapacityUtilization.ToDictionary(u => u.ShareIdentifier, u => u.CapacityUsage.Single().Quantity);
        Assert.Equal(shares.Count, utilization.FairshareUtilization.ActiveShareCount);
        Assert.Equal(6, shares.Values.Sum());
        Assert.Equal(shares.Values.OrderByDescending(v => v), utilization.FairshareUtilization.TopCapacityUtilization.Select(u => u.CapacityUsage.Single().Quantity));
    }

    [Fact]
    public async Task FairShare_ArrayChildrenOfOneShare_StartInIndexOrder()
    {
        await using var engine = TestEngine.Create();
        var policy = await engine.CreateSchedulingPolicyAsync(new()
        {
            Name = "fs",
            FairsharePolicy = new() { ShareDecaySeconds = 600, ShareDistribution = [new() { ShareIdentifier = "a", WeightFactor = 1 }] },
        });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 1, MemoryMiB = 4096 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, SchedulingPolicyArn = policy.Arn, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        var array = (await engine.SubmitJobAsync(TestEngine.Job("a", share: "a", runSeconds: 10, arraySize: 12))).JobId;
        await engine.RunUntilIdleAsync();

        var children = await engine.DescribeJobsAsync(Enumerable.Range(0, 12).Select(i => $"{array}:{i}").ToList());
        var started = children.Select(c => c.StartedAt!.Value).ToList();
        Assert.Equal(started.Order().ToList(), started); // 0, 1, 2, …, 11 — not 0, 1, 10, 11, 2, … (the ids' text order)
        Assert.Equal(12, started.Distinct().Count());
    }

    /// <summary>
    /// Batch placement repacks the jobs it put on idle hosts of one shape onto fewer of them, but never across
    /// architectures: an arm64 and an x86_64 host of the same size are not interchangeable (the placement property found
    /// an ARM64 job moved onto the x86_64 host).
    /// </summary>
    [Fact]
    public async Task BatchPlacement_Repack_KeepsEachJobOnItsArchitecture()
    {
        await using var engine = TestEngine.Create(new BatchEngineOptions { BatchPlacementThreshold = 2 });
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.UNMANAGED,
            Hosts = [new HostSpec { HostName = "x86", Vcpus = 4, MemoryMiB = 8192 }, new HostSpec { HostName = "arm", Vcpus = 4, MemoryMiB = 8192, Architecture = "arm64" }],
        });
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        var arm = TestEngine.Definition("arm") with
        {
            ContainerProperties = TestEngine.Definition("arm").ContainerProperties! with { RuntimePlatform = new() { CpuArchitecture = "ARM64" } },
        };
        await engine.RegisterJobDefinitionAsync(arm);
        await engine.RegisterJobDefinitionAsync(arm with
        {
            JobDefinitionName = "x86",
            ContainerProperties = arm.ContainerProperties! with { RuntimePlatform = new() { CpuArchitecture = "X86_64" } },
        });
        await engine.UpdateComputeEnvironmentAsync(new UpdateComputeEnvironmentRequest { ComputeEnvironment = "ce", State = ResourceState.DISABLED }); // all RUNNABLE first
        var armJob = (await engine.SubmitJobAsync(TestEngine.Job("a", def: "arm", runSeconds: 60))).JobId;
        var x86Job = (await engine.SubmitJobAsync(TestEngine.Job("b", def: "x86", runSeconds: 60))).JobId;
        await engine.RunUntilIdleAsync();

        // The greedy plan opens both idle hosts (one job each); one host could hold both jobs, but not across architectures.
        await engine.UpdateComputeEnvironmentAsync(new UpdateComputeEnvironmentRequest { ComputeEnvironment = "ce", State = ResourceState.ENABLED });
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        var placed = await engine.DescribeJobsAsync([armJob, x86Job]);
        Assert.All(placed, j => Assert.Equal(JobStatus.RUNNING, j.Status));
        Assert.EndsWith("/arm", placed.Single(j => j.JobId == armJob).Container!.ContainerInstanceArn, StringComparison.Ordinal);
        Assert.EndsWith("/x86", placed.Single(j => j.JobId == x86Job).Container!.ContainerInstanceArn, StringComparison.Ordinal);
    }

    /// <summary>
    /// Batch placement with a backlog larger than the free capacity: the window ends where the environment's free vCPU
    /// runs out, so the jobs that fit are still planned together (largest first, best fit) instead of the whole window
    /// being dropped for one at a time. Hosts A (4 vCPU) and B (2 vCPU); jobs of 1, 1, 2, 2 and 4 vCPU in that order.
    /// </summary>
    [Fact]
    public async Task BatchPlacement_WindowEndsAtTheFreeCapacity_TheJobsThatFitArePlannedTogether()
    {
        await using var engine = TestEngine.Create(new BatchEngineOptions { BatchPlacementThreshold = 2 });
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.UNMANAGED,
            Hosts = [new HostSpec { HostName = "a", Vcpus = 4, MemoryMiB = 8192 }, new HostSpec { HostName = "b", Vcpus = 2, MemoryMiB = 8192 }],
        });
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        await engine.UpdateComputeEnvironmentAsync(new UpdateComputeEnvironmentRequest { ComputeEnvironment = "ce", State = ResourceState.DISABLED }); // all RUNNABLE first
        var ids = new List<string>();
        foreach (var vcpus in new[] { 1, 1, 2, 2, 4 })
        {
            ids.Add((await engine.SubmitJobAsync(TestEngine.Job($"j{ids.Count}", vcpus: vcpus, runSeconds: 100))).JobId);
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        await engine.UpdateComputeEnvironmentAsync(new UpdateComputeEnvironmentRequest { ComputeEnvironment = "ce", State = ResourceState.ENABLED });
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        var jobs = await engine.DescribeJobsAsync(ids);
        Assert.Equal([JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.RUNNABLE], jobs.Select(j => j.Status));
        // Largest first, best fit: the first 2-vCPU job fills B exactly, the rest share A (one at a time, first fit
        // would have put 1, 1 and 2 on A and the second 2 on B).
        Assert.Equal(["a", "a", "b", "a"], await engine.Run(c => ids.Take(4).Select(c.HostOfJob).ToList(), CancellationToken.None));
    }
}
