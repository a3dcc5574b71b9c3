using BatchCore.Model;

namespace BatchCore.Tests.Dispatch;

/// <summary>
/// <see cref="BatchEngineOptions.InactiveJobDefinitionRetention"/>: AWS permanently deletes a job definition revision
/// 180 days after DeregisterJobDefinition; its number is not given out again and jobs that ran with it keep it.
/// </summary>
public sealed class JobDefinitionRetentionTests
{
    private const string DefArn = "arn:aws:batch:local:000000000000:job-definition/";

    private static async Task<IReadOnlyList<string>> RevisionsAsync(BatchEngine engine, string? status = null) =>
        (await engine.DescribeJobDefinitionsAsync(new DescribeJobDefinitionsRequest { JobDefinitionName = "def", Status = status }))
            .JobDefinitions.Select(d => d.Revision + " " + d.Status).ToList();

    [Fact]
    public async Task DeregisteredRevision_IsPurgedAfter180Days_ItsNumberIsNotReused_AndItsJobsKeepIt()
    {
        await using var engine = await TestEngine.WithQueueAsync(); // def:1
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def")); // def:2
        var running = (await engine.SubmitJobAsync(TestEngine.Job("long", def: "def:1", runSeconds: 200 * 86_400))).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1));
        await engine.DeregisterJobDefinitionAsync("def:1");

        await engine.AdvanceTimeAsync(TimeSpan.FromDays(179));
        Assert.Equal(["1 INACTIVE", "2 ACTIVE"], await RevisionsAsync(engine));

        await engine.AdvanceTimeAsync(TimeSpan.FromDays(1) + TimeSpan.FromSeconds(1));
        Assert.Equal(["2 ACTIVE"], await RevisionsAsync(engine));
        Assert.Empty(await RevisionsAsync(engine, "INACTIVE"));
        Assert.Empty((await engine.DescribeJobDefinitionsAsync(new DescribeJobDefinitionsRequest { JobDefinitions = ["def:1", DefArn + "def:1"] })).JobDefinitions);
        Assert.Contains("does not exist", (await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(TestEngine.Job("late", def: "def:1")))).Message);
        await Assert.ThrowsAsync<BatchClientException>(() => engine.DeregisterJobDefinitionAsync("def:1"));
        await Assert.ThrowsAsync<BatchClientException>(() => engine.ListTagsForResourceAsync(DefArn + "def:1"));
        await Assert.ThrowsAsync<BatchClientException>(() => engine.TagResourceAsync(DefArn + "def:1", new Dictionary<string, string> { ["k"] = "v" }));

        // AWS keeps counting: the next registration is revision 3, not 1.
        Assert.Equal(3, (await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"))).Revision);

        // The job that runs with the purged revision keeps it, to its end.
        var job = await engine.DescribeAsync(running);
        Assert.Equal(JobStatus.RUNNING, job.Status);
        Assert.Equal(DefArn + "def:1", job.JobDefinition);
        await engine.AdvanceTimeAsync(TimeSpan.FromDays(21));
        Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(running));
    }

    [Fact]
    public async Task EveryRevisionPurged_TheNameStillCountsOn()
    {
        await using var engine = await TestEngine.WithQueueAsync(); // def:1
        await engine.DeregisterJobDefinitionAsync("def:1");
        await engine.AdvanceTimeAsync(TimeSpan.FromDays(181));
        Assert.Empty(await RevisionsAsync(engine));
        Assert.Contains("no ACTIVE revision", (await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(TestEngine.Job()))).Message);

        Assert.Equal(2, (await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"))).Revision);
    }

    [Fact]
    public async Task ASecondDeregistration_DoesNotRestartThe180Days()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        await engine.DeregisterJobDefinitionAsync("def:1");
        await engine.AdvanceTimeAsync(TimeSpan.FromDays(100));
        await engine.DeregisterJobDefinitionAsync("def:1");
        await engine.AdvanceTimeAsync(TimeSpan.FromDays(81));

        Assert.Empty(await RevisionsAsync(engine));
    }

    [Fact]
    public async Task InfiniteRetention_KeepsInactiveRevisions()
    {
        await using var engine = await TestEngine.WithQueueAsync(options: new BatchEngineOptions { InactiveJobDefinitionRetention = Timeout.InfiniteTimeSpan });
        await engine.DeregisterJobDefinitionAsync("def:1");
        await engine.AdvanceTimeAsync(TimeSpan.FromDays(1000));

        Assert.Equal(["1 INACTIVE"], await RevisionsAsync(engine));
    }

    [Fact]
    public async Task AShorterRetention_IsHonoured_AndANonPositiveOneRefused()
    {
        await using (var engine = await TestEngine.WithQueueAsync(options: new BatchEngineOptions { InactiveJobDefinitionRetention = TimeSpan.FromHours(1) }))
        {
            await engine.DeregisterJobDefinitionAsync("def:1");
            await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(59));
            Assert.Single(await RevisionsAsync(engine));
            await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(2));
            Assert.Empty(await RevisionsAsync(engine));
        }

        var e = Assert.Throws<BatchClientException>(() => TestEngine.Create(new BatchEngineOptions { InactiveJobDefinitionRetention = TimeSpan.Zero }));
        Assert.Contains("options.inactiveJobDefinitionRetention", e.Message);
    }
}
