using BatchCore.Model;

namespace BatchCore.Tests.Dispatch;

/// <summary>A job held back by computeReservation says so in its statusReason (it had none, so no time limit could apply).</summary>
public sealed class ComputeReservationReasonTests
{
    [Fact]
    public async Task ComputeReservation_HeldJob_SaysWhyItWaits()
    {
        await using var engine = TestEngine.Create();
        var p = await engine.CreateSchedulingPolicyAsync(new() { Name = "fair", FairsharePolicy = new() { ShareDecaySeconds = 600, ComputeReservation = 50 } });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 4, MemoryMiB = 8192 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, SchedulingPolicyArn = p.Arn, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        var ids = new List<string>();
        for (var i = 0; i < 3; i++) ids.Add((await engine.SubmitJobAsync(TestEngine.Job($"a{i}", share: "a", vcpus: 1, runSeconds: 100))).JobId);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var held = await engine.DescribeAsync(ids[2]);
        Assert.Equal(JobStatus.RUNNABLE, held.Status);
        Assert.False(string.IsNullOrEmpty(held.StatusReason), "held by computeReservation with 2 vCPU free, but no statusReason");
    }
}
