using BatchCore.Placement;

namespace BatchCore.Jobs;

/// <summary>
/// The array children the engine keeps without a <see cref="Job"/> object: a run of RUNNABLE children, and the
/// <see cref="Cohort"/>s of children that were placed together and run on the engine's own simulated hosts. Every one of
/// them is a plain child (no dependencies, caps, consumables, timeout, retries, journal or watchers: see
/// <c>EngineCore.CanSpawnVirtual</c>) in the same state as its neighbours, so a count stands for it. Anything that looks
/// at one child (describe, list, cancel, a host's attempts) first <em>materializes</em> the array: every virtual child
/// becomes the object the per-child path would have built, with the same fields, and the per-child path goes on.
/// </summary>
internal sealed class VirtualChildren
{
    /// <summary>Children [<see cref="RunnableFrom"/>, <see cref="RunnableTo"/>) are RUNNABLE; the parent stands for them in its queue's FIFO.</summary>
    public int RunnableFrom;
    public int RunnableTo;

    /// <summary>When they became RUNNABLE (all at once, when the array spawned them).</summary>
    public long RunnableSince;

    /// <summary>The running cohorts, oldest first.</summary>
    public readonly List<Cohort> Cohorts = [];

    public bool HasRunnable => RunnableFrom < RunnableTo;

    public bool IsEmpty => RunnableFrom >= RunnableTo && Cohorts.Count == 0;
}

/// <summary>
/// Children [<see cref="First"/>, <see cref="First"/> + <see cref="Count"/>) of one array, placed in one pass of the
/// scheduling loop at <see cref="StartedAt"/>, RUNNING on the engine's simulated hosts, all exiting together at
/// <see cref="DueMs"/>. The hosts are run-length coded: child <c>First + o</c> runs on <c>Hosts[r]</c> for the run
/// <c>r</c> with <c>RunEnds[r - 1] &lt;= o &lt; RunEnds[r]</c>. It is its own element on the loop's timer heap.
/// </summary>
internal sealed class Cohort(TopJob parent, int first, long startedAt, long tokenBase)
{
    public readonly TopJob Parent = parent;
    public readonly int First = first;
    public readonly long StartedAt = startedAt;

    /// <summary>Child <c>First + o</c>'s attempt token is <c>TokenBase + o</c>.</summary>
    public readonly long TokenBase = tokenBase;
    public int Count;

    /// <summary>The run hosts and ends, rented from the shared pool (a 10,000-child cohort on as many hosts is 120 KB) and returned by <see cref="Release"/>.</summary>
    public Host[] Hosts = System.Buffers.ArrayPool<Host>.Shared.Rent(16);
    public int[] RunEnds = System.Buffers.ArrayPool<int>.Shared.Rent(16);
    public int Runs;
    public long DueMs;

    /// <summary>The first of the <see cref="Count"/> timer sequence numbers it holds (child <c>First + o</c> has <c>SeqBase + o</c>).</summary>
    public long SeqBase;

    /// <summary>The sequence number of its live timer; 0 once it ended or was materialized (the timer is then stale).</summary>
    public long TimerSeq;

    /// <summary>
    /// Adds <paramref name="count"/> children on <paramref name="host"/> after the ones it has; <paramref name="maxRuns"/>
    /// bounds how many runs it can still get (sizes a growth once instead of doubling).
    /// </summary>
    public void Add(Host host, int count, int maxRuns)
    {
        Count += count;
        if (Runs > 0 && ReferenceEquals(Hosts[Runs - 1], host))
        {
            RunEnds[Runs - 1] = Count;
            return;
        }

        if (Runs == Hosts.Length)
        {
            var size = Math.Max(Runs * 2, Runs + maxRuns);
            var hosts = System.Buffers.ArrayPool<Host>.Shared.Rent(size);
            var ends = System.Buffers.ArrayPool<int>.Shared.Rent(size);
            Array.Copy(Hosts, hosts, Runs);
            Array.Copy(RunEnds, ends, Runs);
            Release();
            Hosts = hosts;
            RunEnds = ends;
        }

        Hosts[Runs] = host;
        RunEnds[Runs] = Count;
        Runs++;
    }

    /// <summary>Gives the run arrays back to the pool (the cohort ended or was materialized).</summary>
    public void Release()
    {
        System.Buffers.ArrayPool<Host>.Shared.Return(Hosts, clearArray: true);
        System.Buffers.ArrayPool<int>.Shared.Return(RunEnds);
        Hosts = [];
        RunEnds = [];
    }
}
