using BatchCore.Hosts;

namespace BatchCore.Benchmarks.Hosts;

/// <summary>
/// Runs <c>attempts</c> launches through a driver with at most <c>concurrency</c> running at once and waits for every
/// exit; any non-zero exit fails the run. Shared by the driver throughput benchmarks.
/// </summary>
internal static class DriverLoad
{
    private static readonly IReadOnlyDictionary<string, string> NoEnvironment = new Dictionary<string, string>();
    private static long s_nextToken;

    /// <summary>A launch of the benchmarks' trivial job: <paramref name="command"/>, 1 vCPU, <paramref name="memoryMiB"/>.</summary>
    public static AttemptLaunch Launch(IReadOnlyList<string> command, int memoryMiB = 256, string? image = null, bool reattachable = false) => new()
    {
        Token = new AttemptToken(Interlocked.Increment(ref s_nextToken)),
        JobId = "bench",
        Attempt = 1,
        JobDefinitionName = "bench",
        LogStreamName = "bench/default/x",
        Command = command,
        Image = image,
        Environment = NoEnvironment,
        Vcpus = 1,
        MemoryMiB = memoryMiB,
        HostName = "local",
        Reattachable = reattachable,
    };

    public static async Task RunAsync(HostDriver driver, int attempts, int concurrency, Func<AttemptLaunch> launch)
    {
        var sink = new CountingSink(attempts, concurrency);
        for (var i = 0; i < attempts; i++)
        {
            await sink.Slots.WaitAsync().ConfigureAwait(false);
            driver.Launch(launch(), sink);
        }

        await sink.AllExited.Task.ConfigureAwait(false);
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
