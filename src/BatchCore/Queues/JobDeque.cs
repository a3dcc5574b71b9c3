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
        ClearTombstone(job);
        Grow();
        var pos = 0;
        while (pos < _count && (_items[(_head + pos) % _items.Length] is not { } j || j.Seq <= job.Seq))
        {
            pos++;
        }

        for (var i = _count; i > pos; i--)
        {
            _items[(_head + i) % _items.Length] = _items[(_head + i - 1) % _items.Length];
        }

        _items[(_head + pos) % _items.Length] = job;
        _count++;
        _live++;
        job.InReadyQueue = true;
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
