using BatchCore.Jobs;
using BatchCore.Placement;
using BatchCore.Telemetry;

namespace BatchCore.Dispatch;

/// <summary>
/// Virtual array children (<see cref="VirtualChildren"/>): a plain array on the engine's simulated EC2 hosts is spawned,
/// placed, run and ended by counts — one FIFO entry for its RUNNABLE children, one record per placement pass
/// (<see cref="Cohort"/>) for its running ones — and its children become objects only when something looks at one of
/// them. Placing 10,000 children on 10 hosts then costs 10 host updates and one timer, not 10,000 objects, 50,000 state
/// changes and 10,000 timers; the per-child path is unchanged and takes over wherever the virtual one does not apply.
/// </summary>
internal sealed partial class EngineCore
{
    /// <summary>Arrays that have virtual children now.</summary>
    private readonly HashSet<TopJob> _virtualParents = new(ReferenceEqualityComparer.Instance);
    private Action<TopJob>? _materialize;

    /// <summary>Virtual arrays now (tests).</summary>
    internal int VirtualArrayCount => _virtualParents.Count;

    /// <summary>How many of an array's children are virtual and RUNNABLE (tests).</summary>
    internal int VirtualRunnableChildren(string arrayJobId) =>
        _jobs.TryGetValue(arrayJobId, out var job) && job.Children?.Virtual is { } v ? v.RunnableTo - v.RunnableFrom : 0;

    /// <summary>Arrays spawned virtual so far (tests).</summary>
    internal int VirtualArraysSpawned { get; private set; }

    /// <summary>
    /// Whether <paramref name="parent"/>'s children can be kept without objects: nothing about any one child can differ
    /// from its siblings until it ends — no dependencies (N_TO_N, SEQUENTIAL or the parent's), no concurrency cap, no
    /// consumable resources, no timeout, no failing simulated attempts (so no retries), not Fargate (single-use hosts with
    /// a start delay), a FIFO queue — and nothing records each child as it goes: no journal, no state watchers, no
    /// simulator padding account. Replay rebuilds children from their records.
    /// </summary>
    private bool CanSpawnVirtual(TopJob parent)
    {
        var spec = parent.Spec;
        return _options.VirtualArrayChildren && !_replaying && _journal is null && _watchers.Count == 0 && _endedWatchers.Count == 0 && AskedRequests is null
            && spec.DependsOn.Count == 0 && parent.UnmetDependencies == 0 && !parent.DependencyFailed
            && spec.ArrayMaxConcurrency is null && spec.Consumables.Length == 0 && spec.TimeoutSeconds is null
            && spec.SimulatedFailingAttempts == 0 && !spec.Fargate && !parent.Queue.IsFairShare
            && parent.PendingCancelReason is null && !parent.IsCancelled && !parent.IsTerminated
            && spec.SimulatedRunTimeSeconds is >= 0 and < int.MaxValue / 1000.0;
    }

    /// <summary>
    /// SUBMITTED → PENDING → RUNNABLE for all <paramref name="n"/> children at once: the counts the per-child path would
    /// change, and the parent in the FIFO in their place.
    /// </summary>
    private void SpawnVirtual(TopJob parent, ArrayChildren children, int n)
    {
        var q = parent.Queue;
        var now = NowMs;
        children.Virtual = new VirtualChildren { RunnableFrom = 0, RunnableTo = n, RunnableSince = now };
        children.Materializer = _materialize ??= Materialize;
        _virtualParents.Add(parent);
        VirtualArraysSpawned++;
        parent.StatusSummary![(int)JobState.Runnable] += n;
        parent.StatusSummaryLastUpdatedAt = now;
        q.RunnableCount += n;
        parent.ReadyChildren += n;
        q.Fifo.PushBack(parent);
        _dirty = true;
        Telemetry.Submitted(parent, n);
    }

    /// <summary>
    /// The FIFO reached <paramref name="parent"/>, at position <paramref name="pos"/>, standing for its RUNNABLE virtual
    /// children: places as many as hosts of the queue's environments take, filling each host the strategy picks with as
    /// many as fit (BestFit and FirstFit: what placing them one at a time gives for identical jobs; Spread: one per pick).
    /// Returns true when the loop goes on past this entry (all placed, or the queue's cap reached); false when no host
    /// could take the next child the virtual way — then the child at <paramref name="pos"/> is an object (the array's
    /// head, or all of them for a host the engine does not simulate) for the per-child path, which provisions, explains
    /// and arms time limits.
    /// </summary>
    private bool PlaceVirtual(JobQueueState q, TopJob parent, int pos)
    {
        var children = parent.Children!;
        var v = children.Virtual!;
        if (BatchCoreTelemetry.TracesAttempts)
        {
            Materialize(parent); // each attempt gets its own activity: only an object can carry one
            return false;
        }

        var spec = parent.Spec;
        var req = spec.Request;
        var strategy = _options.PlacementStrategy;
        var spread = strategy == PlacementStrategy.Spread;
        var room = q.MaxRunning - q.RunningCount;
        Cohort? cohort = null;
        var foreign = false;
        var ces = q.ComputeEnvironments;
        // The environments in order, each until it has no host for one more child: identical children only use capacity
        // up, so one that had none for a child has none for the next (what TryPlace, trying them in order per child, finds).
        for (var i = 0; i < ces.Length && v.HasRunnable && (cohort?.Count ?? 0) < room; i++)
        {
            var ce = ces[i];
            if (ce.IsFargate != spec.Fargate || (spec.Architecture is not null && ce.Architecture is not null && spec.Architecture != ce.Architecture)
                || !ce.RunsKindOf(spec) || ce.MaxHostShape is not { } shape || !shape.Fits(req) || !ce.AcceptsPlacements)
            {
                continue; // TryPlace's filters
            }

            if (ce.IsFargate)
            {
                break; // single-use hosts: the per-child path
            }

            var stop = false;
            while (v.HasRunnable && (cohort?.Count ?? 0) < room)
            {
                var host = ce.IsManaged ? FindManagedHost(ce, spec, strategy) : ce.Index.Find(req, spec.Architecture, strategy);
                if (host is null)
                {
                    stop = ce.IsManaged; // a managed environment would launch an instance: the per-child path does
                    break;
                }

                if (!ReferenceEquals(host.Driver, _simulatedDriver))
                {
                    foreign = stop = true; // a real driver runs each attempt: the per-child path from here on
                    break;
                }

                // As many as fit (one for Spread, and no division when a second would not fit).
                var k = Math.Min(v.RunnableTo - v.RunnableFrom, room - (cohort?.Count ?? 0));
                var free = host.Free;
                k = spread || k == 1 || !(free - req).Fits(req) ? 1 : Math.Min(k, FitCount(free, req));
                cohort ??= new Cohort(parent, v.RunnableFrom, NowMs, _tokenSeq + 1);
                _tokenSeq += k;
                ReserveOnHost(host, req, k, long.MaxValue); // no timeout: busy until they end
                _simulatedAttempts += k;
                v.RunnableFrom += k;
                cohort.Add(host, k, v.RunnableTo - v.RunnableFrom + 1);
            }

            if (stop)
            {
                break;
            }
        }

        if (cohort is not null)
        {
            StartCohort(q, parent, v, cohort);
        }

        if (!v.HasRunnable)
        {
            q.Fifo.Remove(parent);
            DropVirtualIfEmpty(parent, v);
            return true;
        }

        if (foreign)
        {
            Materialize(parent);
            return false;
        }

        if (q.RunningCount >= q.MaxRunning)
        {
            return true;
        }

        var head = new Job(parent, v.RunnableFrom) { SubmitterContext = parent.SubmitterContext, RunnableSince = v.RunnableSince, State = JobState.Runnable };
        children.Set(v.RunnableFrom++, head);
        q.Fifo.InsertAt(pos, head);
        if (!v.HasRunnable)
        {
            q.Fifo.Remove(parent);
            DropVirtualIfEmpty(parent, v);
        }

        return false;
    }

    /// <summary>How many jobs of <paramref name="req"/> fit in <paramref name="free"/>.</summary>
    private static int FitCount(in ResourceVector free, in ResourceVector req)
    {
        var n = req.VcpuMilli > 0 ? free.VcpuMilli / req.VcpuMilli : int.MaxValue;
        n = req.MemoryMiB > 0 ? Math.Min(n, free.MemoryMiB / req.MemoryMiB) : n;
        return req.Gpus > 0 ? Math.Min(n, free.Gpus / req.Gpus) : n;
    }

    /// <summary>
    /// The cohort's children go RUNNABLE → STARTING → RUNNING now (no start delay on EC2 hosts, as
    /// <see cref="LaunchSimulated"/>): the queue, array and engine counts, telemetry, and one exit timer for all.
    /// </summary>
    private void StartCohort(JobQueueState q, TopJob parent, VirtualChildren v, Cohort cohort)
    {
        var k = cohort.Count;
        var now = cohort.StartedAt;
        var req = parent.Spec.Request;
        q.RunnableCount -= k;
        q.RunningCount += k;
        q.RunningVcpuMilli += (long)req.VcpuMilli * k;
        parent.ReadyChildren -= k;
        parent.RunningChildren += k;
        var summary = parent.StatusSummary!;
        summary[(int)JobState.Runnable] -= k;
        summary[(int)JobState.Running] += k;
        parent.StatusSummaryLastUpdatedAt = now;
        Statistics.Placements += k;
        Statistics.Started += k;
        if (!_journalClosed)
        {
            Telemetry.StartedMany(q, k, v.RunnableSince, parent.Children!.CreatedAt, now);
        }

        cohort.DueMs = now + (long)(parent.Spec.SimulatedRunTimeSeconds * 1000);
        // The timer sequence numbers the per-child path gives its k exit timers (one each, in index order): the cohort
        // fires at the first, and a materialized child gets its own, so simultaneous ends keep the per-child order.
        cohort.SeqBase = _timerSeq + 1;
        _timerSeq += k;
        cohort.TimerSeq = cohort.SeqBase;
        _timers.Enqueue(cohort, cohort.DueMs, cohort.SeqBase);
        v.Cohorts.Add(cohort);
        _dirty = true;
    }

    /// <summary>
    /// A cohort's run time is over: every child exits 0 and SUCCEEDS (its first attempt, a plain success), its host
    /// resources go back, and it is folded (<see cref="ArrayChildren.FoldVirtual"/>) as <see cref="OnTerminal"/> would
    /// fold it. The array ends when this was its last running child.
    /// </summary>
    private void OnCohortTimer(Cohort cohort)
    {
        cohort.TimerSeq = 0;
        var parent = cohort.Parent;
        var children = parent.Children!;
        var v = children.Virtual!;
        v.Cohorts.Remove(cohort);
        var now = NowMs;
        var spec = parent.Spec;
        var req = spec.Request;
        var q = parent.Queue;
        var ranFor = (int)(now - cohort.StartedAt);
        var o = 0;
        for (var r = 0; r < cohort.Runs; r++)
        {
            var host = cohort.Hosts[r];
            var end = cohort.RunEnds[r];
            var k = end - o;
            for (; o < end; o++)
            {
                children.FoldVirtual(cohort.First + o, host, cohort.StartedAt, ranFor);
            }

            _simulatedAttempts -= k;
            ReleaseOnHost(host, req, k, now);
        }

        cohort.Release();

        var n = cohort.Count;
        q.RunningVcpuMilli -= (long)req.VcpuMilli * n;
        q.RunningCount -= n;
        parent.RunningChildren -= n;
        var summary = parent.StatusSummary!;
        summary[(int)JobState.Running] -= n;
        summary[(int)JobState.Succeeded] += n;
        parent.StatusSummaryLastUpdatedAt = now;
        Statistics.Succeeded += n;
        if (!_journalClosed)
        {
            Telemetry.SucceededMany(q, n, cohort.StartedAt, now);
        }

        _capacityVersion++;
        _dirty = true;
        DropVirtualIfEmpty(parent, v);
        EndArrayIfDone(parent);
    }

    /// <summary>
    /// <paramref name="k"/> attempts of <paramref name="req"/> on <paramref name="host"/> ended (<see cref="ReleaseAttemptResources"/>
    /// for one, a cohort's end for a run of children): their capacity goes back to the host and its environment; an idle
    /// host is noted (scale-in), a single-use or draining one that is idle now removed.
    /// </summary>
    private void ReleaseOnHost(Host host, in ResourceVector req, int k, long now)
    {
        var ce = host.ComputeEnvironment;
        host.Free = host.Free + req.Times(k);
        host.RunningAttempts -= k;
        ce.UsedVcpuMilli -= (long)req.VcpuMilli * k;
        if (host.RunningAttempts == 0)
        {
            host.IdleSinceMs = now;
            host.DeclaredBusyUntilMs = 0;
        }

        if (host.SingleUse || (host.Draining && host.RunningAttempts == 0))
        {
            RemoveHost(host);
        }
        else
        {
            ce.Index.Update(host);
            if (host.RunningAttempts == 0 && ce.IsManaged)
            {
                ScheduleScaleIn(ce);
            }
        }
    }

    private void DropVirtualIfEmpty(TopJob parent, VirtualChildren v)
    {
        if (v.IsEmpty)
        {
            parent.Children!.Virtual = null;
            _virtualParents.Remove(parent);
        }
    }

    /// <summary>
    /// Every virtual child of <paramref name="parent"/> becomes the object the per-child path would have now: RUNNABLE
    /// ones in the FIFO in the parent's place, running ones on their hosts' attempt lists with their own exit timers (the
    /// cohort's timer goes stale). Called before anything looks at one child (<see cref="ArrayChildren"/>'s accessors) or
    /// at a host's attempts.
    /// </summary>
    private void Materialize(TopJob parent)
    {
        var children = parent.Children!;
        if (children.Virtual is not { } v)
        {
            return;
        }

        children.Virtual = null;
        _virtualParents.Remove(parent);
        var context = parent.SubmitterContext;
        if (v.HasRunnable)
        {
            var jobs = new Job[v.RunnableTo - v.RunnableFrom];
            for (var i = 0; i < jobs.Length; i++)
            {
                var index = v.RunnableFrom + i;
                var job = jobs[i] = new Job(parent, index) { SubmitterContext = context, RunnableSince = v.RunnableSince, State = JobState.Runnable };
                children.Set(index, job);
            }

            parent.Queue.Fifo.ReplaceWith(parent, jobs);
        }

        foreach (var cohort in v.Cohorts)
        {
            cohort.TimerSeq = 0;
            var o = 0;
            for (var r = 0; r < cohort.Runs; r++)
            {
                var host = cohort.Hosts[r];
                for (var end = cohort.RunEnds[r]; o < end; o++)
                {
                    var job = new Job(parent, cohort.First + o)
                    {
                        SubmitterContext = context,
                        State = JobState.Running,
                        ScheduledAt = cohort.StartedAt,
                        AttemptToken = cohort.TokenBase + o,
                        AttemptStartedAt = cohort.StartedAt,
                        StartedAt = cohort.StartedAt,
                        Host = host,
                    };
                    LinkOnHost(job, host);
                    children.Set(cohort.First + o, job);
                    job.SimTimerSeq = cohort.SeqBase + o;
                    _timers.Enqueue(job, cohort.DueMs, job.SimTimerSeq);
                }
            }

            cohort.Release();
        }
    }

    /// <summary>Materializes every virtual array (before a pass over hosts' attempts, a new watcher, a stop).</summary>
    private void MaterializeAll()
    {
        if (_virtualParents.Count == 0)
        {
            return;
        }

        foreach (var parent in _virtualParents.ToArray())
        {
            Materialize(parent);
        }
    }

    /// <summary>AWS: the array ends once every child has — FAILED if any failed or the array was cancelled or terminated.</summary>
    private void EndArrayIfDone(TopJob parent)
    {
        if (parent.State.IsTerminal())
        {
            return;
        }

        var summary = parent.StatusSummary!;
        if (summary[(int)JobState.Succeeded] + summary[(int)JobState.Failed] == parent.ArraySize)
        {
            // AWS: any child failure fails the parent; a cancelled or terminated parent is cancelled once all its
            // children have completed, even if the ones still running then succeeded.
            var failed = summary[(int)JobState.Failed] > 0 || parent.IsCancelled || parent.IsTerminated;
            parent.StoppedAt = NowMs;
            SetState(parent, failed ? JobState.Failed : JobState.Succeeded,
                failed ? (parent.StatusReason ?? "Array Child Job failed") : null);
        }
    }
}
