namespace BatchCore.Dispatch;

/// <summary>A clock that moves only when the scheduling loop moves it: the simulator's and the tests' time.</summary>
internal sealed class VirtualTimeProvider : TimeProvider
{
    private long _nowMs;

    public VirtualTimeProvider(DateTimeOffset start) => _nowMs = start.ToUnixTimeMilliseconds();

    public long NowMs => Volatile.Read(ref _nowMs);

    public override DateTimeOffset GetUtcNow() => DateTimeOffset.FromUnixTimeMilliseconds(NowMs);

    /// <summary>Moves the clock forward (never back).</summary>
    public void AdvanceTo(long ms)
    {
        if (ms > _nowMs)
        {
            Volatile.Write(ref _nowMs, ms);
        }
    }
}
