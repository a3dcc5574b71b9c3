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
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 5)]
public class ProcessDriverBenchmarks
{
    private const int Attempts = 200;
    private const int Concurrency = 2;
    private static readonly IReadOnlyDictionary<string, string> NoEnvironment = new Dictionary<string, string>();
    private static readonly string[] TrueCommand = ["true"];

    private ProcessHostDriver _driver = null!;
    private long _nextToken;

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
    public async Task Driver()
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
                Command = TrueCommand,
                Environment = NoEnvironment,
                Vcpus = 1,
                MemoryMiB = 256,
                HostName = "local",
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
