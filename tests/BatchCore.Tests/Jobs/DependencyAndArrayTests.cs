using BatchCore.Model;

namespace BatchCore.Tests.Jobs;

public class DependencyAndArrayTests
{
    [Fact]
    public async Task Dependent_RunsAfterBothDependenciesSucceed()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var a = await engine.SubmitJobAsync(TestEngine.Job("a", runSeconds: 10));
        var b = await engine.SubmitJobAsync(TestEngine.Job("b", runSeconds: 20));
        var c = await engine.SubmitJobAsync(TestEngine.Job("c", dependsOn: [new() { JobId = a.JobId }, new() { JobId = b.JobId }]));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.PENDING, await engine.StatusAsync(c.JobId));
        await engine.RunUntilIdleAsync();
        var jc = await engine.DescribeAsync(c.JobId);
        var jb = await engine.DescribeAsync(b.JobId);
        Assert.Equal(JobStatus.SUCCEEDED, jc.Status);
        Assert.True(jc.StartedAt >= jb.StoppedAt);
    }

    [Fact]
    public async Task FailedDependency_FailsDependent_WithoutRunningIt()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var a = await engine.SubmitJobAsync(TestEngine.Job("a", exitCode: 1));
        var c = await engine.SubmitJobAsync(TestEngine.Job("c", dependsOn: [new() { JobId = a.JobId }]));
        await engine.RunUntilIdleAsync();
        var job = await engine.DescribeAsync(c.JobId);
        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Equal(StatusReasons.DependentJobFailed, job.StatusReason);
        Assert.Empty(job.Attempts);
    }

    [Fact]
    public async Task AnyConditionExtension_RunsDependentAfterFailure()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var a = await engine.SubmitJobAsync(TestEngine.Job("a", exitCode: 1));
        var c = await engine.SubmitJobAsync(TestEngine.Job("c", dependsOn: [new() { JobId = a.JobId, Extensions = new() { Condition = "ANY" } }]));
        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(c.JobId));
    }

    [Fact]
    public async Task DependencyOnFinishedJob_IsSatisfiedAtOnce()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var a = await engine.SubmitJobAsync(TestEngine.Job("a"));
        await engine.RunUntilIdleAsync();
        var c = await engine.SubmitJobAsync(TestEngine.Job("c", dependsOn: [new() { JobId = a.JobId }]));
        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(c.JobId));
    }

    [Fact]
    public async Task CancelPending_WaitsForDependencies_ThenFails()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var a = await engine.SubmitJobAsync(TestEngine.Job("a", runSeconds: 100));
        var c = await engine.SubmitJobAsync(TestEngine.Job("c", dependsOn: [new() { JobId = a.JobId }]));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        await engine.CancelJobAsync(c.JobId, "cancel me");
        Assert.Equal(JobStatus.PENDING, await engine.StatusAsync(c.JobId)); // AWS: cancelled once dependencies complete
        await engine.RunUntilIdleAsync();
        var job = await engine.DescribeAsync(c.JobId);
        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Equal("cancel me", job.StatusReason);
        Assert.True(job.IsCancelled);
        Assert.Empty(job.Attempts);
    }

    [Fact]
    public async Task ArrayJob_ChildrenRun_ParentSucceeds_WithStatusSummary()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var r = await engine.SubmitJobAsync(TestEngine.Job("arr", arraySize: 5));
        await engine.RunUntilIdleAsync();
        var parent = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.SUCCEEDED, parent.Status);
        Assert.Empty(parent.Attempts);
        Assert.Equal(5, parent.ArrayProperties!.Size);
        Assert.Equal(5, parent.ArrayProperties.StatusSummary![JobStatus.SUCCEEDED]);
        Assert.Equal(5, parent.ArrayProperties.StatusSummary.Values.Sum());
        var child = await engine.DescribeAsync(r.JobId + ":3");
        Assert.Equal(3, child.ArrayProperties!.Index);
        Assert.Single(child.Attempts);
        var list = await engine.ListJobsAsync(new ListJobsRequest { ArrayJobId = r.JobId, JobStatus = JobStatus.SUCCEEDED });
        Assert.Equal(5, list.JobSummaryList.Count);
    }

    [Fact]
    public async Task ArrayParent_IsPendingWhileChildrenRun_AndNeverRunnable()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var ct = TestContext.Current.CancellationToken;
        await using var changes = engine.WatchJobsAsync(ct: ct).GetAsyncEnumerator(ct);
        // The first MoveNextAsync queues the watcher's registration now, ahead of the submit below: no change is missed.
        var next = changes.MoveNextAsync();
        var r = await engine.SubmitJobAsync(TestEngine.Job("arr", arraySize: 3, runSeconds: 50));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.PENDING, await engine.StatusAsync(r.JobId));
        await engine.RunUntilIdleAsync();

        var parentStates = new List<string>();
        while (await next)
        {
            if (changes.Current.JobId == r.JobId)
            {
                parentStates.Add(changes.Current.Status);
                if (changes.Current.Status is JobStatus.SUCCEEDED or JobStatus.FAILED)
                {
                    break;
                }
            }

            next = changes.MoveNextAsync();
        }

        Assert.DoesNotContain(JobStatus.RUNNABLE, parentStates);
        Assert.DoesNotContain(JobStatus.RUNNING, parentStates);
        Assert.Equal(JobStatus.SUCCEEDED, parentStates[^1]);
    }

    [Fact]
    public async Task AnyChildFailure_FailsParent()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var r = await engine.SubmitJobAsync(TestEngine.Job("arr", arraySize: 3, exitCode: 2));
        await engine.RunUntilIdleAsync();
        var parent = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.FAILED, parent.Status);
        Assert.Equal(3, parent.ArrayProperties!.StatusSummary![JobStatus.FAILED]);
    }

    [Fact]
    public async Task SequentialArray_RunsOneChildAtATime_InIndexOrder()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4);
        var r = await engine.SubmitJobAsync(TestEngine.Job("seq", arraySize: 4, runSeconds: 10, dependsOn: [new() { Type = ArrayJobDependency.SEQUENTIAL }]));
        await engine.RunUntilIdleAsync();
        var children = await engine.DescribeJobsAsync([.. Enumerable.Range(0, 4).Select(i => $"{r.JobId}:{i}")]);
        for (var i = 1; i < 4; i++)
        {
            Assert.True(children[i].StartedAt >= children[i - 1].StoppedAt, $"child {i} started before child {i - 1} stopped");
        }

        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(r.JobId));
    }

    [Fact]
    public async Task NToN_ChildWaitsForMatchingChild()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4);
        var a = await engine.SubmitJobAsync(TestEngine.Job("a", arraySize: 3, runSeconds: 10));
        var b = await engine.SubmitJobAsync(TestEngine.Job("b", arraySize: 3, runSeconds: 5, dependsOn: [new() { JobId = a.JobId, Type = ArrayJobDependency.N_TO_N }]));
        await engine.RunUntilIdleAsync();
        for (var i = 0; i < 3; i++)
        {
            var ai = await engine.DescribeAsync($"{a.JobId}:{i}");
            var bi = await engine.DescribeAsync($"{b.JobId}:{i}");
            Assert.True(bi.StartedAt >= ai.StoppedAt);
        }
    }

    /// <summary>
    /// Two N_TO_N dependencies: child i waits for child i of each (AWS: "each dependency"), not only of the last one;
    /// when a child of the first fails, the matching child of the dependent fails and the rest run.
    /// </summary>
    [Fact]
    public async Task NToN_EveryDependencyIsWaitedFor()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4);
        var slow = await engine.SubmitJobAsync(TestEngine.Job("slow", arraySize: 2, runSeconds: 100));
        var fast = await engine.SubmitJobAsync(TestEngine.Job("fast", arraySize: 2, runSeconds: 10));
        var c = await engine.SubmitJobAsync(TestEngine.Job("c", arraySize: 2, runSeconds: 5, dependsOn:
            [new() { JobId = slow.JobId, Type = ArrayJobDependency.N_TO_N }, new() { JobId = fast.JobId, Type = ArrayJobDependency.N_TO_N }]));

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(JobStatus.PENDING, await engine.StatusAsync($"{c.JobId}:0")); // fast:0 is done, slow:0 is not

        await engine.RunUntilIdleAsync();
        for (var i = 0; i < 2; i++)
        {
            var ci = await engine.DescribeAsync($"{c.JobId}:{i}");
            Assert.True(ci.StartedAt >= (await engine.DescribeAsync($"{slow.JobId}:{i}")).StoppedAt);
        }

        // A failing child of the first dependency fails the matching child only.
        var failing = await engine.SubmitJobAsync(TestEngine.Job("failing", arraySize: 2, runSeconds: 10) with
        {
            Extensions = new SubmitJobExtensions { SimulatedRunTimeSeconds = 10, SimulatedExitCode = 1 },
        });
        var d = await engine.SubmitJobAsync(TestEngine.Job("d", arraySize: 2, runSeconds: 5, dependsOn:
            [new() { JobId = failing.JobId, Type = ArrayJobDependency.N_TO_N }, new() { JobId = fast.JobId, Type = ArrayJobDependency.N_TO_N }]));
        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.FAILED, await engine.StatusAsync($"{d.JobId}:0"));
        Assert.Equal(StatusReasons.DependentJobFailed, (await engine.DescribeAsync($"{d.JobId}:0")).StatusReason);
        Assert.Equal(JobStatus.FAILED, await engine.StatusAsync(d.JobId));
    }

    /// <summary>
    /// An array cancelled while still SUBMITTED never creates children: an N_TO_N dependent's child i has no child i to
    /// wait on, and its dependency has failed (the array FAILED) — so the dependent's children fail, none runs. With
    /// BatchCore's ANY condition the ended array satisfies them and they run.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task NToN_OnAnArrayCancelledBeforeItHadChildren_FailsTheChildren_UnlessAny(bool any)
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4);
        var (a, b) = await engine.Run(c =>
        {
            // One loop step: no scheduling cycle between them, so the array is still SUBMITTED when cancelled.
            var a = c.SubmitJob(TestEngine.Job("a", arraySize: 3, runSeconds: 10));
            var b = c.SubmitJob(TestEngine.Job("b", arraySize: 3, runSeconds: 5, dependsOn:
                [new() { JobId = a.JobId, Type = ArrayJobDependency.N_TO_N, Extensions = any ? new() { Condition = "ANY" } : null }]));
            c.Cancel(a.JobId, "not needed");
            return (a, b);
        }, TestContext.Current.CancellationToken);
        await engine.RunUntilIdleAsync(TestContext.Current.CancellationToken);

        var parentA = await engine.DescribeAsync(a.JobId);
        Assert.Equal((JobStatus.FAILED, 0), (parentA.Status, parentA.ArrayProperties?.StatusSummary?.Values.Sum() ?? 0)); // no children
        var children = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => engine.DescribeAsync($"{b.JobId}:{i}")));
        if (any)
        {
            Assert.All(children, ch => Assert.Equal(JobStatus.SUCCEEDED, ch.Status));
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(b.JobId));
        }
        else
        {
            Assert.All(children, ch => Assert.Equal((JobStatus.FAILED, StatusReasons.DependentJobFailed, (long?)null), (ch.Status, ch.StatusReason, ch.StartedAt)));
            Assert.Equal(JobStatus.FAILED, await engine.StatusAsync(b.JobId));
        }
    }

    [Fact]
    public async Task ArrayMaxConcurrency_CapsRunningChildren()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4);
        var r = await engine.SubmitJobAsync(TestEngine.Job("arr", arraySize: 6, runSeconds: 10, arrayMaxConcurrency: 2));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var running = await engine.ListJobsAsync(new ListJobsRequest { ArrayJobId = r.JobId, JobStatus = JobStatus.RUNNING });
        Assert.Equal(2, running.JobSummaryList.Count);
        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(r.JobId));
        Assert.Equal(TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds((await engine.DescribeAsync(r.JobId)).StoppedAt!.Value - (await engine.DescribeAsync(r.JobId)).CreatedAt));
    }

    [Fact]
    public async Task CancelArrayParent_CascadesToWaitingChildren()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        var r = await engine.SubmitJobAsync(TestEngine.Job("arr", arraySize: 3, runSeconds: 10));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        await engine.CancelJobAsync(r.JobId, "stop");
        await engine.RunUntilIdleAsync();
        var parent = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.FAILED, parent.Status);
        Assert.Equal(1, parent.ArrayProperties!.StatusSummary![JobStatus.SUCCEEDED]);
        Assert.Equal(2, parent.ArrayProperties.StatusSummary[JobStatus.FAILED]);
    }

    /// <summary>
    /// A running child of a cancelled array that then fails is not retried: the cancel leaves it running (AWS), not free
    /// to start new attempts after it. It fails with its attempt's reason; the parent with the cancel's.
    /// </summary>
    [Fact]
    public async Task RunningChildOfACancelledArray_IsNotRetriedWhenItFails()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 2);
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy { Attempts = 3 }));
        var r = await engine.SubmitJobAsync(TestEngine.Job("arr", def: "retry", arraySize: 2, runSeconds: 10, exitCode: 2));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        await engine.CancelJobAsync(r.JobId, "user cancel");
        await engine.RunUntilIdleAsync();

        foreach (var i in new[] { 0, 1 })
        {
            var child = await engine.DescribeAsync(r.JobId + ":" + i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal((JobStatus.FAILED, 1), (child.Status, child.Attempts.Count));
        }

        var parent = await engine.DescribeAsync(r.JobId);
        Assert.Equal((JobStatus.FAILED, true, "user cancel"), (parent.Status, parent.IsCancelled, parent.StatusReason));
    }

    /// <summary>
    /// Cancelling an array whose children all run already: they run to the end (CancelJob does nothing to RUNNING jobs)
    /// and succeed, and the parent — flagged cancelled — ends FAILED with the cancel's reason (AWS: "the parent is
    /// cancelled when all children complete").
    /// </summary>
    [Fact]
    public async Task CancelArrayParent_WhoseChildrenAllRun_EndsCancelledWhenTheyComplete()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 2);
        var r = await engine.SubmitJobAsync(TestEngine.Job("arr", arraySize: 2, runSeconds: 10));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        await engine.CancelJobAsync(r.JobId, "user cancel");
        await engine.RunUntilIdleAsync();

        var parent = await engine.DescribeAsync(r.JobId);
        Assert.Equal((JobStatus.FAILED, true, "user cancel"), (parent.Status, parent.IsCancelled, parent.StatusReason));
        Assert.Equal(2, parent.ArrayProperties!.StatusSummary![JobStatus.SUCCEEDED]);
    }

    [Fact]
    public async Task TerminateArrayParent_StopsRunningChildren()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4);
        var r = await engine.SubmitJobAsync(TestEngine.Job("arr", arraySize: 3, runSeconds: 100));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        await engine.TerminateJobAsync(r.JobId, "stop");
        await engine.RunUntilIdleAsync();
        var parent = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.FAILED, parent.Status);
        Assert.Equal(3, parent.ArrayProperties!.StatusSummary![JobStatus.FAILED]);
        Assert.True(parent.StoppedAt < parent.CreatedAt + 100_000);
    }

    [Fact]
    public async Task ArrayDependingOnJob_ChildrenWaitForIt()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4);
        var a = await engine.SubmitJobAsync(TestEngine.Job("a", runSeconds: 10));
        var r = await engine.SubmitJobAsync(TestEngine.Job("arr", arraySize: 2, dependsOn: [new() { JobId = a.JobId }]));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.PENDING, await engine.StatusAsync(r.JobId + ":0"));
        await engine.RunUntilIdleAsync();
        var child = await engine.DescribeAsync(r.JobId + ":1");
        Assert.Equal(JobStatus.SUCCEEDED, child.Status);
        Assert.True(child.StartedAt >= (await engine.DescribeAsync(a.JobId)).StoppedAt);
    }

    /// <summary>
    /// Children that end plainly are folded into their parent (no object each) and still read as AWS shows them: describe,
    /// list by array and by queue, waiting, N_TO_N on the ended array, and tags (which take a child back as a live job).
    /// </summary>
    [Fact]
    public async Task EndedChildren_AreFolded_AndReadAsBefore()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        var r = await engine.SubmitJobAsync(TestEngine.Job("arr", arraySize: 4, runSeconds: 5, vcpus: 1));
        await engine.RunUntilIdleAsync();
        Assert.Equal(4, await engine.Run(c => c.FoldedChildren(r.JobId), CancellationToken.None));

        var children = new List<JobDetail>();
        for (var i = 0; i < 4; i++)
        {
            var child = await engine.DescribeAsync($"{r.JobId}:{i}");
            var attempt = Assert.Single(child.Attempts);
            Assert.Equal(($"{r.JobId}:{i}", JobStatus.SUCCEEDED, StatusReasons.Essential, i, 0), (child.JobId, child.Status, child.StatusReason, child.ArrayProperties!.Index, child.Container!.ExitCode));
            Assert.Equal((child.StartedAt, child.StoppedAt, 5_000L), (attempt.StartedAt, attempt.StoppedAt, child.StoppedAt!.Value - child.StartedAt!.Value));
            Assert.Equal($"def/default/{r.JobId}-{i}-1", child.Container.LogStreamName);
            Assert.Equal(child.Container.LogStreamName, attempt.Container!.LogStreamName);
            children.Add(child);
        }

        Assert.Single(children.Select(c => c.CreatedAt).Distinct());
        Assert.All(children.Zip(children.Skip(1)), p => Assert.True(p.Second.StartedAt >= p.First.StoppedAt)); // one vCPU: one at a time
        Assert.Equal(children.Select(c => c.JobId), (await engine.ListJobsAsync(new ListJobsRequest { ArrayJobId = r.JobId, JobStatus = JobStatus.SUCCEEDED })).JobSummaryList.Select(s => s.JobId));
        Assert.Equal([r.JobId, .. children.Select(c => c.JobId)], (await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", JobStatus = JobStatus.SUCCEEDED })).JobSummaryList.Select(s => s.JobId));
        Assert.Empty((await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", JobStatus = JobStatus.RUNNING })).JobSummaryList);
        // AWS: "The filter doesn't apply to child jobs in an array": a filtered listing of the queue has the parent only.
        Assert.Equal([r.JobId], (await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", Filters = [new() { Name = ListJobsFilterName.JOB_NAME, Values = ["arr"] }] })).JobSummaryList.Select(s => s.JobId));
        Assert.Equal(JobStatus.SUCCEEDED, (await engine.WaitForJobAsync(r.JobId + ":2")).Status);

        var next = await engine.SubmitJobAsync(TestEngine.Job("next", arraySize: 4, runSeconds: 1, dependsOn: [new() { JobId = r.JobId, Type = ArrayJobDependency.N_TO_N }]));
        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(next.JobId));

        var arn = children[1].JobArn;
        Assert.Empty(await engine.ListTagsForResourceAsync(arn));
        Assert.Equal(4, await engine.Run(c => c.FoldedChildren(r.JobId), CancellationToken.None)); // a read leaves it folded
        await engine.TagResourceAsync(arn, new Dictionary<string, string> { ["team"] = "a" });
        Assert.Equal("a", (await engine.ListTagsForResourceAsync(arn))["team"]);
        Assert.Equal("a", (await engine.DescribeAsync(children[1].JobId)).Tags!["team"]);
        Assert.Equal(3, await engine.Run(c => c.FoldedChildren(r.JobId), CancellationToken.None)); // taken back to keep its tags
        var again = await engine.DescribeAsync(children[1].JobId);
        Assert.Equal((children[1].StartedAt, children[1].StoppedAt, children[1].CreatedAt, children[1].StatusReason), (again.StartedAt, again.StoppedAt, again.CreatedAt, again.StatusReason));
        Assert.Equivalent(children[1].Attempts, again.Attempts);
    }
}
