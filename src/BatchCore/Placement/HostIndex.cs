using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace BatchCore.Placement;

/// <summary>
/// The hosts of one compute environment indexed by free vCPU, so a best-fit lookup visits only hosts that have
/// enough vCPU, tightest first, instead of scanning every host.
/// Hosts sit in buckets of <see cref="BucketMilli"/> free milli-vCPU (intrusive lists: moving a host between
/// buckets allocates nothing) and a bitmap of non-empty buckets finds the next candidate bucket in a few word scans.
/// Owned by the scheduling loop: not thread-safe by design.
/// </summary>
internal sealed class HostIndex
{
    /// <summary>A quarter vCPU: Fargate's smallest size, so Fargate-shaped requests land on bucket boundaries.</summary>
    public const int BucketMilli = 250;

    /// <summary>How many feasible hosts best fit compares before it settles; bounds the cost on huge fleets.</summary>
    private const int BestFitCandidates = 16;

    private Host?[] _heads = new Host?[64];
    private ulong[] _bitmap = new ulong[1];
    private readonly List<Host> _all = [];
    private int _count;

    public int Count => _count;

    /// <summary>All hosts in join order (FirstFit's order). Removed hosts leave null slots that are compacted.</summary>
    public IReadOnlyList<Host> All => _all;

    public void Add(Host host)
    {
        Debug.Assert(host.Bucket < 0, "a host joins the index once");
        host.SlotInAll = _all.Count;
        _all.Add(host);
        _count++;
        Link(host, BucketOf(host.Free.VcpuMilli));
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
    }

    /// <summary>Call after a host's free capacity changed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Update(Host host)
    {
        var bucket = BucketOf(host.Free.VcpuMilli);
        if (bucket != host.Bucket && host.Bucket >= 0)
        {
            Unlink(host);
            Link(host, bucket);
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
    public Host? FindBestFit(in ResourceVector request, string? architecture)
    {
        var bucket = NextNonEmpty(BucketOf(request.VcpuMilli));
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

                var score = Leftover(h, request);
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

    /// <summary>First fit: the earliest-joined feasible host. A linear scan: the baseline.</summary>
    public Host? FindFirstFit(in ResourceVector request, string? architecture)
    {
        var all = _all;
        Host? best = null;
        for (var i = 0; i < all.Count; i++)
        {
            var h = all[i];
            if (Feasible(h, request, architecture) && (best is null || h.Id < best.Id))
            {
                best = h;
            }
        }

        return best;
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
        if (_heads[bucket] is null)
        {
            _bitmap[bucket >> 6] &= ~(1UL << (bucket & 63));
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
        while (true)
        {
            if (bits != 0)
            {
                return (word << 6) + BitOperations.TrailingZeroCount(bits);
            }

            if (++word >= _bitmap.Length)
            {
                return -1;
            }

            bits = _bitmap[word];
        }
    }

    private int PrevNonEmpty(int from)
    {
        if (from < 0)
        {
            return -1;
        }

        var word = from >> 6;
        var shift = 63 - (from & 63);
        var bits = _bitmap[word] & (ulong.MaxValue >> shift);
        while (true)
        {
            if (bits != 0)
            {
                return (word << 6) + 63 - BitOperations.LeadingZeroCount(bits);
            }

            if (--word < 0)
            {
                return -1;
            }

            bits = _bitmap[word];
        }
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
            for (var h = _heads[b]; h is not null; h = h.NextInBucket)
            {
                Debug.Assert(h.Bucket == b && BucketOf(h.Free.VcpuMilli) == b, "host is in the bucket of its free vCPU");
                n++;
            }
        }

        Debug.Assert(n == _count, "every host is in exactly one bucket");
    }
}
