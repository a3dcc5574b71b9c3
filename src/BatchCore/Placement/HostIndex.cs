using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace BatchCore.Placement;

/// <summary>
/// The hosts of one compute environment indexed by free vCPU, so a best-fit lookup visits only hosts that have
/// enough vCPU, tightest first, instead of scanning every host.
/// Hosts sit in buckets of <see cref="BucketMilli"/> free milli-vCPU (intrusive lists: moving a host between
/// buckets allocates nothing) and a bitmap of non-empty buckets finds the next candidate bucket in a few word scans.
/// First fit has its own structure, a max tree over the hosts in <see cref="Host.Id"/> order (see
/// <see cref="FindFirstFit"/>), so it too costs O(log n) instead of a scan.
/// Owned by the scheduling loop: not thread-safe by design.
/// </summary>
internal sealed class HostIndex
{
    /// <summary>A quarter vCPU: Fargate's smallest size, so Fargate-shaped requests land on bucket boundaries.</summary>
    public const int BucketMilli = 250;

    /// <summary>How many feasible hosts best fit compares before it settles; bounds the cost on huge fleets.</summary>
    private const int BestFitCandidates = 16;

    /// <summary>How many feasible hosts a filtered best fit may reject before it gives up (bounds the walk).</summary>
    private const int MaxRejected = 32;

    /// <summary>The first-fit tree's smallest size in leaves (a power of two).</summary>
    private const int MinLeaves = 16;

    /// <summary>Removed hosts' slots are compacted once there are at least this many and they are half the used ones.</summary>
    private const int CompactAfter = 32;

    /// <summary>Architectures past the 31st share the last bit; the leaf check then tells them apart.</summary>
    private const int SharedArchBit = int.MinValue;

    private Host?[] _heads = new Host?[64];
    private ulong[] _bitmap = new ulong[1];
    // One bit per _bitmap word that has a bit set: the next non-empty bucket is found in two word scans, however far
    // away it is (a 10,000-vCPU host filling up from its top bucket had the 1-vCPU request walk ~150 empty words).
    private ulong[] _summary = new ulong[1];
    private readonly List<Host> _all = [];
    private int _count;

    // First-fit tree: a flat binary max tree, root at 1, leaf of slot s at _leaves + s. Slots are handed out in
    // joining order and stay put while a host is indexed (a removal leaves an empty slot; compaction keeps the order),
    // so slot order is Id order. A node holds, over the accepting hosts below it, the max free vCPU, memory and GPUs
    // and the union of their architecture bits; an empty or non-accepting leaf is all zero, which admits nothing.
    private FitNode[] _tree = new FitNode[2 * MinLeaves];
    private Host?[] _slots = new Host?[MinLeaves];
    private int _leaves = MinLeaves;
    private int _used;
    private int _dead;
    private int _maxId = int.MinValue;
    private readonly string?[] _archs = new string?[31];
    private int _archCount;

    public int Count => _count;

    /// <summary>All hosts, in no particular order (removal moves the last host into the gap).</summary>
    public IReadOnlyList<Host> All => _all;

    public void Add(Host host)
    {
        Debug.Assert(host.Bucket < 0, "a host joins the index once");
        host.SlotInAll = _all.Count;
        _all.Add(host);
        _count++;
        Link(host, BucketOf(host.Free.VcpuMilli));

        if (_used == _leaves)
        {
            Rebuild(extra: 1, sortById: false);
        }

        host.ArchBit = ArchBit(host.Architecture, add: true);
        var slot = _used++;
        _slots[slot] = host;
        host.TreeSlot = slot;
        SetLeaf(slot, LeafOf(host));
        if (host.Id < _maxId)
        {
            // The engine numbers hosts as they join, so this is for other callers: keep slot order = Id order.
            Rebuild(extra: 0, sortById: true);
        }

        _maxId = Math.Max(_maxId, host.Id);
    }

    public void Remove(Host host)
    {
        if (host.Bucket < 0)
        {
            return;
        }

        Unlink(host);
        var slot = host.SlotInAll;
        var last = _all[^1];
        _all[slot] = last;
        last.SlotInAll = slot;
        _all.RemoveAt(_all.Count - 1);
        host.SlotInAll = -1;
        _count--;

        var treeSlot = host.TreeSlot;
        _slots[treeSlot] = null;
        host.TreeSlot = -1;
        SetLeaf(treeSlot, default);
        if (++_dead >= CompactAfter && _dead * 2 >= _used)
        {
            Rebuild(extra: 0, sortById: false);
        }
    }

    /// <summary>
    /// Call after a host's free capacity or <see cref="Host.Accepts"/> (ready, draining) changed: O(log n), allocates
    /// nothing. A host that stops accepting without a call is still never found (every pick is checked), only found
    /// more slowly; one that starts accepting without a call is missed by first fit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Update(Host host)
    {
        var bucket = BucketOf(host.Free.VcpuMilli);
        if (bucket != host.Bucket && host.Bucket >= 0)
        {
            Unlink(host);
            Link(host, bucket);
        }

        if (host.TreeSlot >= 0)
        {
            SetLeaf(host.TreeSlot, LeafOf(host));
        }
    }

    /// <summary>Finds a host for the request with the given strategy; null when none fits.</summary>
    public Host? Find(in ResourceVector request, string? architecture, PlacementStrategy strategy) => strategy switch
    {
        PlacementStrategy.BestFit => FindBestFit(request, architecture),
        PlacementStrategy.Spread => FindSpread(request, architecture),
        _ => FindFirstFit(request, architecture),
    };

    /// <summary>
    /// Best fit: walk buckets upward from the request's bucket; in the first bucket holding feasible hosts, score up
    /// to <see cref="BestFitCandidates"/> of them by the normalised leftover across all dimensions and take the least.
    /// </summary>
    public Host? FindBestFit(in ResourceVector request, string? architecture) => FindBestFit(request, architecture, null);

    /// <summary>
    /// Best fit over the feasible hosts <paramref name="accept"/> takes (null: all). Rejected hosts are skipped; after
    /// <see cref="MaxRejected"/> rejections the search stops with what it has, which bounds the cost on large fleets.
    /// </summary>
    public Host? FindBestFit(in ResourceVector request, string? architecture, Func<Host, bool>? accept)
    {
        var bucket = NextNonEmpty(BucketOf(request.VcpuMilli));
        var rejected = 0;
        while (bucket >= 0)
        {
            Host? best = null;
            var bestScore = double.MaxValue;
            var seen = 0;
            for (var h = _heads[bucket]; h is not null; h = h.NextInBucket)
            {
                if (!Feasible(h, request, architecture))
                {
                    continue;
                }

                if (accept is not null && !accept(h))
                {
                    if (++rejected == MaxRejected)
                    {
                        return best;
                    }

                    continue;
                }

                var score = Leftover(h, request);
                if (score == 0)
                {
                    return h; // an exact fit in every dimension: no candidate can leave less (and the first such wins, as below)
                }

                if (score < bestScore)
                {
                    bestScore = score;
                    best = h;
                }

                if (++seen == BestFitCandidates)
                {
                    break;
                }
            }

            if (best is not null)
            {
                return best;
            }

            bucket = NextNonEmpty(bucket + 1);
        }

        return null;
    }

    /// <summary>Spread: the feasible host with the most free vCPU (walk buckets downward).</summary>
    public Host? FindSpread(in ResourceVector request, string? architecture)
    {
        var min = BucketOf(request.VcpuMilli);
        for (var bucket = PrevNonEmpty(_heads.Length - 1); bucket >= min; bucket = PrevNonEmpty(bucket - 1))
        {
            Host? best = null;
            var bestScore = double.MinValue;
            var seen = 0;
            for (var h = _heads[bucket]; h is not null; h = h.NextInBucket)
            {
                if (!Feasible(h, request, architecture))
                {
                    continue;
                }

                var score = Leftover(h, request);
                if (score > bestScore)
                {
                    bestScore = score;
                    best = h;
                }

                if (++seen == BestFitCandidates)
                {
                    break;
                }
            }

            if (best is not null)
            {
                return best;
            }

            if (bucket == 0)
            {
                break;
            }
        }

        return null;
    }

    /// <summary>
    /// First fit: the earliest-joined (least <see cref="Host.Id"/>) feasible host, by a leftmost descent of the max
    /// tree. A node's maxima are a necessary, not a sufficient, condition (one host may have the vCPU and another the
    /// memory), so a subtree that admits the request but holds no fitting host is a dead end the descent backs out of.
    /// Cost: O(log n) per dead end left of the answer, plus O(log n); no dead ends when hosts' free capacities are
    /// ordered alike in every dimension the request binds (one binding dimension, or uniform hosts filling evenly).
    /// Worst case (e.g. hosts alternating "only vCPU free" / "only memory free" asked for both) every node is visited
    /// once: ~2n node checks, the order of the linear scan it replaces. Allocates nothing.
    /// </summary>
    public Host? FindFirstFit(in ResourceVector request, string? architecture)
    {
        var mask = architecture is null ? -1 : ArchBit(architecture, add: false);
        var tree = _tree;
        if (mask == 0 || !Admits(tree[1], request, mask))
        {
            return null;
        }

        var leaves = _leaves;
        var node = 1;
        while (true)
        {
            if (node >= leaves)
            {
                // The leaf mirrors the host exactly, except a stale Accepts or a shared architecture bit: check it.
                var h = _slots[node - leaves];
                if (h is not null && Feasible(h, request, architecture))
                {
                    return h;
                }
            }
            else
            {
                node <<= 1;
                if (Admits(tree[node], request, mask))
                {
                    continue;
                }

                node++;
                if (Admits(tree[node], request, mask))
                {
                    continue;
                }
            }

            // Dead end: nothing under node fits. Climb to the nearest untried right sibling that admits the request.
            while (true)
            {
                if ((node & 1) == 0 && Admits(tree[node + 1], request, mask))
                {
                    node++;
                    break;
                }

                node >>= 1;
                if (node <= 1)
                {
                    return null;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Feasible(Host h, in ResourceVector request, string? architecture) =>
        h.Accepts && h.Free.Fits(request) && (architecture is null || ReferenceEquals(architecture, h.Architecture) || architecture == h.Architecture);

    /// <summary>Sum over dimensions of the squared leftover fraction: 0 is a perfect fit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Leftover(Host h, in ResourceVector request)
    {
        var cap = h.Capacity;
        var cpu = (double)(h.Free.VcpuMilli - request.VcpuMilli) / Math.Max(1, cap.VcpuMilli);
        var mem = (double)(h.Free.MemoryMiB - request.MemoryMiB) / Math.Max(1, cap.MemoryMiB);
        var score = (cpu * cpu) + (mem * mem);
        if (cap.Gpus > 0)
        {
            var gpu = (double)(h.Free.Gpus - request.Gpus) / cap.Gpus;
            score += gpu * gpu;
        }

        return score;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Admits(in FitNode n, in ResourceVector request, int archMask) =>
        (n.Arch & archMask) != 0 && request.VcpuMilli <= n.VcpuMilli && request.MemoryMiB <= n.MemoryMiB && request.Gpus <= n.Gpus;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static FitNode LeafOf(Host h) =>
        h.Accepts ? new FitNode(h.Free.VcpuMilli, h.Free.MemoryMiB, h.Free.Gpus, h.ArchBit) : default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static FitNode Combine(in FitNode a, in FitNode b) =>
        new(Math.Max(a.VcpuMilli, b.VcpuMilli), Math.Max(a.MemoryMiB, b.MemoryMiB), Math.Max(a.Gpus, b.Gpus), a.Arch | b.Arch);

    /// <summary>Sets a leaf and refreshes its ancestors, stopping at the first one that does not change.</summary>
    private void SetLeaf(int slot, FitNode leaf)
    {
        var tree = _tree;
        var i = _leaves + slot;
        if (tree[i].SameAs(leaf))
        {
            return;
        }

        tree[i] = leaf;
        for (i >>= 1; i > 0; i >>= 1)
        {
            var n = Combine(tree[2 * i], tree[(2 * i) + 1]);
            if (tree[i].SameAs(n))
            {
                return;
            }

            tree[i] = n;
        }
    }

    /// <summary>
    /// Compacts the slots (keeping their order, or sorting by Id), resizes the tree when it is too small for the live
    /// hosts plus <paramref name="extra"/> with room to grow, or four times too big, and recomputes every node: O(n),
    /// and at least n/4 additions or removals apart, so O(1) amortised.
    /// </summary>
    private void Rebuild(int extra, bool sortById)
    {
        var live = 0;
        for (var r = 0; r < _used; r++)
        {
            if (_slots[r] is { } h)
            {
                _slots[live++] = h;
            }
        }

        Array.Clear(_slots, live, _used - live);
        if (sortById)
        {
            Array.Sort(_slots, 0, live, IdOrder.Instance);
        }

        // A quarter to spare: the next full-tree rebuild is at least live/4 additions away. (Twice the room would make
        // the 100,000-host tree 8 MiB instead of 4, and the hot-path Update walk miss the cache more.)
        var needed = live + extra + ((live + extra) / 4) + 1;
        if (_leaves < needed || _leaves > 4 * Math.Max(needed, MinLeaves))
        {
            var leaves = MinLeaves;
            while (leaves < needed)
            {
                leaves *= 2;
            }

            var slots = new Host?[leaves];
            Array.Copy(_slots, slots, live);
            _slots = slots;
            _tree = new FitNode[2 * leaves];
            _leaves = leaves;
        }

        _used = live;
        _dead = 0;
        var tree = _tree;
        for (var i = 0; i < _leaves; i++)
        {
            var h = _slots[i];
            if (h is not null)
            {
                h.TreeSlot = i;
            }

            tree[_leaves + i] = h is null ? default : LeafOf(h);
        }

        for (var i = _leaves - 1; i > 0; i--)
        {
            tree[i] = Combine(tree[2 * i], tree[(2 * i) + 1]);
        }
    }

    /// <summary>
    /// The architecture's bit in the tree's masks: one per distinct architecture (interned strings compare by
    /// reference first), the 32nd and later share <see cref="SharedArchBit"/>. A request's architecture no host ever
    /// had is 0: nothing matches it.
    /// </summary>
    private int ArchBit(string architecture, bool add)
    {
        var archs = _archs;
        for (var i = 0; i < _archCount; i++)
        {
            if (ReferenceEquals(archs[i], architecture) || archs[i] == architecture)
            {
                return 1 << i;
            }
        }

        if (!add)
        {
            return _archCount == archs.Length ? SharedArchBit : 0;
        }

        if (_archCount == archs.Length)
        {
            return SharedArchBit;
        }

        archs[_archCount] = architecture;
        return 1 << _archCount++;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int BucketOf(int vcpuMilli) => Math.Max(0, vcpuMilli) / BucketMilli;

    private void Link(Host host, int bucket)
    {
        if (bucket >= _heads.Length)
        {
            var size = _heads.Length;
            while (size <= bucket)
            {
                size *= 2;
            }

            Array.Resize(ref _heads, size);
            Array.Resize(ref _bitmap, (size + 63) / 64);
            Array.Resize(ref _summary, (_bitmap.Length + 63) / 64);
        }

        var head = _heads[bucket];
        host.PrevInBucket = null;
        host.NextInBucket = head;
        if (head is not null)
        {
            head.PrevInBucket = host;
        }

        _heads[bucket] = host;
        host.Bucket = bucket;
        _bitmap[bucket >> 6] |= 1UL << (bucket & 63);
        _summary[bucket >> 12] |= 1UL << ((bucket >> 6) & 63);
    }

    private void Unlink(Host host)
    {
        var bucket = host.Bucket;
        if (host.PrevInBucket is not null)
        {
            host.PrevInBucket.NextInBucket = host.NextInBucket;
        }
        else
        {
            _heads[bucket] = host.NextInBucket;
        }

        if (host.NextInBucket is not null)
        {
            host.NextInBucket.PrevInBucket = host.PrevInBucket;
        }

        host.PrevInBucket = host.NextInBucket = null;
        host.Bucket = -1;
        if (_heads[bucket] is null && (_bitmap[bucket >> 6] &= ~(1UL << (bucket & 63))) == 0)
        {
            _summary[bucket >> 12] &= ~(1UL << ((bucket >> 6) & 63));
        }
    }

    private int NextNonEmpty(int from)
    {
        if (from >= _heads.Length)
        {
            return -1;
        }

        var word = from >> 6;
        var bits = _bitmap[word] & (ulong.MaxValue << (from & 63));
        if (bits != 0)
        {
            return (word << 6) + BitOperations.TrailingZeroCount(bits);
        }

        // The next word with a bit set, from the summary.
        if (++word >= _bitmap.Length)
        {
            return -1;
        }

        var sw = word >> 6;
        var sbits = _summary[sw] & (ulong.MaxValue << (word & 63));
        while (sbits == 0)
        {
            if (++sw >= _summary.Length)
            {
                return -1;
            }

            sbits = _summary[sw];
        }

        word = (sw << 6) + BitOperations.TrailingZeroCount(sbits);
        return (word << 6) + BitOperations.TrailingZeroCount(_bitmap[word]);
    }

    private int PrevNonEmpty(int from)
    {
        if (from < 0)
        {
            return -1;
        }

        var word = from >> 6;
        var bits = _bitmap[word] & (ulong.MaxValue >> (63 - (from & 63)));
        if (bits != 0)
        {
            return (word << 6) + 63 - BitOperations.LeadingZeroCount(bits);
        }

        if (--word < 0)
        {
            return -1;
        }

        var sw = word >> 6;
        var sbits = _summary[sw] & (ulong.MaxValue >> (63 - (word & 63)));
        while (sbits == 0)
        {
            if (--sw < 0)
            {
                return -1;
            }

            sbits = _summary[sw];
        }

        word = (sw << 6) + 63 - BitOperations.LeadingZeroCount(sbits);
        return (word << 6) + 63 - BitOperations.LeadingZeroCount(_bitmap[word]);
    }

    /// <summary>Checks the index's structure; tests and debug builds only.</summary>
    [Conditional("DEBUG")]
    public void AssertInvariants()
    {
        var n = 0;
        for (var b = 0; b < _heads.Length; b++)
        {
            var nonEmpty = (_bitmap[b >> 6] & (1UL << (b & 63))) != 0;
            Debug.Assert(nonEmpty == (_heads[b] is not null), "bitmap matches buckets");
            Debug.Assert(((_summary[b >> 12] >> ((b >> 6) & 63)) & 1) == (_bitmap[b >> 6] != 0 ? 1UL : 0UL), "summary matches bitmap words");
            for (var h = _heads[b]; h is not null; h = h.NextInBucket)
            {
                Debug.Assert(h.Bucket == b && BucketOf(h.Free.VcpuMilli) == b, "host is in the bucket of its free vCPU");
                n++;
            }
        }

        Debug.Assert(n == _count, "every host is in exactly one bucket");

        var live = 0;
        var lastId = int.MinValue;
        for (var slot = 0; slot < _leaves; slot++)
        {
            var h = _slots[slot];
            Debug.Assert(h is null || slot < _used, "slots past the used ones are empty");
            var leaf = _tree[_leaves + slot];
            Debug.Assert(
                h is null ? leaf.SameAs(default) : leaf.SameAs(LeafOf(h)) || (!h.Accepts && leaf.SameAs(new FitNode(h.Free.VcpuMilli, h.Free.MemoryMiB, h.Free.Gpus, h.ArchBit))),
                "a leaf mirrors its host (or a drain the index was not told of)");
            if (h is not null)
            {
                Debug.Assert(h.TreeSlot == slot, "a host knows its slot");
                Debug.Assert(h.Id > lastId, "slot order is Id order");
                lastId = h.Id;
                live++;
            }
        }

        Debug.Assert(live == _count && _used - _dead == _count, "every host has exactly one slot");
        for (var i = 1; i < _leaves; i++)
        {
            Debug.Assert(_tree[i].SameAs(Combine(_tree[2 * i], _tree[(2 * i) + 1])), "a node is the max of its children");
        }
    }

    /// <summary>One node of the first-fit tree: maxima over the accepting hosts below it and their architecture bits.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private readonly struct FitNode(int vcpuMilli, int memoryMiB, int gpus, int arch)
    {
        public readonly int VcpuMilli = vcpuMilli;
        public readonly int MemoryMiB = memoryMiB;
        public readonly int Gpus = gpus;
        public readonly int Arch = arch;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool SameAs(in FitNode o) => VcpuMilli == o.VcpuMilli && MemoryMiB == o.MemoryMiB && Gpus == o.Gpus && Arch == o.Arch;
    }

    private sealed class IdOrder : IComparer<Host?>
    {
        public static readonly IdOrder Instance = new();

        public int Compare(Host? x, Host? y) => x!.Id.CompareTo(y!.Id);
    }
}
