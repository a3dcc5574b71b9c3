using BatchCore.Model;

namespace BatchCore.Tests.Properties;

/// <summary>Minimal repros of engine bugs the properties found, shrunk by hand; all fixed, kept as regression tests.</summary>
public class EngineBugRepros
{
    /// <summary>
    /// Found by <see cref="LifecycleModelProperties.Lifecycle_follows_the_AWS_transition_table"/>. Cancelling (or
    /// terminating) an array parent cascades to the children in index order; failing child i satisfies child i+1's
    /// SEQUENTIAL dependency when its condition is ANY, so child i+1 is released to RUNNABLE before the cascade reaches
    /// it and fails it. Watchers see PENDING→RUNNABLE→FAILED for a cancelled job; AWS's table has PENDING→FAILED.
    /// </summary>
    [Fact]
    public async Task CancelArrayParent_SequentialAny_ChildrenGoStraightToFailed()
    {
        // One 1-vCPU host and 2-vCPU children: child 0 stays RUNNABLE, children 1 and 2 PENDING behind it.
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        var probe = await EngineProbe.AttachAsync(engine);
        var parent = await engine.SubmitJobAsync(TestEngine.Job("seq", arraySize: 3, vcpus: 2, dependsOn:
            [new JobDependency { Type = ArrayJobDependency.SEQUENTIAL, Extensions = new JobDependencyExtensions { Condition = "ANY" } }]));
        await probe.SettleAsync();
        Assert.Equal(JobStatus.RUNNABLE, await engine.StatusAsync(parent.JobId + ":0"));
        Assert.Equal(JobStatus.PENDING, await engine.StatusAsync(parent.JobId + ":1"));

        await engine.CancelJobAsync(parent.JobId, "stop");
        var changes = await probe.SettleAsync();

        // Each child: one change, to FAILED (from RUNNABLE for child 0, from PENDING for the others).
        var child1 = changes.Where(c => c.JobId == parent.JobId + ":1").Select(c => c.PreviousStatus + "→" + c.Status);
        Assert.Equal(["PENDING→FAILED"], child1);
        var child2 = changes.Where(c => c.JobId == parent.JobId + ":2").Select(c => c.PreviousStatus + "→" + c.Status);
        Assert.Equal(["PENDING→FAILED"], child2);
    }

    /// <summary>
    /// Found by the liveness check of <see cref="LifecycleModelProperties.Lifecycle_follows_the_AWS_transition_table"/>.
    /// CancelJob/TerminateJob of a RUNNABLE job removes it from the queue but does not mark the engine dirty, so no
    /// scheduling cycle follows: when the cancelled job was the blocked head of a FIFO queue, the job behind it (which
    /// fits) stays RUNNABLE until something unrelated (a submit, an exit, a timer) runs a cycle — forever on an idle engine.
    /// </summary>
    [Fact]
    public async Task CancelBlockedHead_NextJobIsPlaced()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        var blocked = await engine.SubmitJobAsync(TestEngine.Job("big", vcpus: 2)); // fits no host: blocks the FIFO queue
        var next = await engine.SubmitJobAsync(TestEngine.Job("small", vcpus: 1));
        await engine.RunUntilIdleAsync();
        Assert.Equal(JobStatus.RUNNABLE, await engine.StatusAsync(next.JobId));

        await engine.CancelJobAsync(blocked.JobId, "never fits");
        await engine.RunUntilIdleAsync();

        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(next.JobId));
    }

    /// <summary>
    /// Found by <see cref="LifecycleModelProperties.Arrays_and_concurrency_caps_hold"/>. TerminateJob fails a PENDING job
    /// at once, even while its dependencies still run (CancelJob waits for them, AWS: TerminateJob "cancels jobs that have
    /// not reached STARTING"). In a SEQUENTIAL array with the ANY condition this releases the next child while an earlier
    /// one still runs: two children of a SEQUENTIAL array run at the same time.
    /// </summary>
    [Fact]
    public async Task TerminatePendingChild_SequentialAny_StillOneChildAtATime()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 4);
        var probe = await EngineProbe.AttachAsync(engine);
        var parent = await engine.SubmitJobAsync(TestEngine.Job("seq", arraySize: 3, runSeconds: 100, dependsOn:
            [new JobDependency { Type = ArrayJobDependency.SEQUENTIAL, Extensions = new JobDependencyExtensions { Condition = "ANY" } }]));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(parent.JobId + ":0"));

        await engine.TerminateJobAsync(parent.JobId + ":1", "skip this one");
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

        var running = (await engine.ListJobsAsync(new ListJobsRequest { ArrayJobId = parent.JobId, JobStatus = JobStatus.RUNNING })).JobSummaryList;
        Assert.Single(running);
    }

    /// <summary>
    /// Found by the liveness check of <see cref="LifecycleModelProperties.Lifecycle_follows_the_AWS_transition_table"/>.
    /// Children beyond arrayMaxConcurrency wait parked off the queue and are unparked only when a running child's
    /// attempt ends (ReleaseAttemptResources → UnparkChild). Cancelling (or terminating) a RUNNABLE child that sits in
    /// the queue frees its slot but unparks nobody: the remaining children stay RUNNABLE, off the queue, forever.
    /// </summary>
    [Fact]
    public async Task CancelQueuedChild_UnderArrayCap_UnparksTheNext()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        await engine.SubmitJobAsync(TestEngine.Job("blocker", vcpus: 2)); // never fits: keeps the array's children queued
        var parent = await engine.SubmitJobAsync(TestEngine.Job("capped", arraySize: 2, arrayMaxConcurrency: 1));
        await engine.RunUntilIdleAsync();
        var before = await engine.GetJobQueueSnapshotAsync("q");
        Assert.Contains(before.FrontOfQueue.Jobs, f => f.JobArn.EndsWith(parent.JobId + ":0", StringComparison.Ordinal));

        await engine.CancelJobAsync(parent.JobId + ":0", "not needed");
        await engine.RunUntilIdleAsync();

        var after = await engine.GetJobQueueSnapshotAsync("q");
        Assert.Contains(after.FrontOfQueue.Jobs, f => f.JobArn.EndsWith(parent.JobId + ":1", StringComparison.Ordinal));
    }

    /// <summary>
    /// Found while timing <see cref="FairShareProperties"/>: StopAsync terminates the running attempts, but the loop keeps
    /// scheduling — the freed capacity goes to RUNNABLE jobs, which start new attempts during shutdown; StopAsync then
    /// waits for RunningAttempts to reach 0 until its timeout (DisposeAsync: grace period + 5 s = 35 s by default).
    /// </summary>
    [Fact]
    public async Task StopAsync_DoesNotDispatchNewAttempts()
    {
        var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        await engine.SubmitJobAsync(TestEngine.Job("a", runSeconds: 100));
        await engine.SubmitJobAsync(TestEngine.Job("b", runSeconds: 100));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(1, engine.Statistics.Placements);

        await engine.StopAsync(TimeSpan.FromSeconds(1));

        Assert.Equal(1, engine.Statistics.Placements); // b must not start while the engine stops
    }
}
