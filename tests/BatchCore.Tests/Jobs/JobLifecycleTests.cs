using BatchCore.Model;

namespace BatchCore.Tests.Jobs;

public class JobLifecycleTests
{
    [Fact]
    public async Task SubmittedJob_RunsToSucceeded_WithOneAttemptAndMillisecondTimes()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var start = engine.UtcNow.ToUnixTimeMilliseconds();
        var r = await engine.SubmitJobAsync(TestEngine.Job(runSeconds: 30));
        Assert.Equal(JobStatus.SUBMITTED, (await engine.DescribeAsync(r.JobId)).Status is JobStatus.SUBMITTED or JobStatus.RUNNABLE or JobStatus.STARTING or JobStatus.RUNNING ? JobStatus.SUBMITTED : "x");

        await engine.RunUntilIdleAsync();

        var job = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        var attempt = Assert.Single(job.Attempts);
        Assert.Equal(0, attempt.Container!.ExitCode);
        Assert.StartsWith("def/default/", attempt.Container.LogStreamName, StringComparison.Ordinal);
        Assert.Equal(start, job.CreatedAt);
        Assert.Equal(start, job.StartedAt);
        Assert.Equal(start + 30_000, job.StoppedAt);
        Assert.Equal($"arn:aws:batch:local:000000000000:job/{r.JobId}", r.JobArn);
    }

    /// <summary>ARNs carry the region's partition, as AWS's do: aws-cn in China, aws-us-gov in GovCloud.</summary>
    [Theory]
    [InlineData("cn-northwest-1", "aws-cn")]
    [InlineData("us-gov-west-1", "aws-us-gov")]
    [InlineData("eu-west-1", "aws")]
    public async Task Arns_CarryTheRegionsPartition(string region, string partition)
    {
        await using var engine = await TestEngine.WithQueueAsync(options: new BatchEngineOptions { Region = region });
        var r = await engine.SubmitJobAsync(TestEngine.Job());
        await engine.RunUntilIdleAsync();

        var prefix = $"arn:{partition}:batch:{region}:000000000000:";
        Assert.Equal(prefix + "job/" + r.JobId, r.JobArn);
        Assert.StartsWith(prefix + "job-queue/", (await engine.DescribeJobQueuesAsync(new() { JobQueues = ["q"] })).JobQueues.Single().JobQueueArn, StringComparison.Ordinal);
        var job = Assert.Single(await engine.DescribeJobsAsync([r.JobId]));
        Assert.StartsWith($"arn:{partition}:ecs:{region}:", job.Attempts.Single().Container!.TaskArn, StringComparison.Ordinal);
        Assert.StartsWith(prefix + "job-definition/def:", job.JobDefinition, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SubmitResponse_FormatsItsArnWhenRead_AndEqualsOneBuiltWithTheArn()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var r = await engine.SubmitJobAsync(TestEngine.Job(name: "arn-check"));
        var built = new SubmitJobResponse($"arn:aws:batch:local:000000000000:job/{r.JobId}", "arn-check", r.JobId);

        Assert.Equal(built, r);
        Assert.Equal(built.GetHashCode(), r.GetHashCode());
        var (arn, name, id) = r;
        Assert.Equal((built.JobArn, "arn-check", r.JobId), (arn, name, id));
        Assert.Equal("other", (r with { JobArn = "other" }).JobArn);
        Assert.Contains(r.JobArn, r.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RejectedSubmissions_EachNameOnlyTheirOwnProblems()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var first = await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(TestEngine.Job(queue: "nope")));
        var second = await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(TestEngine.Job(def: "missing")));
        var ok = await engine.SubmitJobAsync(TestEngine.Job());

        Assert.Equal("jobQueue nope does not exist", Assert.Single(first.Problems));
        Assert.Contains("missing", Assert.Single(second.Problems), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(ok.JobId));
    }

    [Fact]
    public async Task NonZeroExit_WithoutRetries_Fails()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var r = await engine.SubmitJobAsync(TestEngine.Job(exitCode: 3));
        await engine.RunUntilIdleAsync();
        var job = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Equal(3, job.Container!.ExitCode);
        Assert.Single(job.Attempts);
    }

    [Fact]
    public async Task RetryStrategy_RetriesUntilSuccess()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy { Attempts = 3 }));
        var r = await engine.SubmitJobAsync(TestEngine.Job(def: "retry", exitCode: 1, failingAttempts: 2));
        await engine.RunUntilIdleAsync();
        var job = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        Assert.Equal([1, 1, 0], job.Attempts.Select(a => a.Container!.ExitCode!.Value));
    }

    /// <summary>
    /// A job waiting for its retry has not stopped: cancelled later, its stoppedAt is the cancel's time, not its failed
    /// attempt's (which the attempt's record keeps).
    /// </summary>
    [Fact]
    public async Task RetriedJob_CancelledWhileWaiting_StopsWhenCancelled()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1);
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy { Attempts = 2 }));
        var r = await engine.SubmitJobAsync(TestEngine.Job(def: "retry", runSeconds: 10, exitCode: 1, failingAttempts: 1));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(5));
        await engine.UpdateComputeEnvironmentAsync(new() { ComputeEnvironment = "ce", State = ResourceState.DISABLED }); // no new placements
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(10)); // the first attempt failed at 10 s: RUNNABLE for its retry
        var waiting = await engine.DescribeAsync(r.JobId);
        Assert.Equal((JobStatus.RUNNABLE, (long?)null), (waiting.Status, waiting.StoppedAt));

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(15));
        await engine.CancelJobAsync(r.JobId, "no longer needed");
        await engine.RunUntilIdleAsync();
        var job = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.FAILED, job.Status);
        var attempt = Assert.Single(job.Attempts);
        Assert.Equal(10_000, attempt.StoppedAt - job.CreatedAt);
        Assert.Equal(30_000, job.StoppedAt - job.CreatedAt);
    }

    /// <summary>
    /// While an attempt runs, the job's container shows that attempt (AWS): its log stream (which can be tailed now),
    /// task and container instance, and no exit yet — not the previous attempt's.
    /// </summary>
    [Fact]
    public async Task RunningJob_ShowsTheCurrentAttemptsStreamAndTask_NotThePreviousExit()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1);
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy { Attempts = 2 }));
        var r = await engine.SubmitJobAsync(TestEngine.Job(def: "retry", runSeconds: 10, exitCode: 3, failingAttempts: 1));
        var id = r.JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(5));
        var first = await engine.DescribeAsync(id);
        Assert.Equal(JobStatus.RUNNING, first.Status);
        Assert.Equal($"retry/default/{id}-1", first.Container!.LogStreamName);
        Assert.EndsWith($":container-instance/ce/ce-h0", first.Container.ContainerInstanceArn, StringComparison.Ordinal);
        Assert.EndsWith($":task/ce/{id}-1", first.Container.TaskArn, StringComparison.Ordinal);
        Assert.Null(first.Container.ExitCode);

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(10)); // attempt 1 exited 3 at 10 s; attempt 2 runs
        var second = await engine.DescribeAsync(id);
        Assert.Equal(JobStatus.RUNNING, second.Status);
        Assert.Equal((3, $"retry/default/{id}-1"), (Assert.Single(second.Attempts).Container!.ExitCode, second.Attempts[0].Container!.LogStreamName));
        Assert.Equal(($"retry/default/{id}-2", (int?)null, (string?)null), (second.Container!.LogStreamName, second.Container.ExitCode, second.Container.Reason));
        Assert.EndsWith($":task/ce/{id}-2", second.Container.TaskArn, StringComparison.Ordinal);
        var listed = Assert.Single((await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q" })).JobSummaryList);
        Assert.Null(listed.Container);
        Assert.Equal(new JobCapacityUsageSummary("VCPU", 1), Assert.Single(listed.CapacityUsage!));

        await engine.RunUntilIdleAsync();
        var done = await engine.DescribeAsync(id);
        Assert.Equal((JobStatus.SUCCEEDED, 0, $"retry/default/{id}-2"), (done.Status, done.Container!.ExitCode, done.Container.LogStreamName));
        Assert.Equal(0, (await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", JobStatus = JobStatus.SUCCEEDED })).JobSummaryList.Single().Container!.ExitCode);
    }

    /// <summary>
    /// propagateTags (AWS): the definition's and the job's tags are combined for the task; more than 50 together moves the
    /// job to FAILED (it never runs), at most 50 run, and a job that turns propagation off is not counted.
    /// </summary>
    [Theory]
    [InlineData(20, true, JobStatus.SUCCEEDED)]
    [InlineData(21, true, JobStatus.FAILED)]
    [InlineData(21, false, JobStatus.SUCCEEDED)]
    public async Task PropagateTags_MoreThan50Combined_FailsTheJob(int jobTags, bool propagate, string expected)
    {
        await using var engine = await TestEngine.WithQueueAsync();
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("tagged") with
        {
            PropagateTags = true,
            Tags = Enumerable.Range(0, 30).ToDictionary(i => "def" + i, i => "v"),
        });
        var tags = Enumerable.Range(0, jobTags).ToDictionary(i => "job" + i, i => "v");
        tags["def0"] = "overridden"; // the same name counts once
        var single = await engine.SubmitJobAsync(TestEngine.Job(def: "tagged") with { Tags = tags, PropagateTags = propagate ? null : false });
        var array = await engine.SubmitJobAsync(TestEngine.Job("arr", def: "tagged", arraySize: 2) with { Tags = tags, PropagateTags = propagate ? null : false });
        await engine.RunUntilIdleAsync();

        foreach (var id in new[] { single.JobId, array.JobId })
        {
            var job = await engine.DescribeAsync(id);
            Assert.Equal(expected, job.Status);
            if (expected == JobStatus.FAILED)
            {
                Assert.Equal("propagateTags: the job's and its job definition's tags together are 51, more than 50", job.StatusReason);
                Assert.Null(job.StartedAt);
            }
        }
    }

    /// <summary>
    /// What a driver is handed: the definition's containerProperties (for the docker driver's volumes, ulimits, user …)
    /// and, with propagateTags, the definition's tags overlaid with the job's; without it, no tags.
    /// </summary>
    [Fact]
    public async Task Launch_CarriesTheContainerProperties_AndThePropagatedTags()
    {
        var driver = new CapturingDriver();
        await using var engine = TestEngine.Create(new BatchEngineOptions { DriverFactories = new Dictionary<string, Func<HostSpec, BatchCore.Hosts.HostDriver>> { ["capture"] = _ => driver } });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 4, MemoryMiB = 8192, Driver = "capture" }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        var definition = TestEngine.Definition("tagged") with { PropagateTags = true, Tags = new Dictionary<string, string> { ["team"] = "data", ["env"] = "dev" } };
        definition = definition with { ContainerProperties = definition.ContainerProperties! with { User = "1000", Ulimits = [new() { Name = "nofile", SoftLimit = 1, HardLimit = 2 }] } };
        await engine.RegisterJobDefinitionAsync(definition);
        await engine.SubmitJobAsync(TestEngine.Job("a", def: "tagged") with { Tags = new Dictionary<string, string> { ["env"] = "prod" } });
        await engine.SubmitJobAsync(TestEngine.Job("b", def: "tagged") with { PropagateTags = false });
        await engine.RunUntilIdleAsync();

        var launches = driver.Launches.OrderBy(l => l.JobName, StringComparer.Ordinal).ToList();
        Assert.Equal(2, launches.Count);
        Assert.Equal(new Dictionary<string, string> { ["team"] = "data", ["env"] = "prod" }, launches[0].Tags);
        Assert.Null(launches[1].Tags);
        Assert.All(launches, l => Assert.Equal(("1000", 2), (l.Container!.User, l.Container.Ulimits![0].HardLimit!.Value)));
    }

    /// <summary>A driver that records each launch and reports it ran and exited 0 at once.</summary>
    private sealed class CapturingDriver : BatchCore.Hosts.HostDriver
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<BatchCore.Hosts.AttemptLaunch> _launches = new();

        public IReadOnlyCollection<BatchCore.Hosts.AttemptLaunch> Launches => _launches;

        public override string Kind => "capture";

        public override void Launch(BatchCore.Hosts.AttemptLaunch launch, BatchCore.Hosts.IAttemptEventSink sink)
        {
            _launches.Enqueue(launch);
            sink.Ran(launch.Token, new BatchCore.Hosts.AttemptExit(0), 0);
        }

        public override void Terminate(BatchCore.Hosts.AttemptToken token, TimeSpan gracePeriod)
        {
        }
    }

    [Fact]
    public async Task RetryStrategy_StopsAtAttempts()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy { Attempts = 2 }));
        var r = await engine.SubmitJobAsync(TestEngine.Job(def: "retry", exitCode: 1));
        await engine.RunUntilIdleAsync();
        var job = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Equal(2, job.Attempts.Count);
    }

    [Fact]
    public async Task EvaluateOnExit_ExitAction_StopsRetrying()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy
        {
            Attempts = 5,
            EvaluateOnExit = [new() { OnExitCode = "4*", Action = "exit" }, new() { OnReason = "*", Action = "RETRY" }],
        }));
        var r = await engine.SubmitJobAsync(TestEngine.Job(def: "retry", exitCode: 42));
        await engine.RunUntilIdleAsync();
        var job = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Single(job.Attempts);
    }

    [Fact]
    public async Task Timeout_FailsAttempt_AndIsNotRetried()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("slow", retry: new RetryStrategy { Attempts = 3 }, timeout: 5));
        var r = await engine.SubmitJobAsync(TestEngine.Job(def: "slow", runSeconds: 100));
        await engine.RunUntilIdleAsync();
        var job = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Equal(StatusReasons.TimeoutExceeded, job.StatusReason);
        Assert.Single(job.Attempts);
        Assert.Equal(job.StartedAt + 5000, job.StoppedAt);
    }

    [Fact]
    public async Task CancelRunnable_Fails_WithReason_AndNoAttempt()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        var first = await engine.SubmitJobAsync(TestEngine.Job("a", runSeconds: 100));
        var second = await engine.SubmitJobAsync(TestEngine.Job("b"));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.RUNNABLE, await engine.StatusAsync(second.JobId));
        await engine.CancelJobAsync(second.JobId, "no longer needed");
        await engine.RunUntilIdleAsync();
        var job = await engine.DescribeAsync(second.JobId);
        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Equal("no longer needed", job.StatusReason);
        Assert.True(job.IsCancelled);
        Assert.Empty(job.Attempts);
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(first.JobId));
    }

    [Fact]
    public async Task CancelRunning_DoesNothing_AndSucceeds()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var r = await engine.SubmitJobAsync(TestEngine.Job(runSeconds: 100));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(r.JobId));
        await engine.CancelJobAsync(r.JobId, "too late");
        await engine.RunUntilIdleAsync();
        var job = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        Assert.False(job.IsCancelled);
    }

    [Fact]
    public async Task TerminateRunning_Fails_WithReason_NotRetried()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy { Attempts = 3 }));
        var r = await engine.SubmitJobAsync(TestEngine.Job(def: "retry", runSeconds: 100));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        await engine.TerminateJobAsync(r.JobId, "stop it");
        await engine.RunUntilIdleAsync();
        var job = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Equal("stop it", job.StatusReason);
        Assert.True(job.IsTerminated);
        Assert.Single(job.Attempts);
    }

    [Fact]
    public async Task CancelAndTerminate_UnknownJob_Succeed()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        await engine.CancelJobAsync("nope", "r");
        await engine.TerminateJobAsync("nope", "r");
    }

    [Theory]
    [InlineData("", "r")]
    [InlineData("id", "")]
    public async Task CancelAndTerminate_EmptyArguments_Throw(string id, string reason)
    {
        await using var engine = await TestEngine.WithQueueAsync();
        await Assert.ThrowsAsync<BatchClientException>(() => engine.CancelJobAsync(id, reason));
        await Assert.ThrowsAsync<BatchClientException>(() => engine.TerminateJobAsync(id, reason));
    }

    [Fact]
    public async Task WaitForJobAsync_ReturnsTerminalDetail()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var r = await engine.SubmitJobAsync(TestEngine.Job());
        var wait = engine.WaitForJobAsync(r.JobId);
        await engine.RunUntilIdleAsync();
        var detail = await wait;
        Assert.Equal(JobStatus.SUCCEEDED, detail.Status);
    }

    [Fact]
    public async Task WaitForJobAsync_OnAnArrayChild_AndOnItsParent_BothComplete()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        var r = await engine.SubmitJobAsync(TestEngine.Job("a", runSeconds: 5, arraySize: 3));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1)); // children spawned; child 0 runs
        var child = engine.WaitForJobAsync(r.JobId + ":2");
        var parent = engine.WaitForJobAsync(r.JobId);
        await engine.RunUntilIdleAsync();

        var c = await child;
        Assert.Equal((r.JobId + ":2", JobStatus.SUCCEEDED), (c.JobId, c.Status));
        Assert.Equal(JobStatus.SUCCEEDED, (await parent).Status);
    }

    [Fact]
    public async Task WatchJobsAsync_StreamsEveryTransitionInOrder()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        using var cts = new CancellationTokenSource();
        var seen = new List<string>();
        var enumerator = engine.WatchJobsAsync(ct: cts.Token).GetAsyncEnumerator(cts.Token);
        var first = enumerator.MoveNextAsync(); // queues the subscription on the loop, ahead of the submit below
        var r = await engine.SubmitJobAsync(TestEngine.Job());
        await engine.RunUntilIdleAsync();
        Assert.True(await first);
        seen.Add(enumerator.Current.Status);
        while (seen.Count < 5 && await enumerator.MoveNextAsync())
        {
            seen.Add(enumerator.Current.Status);
        }

        Assert.Equal([JobStatus.SUBMITTED, JobStatus.RUNNABLE, JobStatus.STARTING, JobStatus.RUNNING, JobStatus.SUCCEEDED], seen.Take(5));
        await cts.CancelAsync();
        _ = r;
    }

    [Fact]
    public async Task WatchEndedJobsAsync_StreamsOnlySucceededAndFailed_InOrder()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        using var cts = new CancellationTokenSource();
        var enumerator = engine.WatchEndedJobsAsync(ct: cts.Token).GetAsyncEnumerator(cts.Token);
        var first = enumerator.MoveNextAsync(); // queues the subscription on the loop, ahead of the submits below
        var ok = await engine.SubmitJobAsync(TestEngine.Job("ok", runSeconds: 10));
        var bad = await engine.SubmitJobAsync(TestEngine.Job("bad", runSeconds: 20, exitCode: 3, failingAttempts: 1));
        var array = await engine.SubmitJobAsync(TestEngine.Job("array", runSeconds: 30, arraySize: 2));
        await engine.RunUntilIdleAsync();

        Assert.True(await first);
        var seen = new List<(string, string)> { (enumerator.Current.JobId, enumerator.Current.Status) };
        while (seen.Count < 5 && await enumerator.MoveNextAsync())
        {
            seen.Add((enumerator.Current.JobId, enumerator.Current.Status));
        }

        Assert.Equal([(ok.JobId, JobStatus.SUCCEEDED), (bad.JobId, JobStatus.FAILED), (array.JobId + ":0", JobStatus.SUCCEEDED),
            (array.JobId + ":1", JobStatus.SUCCEEDED), (array.JobId, JobStatus.SUCCEEDED)], seen);
        await cts.CancelAsync();
    }

    /// <summary>AWS TagResource / UntagResource / ListTagsForResource on a job: its submitted tags, changed in place.</summary>
    [Fact]
    public async Task JobTags_ListedTaggedAndUntagged()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var r = await engine.SubmitJobAsync(TestEngine.Job() with { Tags = new Dictionary<string, string> { ["a"] = "1" } });
        var arn = (await engine.DescribeAsync(r.JobId)).JobArn;

        Assert.Equal(new Dictionary<string, string> { ["a"] = "1" }, await engine.ListTagsForResourceAsync(arn));
        await engine.TagResourceAsync(arn, new Dictionary<string, string> { ["b"] = "2" });
        Assert.Equal(new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" }, await engine.ListTagsForResourceAsync(arn));
        await engine.UntagResourceAsync(arn, ["a"]);
        Assert.Equal(new Dictionary<string, string> { ["b"] = "2" }, await engine.ListTagsForResourceAsync(arn));
        Assert.Equal(new Dictionary<string, string> { ["b"] = "2" }, (await engine.DescribeAsync(r.JobId)).Tags);

        var missing = arn.Replace(r.JobId, "no-such-job", StringComparison.Ordinal);
        Assert.Contains("resourceArn", (await Assert.ThrowsAsync<BatchClientException>(() => engine.ListTagsForResourceAsync(missing))).Message);
    }

    /// <summary>
    /// Tag limits hold for job definitions as for every resource (50 together, nothing applied when over), and
    /// UntagResource needs 1-50 keys (no keys used to remove every tag of a job definition).
    /// </summary>
    [Fact]
    public async Task TagLimits_HoldForJobDefinitions_AndUntagNeedsKeys()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var arn = (await engine.RegisterJobDefinitionAsync(TestEngine.Definition("tagged") with
        {
            Tags = Enumerable.Range(0, 40).ToDictionary(i => "t" + i, i => "v"),
        })).JobDefinitionArn;

        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.TagResourceAsync(arn, Enumerable.Range(40, 11).ToDictionary(i => "t" + i, i => "v")));
        Assert.Contains("tags: Member must have length less than or equal to 50", e.Message, StringComparison.Ordinal);
        Assert.Equal(40, (await engine.ListTagsForResourceAsync(arn)).Count); // nothing applied

        e = await Assert.ThrowsAsync<BatchClientException>(() => engine.UntagResourceAsync(arn, []));
        Assert.Contains("tagKeys is required", e.Message, StringComparison.Ordinal);
        Assert.Equal(40, (await engine.ListTagsForResourceAsync(arn)).Count);
        await engine.UntagResourceAsync(arn, ["t0"]);
        Assert.Equal(39, (await engine.ListTagsForResourceAsync(arn)).Count);
    }

    /// <summary>
    /// A job that waited at the head with a CAPACITY reason, and a retried job, start their attempt without the reason
    /// they waited with: a RUNNING job says nothing about capacity (found by an AWS-semantics audit).
    /// </summary>
    [Fact]
    public async Task StartingAnAttempt_ClearsTheReasonTheJobWaitedWith()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy { Attempts = 2 }));
        await engine.SubmitJobAsync(TestEngine.Job("a", runSeconds: 100));
        var b = await engine.SubmitJobAsync(TestEngine.Job("b", runSeconds: 100));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(10));
        var waiting = await engine.DescribeAsync(b.JobId);
        Assert.Equal(JobStatus.RUNNABLE, waiting.Status);
        Assert.StartsWith("CAPACITY:", waiting.StatusReason, StringComparison.Ordinal);

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(100));
        var running = await engine.DescribeAsync(b.JobId);
        Assert.Equal((JobStatus.RUNNING, null), (running.Status, running.StatusReason));

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(100));
        var retried = await engine.SubmitJobAsync(TestEngine.Job("r", def: "retry", runSeconds: 100, exitCode: 3, failingAttempts: 1));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(150));
        var second = await engine.DescribeAsync(retried.JobId);
        Assert.Equal((JobStatus.RUNNING, 1, null), (second.Status, second.Attempts.Count, second.StatusReason));
    }
}
