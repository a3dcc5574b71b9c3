using BatchCore.Model;

namespace BatchCore.Tests.Dispatch;

/// <summary>A backfilled job that is retried is queued once (its old FIFO tombstone used to come back to life: listed twice, started twice, capacity lost).</summary>
public sealed class BackfillRetryTests
{
    // Backfilled job leaves a tombstone in the FIFO deque; when it is retried (PushFront) the same Job object becomes
    // "live" at both positions.
    private static async Task<(BatchEngine Engine, string R, string Big)> SetupAsync(BatchEngineOptions? options = null)
    {
        var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 4, options: options, extensions: new JobQueueExtensions { Backfill = true });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "hi", Priority = 10, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy { Attempts = 2 }));
        await engine.SubmitJobAsync(TestEngine.Job("running", vcpus: 2, runSeconds: 1000));
        var big = await engine.SubmitJobAsync(TestEngine.Job("big", vcpus: 4, runSeconds: 10));
        var r = await engine.SubmitJobAsync(TestEngine.Job("r", def: "retry", vcpus: 1, exitCode: 1, failingAttempts: 1, runSeconds: 10));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(r.JobId)); // backfilled
        await engine.SubmitJobAsync(TestEngine.Job("h", queue: "hi", vcpus: 2, runSeconds: 10)); // waits (1 free)
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(6)); // r fails at 10 s, h takes its room, r retried and blocked
        Assert.Equal(JobStatus.RUNNABLE, await engine.StatusAsync(r.JobId));
        return (engine, r.JobId, big.JobId);
    }

    [Fact]
    public async Task Backfill_RetriedJob_IsListedOnceInTheSnapshot()
    {
        var (engine, r, _) = await SetupAsync();
        await using var _e = engine;
        var snap = await engine.GetJobQueueSnapshotAsync("q");
        var arns = snap.FrontOfQueue!.Jobs!.Select(j => j.JobArn).ToList();
        Assert.Equal(arns.Distinct().Count(), arns.Count);
    }

    /// <summary>
    /// Backfill turned off afterwards: the retried job starts once and every attempt gives its capacity back, with batch
    /// placement (which started it twice before) and one job at a time.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Backfill_ThenPlacement_StartsTheRetriedJobOnce_AndLosesNoCapacity(bool batchPlacement)
    {
        var (engine, r, big) = await SetupAsync(batchPlacement ? new BatchEngineOptions { BatchPlacementThreshold = 2 } : null);
        await using var _e = engine;
        await engine.UpdateJobQueueAsync(new() { JobQueue = "q", Extensions = new JobQueueExtensions { Backfill = false } });
        await engine.CancelJobAsync(big, "x");
        var x = await engine.SubmitJobAsync(TestEngine.Job("x", vcpus: 1, runSeconds: 10));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(20)); // h ends at 20 s
        await engine.CancelJobAsync(x.JobId, "x");
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(2000)); // everything ended
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(r));
        // All attempts are over: a 4-vCPU job must fit the idle 4-vCPU host.
        var probe = await engine.SubmitJobAsync(TestEngine.Job("probe", vcpus: 4, runSeconds: 1));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(10));
        var d = await engine.DescribeAsync(probe.JobId);
        Assert.True(d.Status == JobStatus.SUCCEEDED, $"probe {d.Status}: {d.StatusReason}");
    }
}
