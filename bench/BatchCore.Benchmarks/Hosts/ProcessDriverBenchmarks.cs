using BatchCore.Hosts;
using BatchCore.Hosts.Process;
using BatchCore.Logs;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CliWrap;

namespace BatchCore.Benchmarks.Hosts;

/// <summary>
/// Overhead of <see cref="ProcessHostDriver"/> over starting the same processes with CliWrap directly:
/// <see cref="Attempts"/> trivial <c>true</c> jobs, <see cref="Concurrency"/> at a time. With limits, each attempt also
/// creates, fills and removes its cgroups and starts through the <c>/bin/sh</c> join wrapper.
/// Run: <c>dotnet run -c Release --project bench/BatchCore.Benchmarks -- --filter '*ProcessDriverBenchmarks*'</c>
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2, iterationCount: 12)]
public class ProcessDriverBenchmarks
{
    private const int Attempts = 200;
    private const int Concurrency = 2;
    private static readonly string[] TrueCommand = ["true"];

    private ProcessHostDriver _driver = null!;

    /// <summary>Whether the driver enforces cgroup limits (false: plain processes, like the baseline).</summary>
    [Params(false, true)]
    public bool Limits { get; set; }

    [GlobalSetup]
    public void Setup() =>
        _driver = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = new InMemoryLogStore(), EnableLimits = Limits });

    [GlobalCleanup]
    public void Cleanup() => _driver.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [Benchmark(Baseline = true, Description = "CliWrap directly")]
    public async Task CliWrapLoop()
    {
        var workers = new Task[Concurrency];
        for (var w = 0; w < workers.Length; w++)
        {
            workers[w] = Task.Run(static async () =>
            {
                for (var i = 0; i < Attempts / Concurrency; i++)
                {
                    await Cli.Wrap("true").WithValidation(CommandResultValidation.None).ExecuteAsync();
                }
            });
        }

        await Task.WhenAll(workers);
    }

    [Benchmark(Description = "ProcessHostDriver")]
    public Task Driver() =>
        DriverLoad.RunAsync(_driver, Attempts, Concurrency, () => DriverLoad.Launch(TrueCommand));
}
