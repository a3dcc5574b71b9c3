using System.Globalization;
using BatchCore.Model;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace BatchCore.Tests.Properties;

/// <summary>Two always-busy shares on one fair-share queue.</summary>
public sealed record FairShareCase(double WeightA, double WeightB, int Slots, int RunSeconds)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"weights a={WeightA} b={WeightB}, {Slots} slots, run {RunSeconds}s");
}

public static class FairShareGenerators
{
    public static Arbitrary<FairShareCase> Cases() => Arb.From(
        from w in Gen.Elements((1.0, 0.5), (1.0, 0.25), (1.0, 1.0), (0.5, 1.0), (2.0, 1.0), (1.0, 2.0 / 3))
        from slots in Gen.Elements(4, 6, 8)
        from run in Gen.Choose(60, 120)
        select new FairShareCase(w.Item1, w.Item2, slots, run));
}

public class FairShareProperties
{
    private const int Hours = 4;

    /// <summary>
    /// AWS fair share (reference §2.4: usage T·weightFactor, lowest first; lower weight gets more): with two shares
    /// that always have RUNNABLE work, the vCPU-seconds they received converge to the inverse ratio of their weights —
    /// usage(a)/usage(b) within 10 % of weight(b)/weight(a) after four virtual hours.
    /// </summary>
    [Property(Arbitrary = [typeof(FairShareGenerators)], MaxTest = 8)]
    public void Usage_ratio_of_two_busy_shares_converges_to_the_inverse_weight_ratio(FairShareCase c)
    {
        var (a, b) = Run(c).GetAwaiter().GetResult();
        var expected = c.WeightB / c.WeightA;
        var ratio = a / b;
        Assert.True(Math.Abs(ratio - expected) <= 0.1 * expected,
            string.Create(CultureInfo.InvariantCulture, $"usage a={a:F0} b={b:F0} vCPU-s: ratio {ratio:F3}, expected {expected:F3} ±10 %; {c}"));
    }

    private static async Task<(double A, double B)> Run(FairShareCase c)
    {
        var policy = await CreatePolicyEngineAsync(c);
        var engine = policy.Engine;
        await using (engine)
        {
            // Enough work that neither share runs dry: each could fill every slot for the whole run.
            var perShare = Math.Min(10_000, (c.Slots * Hours * 3600 / c.RunSeconds) + 10);
            foreach (var share in new[] { "a", "b" })
            {
                await engine.SubmitJobAsync(TestEngine.Job("busy-" + share, runSeconds: c.RunSeconds, arraySize: perShare, share: share));
            }

            await engine.AdvanceTimeAsync(TimeSpan.FromHours(Hours));
            var usage = await engine.Run(core => core.ShareUsage("q"), CancellationToken.None);

            // Formerly a known engine bug, now fixed (EngineBugRepros.StopAsync_DoesNotDispatchNewAttempts): stopping with RUNNABLE work
            // places new attempts as the running ones are terminated, so the stop waits out its whole timeout.
            // Disabling the CE first keeps disposal instant.
            await engine.UpdateComputeEnvironmentAsync(new UpdateComputeEnvironmentRequest { ComputeEnvironment = "ce", State = ResourceState.DISABLED });
            return (usage["a"], usage["b"]);
        }
    }

    private static async Task<(BatchEngine Engine, string Arn)> CreatePolicyEngineAsync(FairShareCase c)
    {
        var engine = TestEngine.Create();
        var policy = await engine.CreateSchedulingPolicyAsync(new CreateSchedulingPolicyRequest
        {
            Name = "fair",
            FairsharePolicy = new FairsharePolicy
            {
                ShareDecaySeconds = 600,
                ShareDistribution = [new() { ShareIdentifier = "a", WeightFactor = c.WeightA }, new() { ShareIdentifier = "b", WeightFactor = c.WeightB }],
            },
        });
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.UNMANAGED,
            Hosts = [new HostSpec { HostName = "h0", Vcpus = c.Slots, MemoryMiB = (c.Slots * 1024) + 64 }],
        });
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "q",
            Priority = 1,
            SchedulingPolicyArn = policy.Arn,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
        });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        return (engine, policy.Arn);
    }
}
