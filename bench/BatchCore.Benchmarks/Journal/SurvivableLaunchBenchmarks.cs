using BatchCore.Hosts;
using BatchCore.Hosts.Process;
using BatchCore.Logs;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;

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
    private static readonly IReadOnlyDictionary<string, string> NoEnvironment = new Dictionary<string, string>();
    private static readonly string[] EchoCommand = ["echo", "hello"];

    private ProcessHostDriver _driver = null!;
    private long _nextToken;

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

    private async Task Run(bool reattachable)
    {
        var sink = new CountingSink(Attempts, Concurrency);
        for (var i = 0; i < Attempts; i++)
        {
            await sink.Slots.WaitAsync();
            var token = new AttemptToken(Interlocked.Increment(ref _nextToken));
            _driver.Launch(new AttemptLaunch
            {
                Token = token,
                JobId = "bench",
                Attempt = 1,
                JobDefinitionName = "bench",
                LogStreamName = "bench/default/x",
                Command = EchoCommand,
                Environment = NoEnvironment,
                Vcpus = 1,
                MemoryMiB = 256,
                HostName = "local",
                Reattachable = reattachable,
            }, sink);
        }

        await sink.AllExited.Task;
    }

    private sealed class CountingSink(int attempts, int concurrency) : IAttemptEventSink
    {
        private int _remaining = attempts;

        public SemaphoreSlim Slots { get; } = new(concurrency, concurrency);

        public TaskCompletionSource AllExited { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Started(AttemptToken token)
        {
        }

        public void Exited(AttemptToken token, AttemptExit exit)
        {
            if (exit.ExitCode != 0)
            {
                AllExited.TrySetException(new InvalidOperationException($"attempt {token.Value} failed: {exit}"));
            }

            Slots.Release();
            if (Interlocked.Decrement(ref _remaining) == 0)
            {
                AllExited.TrySetResult();
            }
        }
    }
}
