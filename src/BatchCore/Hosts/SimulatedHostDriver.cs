using System.Collections.Concurrent;

namespace BatchCore.Hosts;

/// <summary>Schedules callbacks on a clock; the engine's loop timers in the engine, a TimeProvider standalone.</summary>
public interface ISimulationScheduler
{
    /// <summary>Now, in epoch milliseconds.</summary>
    long NowMs { get; }

    /// <summary>Runs <paramref name="callback"/> at <paramref name="dueMs"/>; returns a handle for <see cref="Cancel"/>.</summary>
    object Schedule(long dueMs, Action callback);

    /// <summary>Cancels a scheduled callback; does nothing if it ran already.</summary>
    void Cancel(object handle);
}

/// <summary>
/// Runs attempts without running anything: each attempt "runs" for <see cref="AttemptLaunch.SimulatedRunTime"/> and
/// exits with <see cref="AttemptLaunch.SimulatedExitCode"/>. Under the engine's virtual clock this is what makes the
/// simulator replay a day of a cluster in seconds.
/// </summary>
public sealed class SimulatedHostDriver : HostDriver
{
    private readonly ISimulationScheduler _scheduler;
    private readonly TimeSpan _startDelay;
    private readonly ConcurrentDictionary<long, Running> _running = new();

    /// <summary>Creates the driver on a scheduler.</summary>
    /// <param name="scheduler">Where time comes from.</param>
    /// <param name="startDelay">Time from launch to RUNNING (e.g. Fargate's ~30 s). The default is zero.</param>
    public SimulatedHostDriver(ISimulationScheduler scheduler, TimeSpan startDelay = default)
    {
        _scheduler = scheduler;
        _startDelay = startDelay;
    }

    /// <inheritdoc />
    public override string Kind => "simulated";

    /// <inheritdoc />
    public override void Launch(AttemptLaunch launch, IAttemptEventSink sink)
    {
        var token = launch.Token;
        var run = new Running(sink);
        _running[token.Value] = run;
        var startAt = _scheduler.NowMs + (long)_startDelay.TotalMilliseconds;
        var runMs = (long)(launch.SimulatedRunTime ?? TimeSpan.Zero).TotalMilliseconds;
        var code = launch.SimulatedExitCode;
        run.Handle = _scheduler.Schedule(startAt, () =>
        {
            run.Started = true;
            sink.Started(token);
            run.Handle = _scheduler.Schedule(startAt + runMs, () => Finish(token, new AttemptExit(code)));
        });
    }

    /// <inheritdoc />
    public override void Terminate(AttemptToken token, TimeSpan gracePeriod)
    {
        if (_running.TryGetValue(token.Value, out var run) && run.Handle is { } h)
        {
            _scheduler.Cancel(h);
            // A simulated job exits on SIGTERM at once: 143 = 128 + SIGTERM.
            Finish(token, new AttemptExit(run.Started ? 143 : null, run.Started ? null : "Terminated before it started"));
        }
    }

    private void Finish(AttemptToken token, AttemptExit exit)
    {
        if (_running.TryRemove(token.Value, out var run))
        {
            run.Sink.Exited(token, exit);
        }
    }

    /// <summary>Attempts currently launched and not exited.</summary>
    public int RunningCount => _running.Count;

    private sealed class Running(IAttemptEventSink sink)
    {
        public IAttemptEventSink Sink { get; } = sink;
        public object? Handle { get; set; }
        public bool Started { get; set; }
    }
}
