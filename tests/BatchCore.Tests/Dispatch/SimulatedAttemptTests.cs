using BatchCore.Model;
using BatchCore.Provisioning;
using BatchCore.Tests.Provisioning;

namespace BatchCore.Tests.Dispatch;

/// <summary>
/// Attempts on the engine's own simulated hosts run on the loop's timers with the job itself as the timer (no timer
/// object, no attempt-map entry): a timer left behind by an ended attempt must never act on a later one.
/// </summary>
public sealed class SimulatedAttemptTests
{
    [Fact]
    public async Task SpotInterruptedAttempts_LeaveNoLiveTimer_TheRetryRunsItsFullTime()
    {
        var options = new ProvisioningOptions { DemandSizedScaleOut = false, SimulateSpotInterruptions = true };
        var engine = await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED, types: ["c6i.large"], type: CRType.SPOT), options, seed: 14); // a seed whose draws interrupt the first attempt (~17 % of seeds do)
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy { Attempts = 10 }));
        const double runSeconds = 2_000 * 3600.0;
        var id = (await engine.SubmitJobAsync(TestEngine.Job(def: "retry", vcpus: 2, memory: 3000, runSeconds: runSeconds))).JobId;
        await engine.RunUntilIdleAsync();

        var job = await engine.DescribeAsync(id);
        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        Assert.True(job.Attempts.Count > 1);
        foreach (var interrupted in job.Attempts.Take(job.Attempts.Count - 1))
        {
            Assert.Equal(StatusReasons.SpotInterrupted, interrupted.StatusReason);
            // Interrupted while RUNNING: SIGTERM's 143, and it ended before its simulated run time was up.
            Assert.Equal(143, interrupted.Container!.ExitCode);
            Assert.True(interrupted.StoppedAt - interrupted.StartedAt < (long)(runSeconds * 1000));
        }

        // The stale exit timers of the interrupted attempts did not end the last attempt early.
        var last = job.Attempts[^1];
        Assert.Equal(0, last.Container!.ExitCode);
        Assert.Equal((long)(runSeconds * 1000), last.StoppedAt - last.StartedAt);
        Assert.Equal(0, await engine.Run(c => c.RunningAttempts, CancellationToken.None));
        await ManagedCe.DrainAndDisposeAsync(engine);
    }

    [Fact]
    public async Task Ec2SimulatedHost_StartsTheAttemptWhenPlaced_ItRunsItsFullTime()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1);
        var submittedAt = engine.UtcNow.ToUnixTimeMilliseconds();
        var id = (await engine.SubmitJobAsync(TestEngine.Job(runSeconds: 100))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.Zero); // the cycle that places it; no time passes

        var running = await engine.DescribeAsync(id);
        Assert.Equal(JobStatus.RUNNING, running.Status); // no start delay on an EC2 host: STARTING and RUNNING at once
        Assert.Equal(submittedAt, running.StartedAt);

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(99));
        Assert.Equal(JobStatus.RUNNING, (await engine.DescribeAsync(id)).Status);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var done = await engine.DescribeAsync(id);
        Assert.Equal(JobStatus.SUCCEEDED, done.Status);
        Assert.Equal(submittedAt + 100_000, done.StoppedAt);
    }

    [Fact]
    public async Task TerminatedWhileStarting_NeverRuns_AndItsStartTimerIsStale()
    {
        // Fargate hosts take 30 s from launch to RUNNING: terminate the attempt in between.
        var options = new ProvisioningOptions { FargateStartTime = TimeSpan.FromSeconds(30) };
        var engine = await ManagedCe.CreateAsync(new ComputeResource { Type = CRType.FARGATE, MaxvCpus = 16 }, options);
        var id = (await engine.SubmitJobAsync(TestEngine.Job(runSeconds: 100))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(JobStatus.STARTING, (await engine.DescribeAsync(id)).Status);
        Assert.Equal(1, await engine.Run(c => c.RunningAttempts, CancellationToken.None));

        await engine.TerminateJobAsync(id, "stop it");
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(200));

        var job = await engine.DescribeAsync(id);
        Assert.Equal(JobStatus.FAILED, job.Status);
        var attempt = Assert.Single(job.Attempts);
        Assert.Null(attempt.StartedAt);
        Assert.Null(attempt.Container!.ExitCode);
        Assert.Null(job.StartedAt);
        Assert.Equal(0, await engine.Run(c => c.RunningAttempts, CancellationToken.None));
        await ManagedCe.DrainAndDisposeAsync(engine);
    }

    [Fact]
    public async Task EngineStop_TerminatesSimulatedAttempts_ThatAreInNoAttemptMap()
    {
        var engine = await TestEngine.WithQueueAsync(hosts: 2, vcpus: 2);
        var parent = (await engine.SubmitJobAsync(TestEngine.Job(arraySize: 4, runSeconds: 1_000))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(4, await engine.Run(c => c.RunningAttempts, CancellationToken.None));

        await engine.Run(c => { c.TerminateAll("engine stopping"); c.Settle(); return 0; }, CancellationToken.None);

        Assert.Equal(0, await engine.Run(c => c.RunningAttempts, CancellationToken.None));
        for (var i = 0; i < 4; i++)
        {
            var child = await engine.DescribeAsync($"{parent}:{i}");
            Assert.Equal(JobStatus.FAILED, child.Status);
            Assert.Equal("engine stopping", child.StatusReason);
            Assert.Equal(143, Assert.Single(child.Attempts).Container!.ExitCode);
        }

        await engine.DisposeAsync();
    }
}
