using BatchCore.Jobs;
using BatchCore.Placement;
using BatchCore.Placement.Packing;

namespace BatchCore.Dispatch;

internal sealed partial class EngineCore
{
    private const int BatchWindow = 256;
    private readonly List<Job> _window = new(BatchWindow);
    // Plan A's order: positions in _window, largest job first.
    private readonly int[] _order = new int[BatchWindow];
    private Comparison<int>? _largestFirst;
    private readonly Host?[] _planA = new Host?[BatchWindow];
    private readonly Host?[] _planB = new Host?[BatchWindow];
    private readonly HashSet<Host> _opened = [];
    private readonly List<Host> _idleTargets = [];
    private PackingOptions? _batchPacking;

    /// <summary>
    /// The packer's budget inside the scheduling loop: 2,000 improvement iterations, and at most 2 ms of wall clock on a
    /// real clock. Virtual time (the simulator) has no wall-clock budget, so its results do not depend on the machine.
    /// </summary>
    private PackingOptions BatchPacking => _batchPacking ??= new PackingOptions
    {
        TimeProvider = _time,
        MaxIterations = 2_000,
        TimeBudget = _virtual is null ? TimeSpan.FromMilliseconds(2) : Timeout.InfiniteTimeSpan,
    };

    /// <summary>
    /// Batch placement for a FIFO queue with many RUNNABLE jobs: a window from the front is planned largest first
    /// with best fit (tighter packing than one at a time), and also one at a time with first fit; the plan that opens
    /// fewer idle hosts wins. Jobs still start in submission order, so FIFO semantics hold. When any job of the window
    /// does not fit, nothing is planned and the queue falls back to one-at-a-time placement.
    /// </summary>
    private void PlaceBatch(JobQueueState q)
    {
        ComputeEnvironmentState? ce = null;
        foreach (var c in q.ComputeEnvironments)
        {
            if (c.AcceptsPlacements)
            {
                ce = c;
                break;
            }
        }

        if (ce is null || ce.IsFargate || ce.IsManaged && ce.Index.Count == 0)
        {
            return;
        }

        var room = Math.Min(BatchWindow, q.MaxRunning - q.RunningCount);
        // A window needing more vCPU than the environment has free cannot be planned whole: it ends before that job (a
        // backlog behind full hosts then costs a window of one or two jobs per cycle, not a sort and plan of 256).
        var freeVcpuMilli = ce.CapacityVcpuMilli - ce.UsedVcpuMilli;
        if (freeVcpuMilli <= 0)
        {
            return; // full: not even the front job can be planned
        }

        _window.Clear();
        var fifo = q.Fifo;
        for (var i = 0; i < fifo.RawCount && _window.Count < room; i++)
        {
            var job = fifo.RawAt(i);
            if (job is null || !job.InReadyQueue)
            {
                continue;
            }

            if (job.IsArrayParent || job.Spec.Consumables.Length > 0 || job.Spec.Fargate || (job.Spec.Architecture is { } a && ce.Architecture is { } ca && a != ca)
                || !ce.RunsKindOf(job.Spec))
            {
                break; // keep the window simple: those go one at a time (an array's virtual children by counts)
            }

            freeVcpuMilli -= job.Spec.Request.VcpuMilli;
            if (freeVcpuMilli < 0)
            {
                break;
            }

            _window.Add(job);
        }

        if (_window.Count < 2)
        {
            return;
        }

        // Plan A: largest first (by vCPU, then memory), best fit.
        var order = _order.AsSpan(0, _window.Count);
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        order.Sort(_largestFirst ??= (x, y) =>
        {
            var a = _window[x].Spec.Request;
            var b = _window[y].Spec.Request;
            var c = b.VcpuMilli.CompareTo(a.VcpuMilli);
            return c != 0 ? c : b.MemoryMiB.CompareTo(a.MemoryMiB);
        });
        var openedA = Plan(ce, order, _planA, PlacementStrategy.BestFit);
        // A plan that opens no idle host cannot lose to first fit; only then is the first-fit plan (O(log n) a job) needed.
        var openedB = openedA == 0 ? -1 : Plan(ce, default, _planB, PlacementStrategy.FirstFit);
        Host?[]? plan = openedA >= 0 && (openedB < 0 || openedA <= openedB) ? _planA : openedB >= 0 ? _planB : null;
        if (plan is null)
        {
            return;
        }

        RepackOpenedHosts(plan);
        for (var i = 0; i < _window.Count; i++)
        {
            var job = _window[i];
            RemoveFromReady(job);
            StartAttempt(job, plan[i]!);
        }
    }

    /// <summary>
    /// The greedy plan opened two or more idle hosts of one shape and architecture: the jobs it put on them are an offline packing
    /// problem, so the packer (<see cref="PackingStrategy.Optimized"/>, never worse than first-fit decreasing) may fit
    /// them on fewer of those same hosts. Jobs on hosts that already ran something keep their place; a job only moves
    /// between hosts the plan opened, each empty, so every host still fits what it gets. Allocates only here, when a
    /// batch opens several hosts (not per job). Budget: <see cref="BatchPacking"/>.
    /// </summary>
    private void RepackOpenedHosts(Host?[] plan)
    {
        _idleTargets.Clear();
        var count = _window.Count;
        var jobsOnIdle = 0;
        for (var i = 0; i < count; i++)
        {
            var host = plan[i]!;
            if (host.RunningAttempts != 0 || host.Free != host.Capacity)
            {
                continue;
            }

            jobsOnIdle++;
            if (!_idleTargets.Contains(host))
            {
                if (_idleTargets.Count > 0 && (host.Capacity != _idleTargets[0].Capacity || host.Architecture != _idleTargets[0].Architecture))
                {
                    // Mixed shapes, or one shape in two architectures (a job planned on an arm64 host must not move to
                    // an x86_64 one of the same size): keep the greedy plan.
                    return;
                }

                _idleTargets.Add(host);
            }
        }

        if (_idleTargets.Count < 2)
        {
            return;
        }

        // Dimensions: vCPU, memory, and GPUs when the hosts have some (the packer wants positive capacities).
        var cap = _idleTargets[0].Capacity;
        var dims = cap.Gpus > 0 ? 3 : 2;
        var demands = new long[jobsOnIdle * dims];
        var jobAt = new int[jobsOnIdle];
        var k = 0;
        for (var i = 0; i < count; i++)
        {
            var host = plan[i]!;
            if (!_idleTargets.Contains(host))
            {
                continue;
            }

            var req = _window[i].Spec.Request;
            demands[k * dims] = req.VcpuMilli;
            demands[(k * dims) + 1] = req.MemoryMiB;
            if (dims == 3)
            {
                demands[(k * dims) + 2] = req.Gpus;
            }

            jobAt[k++] = i;
        }

        long[] capacity = dims == 3 ? [cap.VcpuMilli, cap.MemoryMiB, cap.Gpus] : [cap.VcpuMilli, cap.MemoryMiB];
        var packed = VectorPacker.Pack(new PackingProblem(capacity, demands), PackingStrategy.Optimized, BatchPacking);
        if (packed.BinCount >= _idleTargets.Count)
        {
            return;
        }

        for (var x = 0; x < jobsOnIdle; x++)
        {
            plan[jobAt[x]] = _idleTargets[packed.BinOfItem[x]];
        }
    }

    /// <summary>
    /// Tentatively places the window's jobs in <paramref name="order"/> (positions in the window; empty: window order)
    /// on the index, records the hosts in <paramref name="plan"/> (indexed by the job's position in the window), then
    /// undoes every change. Returns how many idle hosts the plan opens, or −1 if some job did not fit.
    /// </summary>
    private int Plan(ComputeEnvironmentState ce, ReadOnlySpan<int> order, Host?[] plan, PlacementStrategy strategy)
    {
        _opened.Clear();
        var placed = 0;
        var ok = true;
        for (; placed < _window.Count; placed++)
        {
            var at = order.IsEmpty ? placed : order[placed];
            var job = _window[at];
            var req = job.Spec.Request;
            var host = ce.Index.Find(req, job.Spec.Architecture, strategy);
            if (host is null)
            {
                ok = false;
                break;
            }

            if (host.RunningAttempts == 0 && host.Free == host.Capacity)
            {
                _opened.Add(host);
            }

            host.Free = host.Free - req;
            ce.Index.Update(host);
            plan[at] = host;
        }

        // Undo.
        for (var i = 0; i < placed; i++)
        {
            var at = order.IsEmpty ? i : order[i];
            var host = plan[at]!;
            host.Free = host.Free + _window[at].Spec.Request;
            ce.Index.Update(host);
        }

        return ok ? _opened.Count : -1;
    }
}
