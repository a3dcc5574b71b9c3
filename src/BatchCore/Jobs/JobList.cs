using System.Collections;

namespace BatchCore.Jobs;

/// <summary>
/// An append-mostly list of jobs in fixed chunks of <see cref="ChunkSize"/>: adding never copies the jobs already there
/// and no array reaches the large-object heap, however many jobs a queue keeps (a <see cref="List{T}"/> of 10⁵–10⁶ jobs
/// copies its whole array at every doubling, onto the LOH, and the copies are what the GC then scans).
/// </summary>
internal sealed class JobList : IReadOnlyList<Job>
{
    /// <summary>Jobs per chunk: 4,096 references = 32 KiB, well under the 85,000-byte large-object threshold.</summary>
    public const int ChunkSize = 4096;
    private const int Shift = 12;
    private const int Mask = ChunkSize - 1;

    private readonly List<Job[]> _chunks = [];
    private int _count;

    public int Count => _count;

    public Job this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _count);
            return _chunks[index >> Shift][index & Mask];
        }
    }

    public void Add(Job job)
    {
        var slot = _count & Mask;
        if (slot == 0 && _count >> Shift == _chunks.Count)
        {
            _chunks.Add(new Job[ChunkSize]);
        }

        _chunks[_count >> Shift][slot] = job;
        _count++;
    }

    /// <summary>Removes every job that matches, keeping the others in order; returns how many went.</summary>
    public int RemoveAll(Predicate<Job> match)
    {
        var kept = 0;
        for (var i = 0; i < _count; i++)
        {
            var job = _chunks[i >> Shift][i & Mask];
            if (!match(job))
            {
                _chunks[kept >> Shift][kept & Mask] = job;
                kept++;
            }
        }

        var removed = _count - kept;
        for (var i = kept; i < _count; i++)
        {
            _chunks[i >> Shift][i & Mask] = null!; // let the removed jobs go
        }

        _count = kept;
        var chunksNeeded = (kept + Mask) >> Shift;
        _chunks.RemoveRange(chunksNeeded, _chunks.Count - chunksNeeded);
        return removed;
    }

    public Enumerator GetEnumerator() => new(this);

    IEnumerator<Job> IEnumerable<Job>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Enumerates the jobs in order; adding while enumerating is not detected (the loop never does).</summary>
    public struct Enumerator(JobList list) : IEnumerator<Job>
    {
        private int _index = -1;

        public readonly Job Current => list._chunks[_index >> Shift][_index & Mask];

        readonly object IEnumerator.Current => Current;

        public bool MoveNext() => ++_index < list._count;

        public void Reset() => _index = -1;

        public readonly void Dispose()
        {
        }
    }
}
