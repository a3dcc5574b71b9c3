using BatchCore.Model;

namespace BatchCore.Tests.Dispatch;

/// <summary>Graceful stop, step 1 (<see cref="BatchEngine.StopTakingJobsAsync"/>): no new jobs, no new placements.</summary>
public sealed class DrainingTests
{
    [Fact]
    public async Task StopTakingJobs_RefusesSubmissions_PlacesNothingNew_AndLetsRunningAttemptsFinish()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        var running = await engine.SubmitJobAsync(TestEngine.Job("running", runSeconds: 10));
        var waiting = await engine.SubmitJobAsync(TestEngine.Job("waiting", runSeconds: 10));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.RUNNING, (await engine.DescribeAsync(running.JobId)).Status);

        await engine.StopTakingJobsAsync();
        var refused = await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(TestEngine.Job("late")));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(60)); // the running job ends; its vCPU is free again

        Assert.Contains("StopTakingJobsAsync", refused.Message, StringComparison.Ordinal);
        Assert.Equal(JobStatus.SUCCEEDED, (await engine.DescribeAsync(running.JobId)).Status);
        Assert.Equal(JobStatus.RUNNABLE, (await engine.DescribeAsync(waiting.JobId)).Status);
    }
}
