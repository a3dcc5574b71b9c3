using System.Collections.Concurrent;
using BatchCore.Hosts;

namespace BatchCore.Tests.Hosts;

/// <summary>Records driver events and lets tests await them. The timeout is a hang guard, not a timed assertion.</summary>
public sealed class AttemptEventRecorder : IAttemptEventSink
{
    /// <summary>How long a test waits for an event before declaring the driver hung.</summary>
    public static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    private readonly ConcurrentDictionary<AttemptToken, Entry> _entries = new();

    /// <summary>Every event in arrival order: "started:N" or "exited:N".</summary>
    public ConcurrentQueue<string> Log { get; } = new();

    public void Started(AttemptToken token)
    {
        var entry = Get(token);
        Interlocked.Increment(ref entry.StartedCount);
        Log.Enqueue("started:" + token.Value);
        entry.StartedTcs.TrySetResult();
    }

    public void Started(AttemptToken token, string reattachHandle)
    {
        Get(token).Handle = reattachHandle;
        Started(token);
    }

    /// <summary>The re-attach handle the driver reported with Started, or null.</summary>
    public string? Handle(AttemptToken token) => Get(token).Handle;

    public void Exited(AttemptToken token, AttemptExit exit)
    {
        var entry = Get(token);
        Interlocked.Increment(ref entry.ExitedCount);
        Log.Enqueue("exited:" + token.Value);
        entry.ExitedTcs.TrySetResult(exit);
    }

    public int StartedCount(AttemptToken token) => Volatile.Read(ref Get(token).StartedCount);

    public int ExitedCount(AttemptToken token) => Volatile.Read(ref Get(token).ExitedCount);

    public async Task<AttemptExit> WaitExitedAsync(AttemptToken token)
    {
        try
        {
            return await Get(token).ExitedTcs.Task.WaitAsync(HangGuard);
        }
        catch (TimeoutException)
        {
            throw new Xunit.Sdk.XunitException($"attempt {token.Value} did not report Exited within {HangGuard} (driver hang)");
        }
    }

    public async Task WaitStartedAsync(AttemptToken token)
    {
        var entry = Get(token);
        var first = await Task.WhenAny(entry.StartedTcs.Task, entry.ExitedTcs.Task).WaitAsync(HangGuard);
        if (first != entry.StartedTcs.Task)
        {
            throw new Xunit.Sdk.XunitException($"attempt {token.Value} exited before it started: {entry.ExitedTcs.Task.Result}");
        }
    }

    private Entry Get(AttemptToken token) => _entries.GetOrAdd(token, static _ => new Entry());

    private sealed class Entry
    {
        public int StartedCount;
        public int ExitedCount;
        public volatile string? Handle;
        public readonly TaskCompletionSource StartedTcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly TaskCompletionSource<AttemptExit> ExitedTcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
