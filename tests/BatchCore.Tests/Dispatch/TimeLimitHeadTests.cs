using BatchCore.Model;

namespace BatchCore.Tests.Dispatch;

/// <summary>jobStateTimeLimitActions act only on the job at the head of the queue.</summary>
public sealed class TimeLimitHeadTests
{
    // jobStateTimeLimitActions act on the job "at the head of the queue" (ref §2.3). A retried job that goes to the
    // front and blocks with a reason no action matches leaves the old head's timer armed: the old head, no longer at
    // the head, is cancelled.
    [Fact]
    public async Task TimeLimit_DoesNotCancelAJobThatIsNoLongerTheHead()
    {
        await using var engine = TestEngine.Create();
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 4, MemoryMiB = 8192 }] });
        await engine.CreateJobQueueAsync(new()
        {
            JobQueueName = "q",
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
            JobStateTimeLimitActions = [new() { Reason = StatusReasons.InsufficientInstanceCapacity, State = "RUNNABLE", Action = "CANCEL", MaxTimeSeconds = 600 }],
        });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new RetryStrategy { Attempts = 2 }));
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "lic", TotalQuantity = 1 });
        await engine.SubmitJobAsync(TestEngine.Job("running", vcpus: 2, runSeconds: 5000));
        var r = await engine.SubmitJobAsync(TestEngine.Job("r", def: "retry", vcpus: 1, exitCode: 1, failingAttempts: 1, runSeconds: 100) with
        {
            ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = [new() { ConsumableResource = "lic", Quantity = 1 }] },
        });
        var a = await engine.SubmitJobAsync(TestEngine.Job("a", vcpus: 4, runSeconds: 10));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(50));
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(r.JobId));
        await engine.UpdateConsumableResourceAsync(new() { ConsumableResource = "lic", Operation = "SET", Quantity = 0 });
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(100)); // r failed at 100 s: retried to the front, waits for lic
        var rd = await engine.DescribeAsync(r.JobId);
        Assert.Equal(JobStatus.RUNNABLE, rd.Status);
        var snap = await engine.GetJobQueueSnapshotAsync("q");
        Assert.EndsWith(r.JobId, snap.FrontOfQueue!.Jobs![0].JobArn); // r is the head now
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(500)); // t = 650
        var ad = await engine.DescribeAsync(a.JobId);
        Assert.True(ad.Status == JobStatus.RUNNABLE, $"a (not at the head since 100 s) is {ad.Status}: {ad.StatusReason}; r: {rd.StatusReason}");
    }
}
