using System.Globalization;
using BatchCore.Hosts;
using BatchCore.Jobs;
using BatchCore.Model;

namespace BatchCore.Dispatch;

internal sealed partial class EngineCore
{
    /// <summary>
    /// The one place a job changes state: keeps counts (queue, share, array summary) and tells watchers.
    /// Every transition of the AWS table goes through here.
    /// </summary>
    private void SetState(Job job, JobState next, string? reason, bool initial = false)
    {
        var prev = job.State;
        if (!initial)
        {
            System.Diagnostics.Debug.Assert(!prev.IsTerminal(), "terminal states are absorbing");
            if (prev == next)
            {
                return;
            }
        }

        job.State = next;
        var now = NowMs; // once per transition: the real clock costs a system call
        _dirty = true; // a job that left a queue or ended can unblock others
        // A job that starts an attempt drops what it waited with (a RUNNABLE job's CAPACITY:/MISCONFIGURATION: reason, the
        // last attempt's end): a RUNNING job that still said it lacked capacity would trip alerts keyed on those reasons.
        if (reason is not null || next == JobState.Starting)
        {
            job.StatusReason = reason;
        }

        var q = job.Queue;
        if (!initial)
        {
            Count(q, prev, -1, job);
        }

        Count(q, next, +1, job);
        if (job.Parent is { } parent && parent.StatusSummary is { } summary)
        {
            if (!initial)
            {
                summary[(int)prev]--;
            }

            summary[(int)next]++;
            parent.StatusSummaryLastUpdatedAt = now;
        }

        if (next.IsTerminal())
        {
            job.StoppedAt ??= now; // before the journal record, which carries it
            if (prev is not (JobState.Starting or JobState.Running) || initial)
            {
                job.ScheduledAt = null; // ended waiting: not placed since it was last RUNNABLE (the field held that time)
            }
        }

        if (!initial)
        {
            // A replayed change was counted by the run that made it; one after the journal closed is counted by the restart.
            if ((!_replaying || _newDuringReplay) && !_journalClosed)
            {
                Telemetry.Transition(job, prev, next, now);
            }

            if (next == JobState.Starting)
            {
                // Placed (AWS's scheduledAt): after the telemetry, which reads how long the job was RUNNABLE from the same
                // field, and before the record, which carries it. Re-attach sets the recorded one instead.
                job.ScheduledAt = now;
            }

            JournalState(job);
        }

        if (_watchers.Count > 0 || (_endedWatchers.Count > 0 && next.IsTerminal()))
        {
            var change = new JobStateChange(job.Id, job.Name, next.ToAws(), initial ? next.ToAws() : prev.ToAws(), job.StatusReason, now);
            foreach (var w in _watchers)
            {
                w.Writer.TryWrite(change);
            }

            if (next.IsTerminal())
            {
                foreach (var w in _endedWatchers)
                {
                    w.Writer.TryWrite(change);
                }
            }
        }

        if (next.IsTerminal())
        {
            OnTerminal(job);
        }
    }

    private void Count(JobQueueState q, JobState state, int delta, Job job)
    {
        switch (state)
        {
            case JobState.Submitted:
                _submittedCount += delta;
                break;
            case JobState.Runnable:
                q.RunnableCount += delta;
                break;
            case JobState.Starting:
            case JobState.Running:
                q.RunningCount += delta;
                break;
            default:
                break;
        }

        if (q.IsFairShare && job.Spec.ShareIdentifier is { } sid && !job.IsArrayParent && state <= JobState.Running)
        {
            ShareOf(q, sid).ActiveJobs += delta;
        }
    }

    private ShareState ShareOf(JobQueueState q, string id)
    {
        if (!q.Shares.TryGetValue(id, out var s))
        {
            q.Shares[id] = s = new ShareState(id, q.Policy!.WeightOf(id));
        }

        return s;
    }

    // ---- phase 1: SUBMITTED jobs are evaluated ----------------------------------------------------------------------

    private void EvaluateSubmitted()
    {
        if (_submitted.Count == 0)
        {
            return;
        }

        // Index loop: evaluating a job can't submit new ones, but keep it robust.
        for (var i = 0; i < _submitted.Count; i++)
        {
            var job = _submitted[i];
            if (job.State != JobState.Submitted)
            {
                continue; // cancelled before evaluation
            }

            // Not on replay: the journal's state records carry what happened (an older journal may hold jobs that ran).
            if (!_replaying && job.Spec.PropagateTags == true && PropagatedTagCount(job) is var tags && tags > _options.Quotas.MaxTags)
            {
                // AWS: more than 50 tags once the job's and its definition's are combined moves the job to FAILED.
                SetState(job, JobState.Pending, null);
                SetState(job, JobState.Failed, string.Create(CultureInfo.InvariantCulture,
                    $"propagateTags: the job's and its job definition's tags together are {tags}, more than {_options.Quotas.MaxTags}"));
                continue;
            }

            if (job.ArraySize > 0)
            {
                SpawnChildren(job);
            }
            else
            {
                Release(job);
            }
        }

        _submitted.Clear();
    }

    /// <summary>SUBMITTED → PENDING (waits on dependencies) or RUNNABLE, or FAILED if a dependency failed.</summary>
    private void Release(Job job)
    {
        if (job.DependencyFailed)
        {
            if (job.State == JobState.Submitted)
            {
                SetState(job, JobState.Pending, null);
            }

            SetState(job, JobState.Failed, job.PendingCancelReason ?? StatusReasons.DependentJobFailed);
            return;
        }

        if (job.UnmetDependencies > 0)
        {
            SetState(job, JobState.Pending, null);
            return;
        }

        if (job.PendingCancelReason is { } cancel)
        {
            if (job.State == JobState.Submitted)
            {
                SetState(job, JobState.Pending, null);
            }

            job.IsCancelled = true;
            SetState(job, JobState.Failed, cancel);
            return;
        }

        MakeRunnable(job, front: false);
    }

    private void SpawnChildren(Job job)
    {
        var parent = (TopJob)job; // an array job is a top-level job
        var n = parent.ArraySize;
        parent.StatusSummary = new int[7];
        parent.StatusSummaryLastUpdatedAt = NowMs;
        var now = _replaying ? parent.CreatedAt : NowMs; // replay: children were spawned in the cycle after the submit
        var children = parent.Children = new ArrayChildren(parent, n, now);
        // Every N_TO_N dependency (up to 20): child i waits for child i of each (AWS: "each dependency").
        List<(Job Dep, bool Any)>? nToN = null;
        var sequential = false;
        var sequentialAny = false;
        foreach (var d in parent.Spec.DependsOn)
        {
            if (d.Type == ArrayJobDependency.N_TO_N && d.JobId is not null)
            {
                if (TryGetJob(d.JobId, out var dep))
                {
                    (nToN ??= []).Add((dep, d.Extensions?.Condition == "ANY"));
                }
            }
            else if (d.Type == ArrayJobDependency.SEQUENTIAL)
            {
                sequential = true;
                sequentialAny = d.Extensions?.Condition == "ANY";
            }
        }

        // An N_TO_N dependency that ended without ever creating children (cancelled while SUBMITTED) has no child i for
        // child i to wait on: it failed, so the dependency has failed for every child (unless ANY, which any end meets).
        // Not on replay: the children's records say how they ended (a journal older than this rule has them run).
        foreach (var (dep, any) in nToN ?? [])
        {
            if (!_replaying && dep is { Children: null } && dep.State == JobState.Failed && !any)
            {
                parent.DependencyFailed = true;
            }
        }

        // The parent is PENDING while it has children to run (AWS).
        SetState(parent, JobState.Pending, null);
        parent.ChildrenGated = parent.UnmetDependencies > 0 || parent.DependencyFailed;
        if (CanSpawnVirtual(parent))
        {
            SpawnVirtual(parent, children, n); // no object per child until one is looked at (EngineCore.Cohorts.cs)
            return;
        }

        for (var i = 0; i < n; i++)
        {
            var child = new Job(parent, i)
            {
                SubmitterContext = parent.SubmitterContext,
            };
            children.Set(i, child); // found by id through the parent (TryGetJob), and listed through it: no table entry of its own
            SetState(child, JobState.Pending, null, initial: true);
            if (parent.ChildrenGated)
            {
                child.UnmetDependencies++;
            }

            if (nToN is not null) // (not `nToN ?? []`: that builds an empty list per child)
            {
                foreach (var (dep, any) in nToN)
                {
                    if (dep.Children is { } depChildren && i < depChildren.Count)
                    {
                        WireDependency(child, depChildren[i], any); // a folded child has ended: its view is enough
                    }
                }
            }

            if (sequential && i > 0)
            {
                WireDependency(child, children.LiveAt(i - 1)!, sequentialAny);
            }
        }

        if (!_replaying)
        {
            Telemetry.Submitted(parent, n);
        }
        if (parent.DependencyFailed)
        {
            FailGatedChildren(parent, parent.PendingCancelReason ?? StatusReasons.DependentJobFailed);
            return;
        }

        foreach (var child in children.Live)
        {
            if (child.State == JobState.Pending && child.UnmetDependencies == 0)
            {
                Release(child);
            }
            else if (child.DependencyFailed && child.State == JobState.Pending)
            {
                SetState(child, JobState.Failed, StatusReasons.DependentJobFailed);
            }
        }
    }

    private void FailGatedChildren(Job parent, string reason)
    {
        foreach (var child in parent.Children!.Live)
        {
            if (child.State.IsBeforeStarting())
            {
                RemoveFromReady(child);
                SetState(child, JobState.Failed, reason);
            }
        }
    }

    private void MakeRunnable(Job job, bool front)
    {
        job.RunnableSince = NowMs;
        job.HeadSince = -1;
        if (front)
        {
            job.Seq = -(++_retrySeq);
        }

        SetState(job, JobState.Runnable, null);
        Enqueue(job, front);
        _dirty = true;
    }

    private void Enqueue(Job job, bool front, bool bySeq = false)
    {
        // BatchCore extension: children beyond the array's concurrency cap wait off the queue, in order.
        if (job.Parent is { Spec.ArrayMaxConcurrency: { } cap } parent && parent.RunningChildren + parent.ReadyChildren >= cap)
        {
            (parent.Parked ??= new Queue<Job>()).Enqueue(job);
            return;
        }

        var q = job.Queue;
        if (q.IsFairShare)
        {
            ShareOf(q, job.Spec.ShareIdentifier!).Ready.Add(job);
            job.InReadyQueue = true;
        }
        else if (bySeq)
        {
            q.Fifo.InsertBySeq(job);
        }
        else if (front)
        {
            q.Fifo.PushFront(job);
        }
        else
        {
            q.Fifo.PushBack(job);
        }

        if (job.Parent is { } p)
        {
            p.ReadyChildren++;
        }
    }

    private void RemoveFromReady(Job job)
    {
        if (!job.InReadyQueue)
        {
            if (job.Parent?.Parked is { Count: > 0 } parked && parked.Contains(job))
            {
                Unpark(parked, job);
            }

            return;
        }

        var q = job.Queue;
        if (q.IsFairShare)
        {
            ShareOf(q, job.Spec.ShareIdentifier!).Ready.Remove(job);
            job.InReadyQueue = false;
        }
        else
        {
            q.Fifo.Remove(job);
        }

        if (job.Parent is { } p)
        {
            p.ReadyChildren--;
        }
    }

    /// <summary>Takes one job out of its array's parked queue (its own method: a lambda here would allocate on every RemoveFromReady).</summary>
    private static void Unpark(Queue<Job> parked, Job job)
    {
        var n = parked.Count;
        for (var i = 0; i < n; i++)
        {
            var j = parked.Dequeue();
            if (j != job)
            {
                parked.Enqueue(j);
            }
        }
    }

    // ---- attempts ------------------------------------------------------------------------------------------------------

    private void StartAttempt(Job job, Placement.Host host)
    {
        var token = ReserveAttempt(job, host);
        Statistics.Placements++;
        SetState(job, JobState.Starting, null); // sets scheduledAt
        if (IsEngineSimulated(host))
        {
            LaunchSimulated(job, host);
        }
        else
        {
            try
            {
                if (host.Driver is Hosts.InProcess.InProcessHostDriver inProcess)
                {
                    // The handler's context reads the job's immutable facts itself: no launch record per attempt.
                    inProcess.LaunchFromEngine(job.Parent ?? (TopJob)job, job.Parent is null ? -1 : job.ArrayIndex, host, token, job.AttemptCount + 1, this,
                        job.Spec.Definition.ContainerProperties?.Secrets is { Count: > 0 } ? _options.SecretResolver : null, job.Activity);
                }
                else
                {
                    host.Driver.Launch(BuildLaunch(job, host, token), this);
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A driver that throws instead of reporting (a bug, a disposed driver): the attempt ends as a host failure
                // through the usual exit event, so its resources are released and retryStrategy applies — the job is not
                // left in STARTING.
                ((IAttemptEventSink)this).Exited(new AttemptToken(token), new AttemptExit(null, StatusReasons.Cap("CannotStartContainerError: the " + host.Driver.Kind + " driver failed to launch the attempt: " + e.GetType().FullName + ": " + e.Message), HostFailure: true));
            }
        }
    }

    /// <summary>Takes the attempt's resources on the host, queue, share and array, and gives it a new token.</summary>
    private long ReserveAttempt(Job job, Placement.Host host, long token = 0)
    {
        var req = job.Spec.Request;
        ReserveOnHost(host, req, 1, job.Spec.TimeoutSeconds is { } timeout
            ? Math.Max(host.DeclaredBusyUntilMs, NowMs + (timeout * 1000L))
            : long.MaxValue);
        if (AskedRequests is not null)
        {
            TrackPadding(job, 1);
        }

        foreach (var (res, qty) in job.Spec.Consumables)
        {
            // AWS: consumable resources are locked when the job moves to STARTING.
            res.InUse += qty;
        }

        var q = job.Queue;
        q.RunningVcpuMilli += req.VcpuMilli;
        if (q.IsFairShare)
        {
            var share = ShareOf(q, job.Spec.ShareIdentifier!);
            share.Accrue(NowMs, q.Policy!.DecaySeconds);
            share.RunningVcpuMilli += req.VcpuMilli;
        }

        if (job.Parent is { } parent)
        {
            parent.RunningChildren++;
        }

        if (token == 0)
        {
            token = ++_tokenSeq;
        }

        job.AttemptToken = token;
        job.Host = host;
        job.TimedOut = false;
        job.TerminateReason = null;
        job.AttemptStartedAt = 0;
        job.HeadSince = -1;
        job.AttemptHandle = null;
        LinkOnHost(job, host);
        if (IsEngineSimulated(host))
        {
            _simulatedAttempts++; // its timers carry the job itself: no map entry
        }
        else
        {
            _attempts[token] = job;
        }

        return token;
    }

    /// <summary>A host of the engine's own simulated drivers: its attempts run on the loop's timers, not through events.</summary>
    private bool IsEngineSimulated(Placement.Host host) =>
        ReferenceEquals(host.Driver, _simulatedDriver) || ReferenceEquals(host.Driver, _fargateDriver);

    /// <summary>
    /// <paramref name="k"/> attempts of <paramref name="req"/> start on <paramref name="host"/> (<see cref="ReserveAttempt"/>
    /// for one, a cohort for a run of children): its capacity and its environment's, and until when it is declared busy.
    /// </summary>
    private static void ReserveOnHost(Placement.Host host, in Placement.ResourceVector req, int k, long busyUntilMs)
    {
        var ce = host.ComputeEnvironment;
        host.Free = host.Free - req.Times(k);
        ce.Index.Update(host);
        host.RunningAttempts += k;
        host.DeclaredBusyUntilMs = busyUntilMs;
        ce.UsedVcpuMilli += (long)req.VcpuMilli * k;
    }

    /// <summary>Puts <paramref name="job"/> on the host's list of running attempts (host lost, spot interruption and engine stop find them there).</summary>
    private static void LinkOnHost(Job job, Placement.Host host)
    {
        job.PrevOnHost = null;
        job.NextOnHost = host.FirstAttempt;
        host.FirstAttempt?.PrevOnHost = job;
        host.FirstAttempt = job;
    }

    private static void UnlinkFromHost(Job job, Placement.Host host)
    {
        if (job.PrevOnHost is { } prev)
        {
            prev.NextOnHost = job.NextOnHost;
        }
        else if (ReferenceEquals(host.FirstAttempt, job))
        {
            host.FirstAttempt = job.NextOnHost;
        }

        job.NextOnHost?.PrevOnHost = job.PrevOnHost;
        job.PrevOnHost = null;
        job.NextOnHost = null;
    }

    /// <summary>
    /// The engine's own simulated hosts run attempts on the loop's timers directly: the job itself is the timer (no
    /// timer object, no attempt-map entry, no launch record, no closure, no event round-trip) — what lets the simulator
    /// replay a day of a cluster in seconds. (<see cref="SimulatedHostDriver"/> does the same through the driver
    /// contract for standalone use.)
    /// </summary>
    private void LaunchSimulated(Job job, Placement.Host host)
    {
        var delay = ReferenceEquals(host.Driver, _fargateDriver) ? (long)_options.Provisioning.FargateStartTime.TotalMilliseconds : 0;
        if (delay > 0)
        {
            AddSimulatedTimer(job, NowMs + delay);
            return;
        }

        // No start delay (EC2 hosts): STARTING → RUNNING at once, at the same time, with no start timer pushed on and
        // popped off the loop's timer heap (100,000 placements paid for 200,000 heap operations and a heap twice the size).
        StartSimulated(job);
    }

    /// <summary>A simulated attempt starts: RUNNING now, its exit timer after the simulated run time.</summary>
    private void StartSimulated(Job job)
    {
        OnAttemptStarted(job, null);
        AddSimulatedTimer(job, NowMs + (long)(job.Spec.SimulatedRunTimeSeconds * 1000));
    }

    /// <summary>A simulated attempt's timer: STARTING → RUNNING, then RUNNING → exit after the simulated run time.</summary>
    private void OnSimulatedTimer(Job job)
    {
        job.SimTimerSeq = 0;
        if (job.Host is null)
        {
            return;
        }

        if (job.State == JobState.Starting)
        {
            StartSimulated(job);
            return;
        }

        var spec = job.Spec;
        var code = job.AttemptCount + 1 <= spec.SimulatedFailingAttempts ? spec.SimulatedExitCode : 0;
        OnAttemptExited(job, new AttemptExit(code));
    }

    /// <summary>The exit of a terminated simulated attempt (reported through the event channel, like a driver's).</summary>
    private void OnSimulatedExited(Job job, long token, AttemptExit exit)
    {
        if (job.AttemptToken == token && job.Host is not null)
        {
            OnAttemptExited(job, exit.ExitCode is null ? exit with { Reason = "Terminated before it started" } : exit);
        }
    }

    /// <summary>SIGTERM (then SIGKILL after the grace period) to a running attempt, through its driver.</summary>
    private void TerminateAttempt(Job job, TimeSpan grace)
    {
        var host = job.Host!;
        if (IsEngineSimulated(host))
        {
            // A simulated job exits on SIGTERM at once: 143 = 128 + SIGTERM.
            var started = job.State == JobState.Running;
            job.SimTimerSeq = 0; // its pending start or exit timer is stale now
            _events.Writer.TryWrite(HostEvent.SimulatedExited(job, job.AttemptToken, started));
            return;
        }

        try
        {
            host.Driver.Terminate(new AttemptToken(job.AttemptToken), grace);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A driver that throws instead of terminating (a bug): reported, and whatever loop called this (a lost host,
            // a spot interruption, an array's cancel, a stop) goes on with the other attempts.
            ReportUnexpected(e);
        }
    }

    /// <summary>How many tags <see cref="PropagatedTags"/> gives, without building them.</summary>
    private static int PropagatedTagCount(Job job)
    {
        var definition = job.Spec.Definition.Tags;
        var count = definition.Count;
        foreach (var key in ((job.Parent ?? job).MutableTags ?? job.Spec.Tags).Keys)
        {
            count += definition.ContainsKey(key) ? 0 : 1;
        }

        return count;
    }

    /// <summary>What propagateTags hands to the task (AWS): the job definition's tags, then the job's (which win).</summary>
    private static Dictionary<string, string> PropagatedTags(Job job)
    {
        var top = job.Parent ?? job;
        var merged = new Dictionary<string, string>(job.Spec.Definition.Tags, StringComparer.Ordinal);
        foreach (var (k, v) in top.MutableTags ?? job.Spec.Tags)
        {
            merged[k] = v;
        }

        return merged;
    }

    private AttemptLaunch BuildLaunch(Job job, Placement.Host host, long token)
    {
        var spec = job.Spec;
        var attempt = job.AttemptCount + 1;
        var simulated = host.Driver is SimulatedHostDriver;
        var exitCode = attempt <= spec.SimulatedFailingAttempts ? spec.SimulatedExitCode : 0;
        var parent = job.Parent;
        return new AttemptLaunch
        {
            Token = new AttemptToken(token),
            // Built when a driver first reads them: the child's id, the log-stream name, the environment.
            JobId = parent is null ? job.Id : null!,
            LazyParentId = parent?.Id,
            LazyArraySize = parent?.ArraySize ?? 0,
            LazyCeName = host.ComputeEnvironment.Name,
            LazySpecEnvironment = spec.Environment,
            Environment = simulated ? EmptyEnvironment : null!,
            Attempt = attempt,
            JobDefinitionName = spec.Definition.JobDefinitionName,
            Image = spec.Image,
            Command = spec.Command,
            Vcpus = spec.Request.Vcpus,
            MemoryMiB = spec.Request.MemoryMiB,
            Gpus = spec.Request.Gpus,
            HostName = host.Name,
            SimulatedRunTime = TimeSpan.FromSeconds(spec.SimulatedRunTimeSeconds),
            SimulatedExitCode = exitCode,
            ArrayIndex = parent is null ? null : job.ArrayIndex,
            Parameters = spec.Parameters,
            Handler = spec.Definition.Extensions?.Handler,
            Container = spec.Definition.ContainerProperties,
            SecretResolver = _options.SecretResolver,
            Tags = spec.PropagateTags == true ? PropagatedTags(job) : null,
            JobName = job.Name,
            JobQueueName = job.Queue.Name,
            Timeout = spec.TimeoutSeconds is { } timeout ? TimeSpan.FromSeconds(timeout) : null,
            Reattachable = _journal is not null,
            EngineId = EngineId,
            Activity = job.Activity,
        };
    }

    private static readonly IReadOnlyDictionary<string, string> EmptyEnvironment = new Dictionary<string, string>();

    private void OnAttemptStarted(long token, string? handle = null, long startedAgoMs = 0)
    {
        if (_attempts.TryGetValue(token, out var job) && job.State == JobState.Starting)
        {
            OnAttemptStarted(job, handle, startedAgoMs);
        }
    }

    /// <summary>
    /// STARTING → RUNNING. <paramref name="startedAgoMs"/>: the driver reported the start this long after it happened
    /// (an in-process handler's synchronous part); on the real clock startedAt is set back by it, never before the job
    /// was placed.
    /// </summary>
    private void OnAttemptStarted(Job job, string? handle, long startedAgoMs = 0)
    {
        var token = job.AttemptToken;

        job.AttemptHandle = handle; // journaled with the RUNNING record: how to find the attempt after a crash

        var now = NowMs;
        if (startedAgoMs > 0 && _virtual is null)
        {
            now = Math.Max(now - startedAgoMs, job.ScheduledAt ?? long.MinValue);
        }

        job.AttemptStartedAt = now;
        job.StartedAt = now;
        Statistics.Started++;
        SetState(job, JobState.Running, null);
        if (job.Spec.TimeoutSeconds is { } seconds)
        {
            // AWS: the timeout counts from the attempt's startedAt.
            job.TimeoutTimer = AddTimer(new TimerEntry { Kind = TimerKind.AttemptTimeout, DueMs = now + (seconds * 1000L), Target = job, Token = token });
        }
    }

    private void OnAttemptTimeout(Job job, long token)
    {
        if (job.AttemptToken != token || job.State is not (JobState.Starting or JobState.Running) || job.Host is null)
        {
            return;
        }

        job.TimedOut = true;
        TerminateAttempt(job, _options.TerminationGracePeriod);
    }

    private void OnAttemptExited(long token, AttemptExit exit)
    {
        if (_attempts.Remove(token, out var job))
        {
            OnAttemptExited(job, exit);
        }
    }

    /// <summary>The attempt of <paramref name="job"/> ended (called once per attempt: its host is cleared here).</summary>
    private void OnAttemptExited(Job job, AttemptExit exit)
    {
        var now = NowMs;
        var host = job.Host!;
        if (IsEngineSimulated(host))
        {
            _simulatedAttempts--;
            job.SimTimerSeq = 0;
        }

        UnlinkFromHost(job, host);
        ReleaseAttemptResources(job, host);
        try
        {
            EndAttempt(job, host, exit, now);
        }
        finally
        {
            // Only now does a child held by the array's cap take the freed slot: a retried child has gone back to the
            // front first (AWS: a retry goes to the front), ahead of its waiting siblings.
            if (job.Parent is { } parent)
            {
                UnparkChild(parent);
            }
        }
    }

    /// <summary>The attempt's record, then the job's next state: SUCCEEDED, a retry (RUNNABLE, at the front) or FAILED.</summary>
    private void EndAttempt(Job job, Placement.Host host, AttemptExit exit, long now)
    {
        if (job.TimeoutTimer is { } timer)
        {
            timer.Cancelled = true;
            job.TimeoutTimer = null;
        }

        string attemptReason;
        if (job.TimedOut)
        {
            attemptReason = StatusReasons.TimeoutExceeded;
        }
        else if (job.TerminateReason is { } tr)
        {
            attemptReason = tr;
        }
        else if (job.HostLostReason is { } lost)
        {
            attemptReason = lost;
            exit = exit with { HostFailure = true };
        }
        else if (exit.HostFailure)
        {
            attemptReason = exit.Reason ?? StatusReasons.HostTerminated;
        }
        else
        {
            attemptReason = StatusReasons.Essential;
        }

        var succeeded = exit.ExitCode == 0 && !job.TimedOut && job.TerminateReason is null && !exit.HostFailure;
        if (succeeded && job.AttemptCount == 0 && exit.Reason is null && ReferenceEquals(attemptReason, StatusReasons.Essential))
        {
            job.AddPlainSuccess(host); // no attempt object: the record is built from the host and the job's times when read
        }
        else
        {
            job.AddAttempt(new AttemptRecord(job.AttemptCount + 1, exit.ExitCode, exit.Reason,
                job.AttemptStartedAt == 0 ? null : job.AttemptStartedAt, now, attemptReason, host.Name, host.ComputeEnvironment.Name));
        }

        job.Host = null;
        job.AttemptHandle = null;
        job.HostLostReason = null;
        job.StoppedAt = now;

        if (succeeded)
        {
            SetState(job, JobState.Succeeded, StatusReasons.Essential);
            return;
        }

        // AWS: timed-out, cancelled and terminated attempts are not retried.
        if (job.TimedOut || job.TerminateReason is not null)
        {
            SetState(job, JobState.Failed, attemptReason);
            return;
        }

        // Nor is the running child of a cancelled array: the cancel left it running (AWS), not free to start new attempts.
        var retry = ShouldRetry(job.Spec.EvaluateOnExit, attemptReason, exit.Reason, exit.ExitCode);
        if (retry && job.AttemptCount < job.Spec.MaxAttempts && job.PendingCancelReason is null && job.Parent is not { IsCancelled: true })
        {
            // AWS: a retried job goes back to RUNNABLE, at the front of the queue. Its attempt has stopped (its record
            // keeps when), the job has not: a later end (a cancel while it waits) stamps its own stoppedAt.
            job.StatusReason = attemptReason;
            job.StoppedAt = null;
            MakeRunnable(job, front: true);
            return;
        }

        SetState(job, JobState.Failed, attemptReason);
    }

    /// <summary>
    /// AWS's evaluateOnExit: entries in order, the first whose every given condition matches decides; globs may end
    /// with <c>*</c>; no entry matching means retry.
    /// </summary>
    internal static bool ShouldRetry(IReadOnlyList<EvaluateOnExit>? rules, string? statusReason, string? reason, int? exitCode)
    {
        if (rules is null)
        {
            return true;
        }

        var code = exitCode?.ToString(CultureInfo.InvariantCulture);
        foreach (var e in rules)
        {
            if (e.OnStatusReason is not null && !GlobMatch(e.OnStatusReason, statusReason))
            {
                continue;
            }

            if (e.OnReason is not null && !GlobMatch(e.OnReason, reason))
            {
                continue;
            }

            if (e.OnExitCode is not null && !GlobMatch(e.OnExitCode, code))
            {
                continue;
            }

            return e.Action!.Equals(RetryAction.RETRY, StringComparison.OrdinalIgnoreCase);
        }

        return true;
    }

    internal static bool GlobMatch(string glob, string? value)
    {
        value ??= "";
        return glob.EndsWith('*')
            ? value.StartsWith(glob.AsSpan(0, glob.Length - 1), StringComparison.Ordinal)
            : value == glob;
    }

    private void ReleaseAttemptResources(Job job, Placement.Host host)
    {
        var req = job.Spec.Request;
        if (AskedRequests is not null)
        {
            TrackPadding(job, -1);
        }

        ReleaseOnHost(host, req, 1, NowMs);
        foreach (var (res, qty) in job.Spec.Consumables)
        {
            // AWS: unlocked at SUCCEEDED or FAILED; a non-replenishable resource is used up.
            res.Release(qty);
            if (!res.Replenishable)
            {
                RecordConsumableTotal(res);
            }
        }

        var q = job.Queue;
        q.RunningVcpuMilli -= req.VcpuMilli;
        if (q.IsFairShare)
        {
            var share = ShareOf(q, job.Spec.ShareIdentifier!);
            share.Accrue(NowMs, q.Policy!.DecaySeconds);
            share.RunningVcpuMilli -= req.VcpuMilli;
        }

        if (job.Parent is { } parent)
        {
            parent.RunningChildren--; // the freed slot goes to a parked sibling once the attempt's end is decided (OnAttemptExited)
        }

        _capacityVersion++;
        _dirty = true;
    }

    private void UnparkChild(Job parent)
    {
        if (parent.Parked is not { Count: > 0 } parked || parent.Spec.ArrayMaxConcurrency is not { } cap)
        {
            return;
        }

        while (parked.Count > 0 && parent.RunningChildren + parent.ReadyChildren < cap)
        {
            var next = parked.Dequeue();
            if (next.State == JobState.Runnable)
            {
                Enqueue(next, front: false, bySeq: true);
            }
        }
    }

    // ---- terminal states, dependencies, arrays --------------------------------------------------------------------------

    private void OnTerminal(Job job)
    {
        job.StoppedAt ??= NowMs;
        if (job.State == JobState.Succeeded)
        {
            Statistics.Succeeded++;
        }
        else
        {
            Statistics.Failed++;
        }

        if (job.Dependents is { } dependents)
        {
            job.Dependents = null;
            foreach (var d in dependents)
            {
                OnDependencyDone(d.Job, job.State == JobState.Succeeded || d.AnyState);
            }
        }

        if (job.Parent is { } capped && !capped.State.IsTerminal())
        {
            UnparkChild(capped); // a child that ended while queued frees its slot under the array's cap
        }

        if (job.Parent is { } parent)
        {
            EndArrayIfDone(parent);
        }

        // A child's id is built only if someone asked for it: one waiting on the parent formats no id per child.
        if (_waiters.Count > 0 && job.HasId && _waiters.Remove(job.Id, out var waiters))
        {
            var detail = Describe(job);
            foreach (var w in waiters)
            {
                w.TrySetResult(detail);
            }
        }

        if (job.Parent is null)
        {
            OnTopLevelEnded(job);
        }
        else
        {
            job.Parent.Children!.TryFold(job); // last: nothing of its end needs the object any more
        }
    }

    private void OnDependencyDone(Job job, bool satisfied)
    {
        if (job.State.IsTerminal())
        {
            return;
        }

        job.UnmetDependencies--;
        if (!satisfied)
        {
            job.DependencyFailed = true;
        }

        if (job.State == JobState.Submitted)
        {
            return; // evaluated in the next cycle with what it knows now
        }

        if (job.IsArrayParent && job.Children is not null)
        {
            if (job.DependencyFailed)
            {
                if (job.ChildrenGated)
                {
                    job.ChildrenGated = false;
                    FailGatedChildren(job, job.PendingCancelReason ?? StatusReasons.DependentJobFailed);
                }

                return;
            }

            if (job.UnmetDependencies == 0 && job.ChildrenGated)
            {
                job.ChildrenGated = false;
                foreach (var child in job.Children.Live)
                {
                    if (child.State == JobState.Pending)
                    {
                        OnDependencyDone(child, satisfied: true);
                    }
                }
            }

            return;
        }

        if (job.State != JobState.Pending)
        {
            return;
        }

        if (job.DependencyFailed)
        {
            // AWS: PENDING → FAILED as soon as any dependency fails.
            SetState(job, JobState.Failed, job.PendingCancelReason ?? StatusReasons.DependentJobFailed);
        }
        else if (job.UnmetDependencies == 0)
        {
            Release(job);
        }
    }

    // ---- cancel and terminate --------------------------------------------------------------------------------------------

    public void Cancel(string? jobId, string? reason)
    {
        CheckIdAndReason(jobId, reason);
        if (!TryGetJob(jobId!, out var job) || job.State.IsTerminal())
        {
            return; // AWS: cancelling an unknown or finished job still succeeds
        }

        CancelJob(job, reason!, terminateRunning: false);
    }

    public void Terminate(string? jobId, string? reason)
    {
        CheckIdAndReason(jobId, reason);
        if (!TryGetJob(jobId!, out var job) || job.State.IsTerminal())
        {
            return;
        }

        CancelJob(job, reason!, terminateRunning: true);
    }

    private static void CheckIdAndReason(string? jobId, string? reason)
    {
        var p = new Validation.Problems();
        p.Required(jobId, "jobId");
        p.Required(reason, "reason");
        p.MaxLength(reason, 1024, "reason");
        p.ThrowIfAny();
    }

    private void CancelJob(Job job, string reason, bool terminateRunning)
    {
        if (job.IsArrayParent)
        {
            // AWS: cancel/terminate of the parent cascades to the children; the parent ends when they all have.
            job.IsCancelled |= !terminateRunning;
            job.IsTerminated |= terminateRunning;
            job.StatusReason = reason;
            if (job.Children is null)
            {
                if (job.State == JobState.Submitted)
                {
                    SetState(job, JobState.Failed, reason);
                }

                return;
            }

            JournalState(job); // the flags and the reason: a recovered parent still ends cancelled

            // Mark every waiting child first: failing one must not release the next (SEQUENTIAL, ANY) to RUNNABLE.
            foreach (var child in job.Children.Live)
            {
                if (child.State.IsBeforeStarting())
                {
                    child.PendingCancelReason ??= reason;
                    child.IsCancelled = true;
                }
            }

            foreach (var child in job.Children.Live)
            {
                if (!child.State.IsTerminal())
                {
                    CancelJob(child, reason, terminateRunning);
                }
            }

            return;
        }

        switch (job.State)
        {
            case JobState.Submitted:
            case JobState.Runnable:
                job.IsCancelled = true;
                RemoveFromReady(job);
                SetState(job, JobState.Failed, reason);
                break;
            case JobState.Pending:
                job.IsCancelled = true;
                if (job.UnmetDependencies == 0)
                {
                    SetState(job, JobState.Failed, reason);
                }
                else
                {
                    // AWS: a PENDING job is cancelled once its dependencies have completed.
                    job.PendingCancelReason = reason;
                    job.StatusReason = reason;
                    JournalState(job);
                }

                break;
            case JobState.Starting:
            case JobState.Running:
                if (terminateRunning && job.Host is { } host)
                {
                    job.IsTerminated = true;
                    job.TerminateReason = reason;
                    TerminateAttempt(job, _options.TerminationGracePeriod);
                }

                // AWS: CancelJob does nothing to STARTING or RUNNING jobs, and still succeeds.
                break;
            default:
                break;
        }
    }
}
