using BatchCore.Jobs;

namespace BatchCore.Queues;

/// <summary>
/// A FIFO of RUNNABLE jobs with push-front for retries (AWS: a retried job goes to the front of the queue).
/// A job leaving RUNNABLE other than by <see cref="PopFront"/> (cancel, backfill) is left as a tombstone and skipped;
/// tombstones are compacted when they outnumber live entries. Circular buffer: no allocation per job. A job that comes
/// back while its tombstone is still here (a backfilled job that is retried) has the tombstone cleared first: read
/// through the job's <c>InReadyQueue</c>, it would count as a second live entry (listed twice, started twice).
/// </summary>
internal sealed class JobDeque
{
    private Job?[] _items = new Job?[16];
    private int _head;
    private int _count;
    private int _live;

    /// <summary>Live (still RUNNABLE) entries.</summary>
    public int Count => _live;

    /// <summary>Entries including tombstones.</summary>
    public int RawCount => _count;

    public void PushBack(Job job)
    {
        ClearTombstone(job);
        Grow();
        _items[(_head + _count) % _items.Length] = job;
        _count++;
        _live++;
        job.InReadyQueue = true;
    }

    public void PushFront(Job job)
    {
        ClearTombstone(job);
        Grow();
        _head = (_head - 1 + _items.Length) % _items.Length;
        _items[_head] = job;
        _count++;
        _live++;
        job.InReadyQueue = true;
    }

    /// <summary>
    /// Inserts a job at its submission position (after every entry with a smaller or equal <c>Seq</c>): for array
    /// children released from a concurrency cap, so they neither jump ahead of older jobs nor lose their place.
    /// </summary>
    public void InsertBySeq(Job job)
    {
        ClearTombstone(job); // first: its tombstone may sit before the position
        var pos = 0;
        while (pos < _count && (_items[(_head + pos) % _items.Length] is not { } j || j.Seq <= job.Seq))
        {
            pos++;
        }

        InsertAt(pos, job);
    }

    /// <summary>
    /// Puts <paramref name="job"/> at position <paramref name="pos"/> (0 = the front), moving the entries from there
    /// one back: an array's materialized head goes just in front of the parent that stands for the rest of its RUNNABLE
    /// children. Positions before <paramref name="pos"/> keep theirs (a caller iterating up to it goes on).
    /// </summary>
    public void InsertAt(int pos, Job job)
    {
        ClearTombstone(job);
        Grow();
        for (var i = _count; i > pos; i--)
        {
            _items[(_head + i) % _items.Length] = _items[(_head + i - 1) % _items.Length];
        }

        _items[(_head + pos) % _items.Length] = job;
        _count++;
        _live++;
        job.InReadyQueue = true;
    }

    /// <summary>
    /// Replaces the live entry <paramref name="marker"/> (an array parent standing for its RUNNABLE children) with
    /// <paramref name="jobs"/>, in order and in its place. Entries before it keep their positions.
    /// </summary>
    public void ReplaceWith(Job marker, ReadOnlySpan<Job> jobs)
    {
        var pos = 0;
        while (pos < _count && !ReferenceEquals(_items[(_head + pos) % _items.Length], marker))
        {
            pos++;
        }

        System.Diagnostics.Debug.Assert(pos < _count && marker.InReadyQueue, "the marker is a live entry");
        var fresh = new Job?[Math.Max(16, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)(_count + jobs.Length)))];
        var n = 0;
        for (var i = 0; i < pos; i++)
        {
            fresh[n++] = _items[(_head + i) % _items.Length];
        }

        foreach (var job in jobs)
        {
            ClearTombstone(job);
            job.InReadyQueue = true;
            fresh[n++] = job;
        }

        for (var i = pos + 1; i < _count; i++)
        {
            fresh[n++] = _items[(_head + i) % _items.Length];
        }

        _items = fresh;
        _head = 0;
        _count = n;
        _live += jobs.Length - 1;
        marker.InReadyQueue = false;
    }

    /// <summary>The first live job, dropping tombstones in front of it.</summary>
    public Job? PeekFront()
    {
        while (_count > 0)
        {
            var job = _items[_head];
            if (job is { InReadyQueue: true })
            {
                return job;
            }

            if (job is not null)
            {
                job.StaleInDeque = false; // its tombstone goes now
            }

            _items[_head] = null;
            _head = (_head + 1) % _items.Length;
            _count--;
        }

        return null;
    }

    /// <summary>Removes the first live job (which must be <paramref name="job"/>).</summary>
    public void PopFront(Job job)
    {
        var front = PeekFront();
        System.Diagnostics.Debug.Assert(ReferenceEquals(front, job), "pop the job that was peeked");
        _items[_head] = null;
        _head = (_head + 1) % _items.Length;
        _count--;
        _live--;
        job.InReadyQueue = false;
    }

    /// <summary>Marks a job anywhere in the deque as gone (cancel, backfilled start).</summary>
    public void Remove(Job job)
    {
        if (!job.InReadyQueue)
        {
            return;
        }

        job.InReadyQueue = false;
        job.StaleInDeque = true;
        _live--;
    }

    /// <summary>Before <paramref name="job"/> is queued again: its old tombstone, if any, becomes an empty slot.</summary>
    private void ClearTombstone(Job job)
    {
        if (!job.StaleInDeque)
        {
            return;
        }

        job.StaleInDeque = false;
        for (var i = 0; i < _count; i++)
        {
            var at = (_head + i) % _items.Length;
            if (ReferenceEquals(_items[at], job))
            {
                _items[at] = null;
                return;
            }
        }
    }

    /// <summary>Drops tombstones when they outnumber live entries. Not called while positions are being iterated.</summary>
    public void CompactIfSparse()
    {
        PeekFront();
        if (_count > 64 && _live < _count / 2)
        {
            Compact();
        }
    }

    /// <summary>The raw entry at position <paramref name="i"/> (may be a tombstone: check InReadyQueue).</summary>
    public Job? RawAt(int i) => _items[(_head + i) % _items.Length];

    private void Grow()
    {
        if (_count < _items.Length)
        {
            return;
        }

        var bigger = new Job?[_items.Length * 2];
        for (var i = 0; i < _count; i++)
        {
            bigger[i] = _items[(_head + i) % _items.Length];
        }

        _items = bigger;
        _head = 0;
    }

    private void Compact()
    {
        var fresh = new Job?[Math.Max(16, _items.Length)];
        var n = 0;
        for (var i = 0; i < _count; i++)
        {
            var job = _items[(_head + i) % _items.Length];
            if (job is not null && job.InReadyQueue)
            {
                fresh[n++] = job;
            }
            else if (job is not null)
            {
                job.StaleInDeque = false; // its tombstone is dropped
            }
        }

        _items = fresh;
        _head = 0;
        _count = n;
    }
}
