using System.Collections;
using BatchCore.Model;
using BatchCore.Placement;

namespace BatchCore.Jobs;

/// <summary>
/// The children of an array job, by index. A child that succeeded on its first attempt and keeps nothing else (no
/// dependents, no cold part, the array's submission order) is <em>folded</em> when it ends: its host and times go into a
/// 24-byte record here and its <see cref="Job"/> object is let go. A finished 10,000-child array then keeps 10,000
/// records in one array for its retention (7 days by default) instead of 10,000 objects the GC must trace and move, and
/// every job retained costs fresh memory pages, which on a VM is the largest part of a short job's cost.
/// <para>Reading a folded child (describe, list, journal snapshot, simulation totals) builds a read-only view of it. The
/// loop changes only live children (<see cref="Live"/>); the rare change to an ended child (tags) takes it back with
/// <see cref="Unfold"/>.</para>
/// </summary>
internal sealed class ArrayChildren : IReadOnlyList<Job>
{
    private readonly TopJob _parent;
    private readonly int _size;
    // Allocated at the first live child: a virtual array (VirtualChildren) may never have one.
    private Job?[]? _live;
    private readonly long _createdAt;
    private Folded[]? _folded;
    private string?[]? _ids;

    /// <summary><see cref="Folded.ScheduledBefore"/> of a child whose scheduledAt is not known.</summary>
    private const int NotScheduled = int.MinValue;

    private struct Folded
    {
        public Host? Host; // null: not folded
        public long AttemptStartedAt; // and StartedAt: a plain first success started once
        public int ScheduledBefore; // StartedAt − ScheduledAt, ms; NotScheduled when not known
        public int RanFor; // StoppedAt − StartedAt, ms
    }

    /// <param name="parent">The array job.</param>
    /// <param name="size">Its arrayProperties.size.</param>
    /// <param name="createdAt">When its children were created (all at once): every child's createdAt.</param>
    public ArrayChildren(TopJob parent, int size, long createdAt)
    {
        _parent = parent;
        _size = size;
        _createdAt = createdAt;
    }

    public int Count => _size;

    /// <summary>
    /// The children kept without objects (<see cref="VirtualChildren"/>), or null. Every accessor below that hands out
    /// children first has <see cref="Materializer"/> turn them into objects; the loop's own virtual paths use
    /// <see cref="Set"/>, <see cref="FoldVirtual"/> and this field.
    /// </summary>
    public VirtualChildren? Virtual;

    /// <summary>The engine's materialization of this array's virtual children (set with <see cref="Virtual"/>).</summary>
    public Action<TopJob>? Materializer;

    /// <summary>Makes every virtual child an object before a child is handed out.</summary>
    private void EnsureReal()
    {
        if (Virtual is not null)
        {
            Materializer!(_parent);
        }
    }

    /// <summary>The id of child <paramref name="index"/> (parentId:index), built on first use and kept.</summary>
    public string IdOf(int index)
    {
        _ids ??= new string?[_size];
        return _ids[index] ??= ChildId(_parent.JobId, index);
    }

    /// <summary>An array child's id: <c>parentId:index</c> (AWS). Loop-only callers use <see cref="IdOf"/>, which keeps it.</summary>
    public static string ChildId(string parentId, int index) =>
        parentId + ":" + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Whether child <paramref name="index"/>'s id was built.</summary>
    public bool HasIdAt(int index) => _ids?[index] is not null;

    /// <summary>When the array created its children (every child's createdAt).</summary>
    public long CreatedAt => _createdAt;

    /// <summary>How many children are folded (for tests and the memory report).</summary>
    public int FoldedCount { get; private set; }

    /// <summary>The child at <paramref name="index"/>: the live job, or a fresh read-only view of a folded one.</summary>
    public Job this[int index]
    {
        get
        {
            EnsureReal();
            return _live?[index] ?? View(index);
        }
    }

    /// <summary>The live child at <paramref name="index"/>, or null when it is folded.</summary>
    public Job? LiveAt(int index)
    {
        EnsureReal();
        return _live?[index];
    }

    public void Set(int index, Job child) => (_live ??= new Job?[_size])[index] = child;

    /// <summary>The live children in index order (the folded ones have ended: nothing the loop changes).</summary>
    public LiveEnumerable Live
    {
        get
        {
            EnsureReal();
            return new(_live ?? []);
        }
    }

    /// <summary>
    /// Folds <paramref name="child"/> if it is a plain first-attempt success that keeps nothing else; returns whether it
    /// did. Called once the child has ended and everything its end triggers has run.
    /// </summary>
    public bool TryFold(Job child)
    {
        var i = child.ArrayIndex;
        if (_live is null || !ReferenceEquals(_live[i], child) || child.State != JobState.Succeeded || child.PlainSuccessHost is not { } host ||
            child.HasCold || child.StartedAt is not { } started || child.StoppedAt is not { } stopped ||
            child.HasOwnSeq || child.Forgotten)
        {
            return false;
        }

        var scheduledBefore = started - child.ScheduledAt;
        var ranFor = stopped - started;
        if (started != child.AttemptStartedAt || scheduledBefore is <= NotScheduled or > int.MaxValue || ranFor is < int.MinValue or > int.MaxValue)
        {
            return false; // a start or an attempt of more than 24 days keeps its object
        }

        _folded ??= new Folded[_size];
        _folded[i] = new Folded { Host = host, AttemptStartedAt = started, ScheduledBefore = (int)(scheduledBefore ?? NotScheduled), RanFor = (int)ranFor };
        _live[i] = null;
        FoldedCount++;
        return true;
    }

    /// <summary>
    /// Folds virtual child <paramref name="index"/> of an ended cohort: a plain first-attempt success on
    /// <paramref name="host"/>, placed and started at <paramref name="started"/>, run for <paramref name="ranFor"/> ms
    /// (the caller checked it fits in an int).
    /// </summary>
    public void FoldVirtual(int index, Host host, long started, int ranFor)
    {
        _folded ??= new Folded[_size];
        _folded[index] = new Folded { Host = host, AttemptStartedAt = started, ScheduledBefore = 0, RanFor = ranFor };
        FoldedCount++;
    }

    /// <summary>The child at <paramref name="index"/> as a live job again (a folded one is rebuilt and kept).</summary>
    public Job Unfold(int index)
    {
        EnsureReal();
        if (_live?[index] is { } live)
        {
            return live;
        }

        var job = View(index);
        (_live ??= new Job?[_size])[index] = job;
        _folded![index] = default;
        FoldedCount--;
        return job;
    }

    /// <summary>
    /// The children in index order, only those in <paramref name="state"/> when given: folded children are all
    /// SUCCEEDED, so asking for another state builds no view.
    /// </summary>
    public IEnumerable<Job> InState(JobState? state)
    {
        EnsureReal();
        return InStateReal(state);
    }

    private IEnumerable<Job> InStateReal(JobState? state)
    {
        var folded = state is null or JobState.Succeeded;
        for (var i = 0; i < _size; i++)
        {
            if (_live?[i] is { } live)
            {
                if (state is null || live.State == state)
                {
                    yield return live;
                }
            }
            else if (folded)
            {
                yield return View(i);
            }
        }
    }

    private Job View(int index)
    {
        var f = _folded![index];
        var started = f.AttemptStartedAt;
        var job = new Job(_parent, index)
        {
            State = JobState.Succeeded,
            StatusReason = StatusReasons.Essential,
            AttemptStartedAt = started,
            StartedAt = started,
            StoppedAt = started + f.RanFor,
            ScheduledAt = f.ScheduledBefore == NotScheduled ? null : started - f.ScheduledBefore,
            JournaledAttempts = 1,
        };
        job.AddPlainSuccess(f.Host!);
        return job;
    }

    public IEnumerator<Job> GetEnumerator() => InState(null).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Enumerates the live children without allocating.</summary>
    public readonly struct LiveEnumerable(Job?[] live)
    {
        public LiveEnumerator GetEnumerator() => new(live);
    }

    public struct LiveEnumerator(Job?[] live)
    {
        private int _index = -1;

        public readonly Job Current => live[_index]!;

        public bool MoveNext()
        {
            while (++_index < live.Length)
            {
                if (live[_index] is not null)
                {
                    return true;
                }
            }

            return false;
        }
    }
}
