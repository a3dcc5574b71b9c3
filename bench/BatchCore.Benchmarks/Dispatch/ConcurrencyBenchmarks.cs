using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;

namespace BatchCore.Benchmarks.Dispatch;

/// <summary>
/// 1,000,000 jobs at once: submitted as 100 array jobs of 10,000 and either all placed and running (1,000 hosts of
/// 1,000 vCPUs, long simulated run times) or all queued (no host fits them: they stay RUNNABLE). Allocated bytes per
/// job come from the MemoryDiagnoser; retained bytes per job from <c>memory-report</c>. Baseline: the same number of
/// items through a bare channel.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 0, iterationCount: 3, invocationCount: 1)]
public class ConcurrencyBenchmarks
{
    public const int Jobs = 1_000_000;

    private BatchEngine? _engine;

    [IterationSetup(Target = nameof(Running))]
    public void SetupRunning() => _engine = DispatchSetup.Ec2(1_000, Jobs);

    [IterationSetup(Target = nameof(Queued))]
    public void SetupQueued() => _engine = DispatchSetup.Ec2(1, Jobs, capacity: false);

    [IterationCleanup(Targets = [nameof(Running), nameof(Queued)])]
    public void Cleanup()
    {
        _engine!.StopAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        _engine = null;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Jobs, Description = "Channel<T> hand-off")]
    public Task<long> ChannelHandoff() => ChannelBaseline.RunAsync(Jobs);

    [Benchmark(OperationsPerInvoke = Jobs, Description = "1M running")]
    public async Task<long> Running()
    {
        await DispatchSetup.SubmitArraysAsync(_engine!, Jobs);
        return await DispatchSetup.SettleAsync(_engine!);
    }

    [Benchmark(OperationsPerInvoke = Jobs, Description = "1M queued")]
    public async Task<long> Queued()
    {
        await DispatchSetup.SubmitArraysAsync(_engine!, Jobs);
        return await DispatchSetup.SettleAsync(_engine!);
    }
}
