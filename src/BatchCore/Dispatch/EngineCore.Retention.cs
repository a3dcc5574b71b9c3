using System.Diagnostics;
using BatchCore.Jobs;

namespace BatchCore.Dispatch;

/// <summary>
/// Ended jobs past <see cref="BatchEngineOptions.TerminalJobRetention"/> are forgotten while the engine runs, so a
/// long-running engine's memory is bounded by the jobs of one retention period. Incremental: top-level jobs are queued
/// in the order they ended (their <c>stoppedAt</c> order), and a sweep runs when a job ends and the oldest ended job has
/// expired, at most once per <see cref="SweepInterval"/> of engine time. A sweep costs the expired jobs plus one pass
/// over the job lists of the queues they were in.
/// </summary>
internal sealed partial class EngineCore
{
    private readonly Queue<Job> _endedTops = new();
    /// <summary>Expired jobs kept because a retained job depends on them; looked at again by each sweep.</summary>
    private readonly List<Job> _pinnedExpired = [];
    private long _nextRetentionSweepMs = long.MinValue;
    private bool _retentionSweepDue;

    /// <summary>Jobs forgotten since the engine started (tests, statistics).</summary>
    internal long ForgottenJobs { get; private set; }

    /// <summary>
    /// How many expired jobs one sweep forgets at most: a long-running engine may have hundreds of thousands expire at
    /// once, and the loop schedules nothing while it sweeps. The rest go in the next sweeps, one per settled cycle.
    /// </summary>
    internal int RetentionSlice { get; set; } = 65_536;

    private bool RetainsForever => _options.TerminalJobRetention == Timeout.InfiniteTimeSpan;

    /// <summary>Jobs that ended before this instant (engine ms) are past their retention.</summary>
    private long RetentionCutoff() => RetainsForever ? long.MinValue : NowMs - (long)_options.TerminalJobRetention.TotalMilliseconds;

    /// <summary>A sixteenth of the retention, at least one second: how stale a forgettable job may get.</summary>
    private long SweepInterval => Math.Max(1_000, (long)_options.TerminalJobRetention.TotalMilliseconds / 16);

    /// <summary>A dependent pins the top-level jobs it names in dependsOn (children pin through their parent).</summary>
    private static void Pin(Job dependent, Job dep, int delta)
    {
        var top = dep.Parent ?? dep;
        if (!ReferenceEquals(top, dependent))
        {
            top.DependedOnBy += delta;
        }
    }

    /// <summary>A top-level job ended: queue it for forgetting and sweep when one is due.</summary>
    private void OnTopLevelEnded(Job job)
    {
        if (RetainsForever || _replaying)
        {
            return;
        }

        _endedTops.Enqueue(job);
        if (NowMs >= _nextRetentionSweepMs)
        {
            _retentionSweepDue = true; // swept by Settle once the cycle is done: nothing iterates the tables then
        }
    }

    /// <summary>After recovery: the retained ended jobs, oldest first, join the queue of jobs to forget.</summary>
    private void QueueRecoveredEndedJobs()
    {
        if (RetainsForever)
        {
            return;
        }

        _endedTops.Clear(); // anything recovery itself ended is among these
        _pinnedExpired.Clear();
        var ended = new List<Job>();
        foreach (var job in _jobs.Values)
        {
            if (job.State.IsTerminal())
            {
                ended.Add(job);
            }
        }

        ended.Sort(static (a, b) => (a.StoppedAt ?? a.CreatedAt).CompareTo(b.StoppedAt ?? b.CreatedAt));
        foreach (var job in ended)
        {
            _endedTops.Enqueue(job);
        }

        _retentionSweepDue = ended.Count > 0;
    }

    /// <summary>Forgets the top-level jobs (and their children) that ended before the cutoff and that no retained job depends on.</summary>
    internal void ForgetExpired()
    {
        var cutoff = RetentionCutoff();
        if (!_endedTops.TryPeek(out var oldest) || (oldest.StoppedAt ?? oldest.CreatedAt) >= cutoff)
        {
            return;
        }

        _nextRetentionSweepMs = NowMs + SweepInterval;
        var forgotten = 0;
        var taken = 0;
        while (_endedTops.TryPeek(out var job) && (job.StoppedAt ?? job.CreatedAt) < cutoff)
        {
            if (taken++ == RetentionSlice)
            {
                _nextRetentionSweepMs = NowMs; // more expired: the next settled cycle goes on
                _retentionSweepDue = true;
                break;
            }

            _endedTops.Dequeue();
            if (job.DependedOnBy > 0)
            {
                _pinnedExpired.Add(job);
            }
            else if (Forget(job))
            {
                forgotten++;
            }
        }

        // Chains unpin one link per pass: a job freed above may free the one it depended on.
        for (var freed = true; freed && _pinnedExpired.Count > 0;)
        {
            var before = _pinnedExpired.Count;
            _pinnedExpired.RemoveAll(j =>
            {
                if (j.DependedOnBy > 0)
                {
                    return false;
                }

                if (Forget(j))
                {
                    forgotten++;
                }

                return true;
            });
            freed = _pinnedExpired.Count < before;
        }

        if (forgotten == 0)
        {
            return;
        }

        ForgottenJobs += forgotten;
        foreach (var q in _queues.Values)
        {
            if (q.ForgottenJobs > 0)
            {
                q.AllJobs.RemoveAll(static j => (j.Parent ?? j).Forgotten);
                q.ForgottenJobs = 0;
            }
        }

        if (_stateDirectory is not null)
        {
            _submissionOrder.RemoveAll(static j => j.Forgotten);
        }
    }

    /// <summary>Drops one top-level job (its children go with it); false when it was already forgotten.</summary>
    private bool Forget(Job job)
    {
        if (job.Forgotten)
        {
            return false;
        }

        // dependencies first: resolving them may go through this job's own table entry (a child id names its parent)
        foreach (var d in job.Spec.DependsOn)
        {
            if (d.JobId is { } id && TryGetJob(id, out var dep))
            {
                Pin(job, dep, -1);
            }
        }

        job.Forgotten = true;
        _jobs.Remove(job.Id);
        _submitLog.Remove(job.Id);
        job.Queue.ForgottenJobs++;
        return true;
    }

    // ---- deregistered job definitions ---------------------------------------------------------------------------------

    /// <summary>Deregistered revisions in the order they were deregistered, with when (engine ms): purged oldest first.</summary>
    private readonly Queue<(string Name, int Revision, long DeregisteredAtMs)> _deregistered = new();

    private bool KeepsInactiveDefinitionsForever => _options.InactiveJobDefinitionRetention == Timeout.InfiniteTimeSpan;

    /// <summary>
    /// AWS: "Job definitions are permanently deleted after 180 days" (<see cref="BatchEngineOptions.InactiveJobDefinitionRetention"/>
    /// after DeregisterJobDefinition). Lazy, on the calls that read definitions (a timer 180 days out would make
    /// <see cref="BatchEngine.RunUntilIdleAsync"/> jump there); costs a peek when nothing is due. A purged revision leaves
    /// its slot empty, so its number is not given out again; jobs hold their definition and keep it. Not while replaying:
    /// recovered jobs resolve the revisions they ran with, and the journaled deregistration times purge at the first call.
    /// </summary>
    private void PurgeDeregisteredDefinitions()
    {
        if (_replaying || _deregistered.Count == 0)
        {
            return;
        }

        var cutoff = NowMs - (long)_options.InactiveJobDefinitionRetention.TotalMilliseconds;
        while (_deregistered.TryPeek(out var d) && d.DeregisteredAtMs < cutoff)
        {
            _deregistered.Dequeue();
            var revisions = _definitions[d.Name];
            Debug.Assert(revisions[d.Revision - 1] is { Status: "INACTIVE" }, "only a deregistered revision is queued, once");
            _plainSpecs.Remove(revisions[d.Revision - 1]!); // replayed plain jobs may have cached one
            revisions[d.Revision - 1] = null;
        }
    }
}
