using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;

namespace BatchCore.Benchmarks.Dispatch;

/// <summary>
/// Submit → placement decision rate, EC2 profile: an UNMANAGED CE of <see cref="Hosts"/> simulated hosts sized to hold
/// all <see cref="Jobs"/> 1-vCPU jobs (long simulated run times, so every job stays placed). One invocation submits
/// 100,000 jobs as ten 10,000-child array jobs and waits until the loop placed them; the reported time is per job.
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

    [IterationCleanup(Target = nameof(Ec2))]
    public void Cleanup()
    {
        _engine!.StopAsync(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
        _engine = null;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Jobs, Description = "Channel<T> hand-off")]
    public Task<long> ChannelHandoff() => ChannelBaseline.RunAsync(Jobs);

    [Benchmark(OperationsPerInvoke = Jobs, Description = "EC2 submit→placed")]
    public async Task<long> Ec2()
    {
        await DispatchSetup.SubmitArraysAsync(_engine!, Jobs);
        var placed = await DispatchSetup.SettleAsync(_engine!);
        return placed == Jobs ? placed : throw new InvalidOperationException($"placed {placed} of {Jobs}");
    }
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
}
