using BatchCore.Model;

namespace BatchCore.Tests.Dispatch;

/// <summary>Scheduling edge cases (found by an audit): a retried child of a capped array goes to the front of its siblings; fair share gives every share its turn however many are blocked.</summary>
public sealed class ArrayCapAndShareTurnTests
{
    // Retried job "is placed at the front of the job queue" (ref §2.2). Under arrayMaxConcurrency a retried child is
    // parked behind its not-yet-started siblings instead.
    [Fact]
    public async Task ArrayCap_RetriedChild_RunsBeforeLaterSiblings()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 4);
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy { Attempts = 2 }));
        var arr = await engine.SubmitJobAsync(TestEngine.Job("a", def: "retry", arraySize: 3, arrayMaxConcurrency: 1, exitCode: 1, failingAttempts: 1, runSeconds: 10));
        await engine.RunUntilIdleAsync();
        var c0 = await engine.DescribeAsync(arr.JobId + ":0");
        var c1 = await engine.DescribeAsync(arr.JobId + ":1");
        // child 0's second attempt should start right after its first failed (10 s), before child 1's first attempt.
        Assert.Equal(2, c0.Attempts.Count);
        Assert.True(c0.Attempts[1].StartedAt < c1.Attempts[0].StartedAt,
            $"child0 retry started {c0.Attempts[1].StartedAt}, child1 first attempt {c1.Attempts[0].StartedAt}");
    }

    /// <summary>
    /// Fair share: a share whose head cannot be placed is skipped (BlockedThisCycle) so other shares can run. After 64
    /// blocked shares the cycle used to stop, and a share ordered after them never placed although capacity was free.
    /// </summary>
    [Theory]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(200)]
    public async Task FairShare_ManyBlockedShares_DoNotStarveAFittingJob(int blockedShares)
    {
        await using var engine = TestEngine.Create();
        var policy = await engine.CreateSchedulingPolicyAsync(new() { Name = "fair", FairsharePolicy = new() { ShareDecaySeconds = 600 } });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 4, MemoryMiB = 8192 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, SchedulingPolicyArn = policy.Arn, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        await engine.SubmitJobAsync(TestEngine.Job("z-long", share: "z", vcpus: 2, runSeconds: 10_000));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        for (var i = 0; i < blockedShares; i++)
        {
            await engine.SubmitJobAsync(TestEngine.Job($"big{i}", share: $"s{i:D3}", vcpus: 4, runSeconds: 10));
        }

        var small = await engine.SubmitJobAsync(TestEngine.Job("z-small", share: "z", vcpus: 2, runSeconds: 10));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(100));
        var d = await engine.DescribeAsync(small.JobId);
        Assert.True(d.Status != JobStatus.RUNNABLE, $"z-small is {d.Status} ({d.StatusReason}) with 2 vCPU free for 100 s");
    }
}
