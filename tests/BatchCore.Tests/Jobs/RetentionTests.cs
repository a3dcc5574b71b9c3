using BatchCore.Model;

namespace BatchCore.Tests.Jobs;

/// <summary>
/// <see cref="BatchEngineOptions.TerminalJobRetention"/> while the engine runs: ended jobs past it are forgotten (with
/// their children) once later jobs end, unless a retained job depends on them.
/// </summary>
public sealed class RetentionTests
{
    private static readonly BatchEngineOptions OneHour = new() { TerminalJobRetention = TimeSpan.FromHours(1) };

    private static async Task<string> RunJobAsync(BatchEngine engine, SubmitJobRequest request)
    {
        var id = (await engine.SubmitJobAsync(request)).JobId;
        await engine.RunUntilIdleAsync();
        return id;
    }

    private static async Task<IReadOnlyList<string>> ListAsync(BatchEngine engine, string status = JobStatus.SUCCEEDED) =>
        (await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", JobStatus = status })).JobSummaryList.Select(j => j.JobId).ToList();

    [Fact]
    public async Task EndedJobsPastRetention_AreForgotten_WithTheirChildren_WhenLaterJobsEnd()
    {
        await using var engine = await TestEngine.WithQueueAsync(options: OneHour);
        var old = await RunJobAsync(engine, TestEngine.Job("old"));
        var array = await RunJobAsync(engine, TestEngine.Job("array", arraySize: 3));
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(50));
        var recent = await RunJobAsync(engine, TestEngine.Job("recent"));
        Assert.Equal(3, (await engine.DescribeJobsAsync([old, array, recent])).Count); // within the hour: all kept

        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(20));
        Assert.Single(await engine.DescribeJobsAsync([old])); // expired, but nothing ended since: not swept yet

        var trigger = await RunJobAsync(engine, TestEngine.Job("trigger"));

        Assert.Empty(await engine.DescribeJobsAsync([old, array, array + ":0", array + ":2"]));
        Assert.Equal([recent, trigger], (await engine.DescribeJobsAsync([old, recent, trigger])).Select(j => j.JobId));
        Assert.Equal([recent, trigger], await ListAsync(engine));
        Assert.Empty((await engine.ListJobsAsync(new ListJobsRequest { ArrayJobId = array, JobStatus = JobStatus.SUCCEEDED })).JobSummaryList);
        var dependsOnForgotten = await Assert.ThrowsAsync<BatchClientException>(() =>
            engine.SubmitJobAsync(TestEngine.Job("late", dependsOn: [new JobDependency { JobId = old }])));
        Assert.Contains("dependsOn[0].jobId", dependsOnForgotten.Message);
        Assert.Equal(7, engine.Statistics.Succeeded); // counters (children included) are not rewritten
    }

    [Fact]
    public async Task AJobARetainedJobDependsOn_IsKeptUntilThatJobGoesToo()
    {
        await using var engine = await TestEngine.WithQueueAsync(options: OneHour);
        var first = await RunJobAsync(engine, TestEngine.Job("first"));
        var array = await RunJobAsync(engine, TestEngine.Job("array", arraySize: 2));
        var second = (await engine.SubmitJobAsync(TestEngine.Job("second", runSeconds: 3 * 3600,
            dependsOn: [new JobDependency { JobId = first }, new JobDependency { JobId = array + ":1" }]))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromHours(2));
        await EndAnotherJobAsync(engine);

        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(second));
        Assert.Equal(3, (await engine.DescribeJobsAsync([first, array, array + ":1"])).Count); // pinned by second

        await engine.AdvanceTimeAsync(TimeSpan.FromHours(1.5)); // second ends at 3 h (+ a few seconds)
        await EndAnotherJobAsync(engine);
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(second));
        Assert.Equal(3, (await engine.DescribeJobsAsync([first, second, array])).Count); // second ended < 1 h ago

        await engine.AdvanceTimeAsync(TimeSpan.FromHours(2));
        await EndAnotherJobAsync(engine);
        Assert.Empty(await engine.DescribeJobsAsync([first, second, array]));
    }

    /// <summary>A 10-second job runs and ends (without running the clock on to what else is pending, as RunUntilIdle would).</summary>
    private static async Task EndAnotherJobAsync(BatchEngine engine)
    {
        await engine.SubmitJobAsync(TestEngine.Job("trigger"));
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task ASweepForgetsAtMostOneSlice_TheNextCyclesGoOn()
    {
        await using var engine = await TestEngine.WithQueueAsync(options: OneHour);
        await engine.Run(c => c.RetentionSlice = 2, default);
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add((await engine.SubmitJobAsync(TestEngine.Job("old" + i))).JobId);
        }

        await engine.RunUntilIdleAsync();
        await engine.AdvanceTimeAsync(TimeSpan.FromHours(2));
        await engine.SubmitJobAsync(TestEngine.Job("trigger"));
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1)); // the trigger ends: sweeps of two jobs each

        var first = await engine.Run(c => c.ForgottenJobs, default);
        Assert.InRange(first, 2, 4); // whole slices, not all five at once (advancing the clock settles more than once)
        Assert.Equal(5 - (int)first, (await engine.DescribeJobsAsync(ids)).Count);
        for (var i = 0; i < 3; i++)
        {
            await engine.Run(c => { c.Settle(); return 0; }, default); // each settled cycle sweeps one more slice
        }

        Assert.Equal(5, await engine.Run(c => c.ForgottenJobs, default));
        Assert.Empty(await engine.DescribeJobsAsync(ids));
    }

    [Fact]
    public async Task InfiniteRetention_KeepsEveryJob()
    {
        await using var engine = await TestEngine.WithQueueAsync(options: new BatchEngineOptions { TerminalJobRetention = Timeout.InfiniteTimeSpan });
        var old = await RunJobAsync(engine, TestEngine.Job("old"));
        await engine.AdvanceTimeAsync(TimeSpan.FromDays(30));
        await RunJobAsync(engine, TestEngine.Job("trigger"));

        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(old));
    }

    [Fact]
    public async Task DefaultRetention_IsSevenDays()
    {
        Assert.Equal(TimeSpan.FromDays(7), new BatchEngineOptions().TerminalJobRetention);
        await using var engine = await TestEngine.WithQueueAsync();
        var old = await RunJobAsync(engine, TestEngine.Job("old"));
        await engine.AdvanceTimeAsync(TimeSpan.FromDays(6));
        await RunJobAsync(engine, TestEngine.Job("trigger"));
        Assert.Single(await engine.DescribeJobsAsync([old]));

        await engine.AdvanceTimeAsync(TimeSpan.FromDays(1.5));
        await RunJobAsync(engine, TestEngine.Job("trigger"));
        Assert.Empty(await engine.DescribeJobsAsync([old]));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public void ZeroOrNegativeRetention_IsRejectedNamingTheField(int seconds)
    {
        var e = Assert.Throws<BatchClientException>(() => TestEngine.Create(new BatchEngineOptions { TerminalJobRetention = TimeSpan.FromSeconds(seconds) }));
        Assert.Contains("options.terminalJobRetention", e.Message);
        Assert.Contains("must be positive", e.Message);
    }
}
