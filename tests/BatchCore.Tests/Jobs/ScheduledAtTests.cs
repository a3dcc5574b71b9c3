using BatchCore.Model;
using BatchCore.Provisioning;
using BatchCore.Tests.Provisioning;

namespace BatchCore.Tests.Jobs;

/// <summary>
/// ListJobs' <c>scheduledAt</c>: when the scheduler placed the job's current or last attempt on a host (RUNNABLE →
/// STARTING), null while it waits.
/// </summary>
public sealed class ScheduledAtTests
{
    private static async Task<JobSummary> SummaryAsync(BatchEngine engine, string jobId, string? arrayJobId = null) =>
        (await engine.ListJobsAsync(new ListJobsRequest { JobQueue = arrayJobId is null ? "q" : null, ArrayJobId = arrayJobId, Filters = arrayJobId is null ? [new KeyValuesPair { Name = "JOB_NAME", Values = ["*"] }] : null }))
            .JobSummaryList.Single(j => j.JobId == jobId);

    [Fact]
    public async Task AJobThatWaitsForCapacity_IsScheduledWhenPlaced_NotWhenSubmitted()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        var start = engine.UtcNow.ToUnixTimeMilliseconds();
        var first = (await engine.SubmitJobAsync(TestEngine.Job("first", runSeconds: 60))).JobId;
        var second = (await engine.SubmitJobAsync(TestEngine.Job("second", runSeconds: 60))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        Assert.Equal(start, (await SummaryAsync(engine, first)).ScheduledAt);
        var waiting = await SummaryAsync(engine, second);
        Assert.Equal(JobStatus.RUNNABLE, waiting.Status);
        Assert.Null(waiting.ScheduledAt);

        await engine.RunUntilIdleAsync();
        var ran = await SummaryAsync(engine, second);
        Assert.Equal(JobStatus.SUCCEEDED, ran.Status);
        Assert.Equal((await engine.DescribeAsync(first)).StoppedAt, ran.ScheduledAt); // placed when the first freed the host
        Assert.Equal(start, (await SummaryAsync(engine, first)).ScheduledAt); // kept once ended
    }

    [Fact]
    public async Task OnFargate_ScheduledAtIsBeforeStartedAt_ByTheStartTime_ForFoldedArrayChildrenToo()
    {
        var engine = await ManagedCe.CreateAsync(new ComputeResource { Type = CRType.FARGATE, MaxvCpus = 1 }, new ProvisioningOptions { FargateStartTime = TimeSpan.FromSeconds(30) });
        var single = (await engine.SubmitJobAsync(TestEngine.Job("single", runSeconds: 10))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(5));
        var starting = await SummaryAsync(engine, single);
        Assert.Equal(JobStatus.STARTING, starting.Status);
        Assert.NotNull(starting.ScheduledAt);
        Assert.Null(starting.StartedAt);

        var array = (await engine.SubmitJobAsync(TestEngine.Job("array", arraySize: 3, runSeconds: 10))).JobId;
        await engine.RunUntilIdleAsync();

        var summaries = new List<JobSummary> { await SummaryAsync(engine, single) };
        summaries.AddRange((await engine.ListJobsAsync(new ListJobsRequest { ArrayJobId = array, JobStatus = JobStatus.SUCCEEDED })).JobSummaryList);
        Assert.Equal(4, summaries.Count);
        Assert.All(summaries, s => Assert.Equal(s.StartedAt - 30_000, s.ScheduledAt));
        Assert.Equal(4, summaries.Select(s => s.ScheduledAt).Distinct().Count()); // one at a time on 1 vCPU
        Assert.True(await engine.Run(c => c.FoldedChildren(array), CancellationToken.None) > 0, "the children were folded: their scheduledAt comes from the compact record");
        await ManagedCe.DrainAndDisposeAsync(engine);
    }

    [Fact]
    public async Task ARetriedJob_IsScheduledAgain_AndOneEndedWhileWaiting_HasNone()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def", retry: new RetryStrategy { Attempts = 3 }));
        var blocker = (await engine.SubmitJobAsync(TestEngine.Job("blocker", runSeconds: 100))).JobId;
        var retried = (await engine.SubmitJobAsync(TestEngine.Job("retried", runSeconds: 10, exitCode: 1, failingAttempts: 1))).JobId;
        await engine.RunUntilIdleAsync();

        var job = await engine.DescribeAsync(retried);
        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        Assert.Equal(2, job.Attempts.Count);
        Assert.Equal(job.Attempts[1].StartedAt, (await SummaryAsync(engine, retried)).ScheduledAt); // the second placement (EC2 starts at once)
        Assert.True(job.Attempts[1].StartedAt > job.Attempts[0].StartedAt);

        // Cancelled while RUNNABLE (behind a long job): never placed, no scheduledAt.
        var longJob = (await engine.SubmitJobAsync(TestEngine.Job("long", runSeconds: 1_000))).JobId;
        var cancelled = (await engine.SubmitJobAsync(TestEngine.Job("cancelled"))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        await engine.CancelJobAsync(cancelled, "not needed");
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var summary = await SummaryAsync(engine, cancelled);
        Assert.Equal(JobStatus.FAILED, summary.Status);
        Assert.Null(summary.ScheduledAt);
        Assert.NotNull((await SummaryAsync(engine, blocker)).ScheduledAt);
        _ = longJob;
    }
}
