using BatchCore.Model;

namespace BatchCore.Tests.Dispatch;

/// <summary>Fair-share rules an audit checked and found right, kept as regressions: computeReservation, schedulingPriority within a share, weight updates.</summary>
public sealed class FairSharePolicyRegressionTests
{
    private static async Task<BatchEngine> FairAsync(FairsharePolicy policy, double vcpus = 4)
    {
        var engine = TestEngine.Create();
        var p = await engine.CreateSchedulingPolicyAsync(new() { Name = "fair", FairsharePolicy = policy });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = vcpus, MemoryMiB = 8192 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, SchedulingPolicyArn = p.Arn, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        return engine;
    }

    [Fact]
    public async Task ComputeReservation_OneActiveShare_HalfOfMax()
    {
        await using var engine = await FairAsync(new() { ShareDecaySeconds = 600, ComputeReservation = 50 });
        var ids = new List<string>();
        for (var i = 0; i < 4; i++) ids.Add((await engine.SubmitJobAsync(TestEngine.Job($"a{i}", share: "a", vcpus: 1, runSeconds: 100))).JobId);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var st = (await engine.DescribeJobsAsync(ids)).Count(j => j.Status == JobStatus.RUNNING);
        Assert.Equal(2, st);
        var b = await engine.SubmitJobAsync(TestEngine.Job("b", share: "b", vcpus: 1, runSeconds: 100));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(b.JobId)); // 2 active: 75 % = 3 vCPU
    }

    [Fact]
    public async Task SchedulingPriority_WithinShare_HigherFirst()
    {
        await using var engine = await FairAsync(new() { ShareDecaySeconds = 600 }, vcpus: 1);
        var blocker = await engine.SubmitJobAsync(TestEngine.Job("blk", share: "a", runSeconds: 10));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var lo = await engine.SubmitJobAsync(TestEngine.Job("lo", share: "a", runSeconds: 10) with { SchedulingPriorityOverride = 1 });
        var hi = await engine.SubmitJobAsync(TestEngine.Job("hi", share: "a", runSeconds: 10) with { SchedulingPriorityOverride = 9 });
        await engine.RunUntilIdleAsync();
        Assert.True((await engine.DescribeAsync(hi.JobId)).StartedAt < (await engine.DescribeAsync(lo.JobId)).StartedAt);
    }

    [Fact]
    public async Task UpdateSchedulingPolicy_Weight_TakesEffect()
    {
        await using var engine = await FairAsync(new() { ShareDecaySeconds = 600, ShareDistribution = [new() { ShareIdentifier = "a", WeightFactor = 1 }, new() { ShareIdentifier = "b", WeightFactor = 1 }] }, vcpus: 1);
        for (var i = 0; i < 20; i++)
        {
            await engine.SubmitJobAsync(TestEngine.Job($"a{i}", share: "a", runSeconds: 10));
            await engine.SubmitJobAsync(TestEngine.Job($"b{i}", share: "b", runSeconds: 10));
        }
        var arn = (await engine.DescribeSchedulingPoliciesAsync(null)).Single().Arn;
        await engine.UpdateSchedulingPolicyAsync(new() { Arn = arn, FairsharePolicy = new() { ShareDecaySeconds = 600, ShareDistribution = [new() { ShareIdentifier = "a", WeightFactor = 1 }, new() { ShareIdentifier = "b", WeightFactor = 0.25 }] } });
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(200));
        var u = await engine.Run(c => c.ShareUsage("q"), TestContext.Current.CancellationToken);
        Assert.True(u["b"] > 2 * u["a"], $"a={u["a"]} b={u["b"]}");
    }
}
