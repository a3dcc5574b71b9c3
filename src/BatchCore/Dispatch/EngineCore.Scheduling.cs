using System.Globalization;
using System.Text;
using BatchCore.Jobs;
using BatchCore.Model;
using BatchCore.Placement;

namespace BatchCore.Dispatch;

internal sealed partial class EngineCore
{
    /// <summary>What became of one attempt to place a job.</summary>
    private enum PlaceOutcome : byte
    {
        Placed,
        /// <summary>Some CE could hold it, but no host has room now.</summary>
        NoCapacity,
        /// <summary>No CE of the queue could ever hold it (AWS: MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT).</summary>
        NeverFits,
        /// <summary>A consumable resource is short.</summary>
        WaitingConsumable,
        /// <summary>A host is booting for it.</summary>
        WaitingProvision,
        /// <summary>The CE is at maxvCpus.</summary>
        AtMaxvCpus,
        /// <summary>Fair share's computeReservation holds the capacity back for share identifiers not active yet.</summary>
        Reserved,
    }

    /// <summary>
    /// One scheduling cycle:
    /// 1. SUBMITTED jobs are evaluated (PENDING or RUNNABLE; array parents spawn children);
    /// 2. queues are visited in priority order (AWS: higher priority first among queues sharing a CE);
    /// 3. each queue offers its jobs in its order — FIFO (head-of-line blocking unless backfill) or fair share
    ///    (least weighted usage first) — to its CEs in computeEnvironmentOrder;
    /// 4. placement filters and scores hosts (<see cref="HostIndex"/>); managed CEs provision when nothing fits.
    /// </summary>
    private void RunCycle()
    {
        if (Stopping || Draining)
        {
            _dirty = false;
            return; // a stopping (or draining) engine starts nothing new
        }

        EvaluateSubmitted();
        ResetPlannedCapacity();
        var queues = _queuesByPriority;
        for (var i = 0; i < queues.Count; i++)
        {
            var q = queues[i];
            if (q.RunnableCount == 0)
            {
                continue;
            }

            if (q.IsFairShare)
            {
                DispatchFairShare(q);
            }
            else
            {
                DispatchFifo(q);
            }
        }

        _dirty = false;
    }

    private void DispatchFifo(JobQueueState q)
    {
        var fifo = q.Fifo;
        var head = fifo.PeekFront();
        if (head is null)
        {
            return;
        }

        // Nothing changed since this head was blocked: skip the queue (keeps blocked queues O(1) per cycle).
        if (ReferenceEquals(q.BlockedHead, head) && q.BlockedVersion == _capacityVersion && !q.Backfill)
        {
            return;
        }

        if (_options.BatchPlacementThreshold > 0 && q.RunnableCount >= _options.BatchPlacementThreshold && !q.Backfill)
        {
            PlaceBatch(q);
            head = fifo.PeekFront();
            if (head is null)
            {
                return;
            }
        }

        var blocked = false;
        var scanned = 0;
        TopJob? unplaceable = null;
        for (var i = 0; i < fifo.RawCount; i++)
        {
            var job = fifo.RawAt(i);
            if (job is null || !job.InReadyQueue)
            {
                continue;
            }

            if (q.RunningCount >= q.MaxRunning)
            {
                break; // BatchCore extension: the queue's cap on running jobs
            }

            if (job.IsArrayParent)
            {
                if (ReferenceEquals(job, unplaceable))
                {
                    continue; // backfill: its head child just failed to place, and the others are the same job
                }

                // An array's virtual RUNNABLE children (EngineCore.Cohorts.cs): placed by counts, or its head made an
                // object here for the per-child path below.
                if (PlaceVirtual(q, (TopJob)job, i))
                {
                    continue;
                }

                job = fifo.RawAt(i)!;
            }

            var outcome = TryPlace(job);
            if (outcome == PlaceOutcome.Placed)
            {
                continue;
            }

            if (!blocked)
            {
                blocked = true;
                NoteBlockedHead(q, job, outcome);
            }

            if (outcome is PlaceOutcome.NoCapacity or PlaceOutcome.NeverFits or PlaceOutcome.AtMaxvCpus && job.Parent is { InReadyQueue: true } array)
            {
                unplaceable = array; // its virtual children behind this one would fail alike (a booting host, though, may take them)
            }

            // AWS FIFO: a head that cannot start blocks the queue. Backfill (extension) looks further.
            if (!q.Backfill || ++scanned >= _options.BackfillScanLimit)
            {
                break;
            }
        }

        if (!blocked)
        {
            q.BlockedHead = null;
        }

        fifo.CompactIfSparse();
    }

    private void DispatchFairShare(JobQueueState q)
    {
        var now = NowMs;
        var policy = q.Policy!;
        var decay = policy.DecaySeconds;
        var limit = ReservationLimit(q);
        var shares = q.Shares;
        foreach (var s in shares.Values)
        {
            s.Accrue(now, decay);
            s.BlockedThisCycle = false;
        }

        // Least weighted usage first (AWS fair share); running work counts a little so that shares alternate within one
        // instant instead of one share taking every free slot before usage has accrued. A share's score changes only when
        // it places a job, so the shares sit in a heap: a placing share goes back in with its new score, a blocked one
        // stays out for the cycle. Every share gets its turn at O(log shares) each (a rescan per pick, capped at 64
        // blocked shares, left later shares waiting with capacity free).
        var heap = _shareHeap;
        heap.Clear();
        foreach (var s in shares.Values)
        {
            if (s.Ready.Count > 0)
            {
                heap.Enqueue(s, (s.Score(s.DecayedUsage, s.RunningVcpuMilli, decay), s.Id));
            }
        }

        var headNoted = false;
        while (q.RunningCount < q.MaxRunning && heap.TryDequeue(out var best, out _))
        {
            if (best.Ready.Count == 0)
            {
                continue;
            }

            var job = best.Ready.Min!;
            if (q.RunningVcpuMilli + job.Spec.Request.VcpuMilli > limit)
            {
                // AWS computeReservation: capacity held back for share identifiers not yet active. The job says so (and
                // a time-limit action on CAPACITY reasons applies to it as to any head waiting for capacity).
                if (!headNoted)
                {
                    NoteBlockedHead(q, job, PlaceOutcome.Reserved);
                }

                break;
            }

            var outcome = TryPlace(job);
            if (outcome == PlaceOutcome.Placed)
            {
                if (best.Ready.Count > 0)
                {
                    heap.Enqueue(best, (best.Score(best.DecayedUsage, best.RunningVcpuMilli, decay), best.Id));
                }

                continue;
            }

            best.BlockedThisCycle = true;
            if (!headNoted)
            {
                headNoted = true;
                NoteBlockedHead(q, job, outcome);
            }
        }
    }

    /// <summary>The fair-share dispatcher's shares in score order (then id), reused from cycle to cycle.</summary>
    private readonly PriorityQueue<ShareState, (double Score, string Id)> _shareHeap = new(Comparer<(double Score, string Id)>.Create(
        static (a, b) => a.Score != b.Score ? a.Score.CompareTo(b.Score) : string.CompareOrdinal(a.Id, b.Id)));

    /// <summary>
    /// AWS computeReservation: (computeReservation/100)^activeShares of the queue's max vCPUs stays free for share
    /// identifiers that are not active yet.
    /// </summary>
    private static long ReservationLimit(JobQueueState q)
    {
        var cr = q.Policy!.Policy.ComputeReservation;
        if (cr <= 0)
        {
            return long.MaxValue;
        }

        long maxMilli = 0;
        foreach (var ce in q.ComputeEnvironments)
        {
            maxMilli += ce.IsManaged ? (long)ce.MaxvCpus * 1000 : ce.UnmanagedvCpus is { } u && u > 0 ? u * 1000L : SumCapacity(ce);
        }

        var active = 0;
        foreach (var s in q.Shares.Values)
        {
            if (s.ActiveJobs > 0)
            {
                active++;
            }
        }

        var reserved = Math.Pow(cr / 100.0, Math.Max(1, active));
        return (long)(maxMilli * (1 - reserved));
    }

    private static long SumCapacity(ComputeEnvironmentState ce)
    {
        long sum = 0;
        foreach (var h in ce.Hosts.Values)
        {
            sum += h.Capacity.VcpuMilli;
        }

        return sum;
    }

    /// <summary>Filter → score → select over the queue's CEs in order; provisions in managed CEs when nothing fits.</summary>
    private PlaceOutcome TryPlace(Job job)
    {
        var spec = job.Spec;
        foreach (var (res, qty) in spec.Consumables)
        {
            // AWS: a job whose consumable resource is short waits in RUNNABLE.
            if (res.Available < qty)
            {
                return PlaceOutcome.WaitingConsumable;
            }
        }

        var req = spec.Request;
        var anyCouldFit = false;
        var waiting = false;
        var atMax = false;
        var ces = job.Queue.ComputeEnvironments;
        for (var i = 0; i < ces.Length; i++)
        {
            var ce = ces[i];
            if (ce.IsFargate != spec.Fargate || (spec.Architecture is not null && ce.Architecture is not null && spec.Architecture != ce.Architecture)
                || !ce.RunsKindOf(spec))
            {
                continue; // platform, architecture and driver-kind filters: this CE can never run the job
            }

            if (ce.MaxHostShape is not { } shape || !shape.Fits(req))
            {
                continue;
            }

            anyCouldFit = true;
            if (!ce.AcceptsPlacements)
            {
                continue; // AWS: a DISABLED or INVALID CE gets no new placements; fall through to the next
            }

            Host? host;
            if (ce.IsFargate)
            {
                host = LaunchFargateHost(ce, req, out var throttled);
                if (host is null)
                {
                    // The launch rate held it back (it waits for the next token), or the environment is at maxvCpus.
                    waiting |= throttled;
                    atMax |= !throttled;
                    continue;
                }
            }
            else
            {
                host = ce.IsManaged ? FindManagedHost(ce, spec, _options.PlacementStrategy) : ce.Index.Find(req, spec.Architecture, _options.PlacementStrategy);
                if (host is null && ce.IsManaged)
                {
                    host = Provision(ce, job, out var capped);
                    atMax |= capped;
                    if (host is not null && !host.Accepts)
                    {
                        // A host of this environment is booting for the job: it waits for it rather than have a later
                        // environment launch one too (AWS uses the next environment only when this one cannot provide).
                        waiting = true;
                        break;
                    }
                }
            }

            if (host is null)
            {
                continue;
            }

            RemoveFromReady(job);
            StartAttempt(job, host);
            return PlaceOutcome.Placed;
        }

        return !anyCouldFit ? PlaceOutcome.NeverFits
            : waiting ? PlaceOutcome.WaitingProvision
            : atMax ? PlaceOutcome.AtMaxvCpus
            : PlaceOutcome.NoCapacity;
    }

    private const string ReservedReason = StatusReasons.InsufficientInstanceCapacity + " - held back by the scheduling policy's computeReservation for share identifiers that are not active yet";

    /// <summary>A blocked head gets a statusReason (AWS's codes plus counted filter reasons) and its time-limit timer.</summary>
    private void NoteBlockedHead(JobQueueState q, Job job, PlaceOutcome outcome)
    {
        q.BlockedHead = job;
        q.BlockedVersion = _capacityVersion;
        var now = NowMs;
        if (job.HeadSince < 0 && q.TimeLimitActions.Count > 0)
        {
            job.HeadSince = now; // only jobStateTimeLimitActions read it (and it costs the job its cold part)
        }

        var category = outcome switch
        {
            PlaceOutcome.NeverFits => StatusReasons.JobResourceRequirement,
            PlaceOutcome.AtMaxvCpus => StatusReasons.ComputeEnvironmentMaxResource,
            PlaceOutcome.WaitingConsumable => "RESOURCE:CONSUMABLE_RESOURCE_UNAVAILABLE",
            _ => StatusReasons.InsufficientInstanceCapacity,
        };
        if (outcome == PlaceOutcome.Reserved)
        {
            job.StatusReason = ReservedReason;
        }
        else if (job.StatusReason is null || !job.StatusReason.StartsWith(category, StringComparison.Ordinal))
        {
            job.StatusReason = outcome is PlaceOutcome.NoCapacity or PlaceOutcome.NeverFits ? Explained(q, job, category, now) : category;
        }

        ArmTimeLimit(q, job);
    }

    /// <summary>
    /// <paramref name="category"/> and the counted filter reasons for a blocked head. A queue whose heads keep blocking
    /// (a backlog behind full hosts: every job is the head once) reuses its last explanation for jobs of the same shape
    /// for up to a second of engine time, so a head costs neither a pass over every host nor a string.
    /// </summary>
    private static string Explained(JobQueueState q, Job job, string category, long now)
    {
        var spec = job.Spec;
        if (q.ExplainedReason is { } reason && now - q.ExplainedAtMs < ExplanationMaxAgeMs && ReferenceEquals(q.ExplainedCategory, category) &&
            q.ExplainedSpec is { } last && (ReferenceEquals(last, spec) ||
                (last.Request == spec.Request && last.Fargate == spec.Fargate && last.Architecture == spec.Architecture
                    && last.IsHandlerJob == spec.IsHandlerJob)))
        {
            return reason;
        }

        q.ExplainedReason = category + " - " + ExplainFit(job);
        q.ExplainedCategory = category;
        q.ExplainedSpec = spec;
        q.ExplainedAtMs = now;
        return q.ExplainedReason;
    }

    private const long ExplanationMaxAgeMs = 1_000;

    /// <summary>Counts, per filter, the hosts of the job's CEs that reject it: the "why" of a RUNNABLE job.</summary>
    private static string ExplainFit(Job job)
    {
        var req = job.Spec.Request;
        int hosts = 0, vcpu = 0, mem = 0, gpu = 0, platform = 0, arch = 0, notReady = 0, disabled = 0, kind = 0;
        foreach (var ce in job.Queue.ComputeEnvironments)
        {
            if (!ce.AcceptsPlacements)
            {
                disabled++;
            }

            var all = ce.Index.All;
            var limit = Math.Min(all.Count, 100_000);
            for (var i = 0; i < limit; i++)
            {
                var h = all[i];
                hosts++;
                if (ce.IsFargate != job.Spec.Fargate)
                {
                    platform++;
                    continue;
                }

                if (!HostKinds.Runs(HostKinds.Of(h.Driver), job.Spec))
                {
                    kind++;
                    continue;
                }

                if (job.Spec.Architecture is { } a && a != h.Architecture)
                {
                    arch++;
                }

                if (!h.Accepts)
                {
                    notReady++;
                }

                if (h.Free.VcpuMilli < req.VcpuMilli)
                {
                    vcpu++;
                }

                if (h.Free.MemoryMiB < req.MemoryMiB)
                {
                    mem++;
                }

                if (h.Free.Gpus < req.Gpus)
                {
                    gpu++;
                }
            }
        }

        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"0/{hosts} hosts available");
        void Part(int n, string what)
        {
            if (n > 0)
            {
                sb.Append(CultureInfo.InvariantCulture, $", {n} {what}");
            }
        }

        Part(vcpu, "insufficient vCPU");
        Part(mem, "insufficient memory");
        Part(gpu, "insufficient GPU");
        Part(platform, "platform mismatch");
        Part(arch, "architecture mismatch");
        Part(kind, job.Spec.IsHandlerJob ? "run no in-process handlers" : "run only in-process handlers");
        Part(notReady, "not ready or draining");
        Part(disabled, "compute environments disabled");
        return sb.ToString();
    }

    private void ArmTimeLimit(JobQueueState q, Job job)
    {
        if (q.TimeLimitActions.Count == 0 || (ReferenceEquals(q.TimedHead, job) && q.HeadTimer is { Cancelled: false }))
        {
            return;
        }

        foreach (var a in q.TimeLimitActions)
        {
            if (job.StatusReason is { } sr && sr.StartsWith(a.Reason!, StringComparison.Ordinal))
            {
                q.HeadTimer?.Cancelled = true;
                q.TimedHead = job;
                q.HeadTimer = AddTimer(new TimerEntry { Kind = TimerKind.QueueTimeLimit, DueMs = job.HeadSince + (a.MaxTimeSeconds * 1000L), Target = q, Token = job.Seq });
                return;
            }
        }

        // A new head that no action applies to: the previous head's timer goes (it is no longer the head).
        if (!ReferenceEquals(q.TimedHead, job))
        {
            q.HeadTimer?.Cancelled = true;
            q.HeadTimer = null;
            q.TimedHead = null;
        }
    }

    /// <summary>AWS jobStateTimeLimitActions: cancel a job stuck at the head of the queue in RUNNABLE.</summary>
    private void OnQueueTimeLimit(JobQueueState q, long seq)
    {
        var job = q.TimedHead;
        q.HeadTimer = null;
        q.TimedHead = null;
        if (job is null || job.Seq != seq || job.State != JobState.Runnable || job.HeadSince < 0)
        {
            return;
        }

        if (!ReferenceEquals(q.BlockedHead, job))
        {
            // Not the blocked head now (a retry went in front of it, or the queue is being looked at again): the next
            // look at the head arms the timer of whichever job is there.
            q.BlockedHead = null;
            _dirty = true;
            return;
        }

        var now = NowMs;
        foreach (var a in q.TimeLimitActions)
        {
            if (job.StatusReason is { } sr && sr.StartsWith(a.Reason!, StringComparison.Ordinal) && now - job.HeadSince >= a.MaxTimeSeconds * 1000L)
            {
                job.IsCancelled = true;
                RemoveFromReady(job);
                SetState(job, JobState.Failed, a.Reason);
                q.BlockedHead = null;
                _dirty = true;
                return;
            }
        }

        // Still waiting, not yet over any limit (its reason or the actions changed): look at the head again, which arms
        // its timer anew.
        q.BlockedHead = null;
        _dirty = true;
    }
}
