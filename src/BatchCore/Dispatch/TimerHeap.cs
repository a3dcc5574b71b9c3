using System.Runtime.CompilerServices;

namespace BatchCore.Dispatch;

/// <summary>
/// The loop's timers: a 4-ary min-heap ordered by (due time, sequence number), stored in fixed chunks of
/// <see cref="ChunkSize"/> entries. Growing adds a chunk and copies nothing: a
/// <see cref="PriorityQueue{TElement, TPriority}"/> of 100,000 running simulated attempts doubled its array up to 3 MB,
/// allocating ~63 bytes per timer for 24 bytes kept. A chunk (192 KiB) is on the large-object heap on purpose: the GC
/// neither copies it between generations nor charges it to the gen0 budget (2,048-entry chunks under the LOH threshold
/// were promoted and copied like any young object, and measured slower than the doubling array). Sequence numbers are
/// unique, so the order is total and deterministic. Single-threaded (the loop's).
/// </summary>
internal sealed class TimerHeap
{
    /// <summary>Entries per chunk: 8,192 × 24 bytes = 192 KiB (large-object heap: see the class remarks).</summary>
    public const int ChunkSize = 8192;
    private const int Shift = 13;
    private const int Mask = ChunkSize - 1;

    private Entry[][] _chunks = [];
    private int _chunkCount;
    private int _count;

    private struct Entry
    {
        public object Item;
        public long Due;
        public long Seq;
    }

    public int Count => _count;

    public void Enqueue(object item, long due, long seq)
    {
        if (_count == _chunkCount << Shift)
        {
            AddChunk();
        }

        var i = _count++;
        // Sift up: move parents down until the new entry's place is found, then write it once.
        while (i > 0)
        {
            var parent = (i - 1) >> 2;
            ref var p = ref At(parent);
            if (!Less(due, seq, p.Due, p.Seq))
            {
                break;
            }

            At(i) = p;
            i = parent;
        }

        ref var e = ref At(i);
        e.Item = item;
        e.Due = due;
        e.Seq = seq;
    }

    /// <summary>The earliest entry, without removing it; false when empty.</summary>
    public bool TryPeek(out object item, out long due, out long seq)
    {
        if (_count == 0)
        {
            item = null!;
            due = seq = 0;
            return false;
        }

        ref var top = ref _chunks[0][0];
        item = top.Item;
        due = top.Due;
        seq = top.Seq;
        return true;
    }

    /// <summary>Removes the earliest entry.</summary>
    /// <exception cref="InvalidOperationException">The heap is empty.</exception>
    public void Dequeue()
    {
        if (_count == 0)
        {
            throw new InvalidOperationException("the timer heap is empty");
        }

        var last = --_count;
        var moved = At(last);
        At(last) = default; // let the timer's target go
        if (last > 0)
        {
            SiftDown(moved);
        }

        // Keep one spare chunk: a queue that shrank far gives its memory back, one that breathes around a chunk
        // boundary does not allocate at every crossing.
        if (_chunkCount > 1 && _count + (2 * ChunkSize) <= _chunkCount << Shift)
        {
            _chunks[--_chunkCount] = null!;
        }
    }

    /// <summary>Places <paramref name="moved"/> (the former last entry) from the root down.</summary>
    private void SiftDown(Entry moved)
    {
        var i = 0;
        while (true)
        {
            var first = (i << 2) + 1;
            if (first >= _count)
            {
                break;
            }

            // The least of up to four children.
            var best = first;
            ref var b = ref At(first);
            var end = Math.Min(first + 4, _count);
            for (var c = first + 1; c < end; c++)
            {
                ref var e = ref At(c);
                if (Less(e.Due, e.Seq, b.Due, b.Seq))
                {
                    best = c;
                    b = ref e;
                }
            }

            if (!Less(b.Due, b.Seq, moved.Due, moved.Seq))
            {
                break;
            }

            At(i) = b;
            i = best;
        }

        At(i) = moved;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Less(long dueA, long seqA, long dueB, long seqB) => dueA < dueB || (dueA == dueB && seqA < seqB);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref Entry At(int i) => ref _chunks[i >> Shift][i & Mask];

    private void AddChunk()
    {
        if (_chunkCount == _chunks.Length)
        {
            Array.Resize(ref _chunks, Math.Max(4, _chunks.Length * 2));
        }

        _chunks[_chunkCount++] = new Entry[ChunkSize];
    }
}
