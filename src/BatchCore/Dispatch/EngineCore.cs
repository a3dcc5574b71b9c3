using System.Threading.Channels;
using BatchCore.Hosts;
using BatchCore.Jobs;
using BatchCore.Logs;
using BatchCore.Model;
using BatchCore.Provisioning;

namespace BatchCore.Dispatch;

/// <summary>
/// All scheduling state and the code that changes it. Only the scheduling loop calls into this class (single
/// writer), so nothing here takes a lock. Drivers report through <see cref="IAttemptEventSink"/>, which only writes
/// to a channel the loop drains.
/// </summary>
internal sealed partial class EngineCore : ISimulationScheduler, IAttemptEventSink
{
    private readonly BatchEngineOptions _options;
    private readonly TimeProvider _time;
    private readonly VirtualTimeProvider? _virtual;
    private Random _random;
    private Jobs.JobIdGenerator _ids;
    private readonly Channel<HostEvent> _events = Channel.CreateUnbounded<HostEvent>(new UnboundedChannelOptions { SingleReader = true });
    /// <summary>
    /// The loop's timers: a <see cref="TimerEntry"/>, or a <see cref="Job"/> for the start or exit of an attempt on the
    /// engine's own simulated hosts (no timer object per attempt; live while <see cref="Job.SimTimerSeq"/> equals the
    /// element's sequence number).
    /// </summary>
    private readonly TimerHeap _timers = new();
    private long _timerSeq;

    private readonly Dictionary<string, ComputeEnvironmentState> _ces = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JobQueueState> _queues = new(StringComparer.Ordinal);
    private readonly List<JobQueueState> _queuesByPriority = [];
    /// <summary>Revisions by name, revision N at N - 1; null where a deregistered revision was purged (its number is not reused).</summary>
    private readonly Dictionary<string, List<JobDefinition?>> _definitions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SchedulingPolicyState> _policies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ConsumableResourceState> _consumables = new(StringComparer.Ordinal);
    /// <summary>Top-level jobs by id. Array children are reached through their parent (<see cref="TryGetJob"/>).</summary>
    private readonly Dictionary<string, Job> _jobs = new(StringComparer.Ordinal);

    /// <summary>Finds a job or an array child (<c>parentId:index</c>) by id.</summary>
    private bool TryGetJob(string id, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Job? job)
    {
        if (_jobs.TryGetValue(id, out job))
        {
            return true;
        }

        var colon = id.LastIndexOf(':');
        if (colon > 0 && int.TryParse(id.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index) &&
            _jobs.TryGetValue(id[..colon], out var parent) && parent.Children is { } children && index < children.Count &&
            IsCanonicalIndex(id.AsSpan(colon + 1)))
        {
            job = children[index]; // a folded child: a read-only view
            _ = job.Id; // built now: a child found by id may get a waiter keyed by it (OnTerminal looks only if HasId)
            return true;
        }

        job = null;
        return false;
    }

    /// <summary>An index as a child id writes it: digits without leading zeros ("07" names no child).</summary>
    private static bool IsCanonicalIndex(ReadOnlySpan<char> digits) => digits.Length == 1 || digits[0] != '0';

    /// <summary>Every job, array children after their parent (folded children as read-only views).</summary>
    private IEnumerable<Job> AllJobsAndChildren()
    {
        foreach (var job in _jobs.Values)
        {
            yield return job;
            if (job.Children is { } children)
            {
                foreach (var child in children)
                {
                    yield return child;
                }
            }
        }
    }
    /// <summary>Running attempts by token, for drivers' events. Not those of the engine's own simulated hosts (<see cref="_simulatedAttempts"/>).</summary>
    private readonly Dictionary<long, Job> _attempts = [];
    private int _simulatedAttempts;
    private readonly List<Job> _submitted = [];
    private readonly Dictionary<string, HostDriver> _sharedDrivers = new(StringComparer.Ordinal);
    private readonly SimulatedHostDriver _simulatedDriver;
    private readonly List<HostProvider> _retiredProviders = [];
    private readonly SimulatedHostDriver _fargateDriver;

    private long _seq;
    private long _retrySeq;
    private long _tokenSeq;
    private int _hostSeq;
    private long _resourceOrder;
    private long _capacityVersion;
    private bool _dirty;
    private int _submittedCount;

    private readonly List<Channel<JobStateChange>> _watchers = [];
    /// <summary>Watchers of SUCCEEDED/FAILED only: the other transitions build no change for them.</summary>
    private readonly List<Channel<JobStateChange>> _endedWatchers = [];
    private readonly Dictionary<string, List<TaskCompletionSource<JobDetail>>> _waiters = new(StringComparer.Ordinal);

    public EngineCore(BatchEngineOptions options)
    {
        _options = options;
        if (options.VirtualTime)
        {
            _virtual = new VirtualTimeProvider(options.VirtualStart);
            _time = _virtual;
        }
        else
        {
            _time = options.TimeProvider;
        }

        _random = new Random(options.Seed);
        _ids = new Jobs.JobIdGenerator(options.Seed);
        Telemetry = new Telemetry.BatchCoreTelemetry(this, ReportUnexpected);
        Logs = options.LogStore ?? new InMemoryLogStore();
        Catalog = options.Provisioning.Catalog ?? InstanceCatalog.Default;
        _simulatedDriver = new SimulatedHostDriver(this);
        _fargateDriver = new SimulatedHostDriver(this, options.Provisioning.FargateStartTime);
    }

    public LogStore Logs { get; }
    public InstanceCatalog Catalog { get; }
    public BatchEngineOptions Options => _options;
    public TimeProvider Time => _time;
    public bool IsVirtual => _virtual is not null;
    public ChannelReader<HostEvent> EventReader => _events.Reader;
    public EngineStatistics Statistics { get; } = new();
    public Telemetry.BatchCoreTelemetry Telemetry { get; }

    /// <summary>Now, epoch ms, from the virtual or the injected clock (see <see cref="RealNowMs"/>).</summary>
    public long NowMs => _virtual?.NowMs ?? RealNowMs();

    /// <summary>How many reads of the real clock in a row may reuse its last value (see <see cref="RealNowMs"/>).</summary>
    internal const int ClockReuses = 31;

    private long _clockMs;
    private int _clockReusesLeft;

    /// <summary>
    /// The injected clock, read at most once per <see cref="ClockReuses"/> + 1 reads and at least once per loop turn
    /// (<see cref="RefreshClock"/>): a job's lifecycle asks for the time ~8 times, and on a VM the system clock costs
    /// ~25 ns a read (10,000 in-process no-op jobs spent 9 % of their CPU in <c>clock_gettime</c>). A reused value is
    /// at most 31 reads old — microseconds of loop work, far below the millisecond timestamps AWS reports.
    /// </summary>
    private long RealNowMs()
    {
        if (--_clockReusesLeft >= 0)
        {
            return _clockMs;
        }

        _clockReusesLeft = ClockReuses;
        return _clockMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
    }

    /// <summary>The loop starts a turn: the next <see cref="NowMs"/> reads the clock.</summary>
    public void RefreshClock() => _clockReusesLeft = 0;

    // ---- ISimulationScheduler: the loop's own timers -------------------------------------------------------------

    object ISimulationScheduler.Schedule(long dueMs, Action callback) =>
        AddTimer(new TimerEntry { Kind = TimerKind.Callback, DueMs = dueMs, Callback = callback });

    void ISimulationScheduler.Cancel(object handle) => ((TimerEntry)handle).Cancelled = true;

    public TimerEntry AddTimer(TimerEntry entry)
    {
        _timers.Enqueue(entry, entry.DueMs, ++_timerSeq);
        return entry;
    }

    /// <summary>Schedules the next step (start or exit) of a simulated attempt; replaces the job's previous timer.</summary>
    private void AddSimulatedTimer(Job job, long dueMs)
    {
        var seq = ++_timerSeq;
        job.SimTimerSeq = seq;
        _timers.Enqueue(job, dueMs, seq);
    }

    private static bool IsLive(object timer, long seq) =>
        timer is TimerEntry t ? !t.Cancelled : timer is Job job ? job.SimTimerSeq == seq : ((Cohort)timer).TimerSeq == seq;

    /// <summary>The due time of the next live timer, or null.</summary>
    public long? NextTimerDue()
    {
        while (_timers.TryPeek(out var t, out var due, out var seq))
        {
            if (IsLive(t, seq))
            {
                return due;
            }

            _timers.Dequeue();
        }

        return null;
    }

    /// <summary>Fires every timer due at or before <paramref name="nowMs"/>, in due order.</summary>
    public bool FireDueTimers(long nowMs)
    {
        var fired = false;
        while (_timers.TryPeek(out var t, out var due, out var seq) && due <= nowMs)
        {
            _timers.Dequeue();
            if (!IsLive(t, seq))
            {
                continue;
            }

            fired = true;
            if (t is TimerEntry entry)
            {
                Fire(entry);
            }
            else if (t is Job job)
            {
                OnSimulatedTimer(job);
            }
            else
            {
                OnCohortTimer((Cohort)t);
            }
        }

        return fired;
    }

    // ---- IAttemptEventSink: drivers report here, from any thread ----------------------------------------------------

    void IAttemptEventSink.Started(AttemptToken token) => _events.Writer.TryWrite(HostEvent.Started(token));

    void IAttemptEventSink.Started(AttemptToken token, string reattachHandle) => _events.Writer.TryWrite(HostEvent.Started(token, reattachHandle));

    void IAttemptEventSink.Exited(AttemptToken token, AttemptExit exit) => _events.Writer.TryWrite(HostEvent.Exited(token, exit));

    void IAttemptEventSink.StartedEarlier(AttemptToken token, long startedAgoMs) => _events.Writer.TryWrite(HostEvent.Started(token, null, startedAgoMs));

    void IAttemptEventSink.Ran(AttemptToken token, AttemptExit exit, long startedAgoMs) => _events.Writer.TryWrite(HostEvent.Ran(token, exit, startedAgoMs));

    /// <summary>Handles every event the drivers reported so far.</summary>
    public bool DrainEvents()
    {
        var any = false;
        while (_events.Reader.TryRead(out var e))
        {
            any = true;
            switch (e.Kind)
            {
                case HostEventKind.Started:
                    OnAttemptStarted(e.Token, e.Handle, e.StartedAgoMs);
                    break;
                case HostEventKind.Ran:
                    // One report, both transitions: STARTING → RUNNING (at its start time), then the exit.
                    OnAttemptStarted(e.Token, null, e.StartedAgoMs);
                    OnAttemptExited(e.Token, e.Exit);
                    break;
                case HostEventKind.Exited:
                case HostEventKind.ExitedHostFailure:
                    OnAttemptExited(e.Token, e.Exit);
                    break;
                case HostEventKind.SimulatedExited:
                    OnSimulatedExited(e.SimulatedJob, e.Token, e.Exit);
                    break;
                case HostEventKind.Membership:
                    OnMembershipChange(e.Membership);
                    break;
                default:
                    break;
            }
        }

        return any;
    }

    /// <summary>
    /// Virtual time: runs events, cycles and timers in time order until nothing is left or the clock would pass
    /// <paramref name="untilMs"/>. Deterministic: the same calls give the same result.
    /// </summary>
    public void RunVirtual(long untilMs)
    {
        var clock = _virtual ?? throw new InvalidOperationException("RunUntilIdle needs BatchEngineOptions.VirtualTime");
        while (true)
        {
            Settle();
            var next = NextTimerDue();
            if (next is null || next.Value > untilMs)
            {
                break;
            }

            clock.AdvanceTo(next.Value);
            FireDueTimers(next.Value);
        }

        if (untilMs != long.MaxValue)
        {
            clock.AdvanceTo(untilMs);
            Settle();
        }
    }

    /// <summary>Processes reported events and runs scheduling cycles until nothing changes.</summary>
    public void Settle()
    {
        for (var i = 0; i < 10_000; i++)
        {
            var any = DrainEvents();
            if (_dirty)
            {
                RunCycle();
                any = true;
            }

            if (!any)
            {
                if (_retentionSweepDue)
                {
                    _retentionSweepDue = false;
                    ForgetExpired();
                }

                return;
            }
        }
    }

    public bool Dirty => _dirty;

    /// <summary>After a failed cycle: wait for the next change instead of retrying the same cycle forever.</summary>
    public void ClearDirty() => _dirty = false;

    /// <summary>Set by StopAsync: no new placements from now on.</summary>
    public bool Stopping { get; set; }

    /// <summary>
    /// Set by <see cref="BatchEngine.StopTakingJobsAsync"/>: SubmitJob is refused and nothing new is placed; running
    /// attempts go on. Not journaled (a restarted engine takes jobs again).
    /// </summary>
    public bool Draining { get; set; }

    private void Fire(TimerEntry t)
    {
        switch (t.Kind)
        {
            case TimerKind.Callback:
                t.Callback!();
                break;
            case TimerKind.AttemptTimeout:
                OnAttemptTimeout((Job)t.Target!, t.Token);
                break;
            case TimerKind.QueueTimeLimit:
                OnQueueTimeLimit((JobQueueState)t.Target!, t.Token);
                break;
            case TimerKind.HostReady:
                OnHostReady((Placement.Host)t.Target!);
                break;
            case TimerKind.ScaleIn:
                OnScaleInCheck((ComputeEnvironmentState)t.Target!);
                break;
            case TimerKind.SpotInterruption:
                OnSpotInterruption((Placement.Host)t.Target!);
                break;
            case TimerKind.UpdateTimeout:
                OnUpdateTimeout((ComputeEnvironmentState)t.Target!);
                break;
            default:
                break;
        }
    }

    // ---- ids, ARNs -------------------------------------------------------------------------------------------------

    private string NewId()
    {
        var id = _ids.Next();
        return _jobs.ContainsKey(id) ? NewId() : id;
    }

    private string Arn(string kind, string name) =>
        $"arn:{BatchEngineDefaults.Partition(_options.Region)}:batch:{_options.Region}:{_options.AccountId}:{kind}/{name}";

    public string JobArn(string jobId) => JobArnPrefix + jobId;

    /// <summary><c>arn:partition:batch:region:account:job/</c>, formatted once.</summary>
    private string JobArnPrefix => field ??= Arn("job", "");

    private readonly Validation.Problems _submitProblems = new();

    /// <summary><c>arn:partition:batch:region:account:</c> of this engine's options, formatted once.</summary>
    private string OwnArnPrefix => field ??= Arn("", "")[..^1];

    /// <summary>
    /// Strips an ARN of this engine's kind to its name; returns the input when it is not such an ARN. An ARN of another
    /// partition, region or account names nothing here (AWS: another region's or account's resource is not this one's):
    /// it is returned whole, which no name matches (names hold no ':'), so the caller reports it as not existing, naming
    /// its field. Replay passes any: a journal may have been written by an engine with another region or account, and
    /// so may a job definition's reference (<paramref name="anyRegion"/>) that was accepted when it was registered.
    /// </summary>
    private string NameOf(string nameOrArn, string kind, bool anyRegion = false)
    {
        if (!nameOrArn.StartsWith("arn:", StringComparison.Ordinal))
        {
            return nameOrArn;
        }

        var marker = ":" + kind + "/";
        var i = nameOrArn.IndexOf(marker, StringComparison.Ordinal);
        if (i < 0)
        {
            return nameOrArn;
        }

        return anyRegion || _replaying || IsOwnArn(nameOrArn, i) ? nameOrArn[(i + marker.Length)..] : nameOrArn;
    }

    /// <summary>Whether <paramref name="arn"/>'s part before its resource (ending at <paramref name="kindAt"/>) is this engine's.</summary>
    private bool IsOwnArn(string arn, int kindAt) => arn.AsSpan(0, kindAt + 1).SequenceEqual(OwnArnPrefix);

    // ---- watchers ----------------------------------------------------------------------------------------------------

    public ChannelReader<JobStateChange> AddWatcher(int capacity, bool endedOnly = false)
    {
        var ch = Channel.CreateBounded<JobStateChange>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.DropOldest,
        });
        MaterializeAll(); // a watcher hears of every child's changes: each needs its object from now on
        (endedOnly ? _endedWatchers : _watchers).Add(ch);
        return ch.Reader;
    }

    public void RemoveWatcher(ChannelReader<JobStateChange> reader)
    {
        foreach (var list in (ReadOnlySpan<List<Channel<JobStateChange>>>)[_watchers, _endedWatchers])
        {
            for (var i = 0; i < list.Count; i++)
            {
                if (ReferenceEquals(list[i].Reader, reader))
                {
                    list[i].Writer.TryComplete();
                    list.RemoveAt(i);
                    return;
                }
            }
        }
    }

    public void CompleteWatchers()
    {
        foreach (var w in _watchers)
        {
            w.Writer.TryComplete();
        }

        foreach (var w in _endedWatchers)
        {
            w.Writer.TryComplete();
        }

        _watchers.Clear();
        _endedWatchers.Clear();
        foreach (var list in _waiters.Values)
        {
            foreach (var tcs in list)
            {
                tcs.TrySetException(new ObjectDisposedException(nameof(BatchEngine)));
            }
        }

        _waiters.Clear();
    }

    /// <summary>Forgets a waiter whose caller gave up (<see cref="BatchEngine.WaitForJobAsync"/> cancelled).</summary>
    public void RemoveWaiter(string jobId, Task<JobDetail> waiter)
    {
        if (_waiters.TryGetValue(jobId, out var list))
        {
            list.RemoveAll(t => ReferenceEquals(t.Task, waiter));
            if (list.Count == 0)
            {
                _waiters.Remove(jobId);
            }
        }
    }

    /// <summary>Waiters registered for a job (tests).</summary>
    internal int WaiterCount(string jobId) => _waiters.TryGetValue(jobId, out var list) ? list.Count : 0;

    public Task<JobDetail> AddWaiter(string jobId)
    {
        if (!TryGetJob(jobId, out var job))
        {
            throw new BatchClientException($"jobId {jobId} does not exist");
        }

        if (job.State.IsTerminal())
        {
            return Task.FromResult(Describe(job));
        }

        var tcs = new TaskCompletionSource<JobDetail>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_waiters.TryGetValue(jobId, out var list))
        {
            _waiters[jobId] = list = [];
        }

        list.Add(tcs);
        return tcs.Task;
    }

    /// <summary>
    /// Disposes every provider and driver, each whatever the others throw (reported, never thrown). With
    /// <paramref name="releaseReattached"/> (a failed start) each driver first lets go of the attempts it re-attached
    /// (<see cref="HostDriver.ReleaseReattachedAsync"/>), so that disposing it stops none of them.
    /// </summary>
    public async ValueTask DisposeDriversAsync(bool releaseReattached = false)
    {
        // Providers first: they stop discovering (and dispose the drivers they created; disposal is idempotent).
        foreach (var ce in _ces.Values)
        {
            if (ce.HostProvider is { } provider)
            {
                _retiredProviders.Add(provider);
            }
        }

        // Each is disposed whatever the others throw: one failing disposal must not leave another's processes running.
        foreach (var provider in _retiredProviders)
        {
            try
            {
                await provider.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                ReportUnexpected(e);
            }
        }

        // One driver instance may serve many hosts (and shared managed drivers): dispose each exactly once.
        var drivers = new HashSet<HostDriver>(ReferenceEqualityComparer.Instance);
        foreach (var ce in _ces.Values)
        {
            foreach (var h in ce.Hosts.Values)
            {
                drivers.Add(h.Driver);
            }
        }

        foreach (var d in _sharedDrivers.Values)
        {
            drivers.Add(d);
        }

        foreach (var job in _attempts.Values)
        {
            if (job.Host is { } h)
            {
                drivers.Add(h.Driver); // a deleted environment's host may still run an attempt
            }
        }

        foreach (var d in drivers)
        {
            if (d is not SimulatedHostDriver)
            {
                try
                {
                    if (releaseReattached)
                    {
                        // A release that throws skips the disposal: what the driver still follows is left running, not killed.
                        await d.ReleaseReattachedAsync().ConfigureAwait(false);
                    }

                    await d.DisposeAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    ReportUnexpected(e);
                }
            }
        }
    }

    /// <summary>The last unexpected error the engine survived (a bug in BatchCore or a driver), or null.</summary>
    public Exception? LastUnexpectedError => Volatile.Read(ref _lastUnexpectedError);

    private Exception? _lastUnexpectedError;

    /// <summary>An error the engine survived: kept in <see cref="LastUnexpectedError"/>, reported to <see cref="BatchEngineOptions.UnexpectedError"/>.</summary>
    public void ReportUnexpected(Exception e)
    {
        Volatile.Write(ref _lastUnexpectedError, e); // the loop's thread, or StopAsync's
        try
        {
            _options.UnexpectedError?.Invoke(e);
        }
        catch (Exception reportError) when (reportError is not OutOfMemoryException)
        {
            // the reporter's own failure must not kill the loop either
        }
    }

    /// <summary>
    /// Terminates every running attempt, with <paramref name="grace"/> or else the engine's termination grace period. A
    /// driver that throws is reported (<see cref="ReportUnexpected"/>, in TerminateAttempt) and the others are still terminated.
    /// </summary>
    public void TerminateAll(string reason, TimeSpan? grace = null)
    {
        // Every attempt is on its host's list (those of the engine's simulated hosts are in no map).
        MaterializeAll();
        var running = new List<Job>(_attempts.Values);
        foreach (var ce in _ces.Values)
        {
            foreach (var h in ce.Hosts.Values)
            {
                for (var j = h.FirstAttempt; j is not null; j = j.NextOnHost)
                {
                    if (!_attempts.ContainsKey(j.AttemptToken))
                    {
                        running.Add(j);
                    }
                }
            }
        }

        foreach (var job in running)
        {
            if (job.State is JobState.Starting or JobState.Running && job.Host is { } host
                && !(job.IsTerminated && IsEngineSimulated(host))) // a simulated attempt exited on the first terminate
            {
                job.TerminateReason ??= reason;
                job.IsTerminated = true;
                TerminateAttempt(job, grace ?? _options.TerminationGracePeriod); // a throwing driver is reported there
            }
        }
    }

    public int RunningAttempts => _attempts.Count + _simulatedAttempts;

    /// <summary>The attempts running on <paramref name="host"/> now (a copy: terminating them changes the list).</summary>
    private List<Job> AttemptsOn(Placement.Host host)
    {
        MaterializeAll(); // a virtual child on the host is on no list yet
        var list = new List<Job>(host.RunningAttempts);
        for (var j = host.FirstAttempt; j is not null; j = j.NextOnHost)
        {
            list.Add(j);
        }

        return list;
    }
}

/// <summary>Counters the engine keeps for reports and metrics.</summary>
public sealed class EngineStatistics
{
    public long Submitted { get; internal set; }
    public long Started { get; internal set; }
    public long Succeeded { get; internal set; }
    public long Failed { get; internal set; }
    public long Placements { get; internal set; }
    public long HostsLaunched { get; internal set; }
    public long HostsTerminated { get; internal set; }
    public long SpotInterruptions { get; internal set; }
}
