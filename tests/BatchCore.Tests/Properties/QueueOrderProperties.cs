using System.Globalization;
using BatchCore.Model;
using BatchCore.Placement;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace BatchCore.Tests.Properties;

/// <summary>A FIFO run: jobs of random shapes submitted at random times into one strict FIFO queue.</summary>
public sealed record FifoCase(HostCase[] Hosts, (double Vcpus, int MemoryMiB, int RunSeconds, int GapSeconds)[] Jobs, PlacementStrategy Strategy, int BatchThreshold)
{
    public override string ToString() =>
        $"hosts [{string.Join(", ", Hosts.Select(h => h.ToString()))}] jobs [{string.Join(", ", Jobs.Select(j => string.Create(CultureInfo.InvariantCulture, $"{j.Vcpus}v/{j.MemoryMiB}M run={j.RunSeconds}s +{j.GapSeconds}s")))}] {Strategy} batch={BatchThreshold}";
}

/// <summary>
/// Two queues (priority 10 and 1) over two CEs (order 1 and 2), jobs of one shape submitted at random times into
/// random queues: what queue priority and computeEnvironmentOrder must guarantee.
/// </summary>
public sealed record PriorityCase(HostCase[] First, HostCase[] Second, double Vcpus, int MemoryMiB, (bool High, int RunSeconds, int GapSeconds)[] Jobs)
{
    public override string ToString() =>
        $"ce1 [{string.Join(", ", First.Select(h => h.ToString()))}] ce2 [{string.Join(", ", Second.Select(h => h.ToString()))}] shape {Vcpus}v/{MemoryMiB}M jobs [{string.Join(", ", Jobs.Select(j => string.Create(CultureInfo.InvariantCulture, $"{(j.High ? "hi" : "lo")} run={j.RunSeconds}s +{j.GapSeconds}s")))}]";
}

public static class QueueOrderGenerators
{
    private static readonly Gen<HostCase> X86Host =
        from v in Gen.Elements(1.0, 2.0, 4.0)
        from m in Gen.Elements(2048, 4096, 8192)
        select new HostCase(v, m, false);

    public static Arbitrary<FifoCase> Fifo() => Arb.From(
        from hn in Gen.Choose(1, 3)
        from hosts in X86Host.ArrayOf(hn)
        from jn in Gen.Choose(2, 14)
        from jobs in (from v in Gen.Elements(1.0, 2.0, 4.0)
                      from m in Gen.Elements(512, 1024, 3072)
                      from run in Gen.Choose(1, 20)
                      from gap in Gen.Frequency((2, Gen.Constant(0)), (1, Gen.Choose(1, 10)))
                      select (v, m, run, gap)).ArrayOf(jn)
        from strategy in Gen.Elements(PlacementStrategy.BestFit, PlacementStrategy.FirstFit, PlacementStrategy.Spread)
        from batch in Gen.Elements(0, 2)
        select new FifoCase(hosts, jobs, strategy, batch));

    public static Arbitrary<PriorityCase> Priority() => Arb.From(
        from n1 in Gen.Choose(1, 3)
        from first in X86Host.ArrayOf(n1)
        from n2 in Gen.Choose(1, 3)
        from second in X86Host.ArrayOf(n2)
        from v in Gen.Elements(1.0, 2.0)
        from m in Gen.Elements(512, 1024, 2048)
        from jn in Gen.Choose(2, 16)
        from jobs in (from high in Gen.Elements(true, false)
                      from run in Gen.Choose(1, 20)
                      from gap in Gen.Frequency((2, Gen.Constant(0)), (1, Gen.Choose(1, 10)))
                      select (high, run, gap)).ArrayOf(jn)
        select new PriorityCase(first, second, v, m, jobs));
}

/// <summary>Queue order: strict FIFO start order, queue priority among queues sharing CEs, computeEnvironmentOrder.</summary>
public class QueueOrderProperties
{
    /// <summary>
    /// In a strict FIFO queue (no backfill, no retries) jobs start (RUNNABLE→STARTING) in submission order, with or
    /// without batch placement: the started jobs are always a prefix of the submitted ones, in order.
    /// </summary>
    [Property(Arbitrary = [typeof(QueueOrderGenerators)], MaxTest = 150)]
    public void Strict_FIFO_queue_starts_jobs_in_submission_order(FifoCase c) => RunFifo(c).GetAwaiter().GetResult();

    private static async Task RunFifo(FifoCase c)
    {
        await using var engine = TestEngine.Create(new BatchEngineOptions { PlacementStrategy = c.Strategy, BatchPlacementThreshold = c.BatchThreshold });
        await CreateCeAsync(engine, "ce", c.Hosts);
        await CreateQueueAsync(engine, "q", 1, "ce");
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        var probe = await EngineProbe.AttachAsync(engine);
        var submitted = new List<string>();
        foreach (var (vcpus, memory, run, gap) in c.Jobs)
        {
            submitted.Add((await engine.SubmitJobAsync(TestEngine.Job("j", runSeconds: run, vcpus: vcpus, memory: memory))).JobId);
            await probe.SettleAsync();
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(gap));
        }

        await engine.RunUntilIdleAsync();
        await probe.SettleAsync();
        var started = probe.Changes.Where(e => e.Status == JobStatus.STARTING).Select(e => e.JobId).ToList();
        Assert.True(started.SequenceEqual(submitted.Take(started.Count)),
            $"start order [{string.Join(",", started.Select(id => submitted.IndexOf(id)))}] is not a prefix of submission order; {c}");
    }

    /// <summary>
    /// Queue priority (AWS: higher priority first among queues sharing a CE): a low-priority job never starts while a
    /// high-priority job of the same shape is RUNNABLE. computeEnvironmentOrder (AWS: the next CE only when the first
    /// can't provide a suitable resource): a job is placed in the second CE only when no host of the first has room for
    /// it at that instant.
    /// </summary>
    [Property(Arbitrary = [typeof(QueueOrderGenerators)], MaxTest = 150)]
    public void Queue_priority_and_compute_environment_order_are_respected(PriorityCase c) => RunPriority(c).GetAwaiter().GetResult();

    private static async Task RunPriority(PriorityCase c)
    {
        await using var engine = TestEngine.Create();
        await CreateCeAsync(engine, "ce1", c.First);
        await CreateCeAsync(engine, "ce2", c.Second);
        await CreateQueueAsync(engine, "hi", 10, "ce1", "ce2");
        await CreateQueueAsync(engine, "lo", 1, "ce1", "ce2");
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        var probe = await EngineProbe.AttachAsync(engine);
        var high = new HashSet<string>(StringComparer.Ordinal);
        var all = new List<string>();
        foreach (var (isHigh, run, gap) in c.Jobs)
        {
            var id = (await engine.SubmitJobAsync(TestEngine.Job("j", queue: isHigh ? "hi" : "lo", runSeconds: run, vcpus: c.Vcpus, memory: c.MemoryMiB))).JobId;
            all.Add(id);
            if (isHigh)
            {
                high.Add(id);
            }

            await probe.SettleAsync();
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(gap));
        }

        await engine.RunUntilIdleAsync();
        await probe.SettleAsync();

        // Priority: replay the change stream; count high-priority RUNNABLE jobs at each low-priority start.
        var highRunnable = 0;
        foreach (var e in probe.Changes)
        {
            if (high.Contains(e.JobId))
            {
                highRunnable += (e.Status == JobStatus.RUNNABLE ? 1 : 0) - (e.PreviousStatus == JobStatus.RUNNABLE && e.Status != e.PreviousStatus ? 1 : 0);
            }
            else if (e.Status == JobStatus.STARTING && highRunnable > 0)
            {
                Assert.Fail($"low-priority job {all.IndexOf(e.JobId)} started at {e.Timestamp} while {highRunnable} high-priority jobs were RUNNABLE; {c}");
            }
        }

        // CE order: at the instant of a placement in ce2, no ce1 host has room for the shape (after that instant's placements).
        var details = await probe.DescribeAllAsync(all);
        var attempts = details.Values.SelectMany(d => d.Attempts).ToList();
        var shape = new ResourceVector(ResourceVector.ToMilli(c.Vcpus), c.MemoryMiB, 0);
        foreach (var a in attempts.Where(a => EngineProbe.CeOf(a) == "ce2"))
        {
            var t = a.StartedAt!.Value;
            for (var i = 0; i < c.First.Length; i++)
            {
                var name = Scenario.HostName(i);
                var used = attempts.Where(o => EngineProbe.CeOf(o) == "ce1" && EngineProbe.HostOf(o) == name && o.StartedAt <= t && t < o.StoppedAt)
                    .Aggregate(new ResourceVector(0, 0, 0), (u, _) => u + shape);
                if ((Scenario.Capacity(c.First[i]) - used).Fits(shape))
                {
                    Assert.Fail($"job placed in ce2 at {t} while ce1 host {name} had room ({used} used of {Scenario.Capacity(c.First[i])}); {c}");
                }
            }
        }
    }

    internal static Task CreateCeAsync(BatchEngine engine, string name, HostCase[] hosts) =>
        engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = name,
            Type = CEType.UNMANAGED,
            Hosts = hosts.Select((h, i) => new HostSpec { HostName = Scenario.HostName(i), Vcpus = h.Vcpus, MemoryMiB = h.MemoryMiB, Architecture = h.Arm ? "arm64" : "x86_64" }).ToList(),
        });

    internal static Task CreateQueueAsync(BatchEngine engine, string name, int priority, params string[] ces) =>
        engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = name,
            Priority = priority,
            ComputeEnvironmentOrder = ces.Select((ce, i) => new ComputeEnvironmentOrder { Order = i + 1, ComputeEnvironment = ce }).ToList(),
        });
}
