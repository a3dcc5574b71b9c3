using BatchCore.Hosts;

namespace BatchCore.Dispatch;

/// <summary>
/// What a driver (or a host provider) reported: a 32-byte struct, so the event channel allocates nothing per attempt
/// event beyond its queue slots. Rare parts (a re-attach handle, an exit reason, a host change, the job of a terminated
/// simulated attempt) share one reference.
/// </summary>
internal readonly struct HostEvent
{
    private const int NoCode = int.MinValue;
    private readonly object? _extra;
    private readonly int _code;
    private readonly int _agoMs;

    private HostEvent(HostEventKind kind, long token, int? code, object? extra, long agoMs = 0)
    {
        Kind = kind;
        Token = token;
        _code = code ?? NoCode;
        _extra = extra;
        _agoMs = (int)Math.Clamp(agoMs, 0, int.MaxValue);
    }

    /// <summary>Started and Ran: how many milliseconds before the report the attempt started (0: at the report).</summary>
    public long StartedAgoMs => _agoMs;

    public HostEventKind Kind { get; }

    public long Token { get; }

    /// <summary>Started: the driver's re-attach handle of the attempt (journaled), or null.</summary>
    public string? Handle => _extra as string;

    /// <summary>Exited: how the attempt ended.</summary>
    public AttemptExit Exit => new(_code == NoCode ? null : _code, _extra as string, Kind == HostEventKind.ExitedHostFailure);

    public MembershipChange Membership => (MembershipChange)_extra!;

    /// <summary>SimulatedExited: the job whose simulated attempt was terminated (not in the attempt map).</summary>
    public Jobs.Job SimulatedJob => (Jobs.Job)_extra!;

    public static HostEvent Started(AttemptToken token, string? handle = null, long agoMs = 0) => new(HostEventKind.Started, token.Value, null, handle, agoMs);

    /// <summary>Started <paramref name="agoMs"/> ago and already ended (never a host failure).</summary>
    public static HostEvent Ran(AttemptToken token, AttemptExit exit, long agoMs) => new(HostEventKind.Ran, token.Value, exit.ExitCode, exit.Reason, agoMs);

    public static HostEvent Exited(AttemptToken token, AttemptExit exit) =>
        new(exit.HostFailure ? HostEventKind.ExitedHostFailure : HostEventKind.Exited, token.Value, exit.ExitCode, exit.Reason);

    public static HostEvent HostChange(MembershipChange change) => new(HostEventKind.Membership, 0, null, change);

    /// <summary>A terminated simulated attempt: 143 when it was running, else no exit code (it never started).</summary>
    public static HostEvent SimulatedExited(Jobs.Job job, long token, bool started) => new(HostEventKind.SimulatedExited, token, started ? 143 : null, job);
}

internal enum HostEventKind : byte
{
    Started,
    Ran,
    Exited,
    ExitedHostFailure,
    Membership,
    SimulatedExited,
}

/// <summary>A host provider's report: <see cref="Available"/> joins the CE, else <see cref="LostHost"/> leaves it.</summary>
internal sealed record MembershipChange(ComputeEnvironmentState ComputeEnvironment, ProvidedHost? Available, string? LostHost, string? Reason);
