using BatchCore.Dispatch;
using BatchCore.Model;

namespace BatchCore.Tests.Dispatch;

public sealed class EngineClockTests
{
    private sealed class SteppedClock : TimeProvider
    {
        public long Ms = 1_700_000_000_000;

        public int Reads;

        public override DateTimeOffset GetUtcNow()
        {
            Reads++;
            return DateTimeOffset.FromUnixTimeMilliseconds(Ms);
        }
    }

    [Fact]
    public void RealClock_IsReadOncePerRunOfReuses_AndAtEveryLoopTurn()
    {
        var clock = new SteppedClock();
        var core = new EngineCore(new BatchEngineOptions { TimeProvider = clock });

        core.RefreshClock();
        var first = core.NowMs;
        Assert.Equal(1, clock.Reads);
        clock.Ms += 5;
        for (var i = 0; i < EngineCore.ClockReuses; i++)
        {
            Assert.Equal(first, core.NowMs); // reused: microseconds of loop work, below the clock's millisecond
        }

        Assert.Equal(1, clock.Reads);
        Assert.Equal(first + 5, core.NowMs); // the run of reuses is over: read again
        Assert.Equal(2, clock.Reads);

        clock.Ms += 7;
        core.RefreshClock(); // a new loop turn never sees the last turn's time
        Assert.Equal(first + 12, core.NowMs);
        Assert.Equal(3, clock.Reads);
    }

    [Fact]
    public async Task Engine_StampsEachRequestWithTheClockOfItsTurn()
    {
        var clock = new SteppedClock();
        await using var engine = new BatchEngine(new BatchEngineOptions { TimeProvider = clock });
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new HostSpec { HostName = "h", Vcpus = 1, MemoryMiB = 4096 }],
        }, TestContext.Current.CancellationToken);
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
        }, TestContext.Current.CancellationToken);
        // 2 vCPUs on a 1-vCPU host: the jobs stay RUNNABLE (no timers on this hand-stepped clock).
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("d", vcpus: 2), TestContext.Current.CancellationToken);

        var before = clock.Ms;
        var a = await engine.SubmitJobAsync(new() { JobName = "a", JobQueue = "q", JobDefinition = "d" }, TestContext.Current.CancellationToken);
        Interlocked.Add(ref clock.Ms, 60_000);
        var b = await engine.SubmitJobAsync(new() { JobName = "b", JobQueue = "q", JobDefinition = "d" }, TestContext.Current.CancellationToken);

        var jobs = await engine.DescribeJobsAsync([a.JobId, b.JobId], TestContext.Current.CancellationToken);
        Assert.Equal(before, jobs.Single(j => j.JobId == a.JobId).CreatedAt);
        Assert.Equal(before + 60_000, jobs.Single(j => j.JobId == b.JobId).CreatedAt);
    }
}
