using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;

namespace BatchCore.Benchmarks.Dispatch;

/// <summary>
/// Submit → placement decision rate, EC2 profile: an UNMANAGED CE of <see cref="Hosts"/> simulated hosts sized to hold
/// all <see cref="Jobs"/> 1-vCPU jobs (long simulated run times, so every job stays placed). One invocation submits
/// 100,000 jobs as ten 10,000-child array jobs and waits until the loop placed them; the reported time is per job.
/// Plain array children are virtual (docs/architecture.md): placed by counts, a host at a time; the per-child path is
/// measured beside it.
/// Baseline: the same number of items through a bare <see cref="Channel{T}"/> (one writer, one reader).
/// Eight warm-up iterations: with two, the engine's first measured iterations still ran tier-0 code (at 100 hosts
/// 128, 88, 58 ms, then 26–45 ms per 100,000 jobs; 2026-11-25).
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 8, iterationCount: 10, invocationCount: 1)]
public class DispatchBenchmarks
{
    public const int Jobs = 100_000;

    private BatchEngine? _engine;

    [Params(100, 1_000, 10_000, 100_000)]
    public int Hosts { get; set; }

    [IterationSetup(Target = nameof(Ec2))]
    public void SetupEngine() => _engine = DispatchSetup.Ec2(Hosts, Jobs);

    [IterationSetup(Target = nameof(Ec2PerChild))]
    public void SetupPerChildEngine() => _engine = DispatchSetup.Ec2(Hosts, Jobs, options: new BatchEngineOptions { VirtualArrayChildren = false });

    [IterationCleanup(Targets = [nameof(Ec2), nameof(Ec2PerChild)])]
    public void Cleanup()
    {
        _engine!.StopAsync(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
        _engine = null;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Jobs, Description = "Channel<T> hand-off")]
    public Task<long> ChannelHandoff() => ChannelBaseline.RunAsync(Jobs);

    /// <summary>
    /// The floor for any engine that keeps one object per running job: the same hand-off, but the reader keeps every item
    /// (an object the size of the engine's per-child <c>Job</c>, 128 B) on one of <see cref="Hosts"/> intrusive lists
    /// until the invocation ends, as the engine keeps a placed job on its host. Not a target: the measure of what
    /// retaining costs on this machine (collection of young survivors and first-touch pages), against which the
    /// engine's own work is what is left.
    /// </summary>
    [Benchmark(OperationsPerInvoke = Jobs, Description = "Channel<T> hand-off, 128 B kept per item")]
    public Task<long> ChannelRetaining() => ChannelBaseline.RunRetainingAsync(Jobs, Hosts);

    /// <summary>The engine as it runs: the arrays' children are virtual (placed by counts, no object per child).</summary>
    [Benchmark(OperationsPerInvoke = Jobs, Description = "EC2 submit→placed")]
    public async Task<long> Ec2()
    {
        await DispatchSetup.SubmitArraysAsync(_engine!, Jobs);
        var placed = await DispatchSetup.SettleAsync(_engine!);
        return placed == Jobs ? placed : throw new InvalidOperationException($"placed {placed} of {Jobs}");
    }

    /// <summary>
    /// The same with virtual children off: every child an object, placed one at a time (the path arrays that can differ
    /// per child take, and every array before the fifteenth session). A reference, not a target.
    /// </summary>
    [Benchmark(OperationsPerInvoke = Jobs, Description = "EC2 submit→placed, object per child")]
    public Task<long> Ec2PerChild() => Ec2();
}

/// <summary>
/// Fargate profile: a MANAGED FARGATE CE launches one single-use host per job. Same 100,000 jobs per invocation.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 8, iterationCount: 10, invocationCount: 1)]
public class FargateDispatchBenchmarks
{
    public const int Jobs = 100_000;

    private BatchEngine? _engine;

    [IterationSetup(Target = nameof(Fargate))]
    public void SetupEngine() => _engine = DispatchSetup.Fargate(Jobs);

    [IterationCleanup(Target = nameof(Fargate))]
    public void Cleanup()
    {
        _engine!.StopAsync(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
        _engine = null;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Jobs, Description = "Channel<T> hand-off")]
    public Task<long> ChannelHandoff() => ChannelBaseline.RunAsync(Jobs);

    [Benchmark(OperationsPerInvoke = Jobs, Description = "Fargate submit→placed")]
    public async Task<long> Fargate()
    {
        await DispatchSetup.SubmitArraysAsync(_engine!, Jobs);
        var placed = await DispatchSetup.SettleAsync(_engine!);
        return placed == Jobs ? placed : throw new InvalidOperationException($"placed {placed} of {Jobs}");
    }
}

/// <summary>The floor: items through an unbounded single-reader channel, written by one task and read by another.</summary>
internal static class ChannelBaseline
{
    private sealed class Item
    {
        public long Value;
    }

    public static async Task<long> RunAsync(int n)
    {
        var channel = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var reader = Task.Run(async () =>
        {
            long sum = 0;
            var r = channel.Reader;
            while (await r.WaitToReadAsync().ConfigureAwait(false))
            {
                while (r.TryRead(out var item))
                {
                    sum += item.Value;
                }
            }

            return sum;
        });
        var w = channel.Writer;
        for (var i = 0; i < n; i++)
        {
            w.TryWrite(new Item { Value = i });
        }

        w.Complete();
        return await reader.ConfigureAwait(false);
    }

    /// <summary>128 bytes on 64-bit (16 B header, two references, a long and 88 B of fields): the size of an array child's Job.</summary>
    private sealed class Kept
    {
        public Kept? Next;
        public object? Owner;
        public long Value;
        public Fields Rest;
    }

    [System.Runtime.CompilerServices.InlineArray(11)]
    private struct Fields
    {
        private long _element;
    }

    /// <summary>
    /// <see cref="RunAsync"/> where the reader links every item into one of <paramref name="lists"/> lists and keeps it to
    /// the end (see <see cref="DispatchBenchmarks.ChannelRetaining"/>).
    /// </summary>
    public static async Task<long> RunRetainingAsync(int n, int lists)
    {
        var channel = Channel.CreateUnbounded<Kept>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var heads = new Kept?[lists];
        var reader = Task.Run(async () =>
        {
            long sum = 0;
            var r = channel.Reader;
            var next = 0;
            while (await r.WaitToReadAsync().ConfigureAwait(false))
            {
                while (r.TryRead(out var item))
                {
                    sum += item.Value;
                    item.Owner = heads;
                    item.Rest[0] = sum;
                    item.Next = heads[next];
                    heads[next] = item;
                    next = next + 1 == heads.Length ? 0 : next + 1;
                }
            }

            return sum;
        });
        var w = channel.Writer;
        for (var i = 0; i < n; i++)
        {
            w.TryWrite(new Kept { Value = i });
        }

        w.Complete();
        var total = await reader.ConfigureAwait(false);
        GC.KeepAlive(heads);
        return total;
    }
}
