using BatchCore.Hosts;
using BatchCore.Hosts.Process;
using BatchCore.Logs;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using BatchCore.Benchmarks.Hosts;

namespace BatchCore.Benchmarks.Journal;

/// <summary>
/// What surviving an engine crash costs the process driver's launch path: <see cref="Attempts"/> trivial <c>echo</c>
/// jobs, <see cref="Concurrency"/> at a time, launched as without a journal (baseline: output through a pipe, the job
/// exec'd) and as with one (<see cref="AttemptLaunch.Reattachable"/>: a wrapper that waits, output to a tailed file,
/// exit code to a file, a handle with pid and start time).
/// Run: <c>dotnet run -c Release --project bench/BatchCore.Benchmarks -- --filter '*SurvivableLaunchBenchmarks*'</c>
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 5)]
public class SurvivableLaunchBenchmarks
{
    private const int Attempts = 200;
    private const int Concurrency = 2;
    private static readonly string[] EchoCommand = ["echo", "hello"];

    private ProcessHostDriver _driver = null!;

    /// <summary>Whether the driver enforces cgroup limits.</summary>
    [Params(false, true)]
    public bool Limits { get; set; }

    [GlobalSetup]
    public void Setup() =>
        _driver = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = new InMemoryLogStore(), EnableLimits = Limits });

    [GlobalCleanup]
    public void Cleanup() => _driver.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [Benchmark(Baseline = true, Description = "launch, no journal")]
    public Task Plain() => Run(reattachable: false);

    [Benchmark(Description = "launch, survivable (journal)")]
    public Task Survivable() => Run(reattachable: true);

    private Task Run(bool reattachable) =>
        DriverLoad.RunAsync(_driver, Attempts, Concurrency, () => DriverLoad.Launch(EchoCommand, reattachable: reattachable));
}
