namespace BatchCore.Dispatch;

/// <summary>What a timer does when it fires.</summary>
internal enum TimerKind : byte
{
    AttemptTimeout,
    QueueTimeLimit,
    HostReady,
    ScaleIn,
    SpotInterruption,
    Callback,
    Terminated,
    UpdateTimeout,
}

/// <summary>A timer on the loop's own timer queue (virtual or real time). Cancelled lazily.</summary>
internal sealed class TimerEntry
{
    public required TimerKind Kind { get; set; }
    public long DueMs { get; set; }
    public bool Cancelled { get; set; }
    public object? Target { get; init; }
    public long Token { get; init; }
    public int Value { get; set; }
    public Action? Callback { get; init; }
}
