using System.Globalization;
using BatchCore.Model;
using BatchCore.Placement;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace BatchCore.Tests.Properties;

/// <summary>Jobs that all arrive in one scheduling cycle, and as many identical hosts, each able to hold any one job.</summary>
public sealed record BatchCase(double HostVcpus, int HostMemoryMiB, (double Vcpus, int MemoryMiB)[] Jobs)
{
    public override string ToString() =>
        $"hosts {Jobs.Length} x {HostVcpus.ToString(CultureInfo.InvariantCulture)}v/{HostMemoryMiB}M jobs [{string.Join(", ", Jobs.Select(j => string.Create(CultureInfo.InvariantCulture, $"{j.Vcpus}v/{j.MemoryMiB}M")))}]";
}

public static class BatchGenerators
{
    public static Arbitrary<BatchCase> Cases() => Arb.From(
        from hv in Gen.Elements(4.0, 8.0, 16.0)
        from hm in Gen.Elements(8192, 16384, 32768)
        from n in Gen.Choose(2, 40)
        from jobs in (from v in Gen.Choose(1, (int)hv)
                      from m in Gen.Choose(1, (hm - 64) / 512)
                      select ((double)v, m * 512)).ArrayOf(n)
        select new BatchCase(hv, hm, jobs));
}

public class BatchPlacementProperties
{
    /// <summary>
    /// Batch placement (BatchPlacementThreshold &gt; 0) never uses more hosts than placing the same jobs one at a time
    /// with FirstFit, and places every job that one-at-a-time placement places.
    /// </summary>
    [Property(Arbitrary = [typeof(BatchGenerators)], MaxTest = 150)]
    public void Batch_placement_never_uses_more_hosts_than_one_at_a_time_FirstFit(BatchCase c)
    {
        var batch = HostsUsed(c, new BatchEngineOptions { BatchPlacementThreshold = 2, PlacementStrategy = PlacementStrategy.BestFit }).GetAwaiter().GetResult();
        var firstFit = HostsUsed(c, new BatchEngineOptions { BatchPlacementThreshold = 0, PlacementStrategy = PlacementStrategy.FirstFit }).GetAwaiter().GetResult();
        Assert.True(batch.Placed == c.Jobs.Length && firstFit.Placed == c.Jobs.Length, $"placed {batch.Placed} / {firstFit.Placed} of {c.Jobs.Length}; {c}");
        Assert.True(batch.Hosts <= firstFit.Hosts, $"batch placement used {batch.Hosts} hosts, FirstFit {firstFit.Hosts}; {c}");
    }

    /// <summary>
    /// 4+3+3 and 4+3+3 vCPUs fill two 10-vCPU hosts exactly; largest-first best fit and first fit both open three
    /// (4+4, then 3+3+3, then 3). Batch placement packs the jobs on the idle hosts with the optimizing packer.
    /// </summary>
    [Fact]
    public void Batch_placement_packs_a_window_onto_fewer_idle_hosts_than_first_fit_decreasing()
    {
        var c = new BatchCase(10.0, 8192, [(4, 512), (4, 512), (3, 512), (3, 512), (3, 512), (3, 512)]);
        var batch = HostsUsed(c, new BatchEngineOptions { BatchPlacementThreshold = 2, PlacementStrategy = PlacementStrategy.BestFit }).GetAwaiter().GetResult();
        var firstFit = HostsUsed(c, new BatchEngineOptions { BatchPlacementThreshold = 0, PlacementStrategy = PlacementStrategy.FirstFit }).GetAwaiter().GetResult();

        Assert.Equal((6, 3), firstFit);
        Assert.Equal((6, 2), batch);
    }

    /// <summary>
    /// A case where largest-first best fit opens 3 hosts and first fit 2 (found by search), on a fleet above the
    /// 4,096 hosts past which batch placement used to skip its first-fit plan: the guarantee holds on big fleets too.
    /// </summary>
    [Theory]
    [InlineData(4)]
    [InlineData(5_000)]
    public async Task Batch_placement_keeps_the_FirstFit_bound_on_a_big_fleet(int fleet)
    {
        var c = new BatchCase(4, 16_384, [(1, 13_312), (2, 2_560), (1, 11_264), (2, 1_024)]);
        var batch = await HostsUsed(c, new BatchEngineOptions { BatchPlacementThreshold = 2, PlacementStrategy = PlacementStrategy.BestFit }, fleet);
        var firstFit = await HostsUsed(c, new BatchEngineOptions { BatchPlacementThreshold = 0, PlacementStrategy = PlacementStrategy.FirstFit }, fleet);
        Assert.Equal((4, 2), firstFit);
        Assert.Equal((4, 2), batch);
    }

    private static async Task<(int Placed, int Hosts)> HostsUsed(BatchCase c, BatchEngineOptions options, int fleet = 0)
    {
        await using var engine = TestEngine.Create(options);
        await QueueOrderProperties.CreateCeAsync(engine, "ce", [.. Enumerable.Repeat(new HostCase(c.HostVcpus, c.HostMemoryMiB, false), fleet > 0 ? fleet : c.Jobs.Length)]);
        await QueueOrderProperties.CreateQueueAsync(engine, "q", 1, "ce");
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));

        // One command: every job is SUBMITTED before the next scheduling cycle, so they are placed together.
        var requests = c.Jobs.Select((j, i) => TestEngine.Job("j" + i.ToString(CultureInfo.InvariantCulture), runSeconds: 100, vcpus: j.Vcpus, memory: j.MemoryMiB)).ToList();
        var ids = await engine.Run(core => requests.Select(r => core.SubmitJob(r).JobId).ToList(), CancellationToken.None);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        var running = (await engine.DescribeJobsAsync(ids)).Count(d => d.Status == JobStatus.RUNNING);
        await engine.RunUntilIdleAsync();
        var hosts = (await engine.DescribeJobsAsync(ids)).SelectMany(d => d.Attempts).Select(EngineProbe.HostOf).Distinct().Count();
        return (running, hosts);
    }
}
