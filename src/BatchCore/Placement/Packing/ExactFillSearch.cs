using System.Diagnostics;

namespace BatchCore.Placement.Packing;

/// <summary>
/// One-dimensional exact search for a packing into exactly <c>target</c> bins (the lower bound), bin by bin:
/// each bin starts with the largest unpacked item and is completed by a subset of the others, tried largest items
/// first; the whole packing may waste at most <c>target · C − Σ sizes</c> (the slack), so a bin that wastes more than
/// what is left of it is never tried. With zero slack — Falkenauer's triplets, where every bin is exactly full — a
/// bin's last item is a lookup of the one size that closes it (a binary search over the distinct sizes), which is
/// what item-at-a-time greedy and the swap search keep missing. The search backtracks chronologically with a node
/// limit per restart; each restart shuffles the order of the first completing item of every bin (seeded), which is
/// what gets the search out of a dead subtree near the end (the bin-oriented branching of Scholl, Klein &amp; Jürgens'
/// BISON and Martello &amp; Toth's MTP, with randomised restarts instead of their bounds).
/// </summary>
internal sealed class ExactFillSearch
{
    private const long MaxActiveEntries = 1 << 22;
    private const long LnsNodes = 1_000;
    private const long MaxTableCapacity = 1 << 20;
    private readonly long _capacity;
    private readonly long[] _value;      // distinct sizes, decreasing
    private readonly int[] _count;       // unpacked items of each distinct size
    private readonly int[] _firstItem;   // items sorted by decreasing size: those of value v start at _firstItem[v]
    private readonly int[] _sortedItems;
    private readonly int[] _stackValue;  // value index of each placed item, in placement order
    private readonly int[] _stackBin;
    private readonly int[] _rotation;    // per restart: how many of a bin's first candidates are tried last
    private readonly Random _rng;
    private int[] _active = [];          // per depth of the triplet search: the distinct sizes still unpacked
    private int[] _deepValue = [];       // the deepest partial packing of the last triplet search
    private int _deepTop;
    private int[] _total = [];           // items of each size, packed or not
    private int[] _pairSums = [];        // triplet search: distinct-size pairs of unpacked items by their sum (≤ capacity)
    private int[] _indexOfValue = [];    // triplet search: size → index into _value, −1 when no item has it
    private readonly int _n;
    private int _top;                    // placed items on the stack
    private long _nodes;
    private long _nodeLimit;
    private bool _aborted;
    private bool _timedOut;
    private TimeProvider _clock = TimeProvider.System;
    private long _deadline;

    internal ExactFillSearch(long[] sizes, long capacity, int seed)
    {
        _capacity = capacity;
        _n = sizes.Length;
        _sortedItems = new int[_n];
        for (var i = 0; i < _n; i++)
        {
            _sortedItems[i] = i;
        }

        // Decreasing size, ties by index (deterministic).
        Array.Sort(_sortedItems, (a, b) => sizes[a] != sizes[b] ? sizes[b].CompareTo(sizes[a]) : a.CompareTo(b));
        var distinct = 0;
        for (var x = 0; x < _n; x++)
        {
            if (x == 0 || sizes[_sortedItems[x]] != sizes[_sortedItems[x - 1]])
            {
                distinct++;
            }
        }

        _value = new long[distinct];
        _count = new int[distinct];
        _firstItem = new int[distinct];
        var v = -1;
        for (var x = 0; x < _n; x++)
        {
            var s = sizes[_sortedItems[x]];
            if (v < 0 || _value[v] != s)
            {
                v++;
                _value[v] = s;
                _firstItem[v] = x;
            }

            _count[v]++;
        }

        _stackValue = new int[_n];
        _stackBin = new int[_n];
        _rotation = new int[Math.Max(1, _n)];
        _rng = new Random(seed);
    }

    /// <summary>The outcome: found a packing into the target, nodes used, and whether the clock stopped it.</summary>
    internal readonly record struct Outcome(bool Found, long Nodes, bool TimedOut);

    /// <summary>
    /// Looks for a packing into <paramref name="target"/> bins within <paramref name="maxNodes"/> search nodes and the
    /// deadline; on success writes each item's bin (0..target-1, none empty) into <paramref name="binOfItem"/>.
    /// </summary>
    internal Outcome Run(int target, long maxNodes, TimeProvider clock, long deadlineTimestamp, int[] binOfItem)
    {
        long total = 0;
        for (var v = 0; v < _value.Length; v++)
        {
            total += _value[v] * _count[v];
        }

        var slack = (target * _capacity) - total;
        if (slack < 0 || _n == 0)
        {
            return new Outcome(false, 0, false);
        }

        // Restarts whose node limit doubles every fourth restart: short runs first, longer ones when those fail.
        _clock = clock;
        _deadline = deadlineTimestamp;
        _timedOut = false;
        if (IsTripletCase(target, slack))
        {
            return RunTriplets(maxNodes, binOfItem);
        }

        // The general search is less often decisive (instances with slack usually have many optimal packings that
        // the local search finds too): it keeps half of what it is given for them.
        maxNodes /= 2;
        if (deadlineTimestamp != long.MaxValue)
        {
            var now = clock.GetTimestamp();
            _deadline = now + ((deadlineTimestamp - now) / 2);
        }

        long used = 0;
        var perRestart = Math.Max(1_000L, 20L * _n);
        var restart = 0;
        while (used < maxNodes)
        {
            for (var b = 0; b < _rotation.Length; b++)
            {
                // The first restart is the plain largest-first order; later ones shuffle each bin's first choice a little.
                _rotation[b] = restart == 0 ? 0 : (_rng.Next(4) == 0 ? _rng.Next(1, 4) : 0);
            }

            _nodes = 0;
            _nodeLimit = Math.Min(perRestart, maxNodes - used);
            _aborted = false;
            _top = 0;
            var found = OpenBin(0, target, slack);
            used += _nodes;
            if (found)
            {
                Record(binOfItem);
                return new Outcome(true, used, false);
            }

            RestoreAll();
            if (!_aborted)
            {
                return new Outcome(false, used, false); // the whole tree was searched: no packing into target exists
            }

            if (_timedOut)
            {
                return new Outcome(false, used, true);
            }

            restart++;
            if ((restart & 3) == 0)
            {
                perRestart *= 2;
            }
        }

        return new Outcome(false, used, false);
    }

    // Triplets, in rounds of two steps. 1. A fail-first depth-first search (Triplets) from scratch with a node limit;
    // the deepest partial packing it reached is kept. 2. Large neighbourhood search from there: release the bins
    // holding a pair that would complete an unpacked item (and a few random ones), search again for exact triples over
    // them and the unpacked items, and keep the outcome when it packs at least as many bins as were released (so the
    // unpacked items never grow). Each round grows both limits (×2): the two steps fail on different instances.
    private Outcome RunTriplets(long maxNodes, int[] binOfItem)
    {
        var bins = new List<(int A, int B, int C)>(_n / 3);
        var released = new List<int>(24);
        _total = (int[])_count.Clone();
        _deepValue = new int[_n];
        long used = 0;
        var dfsLimit = 2L * _n;
        var lnsLimit = Math.Max(5_000L, 20L * _n);
        while (used < maxNodes && !_timedOut)
        {
            // 1. Depth-first search from scratch.
            _nodes = 0;
            _nodeLimit = Math.Min(dfsLimit, maxNodes - used);
            _aborted = false;
            _top = 0;
            _deepTop = 0;
            var found = Triplets(0);
            used += _nodes;
            if (found)
            {
                Record(binOfItem);
                return new Outcome(true, used, false);
            }

            RestoreAll();
            if (!_aborted)
            {
                return new Outcome(false, used, false); // searched completely: no exact packing of this shape
            }

            bins.Clear();
            KeepDeepest(bins);

            // 2. Large neighbourhood search for this round's share.
            var roundEnd = Math.Min(maxNodes, used + lnsLimit);
            while (used < roundEnd && !_timedOut)
            {
                if (Neighbourhood(bins, released, roundEnd - used, ref used))
                {
                    WriteBins(bins);
                    Record(binOfItem);
                    return new Outcome(true, used, false);
                }
            }

            // Back to all items unpacked for the next round.
            for (var x = 0; x < bins.Count; x++)
            {
                Inc(bins[x].A);
                Inc(bins[x].B);
                Inc(bins[x].C);
            }

            bins.Clear();
            dfsLimit *= 2;
            lnsLimit *= 2;
        }

        return new Outcome(false, used, _timedOut);
    }

    // One large-neighbourhood move; true when every item is packed (then `bins` holds the whole packing).
    private bool Neighbourhood(List<(int A, int B, int C)> bins, List<int> released, long nodes, ref long used)
    {
        // Release the bins holding a pair that would complete a random unpacked item, plus 1..5 random bins.
        released.Clear();
        var stuck = RandomUnpacked();
        if (RandomPairFor(stuck) is var (pa, pb) && pa >= 0)
        {
            Release(bins, released, FindBin(bins, pa, -1));
            Release(bins, released, FindBin(bins, pb, pa == pb ? 1 : -1));
        }

        var extra = 1 + _rng.Next(5);
        for (var r = 0; r < extra && bins.Count > 0; r++)
        {
            Release(bins, released, _rng.Next(bins.Count));
        }

        var k = released.Count / 3;
        _nodes = 0;
        _nodeLimit = Math.Min(LnsNodes, nodes);
        _aborted = false;
        _top = 0;
        _deepTop = 0;
        var found = Triplets(0);
        used += _nodes;
        if (found)
        {
            for (var x = 0; x < _top; x += 3)
            {
                bins.Add((_stackValue[x], _stackValue[x + 1], _stackValue[x + 2]));
            }

            _top = 0; // those items stay packed: every item is now in `bins`
            return true;
        }

        RestoreAll();
        if (_deepTop / 3 >= k)
        {
            KeepDeepest(bins); // at least as many full bins as released: accept (ties too, they move the search)
        }
        else
        {
            for (var x = 0; x < released.Count; x += 3)
            {
                bins.Add((released[x], released[x + 1], released[x + 2]));
                Dec(released[x]);
                Dec(released[x + 1]);
                Dec(released[x + 2]);
            }
        }

        return false;
    }

    // Puts the whole packing `bins` (every item packed) on the stack (bin x = entries 3x..3x+2), as Record expects.
    private void WriteBins(List<(int A, int B, int C)> bins)
    {
        for (var x = 0; x < bins.Count; x++)
        {
            _stackValue[3 * x] = bins[x].A;
            _stackValue[(3 * x) + 1] = bins[x].B;
            _stackValue[(3 * x) + 2] = bins[x].C;
            _stackBin[3 * x] = _stackBin[(3 * x) + 1] = _stackBin[(3 * x) + 2] = x;
        }

        _top = 3 * bins.Count;
    }

    // Moves bin `at` of `bins` (if any) into the unpacked counts and the released list.
    private void Release(List<(int A, int B, int C)> bins, List<int> released, int at)
    {
        if (at < 0)
        {
            return;
        }

        var (a, b, c) = bins[at];
        bins[at] = bins[^1];
        bins.RemoveAt(bins.Count - 1);
        released.Add(a);
        released.Add(b);
        released.Add(c);
        Inc(a);
        Inc(b);
        Inc(c);
    }

    // A bin holding value v (skipping `skip` matches, for a pair of equal values), or −1.
    private static int FindBin(List<(int A, int B, int C)> bins, int v, int skip)
    {
        var seen = skip < 0 ? 0 : -skip;
        for (var x = 0; x < bins.Count; x++)
        {
            var (a, b, c) = bins[x];
            if (a == v || b == v || c == v)
            {
                if (seen++ >= 0)
                {
                    return x;
                }
            }
        }

        return -1;
    }

    private int RandomUnpacked()
    {
        var total = 0;
        for (var v = 0; v < _value.Length; v++)
        {
            total += _count[v];
        }

        var pick = _rng.Next(total);
        for (var v = 0; v < _value.Length; v++)
        {
            pick -= _count[v];
            if (pick < 0)
            {
                return v;
            }
        }

        return _value.Length - 1;
    }

    // A random pair of sizes (over all items, packed or not, other than one item of x) completing x exactly, or (−1, −1).
    private (int A, int B) RandomPairFor(int x)
    {
        var need = _capacity - _value[x];
        var chosen = (-1, -1);
        var seen = 0;
        int i = 0, j = _value.Length - 1;
        while (i <= j)
        {
            var sum = _value[i] + _value[j];
            if (sum > need)
            {
                i++;
            }
            else if (sum < need)
            {
                j--;
            }
            else
            {
                var needed = i == j ? 2 : 1;
                if (_total[i] - (i == x ? 1 : 0) >= needed && _total[j] - (j == x ? 1 : 0) >= needed - (i == j ? 1 : 0))
                {
                    if (_rng.Next(++seen) == 0)
                    {
                        chosen = (i, j);
                    }
                }

                i++;
                j--;
            }
        }

        return chosen;
    }

    // Moves the deepest partial packing of the last search into `bins` (its items leave the unpacked counts).
    private void KeepDeepest(List<(int A, int B, int C)> bins)
    {
        for (var x = 0; x + 2 < _deepTop; x += 3)
        {
            bins.Add((_deepValue[x], _deepValue[x + 1], _deepValue[x + 2]));
            Dec(_deepValue[x]);
            Dec(_deepValue[x + 1]);
            Dec(_deepValue[x + 2]);
        }
    }

    // Every bin exactly full with exactly three items: no slack, n = 3·target, and any four items overfill a bin.
    private bool IsTripletCase(int target, long slack)
    {
        if (slack != 0 || _n != 3 * target || _n < 4 || (long)(target + 1) * _value.Length > MaxActiveEntries
            || _capacity > MaxTableCapacity)
        {
            return false;
        }

        long smallestFour = 0;
        for (var x = _n - 4; x < _n; x++)
        {
            smallestFour += _value[ValueIndexOfSorted(x)];
        }

        // Four items may fill a bin only when they are exactly the capacity (Falkenauer's t sets have sizes ≥ C/4):
        // the search then only misses packings with a four-item bin, so it is a heuristic there, not a proof.
        if (smallestFour < _capacity)
        {
            return false;
        }

        _active = new int[(target + 1) * _value.Length];
        _indexOfValue = new int[_capacity + 1];
        Array.Fill(_indexOfValue, -1);
        for (var v = 0; v < _value.Length; v++)
        {
            _indexOfValue[_value[v]] = v;
        }

        _pairSums = new int[_capacity + 1];
        for (var a = 0; a < _value.Length; a++)
        {
            if (_count[a] >= 2)
            {
                AddPair(2 * _value[a], 1);
            }

            for (var b = a + 1; b < _value.Length && _count[a] > 0; b++)
            {
                if (_count[b] > 0)
                {
                    AddPair(_value[a] + _value[b], 1);
                }
            }
        }

        return true;
    }

    private int ValueIndexOfSorted(int sortedPosition)
    {
        var v = 0;
        while (v + 1 < _firstItem.Length && _firstItem[v + 1] <= sortedPosition)
        {
            v++;
        }

        return v;
    }

    // Triplets: branch on the size with the fewest pairs that complete it (fail first; none left = dead end), trying
    // each completing pair of sizes found by a two-pointer scan over the distinct sizes. Bin `bin` gets the triple.
    private bool Triplets(int bin)
    {
        if (_top > _deepTop)
        {
            _deepTop = _top;
            Array.Copy(_stackValue, _deepValue, _top);
        }

        if (!Tick())
        {
            return false;
        }

        // The sizes still unpacked, decreasing (this depth's slice: deeper levels must not overwrite it).
        var active = _active.AsSpan(bin * _value.Length, _value.Length);
        var u = 0;
        for (var v = 0; v < _value.Length; v++)
        {
            if (_count[v] > 0)
            {
                active[u++] = v;
            }
        }

        if (u == 0)
        {
            return true;
        }

        var pick = -1;
        var fewest = int.MaxValue;
        for (var a = 0; a < u && fewest > 1; a++)
        {
            var x = active[a];
            var pairs = PairsWithout(x);
            if (pairs < fewest)
            {
                fewest = pairs;
                pick = x;
            }
        }

        if (fewest == 0)
        {
            return false;
        }

        Take(pick, bin);
        var found = TryPairs(pick, u, bin);
        if (!found)
        {
            Untake(pick);
        }

        return found;
    }

    // Two-pointer scan of this depth's active sizes for pairs (a ≥ b) with a + b = capacity − value[x]; tries each
    // (take, recurse, give back) and returns true when one leads to a full packing.
    private bool TryPairs(int x, int u, int bin)
    {
        var active = _active.AsSpan(bin * _value.Length, u);
        var need = _capacity - _value[x];
        int i = 0, j = u - 1;
        while (i <= j)
        {
            var vi = active[i];
            var vj = active[j];
            var sum = _value[vi] + _value[vj];
            if (sum > need)
            {
                i++;
                continue;
            }

            if (sum < need)
            {
                j--;
                continue;
            }

            if (_count[vi] > (vi == vj ? 1 : 0) && _count[vj] > 0)
            {
                Take(vi, bin);
                Take(vj, bin);
                if (Triplets(bin + 1))
                {
                    return true;
                }

                Untake(vj);
                Untake(vi);
                if (_aborted)
                {
                    return false;
                }
            }

            i++;
            j--;
        }

        return false;
    }

    // Starts bin `bin` with the largest unpacked item; true when every item is packed into the target.
    private bool OpenBin(int bin, int target, long slack)
    {
        var largest = LargestLeft();
        if (largest < 0)
        {
            return true;
        }

        if (bin >= target)
        {
            return false;
        }

        Take(largest, bin);
        var ok = Complete(bin, target, _capacity - _value[largest], largest, slack, first: true);
        if (!ok)
        {
            Untake(largest);
        }

        return ok;
    }

    // Adds items of value index ≥ `from` to bin `bin` with `need` capacity left (largest first), or closes the bin
    // when its waste fits the slack; true when every item is packed into the target.
    private bool Complete(int bin, int target, long need, int from, long slack, bool first)
    {
        if (!Tick())
        {
            return false;
        }

        // Candidates: sizes ≤ need that either close the bin within the slack (need − s ≤ slack) or leave room for at
        // least the smallest unpacked item (need − s ≥ smallest). Values are decreasing, so those are two index ranges:
        // [lo, closeEnd) and [addStart, end).
        var smallest = SmallestLeft();
        var lo = Math.Max(from, FirstAtMost(need));
        var closeEnd = Math.Max(lo, FirstBelow(need - slack));
        var addStart = smallest < 0 ? _value.Length : Math.Max(lo, FirstAtMost(need - _value[smallest]));
        var firstRange = Math.Min(closeEnd, addStart) - lo;
        var total = firstRange + (_value.Length - addStart);

        // A bin's first completing item may start at a rotated position of the candidate list (restarts).
        var skip = first && total > 0 ? _rotation[bin % _rotation.Length] % total : 0;
        for (var t = 0; t < total; t++)
        {
            var pos = t + skip < total ? t + skip : t + skip - total;
            var v = pos < firstRange ? lo + pos : addStart + (pos - firstRange);
            if (_count[v] == 0)
            {
                continue;
            }

            Take(v, bin);
            if (Complete(bin, target, need - _value[v], v, slack, first: false))
            {
                return true;
            }

            Untake(v);
            if (_aborted)
            {
                return false;
            }
        }

        // Close the bin: after the fuller alternatives, when its waste fits what is left of the slack.
        return need <= slack && OpenBin(bin + 1, target, slack - need);
    }

    // Counts a node; false once the node limit or the deadline stops the current restart.
    private bool Tick()
    {
        if (_aborted)
        {
            return false;
        }

        if (++_nodes > _nodeLimit)
        {
            _aborted = true;
        }
        else if ((_nodes & 1023) == 0 && _deadline != long.MaxValue && _clock.GetTimestamp() >= _deadline)
        {
            _aborted = true;
            _timedOut = true;
        }

        return !_aborted;
    }

    // Distinct-size pairs completing x once one item of x is packed: the pair-sum table, less the pair x itself was in.
    private int PairsWithout(int x)
    {
        var vx = _value[x];
        var need = _capacity - vx;
        var pairs = _pairSums[need];
        if (_count[x] == 1)
        {
            // (x, need − x) counted x; it is gone once x is packed.
            var w = need - vx;
            if (w >= 0 && w != vx && _indexOfValue[w] is var iw && iw >= 0 && _count[iw] > 0)
            {
                pairs--;
            }
        }
        else if (_count[x] == 2 && 2 * vx == need)
        {
            pairs--; // (x, x) needs both items of x
        }

        return pairs;
    }

    // Count changes keep the pair-sum table of the triplet search: P[s] = distinct-size pairs with both items unpacked.
    private void Dec(int v)
    {
        var c = --_count[v];
        if (_pairSums.Length == 0)
        {
            return;
        }

        if (c == 1)
        {
            AddPair(_value[v] + _value[v], -1);
        }
        else if (c == 0)
        {
            for (var w = 0; w < _value.Length; w++)
            {
                if (w != v && _count[w] > 0)
                {
                    AddPair(_value[v] + _value[w], -1);
                }
            }
        }
    }

    private void Inc(int v)
    {
        var c = ++_count[v];
        if (_pairSums.Length == 0)
        {
            return;
        }

        if (c == 2)
        {
            AddPair(_value[v] + _value[v], 1);
        }
        else if (c == 1)
        {
            for (var w = 0; w < _value.Length; w++)
            {
                if (w != v && _count[w] > 0)
                {
                    AddPair(_value[v] + _value[w], 1);
                }
            }
        }
    }

    private void AddPair(long sum, int delta)
    {
        if (sum <= _capacity)
        {
            _pairSums[sum] += delta;
        }
    }

    private void Take(int v, int bin)
    {
        Dec(v);
        _stackValue[_top] = v;
        _stackBin[_top] = bin;
        _top++;
    }

    private void Untake(int v)
    {
        _top--;
        Debug.Assert(_stackValue[_top] == v, "items are returned in reverse order of taking");
        Inc(v);
    }

    private void RestoreAll()
    {
        while (_top > 0)
        {
            Untake(_stackValue[_top - 1]);
        }
    }

    // Items of each value go to bins in stack order.
    private void Record(int[] binOfItem)
    {
        var next = (int[])_firstItem.Clone();
        for (var x = 0; x < _top; x++)
        {
            binOfItem[_sortedItems[next[_stackValue[x]]++]] = _stackBin[x];
        }

        RestoreAll();
    }

    private int LargestLeft()
    {
        for (var v = 0; v < _value.Length; v++)
        {
            if (_count[v] > 0)
            {
                return v;
            }
        }

        return -1;
    }

    private int SmallestLeft()
    {
        for (var v = _value.Length - 1; v >= 0; v--)
        {
            if (_count[v] > 0)
            {
                return v;
            }
        }

        return -1;
    }

    // The first index whose value is ≤ x (values decrease); _value.Length when none.
    private int FirstAtMost(long x)
    {
        int lo = 0, hi = _value.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_value[mid] <= x)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }

        return lo;
    }

    // The first index whose value is < x.
    private int FirstBelow(long x) => FirstAtMost(x - 1);
}
