using System.Diagnostics;

namespace BatchCore.Placement.Packing;

/// <summary>
/// The improvement phase of <see cref="PackingStrategy.Optimized"/>: given a packing with m bins, look for one with
/// m − 1 by keeping m − 1 − r bins (the "partial" packing), putting the items of the other r + 1 bins into a pool, and
/// swapping items between partial bins and the pool — (0..2 out) × (1..2 in), never overfilling a bin — so that the
/// pool gets lighter, until the pool fits into r fresh bins. Items that leave a bin are tabu for that bin for a few
/// moves; when a whole pass over the bins finds no admissible move a random item is kicked to the pool; a round that
/// stalls restarts from the best packing with other bins removed. This is the consistent-neighbourhood idea of
/// Buljubašić &amp; Vasquez (2016) in a simplified form, with the pool's weight measured as Σ demand/capacity so it
/// works unchanged for vectors.
/// </summary>
internal sealed class BinEliminationSearch
{
    private const double Epsilon = 1e-9;
    private const int MaxBinItemsForPairs = 16;
    private const int MaxPoolItemsForPairs = 24;
    private const int ExactSplitWork = 1 << 17;

    private readonly long[] _demands;
    private readonly long[] _capacity;
    private readonly int _d;
    private readonly int _n;
    private readonly double[] _weight;
    private readonly List<int>[] _bins;
    private readonly long[] _load;
    private readonly int[] _binOf;
    private readonly List<int> _pool;
    private readonly long[] _poolLoad;
    private readonly int[] _tabuBin;
    private readonly long[] _tabuUntil;
    private readonly long[] _base;
    private readonly long[] _scratchLoad;
    private readonly int[] _split;
    private readonly int[] _poolOrder;
    private readonly int[] _bestBinOf;
    private readonly int[] _map;
    private readonly Random _rng;

    // Descent ("general add/drop"): refill one bin with the heaviest subset of its items and the pool's.
    private const int MaxRefillCandidates = 22;
    private const int RefillNodeLimit = 20_000;
    private readonly int[] _cand = new int[MaxRefillCandidates];
    private readonly double[] _suffix = new double[MaxRefillCandidates + 1];
    private readonly bool[] _take = new bool[MaxRefillCandidates];
    private readonly bool[] _bestTake = new bool[MaxRefillCandidates];
    private long[] _dfsLoad = [];
    private int _candCount;
    private double _refillBest;
    private int _refillBestCount;
    private int _nodes;

    private int _partialCount;
    private int _removed;
    private int _bestCount;
    private long _moves;

    // The best move found for the bin under examination.
    private bool _hasMove;
    private double _moveGain;
    private int _moveDelta;
    private int _moveTies;
    private int _out1, _out2, _in1, _in2;

    // The least-bad worsening move of the current pass, applied when the pass finds nothing admissible (tabu search).
    private int _currentBin;
    private bool _hasFallback;
    private double _fallbackGain;
    private int _fallbackBin, _fallbackOut1, _fallbackOut2, _fallbackIn1, _fallbackIn2;

    internal BinEliminationSearch(long[] demands, long[] capacity, int seed)
    {
        _demands = demands;
        _capacity = capacity;
        _d = capacity.Length;
        _n = demands.Length / _d;
        _weight = new double[_n];
        for (var i = 0; i < _n; i++)
        {
            double w = 0;
            for (var k = 0; k < _d; k++)
            {
                w += (double)demands[(i * _d) + k] / capacity[k];
            }

            _weight[i] = w;
        }

        _bins = new List<int>[_n];
        for (var b = 0; b < _n; b++)
        {
            _bins[b] = [];
        }

        _load = new long[_n * _d];
        _binOf = new int[_n];
        _pool = new List<int>(_n);
        _poolLoad = new long[_d];
        _tabuBin = new int[_n];
        _tabuUntil = new long[_n];
        _base = new long[_d];
        _scratchLoad = new long[2 * _d];
        _split = new int[_n];
        _poolOrder = new int[_n];
        _bestBinOf = new int[_n];
        _map = new int[_n];
        _rng = new Random(seed);
        _dfsLoad = new long[(MaxRefillCandidates + 1) * _d];
    }

    /// <summary>The outcome: best packing found (never worse than the start), iterations used, why it stopped.</summary>
    internal readonly record struct Outcome(int BinCount, long Iterations, bool TimedOut);

    /// <summary>The best packing found by <see cref="Run"/>, one bin per item.</summary>
    internal int[] BestBinOf => _bestBinOf;

    /// <summary>
    /// Improves <paramref name="binOfItem"/> (a valid packing into bins 0..<paramref name="binCount"/>-1) until it
    /// reaches <paramref name="lowerBound"/>, <paramref name="maxIterations"/> bin examinations, or the deadline.
    /// </summary>
    internal Outcome Run(
        int[] binOfItem, int binCount, int lowerBound, long maxIterations, TimeProvider clock, long deadlineTimestamp)
    {
        binOfItem.AsSpan().CopyTo(_bestBinOf);
        _bestCount = binCount;
        long iteration = 0;
        var timedOut = false;
        while (_bestCount > lowerBound && !timedOut && iteration < maxIterations)
        {
            StartRound();
            if (_removed == 0 || (_partialCount == 0 && !PoolFits()))
            {
                break;
            }

            // A round gets a number of passes over the partial bins before it restarts with other bins removed.
            var roundLimit = Math.Max(2_000L, 60L * _partialCount);
            long roundIterations = 0;
            var cursor = 0;
            var movesThisPass = 0;
            var success = false;
            while (!success && roundIterations < roundLimit)
            {
                if (iteration >= maxIterations)
                {
                    break;
                }

                if ((iteration & 63) == 0 && deadlineTimestamp != long.MaxValue && clock.GetTimestamp() >= deadlineTimestamp)
                {
                    timedOut = true;
                    break;
                }

                iteration++;
                roundIterations++;
                if (TryMove(cursor))
                {
                    movesThisPass++;
                    if (PoolFits())
                    {
                        Record();
                        success = true;
                        break;
                    }
                }

                if (++cursor >= _partialCount)
                {
                    cursor = 0;
                    if (Descent(ref iteration, out var refilled))
                    {
                        Record();
                        success = true;
                        break;
                    }

                    // The fallback was found before the refills; it is stale if they changed anything.
                    if (movesThisPass == 0 && !refilled)
                    {
                        ApplyFallbackOrKick();
                    }

                    _hasFallback = false;
                    movesThisPass = 0;
                }
            }
        }

        return new Outcome(_bestCount, iteration, timedOut);
    }

    // Rebuilds the state from the best packing and removes r + 1 bins into the pool: the lightest bin and r random ones.
    private void StartRound()
    {
        var target = _bestCount - 1;
        var r = Math.Min(2, target);
        _removed = r;
        _hasFallback = false;
        _pool.Clear();
        Array.Clear(_poolLoad);
        if (r == 0)
        {
            return;
        }

        var lightest = 0;
        var lightestWeight = double.MaxValue;
        Span<double> binWeight = _bestCount <= 1024 ? stackalloc double[_bestCount] : new double[_bestCount];
        binWeight.Clear();
        for (var i = 0; i < _n; i++)
        {
            binWeight[_bestBinOf[i]] += _weight[i];
        }

        for (var b = 0; b < _bestCount; b++)
        {
            if (binWeight[b] < lightestWeight)
            {
                lightestWeight = binWeight[b];
                lightest = b;
            }
        }

        // _map[b] = -1 for removed bins, else the bin's index in the partial packing.
        Array.Fill(_map, 0, 0, _bestCount);
        _map[lightest] = -1;
        for (var picked = 0; picked < r;)
        {
            var b = _rng.Next(_bestCount);
            if (_map[b] != -1)
            {
                _map[b] = -1;
                picked++;
            }
        }

        _partialCount = 0;
        for (var b = 0; b < _bestCount; b++)
        {
            if (_map[b] != -1)
            {
                _map[b] = _partialCount++;
            }
        }

        for (var b = 0; b < _partialCount; b++)
        {
            _bins[b].Clear();
        }

        Array.Clear(_load);
        for (var i = 0; i < _n; i++)
        {
            var b = _map[_bestBinOf[i]];
            _tabuUntil[i] = 0;
            if (b < 0)
            {
                _binOf[i] = -1;
                _pool.Add(i);
                AddTo(_poolLoad, 0, i);
            }
            else
            {
                _binOf[i] = b;
                _bins[b].Add(i);
                AddTo(_load, b * _d, i);
            }
        }

        AssertInvariants();
    }

    // Finds and applies the best admissible move between bin b and the pool.
    private bool TryMove(int b)
    {
        _hasMove = false;
        _currentBin = b;
        var items = _bins[b];
        var s = items.Count;
        var d = _d;
        var load = _load.AsSpan(b * d, d);

        load.CopyTo(_base);
        EvaluateIns(b, 0, 0, -1, -1);
        for (var x = 0; x < s; x++)
        {
            var a = items[x];
            for (var k = 0; k < d; k++)
            {
                _base[k] = load[k] - _demands[(a * d) + k];
            }

            EvaluateIns(b, _weight[a], 1, a, -1);
        }

        if (s <= MaxBinItemsForPairs)
        {
            for (var x = 0; x < s; x++)
            {
                var a = items[x];
                for (var y = x + 1; y < s; y++)
                {
                    var a2 = items[y];
                    for (var k = 0; k < d; k++)
                    {
                        _base[k] = load[k] - _demands[(a * d) + k] - _demands[(a2 * d) + k];
                    }

                    EvaluateIns(b, _weight[a] + _weight[a2], 2, a, a2);
                }
            }
        }

        if (!_hasMove)
        {
            return false;
        }

        Apply(b);
        return true;
    }

    // With _base = the bin's load minus the items going out, tries every pool single and pair coming in.
    private void EvaluateIns(int b, double outWeight, int outCount, int out1, int out2)
    {
        var pool = _pool;
        var m = pool.Count;
        var pairs = m <= MaxPoolItemsForPairs;
        for (var u = 0; u < m; u++)
        {
            var j = pool[u];
            if (IsTabu(j, b) || !Fits(j, -1))
            {
                continue;
            }

            Consider(_weight[j] - outWeight, outCount - 1, out1, out2, j, -1, outCount == 1 && SameDemand(j, out1));
            if (!pairs)
            {
                continue;
            }

            for (var v = u + 1; v < m; v++)
            {
                var j2 = pool[v];
                if (IsTabu(j2, b) || !Fits(j, j2))
                {
                    continue;
                }

                var gain = _weight[j] + _weight[j2] - outWeight;
                var pointless = outCount == 2 && Math.Abs(gain) <= Epsilon && SameSum(j, j2, out1, out2);
                Consider(gain, outCount - 2, out1, out2, j, j2, pointless);
            }
        }
    }

    private void Consider(double gain, int delta, int out1, int out2, int in1, int in2, bool pointless)
    {
        if (pointless)
        {
            return;
        }

        if (gain < -Epsilon)
        {
            if (!_hasFallback || gain > _fallbackGain)
            {
                _hasFallback = true;
                _fallbackGain = gain;
                _fallbackBin = _currentBin;
                _fallbackOut1 = out1;
                _fallbackOut2 = out2;
                _fallbackIn1 = in1;
                _fallbackIn2 = in2;
            }

            return;
        }

        if (_hasMove)
        {
            if (gain < _moveGain - Epsilon)
            {
                return;
            }

            if (gain <= _moveGain + Epsilon)
            {
                // Equal weight: prefer the move that leaves more (hence smaller) items in the pool, then a random one.
                if (delta < _moveDelta)
                {
                    return;
                }

                if (delta == _moveDelta && _rng.Next(++_moveTies) != 0)
                {
                    return;
                }

                if (delta > _moveDelta)
                {
                    _moveTies = 1;
                }
            }
            else
            {
                _moveTies = 1;
            }
        }
        else
        {
            _moveTies = 1;
        }

        _hasMove = true;
        _moveGain = gain;
        _moveDelta = delta;
        _out1 = out1;
        _out2 = out2;
        _in1 = in1;
        _in2 = in2;
    }

    private void Apply(int b)
    {
        var tenure = 3 + _rng.Next(8);
        if (_out1 >= 0)
        {
            MoveToPool(_out1, b, tenure);
        }

        if (_out2 >= 0)
        {
            MoveToPool(_out2, b, tenure);
        }

        MoveToBin(_in1, b);
        if (_in2 >= 0)
        {
            MoveToBin(_in2, b);
        }

        _moves++;
        AssertInvariants();
    }

    // One pass of refills over all bins; true when the pool then fits the removed bins.
    private bool Descent(ref long iteration, out bool refilled)
    {
        refilled = false;
        for (var b = 0; b < _partialCount; b++)
        {
            iteration++;
            if (Refill(b))
            {
                refilled = true;
                if (PoolFits())
                {
                    return true;
                }
            }
        }

        return false;
    }

    // Replaces bin b's content by the heaviest feasible subset of (its items ∪ pool), by depth-first branch and bound.
    private bool Refill(int b)
    {
        var items = _bins[b];
        var d = _d;
        _candCount = 0;
        double current = 0;
        for (var x = 0; x < items.Count && _candCount < MaxRefillCandidates; x++)
        {
            _cand[_candCount++] = items[x];
            current += _weight[items[x]];
        }

        if (_candCount < items.Count)
        {
            return false; // a bin with very many items: the pair moves cover it
        }

        // The heaviest pool items first; they are the ones worth placing.
        var firstPool = _candCount;
        for (var u = 0; u < _pool.Count; u++)
        {
            var j = _pool[u];
            if (_candCount < MaxRefillCandidates)
            {
                _cand[_candCount++] = j;
                continue;
            }

            var lightest = firstPool;
            for (var v = firstPool + 1; v < _candCount; v++)
            {
                if (_weight[_cand[v]] < _weight[_cand[lightest]])
                {
                    lightest = v;
                }
            }

            if (_weight[j] > _weight[_cand[lightest]])
            {
                _cand[lightest] = j;
            }
        }

        // Sort candidates by weight, heaviest first (insertion sort: at most MaxRefillCandidates).
        for (var x = 1; x < _candCount; x++)
        {
            var c = _cand[x];
            var y = x - 1;
            while (y >= 0 && _weight[_cand[y]] < _weight[c])
            {
                _cand[y + 1] = _cand[y];
                y--;
            }

            _cand[y + 1] = c;
        }

        _suffix[_candCount] = 0;
        for (var x = _candCount - 1; x >= 0; x--)
        {
            _suffix[x] = _suffix[x + 1] + _weight[_cand[x]];
        }

        _refillBest = current + Epsilon;
        _refillBestCount = -1;
        _nodes = 0;
        Array.Clear(_dfsLoad, 0, d);
        Search(0, 0, 0, 0);
        if (_refillBestCount < 0)
        {
            return false;
        }

        // Apply: everything in the candidate set that is not chosen goes (or stays) out of the bin.
        var tenure = 3 + _rng.Next(8);
        for (var x = 0; x < _candCount; x++)
        {
            var item = _cand[x];
            var inBin = _binOf[item] == b;
            if (inBin && !_bestTake[x])
            {
                MoveToPool(item, b, tenure);
            }
            else if (!inBin && _bestTake[x])
            {
                MoveToBin(item, b);
            }
        }

        _moves++;
        AssertInvariants();
        return true;
    }

    private void Search(int depth, int at, double weight, int count)
    {
        if (++_nodes > RefillNodeLimit)
        {
            return;
        }

        if (weight > _refillBest)
        {
            _refillBest = weight;
            _refillBestCount = count;
            Array.Copy(_take, _bestTake, _candCount);
        }

        if (at == _candCount || weight + _suffix[at] <= _refillBest)
        {
            return;
        }

        var d = _d;
        var item = _cand[at];
        var load = _dfsLoad.AsSpan(depth * d, d);
        var next = _dfsLoad.AsSpan((depth + 1) * d, d);
        var fits = true;
        for (var k = 0; k < d; k++)
        {
            next[k] = load[k] + _demands[(item * d) + k];
            fits &= next[k] <= _capacity[k];
        }

        if (fits)
        {
            _take[at] = true;
            Search(depth + 1, at + 1, weight + _weight[item], count + 1);
            _take[at] = false;
        }

        load.CopyTo(next);
        Search(depth + 1, at + 1, weight, count);
    }

    // No admissible move in a whole pass: take the least-bad worsening move, else push a random item into the pool.
    private void ApplyFallbackOrKick()
    {
        if (_hasFallback)
        {
            _out1 = _fallbackOut1;
            _out2 = _fallbackOut2;
            _in1 = _fallbackIn1;
            _in2 = _fallbackIn2;
            Apply(_fallbackBin);
            return;
        }

        Kick();
    }

    private void Kick()
    {
        if (_partialCount == 0)
        {
            return;
        }

        var b = _rng.Next(_partialCount);
        var items = _bins[b];
        if (items.Count == 0)
        {
            return;
        }

        MoveToPool(items[_rng.Next(items.Count)], b, 5 + _rng.Next(10));
        _moves++;
    }

    private void MoveToPool(int item, int b, int tenure)
    {
        var items = _bins[b];
        items.RemoveAt(items.IndexOf(item)); // bins hold few items; order within a bin does not matter
        SubtractFrom(_load, b * _d, item);
        _binOf[item] = -1;
        _pool.Add(item);
        AddTo(_poolLoad, 0, item);
        _tabuBin[item] = b;
        _tabuUntil[item] = _moves + tenure;
    }

    private void MoveToBin(int item, int b)
    {
        var at = _pool.IndexOf(item);
        var last = _pool.Count - 1;
        _pool[at] = _pool[last];
        _pool.RemoveAt(last);
        SubtractFrom(_poolLoad, 0, item);
        _binOf[item] = b;
        _bins[b].Add(item);
        AddTo(_load, b * _d, item);
    }

    // Can the pool go into the r removed bins? Fills _split with each pool position's bin (0 or 1).
    private bool PoolFits()
    {
        var m = _pool.Count;
        var d = _d;
        var r = _removed;
        var single = true;
        for (var k = 0; k < d; k++)
        {
            if (_poolLoad[k] > r * _capacity[k])
            {
                return false;
            }

            single &= _poolLoad[k] <= _capacity[k];
        }

        if (single)
        {
            Array.Clear(_split, 0, m);
            return true;
        }

        if (r < 2)
        {
            return false;
        }

        // First fit decreasing into two bins.
        for (var u = 0; u < m; u++)
        {
            _poolOrder[u] = u;
        }

        for (var u = 1; u < m; u++)
        {
            var x = _poolOrder[u];
            var v = u - 1;
            while (v >= 0 && _weight[_pool[_poolOrder[v]]] < _weight[_pool[x]])
            {
                _poolOrder[v + 1] = _poolOrder[v];
                v--;
            }

            _poolOrder[v + 1] = x;
        }

        Array.Clear(_scratchLoad);
        var ok = true;
        for (var u = 0; u < m && ok; u++)
        {
            var pos = _poolOrder[u];
            var item = _pool[pos];
            var placed = false;
            for (var bin = 0; bin < 2 && !placed; bin++)
            {
                var fits = true;
                for (var k = 0; k < d; k++)
                {
                    if (_scratchLoad[(bin * d) + k] + _demands[(item * d) + k] > _capacity[k])
                    {
                        fits = false;
                        break;
                    }
                }

                if (fits)
                {
                    AddTo(_scratchLoad, bin * d, item);
                    _split[pos] = bin;
                    placed = true;
                }
            }

            ok = placed;
        }

        if (ok)
        {
            return true;
        }

        // Exact: enumerate the subsets going to bin 0 (item 0 fixed there) in Gray-code order, O(d) per subset.
        if (m > 30 || ((1L << (m - 1)) * d) > ExactSplitWork)
        {
            return false;
        }

        var a = _scratchLoad.AsSpan(0, d);
        a.Clear();
        for (var k = 0; k < d; k++)
        {
            a[k] = _demands[(_pool[0] * d) + k];
        }

        // Start: item 0 in bin 0, every other item in bin 1.
        _split[0] = 0;
        for (var u = 1; u < m; u++)
        {
            _split[u] = 1;
        }

        var count = 1L << (m - 1);
        for (var g = 0L; g < count; g++)
        {
            if (g > 0)
            {
                // Gray code: step g flips pool position trailing-zeros(g) + 1 between the two bins.
                var pos = System.Numerics.BitOperations.TrailingZeroCount(g) + 1;
                var item = _pool[pos];
                var sign = _split[pos] == 1 ? 1 : -1;
                for (var k = 0; k < d; k++)
                {
                    a[k] += sign * _demands[(item * d) + k];
                }

                _split[pos] = 1 - _split[pos];
            }

            var fitsBoth = true;
            for (var k = 0; k < d; k++)
            {
                if (a[k] > _capacity[k] || _poolLoad[k] - a[k] > _capacity[k])
                {
                    fitsBoth = false;
                    break;
                }
            }

            if (fitsBoth)
            {
                return true;
            }
        }

        return false;
    }

    // The partial packing plus the pool split over the removed bins becomes the new best.
    private void Record()
    {
        var used0 = false;
        var used1 = false;
        for (var u = 0; u < _pool.Count; u++)
        {
            if (_split[u] == 0)
            {
                used0 = true;
            }
            else
            {
                used1 = true;
            }
        }

        var next = _partialCount;
        var bin0 = used0 ? next++ : -1;
        var bin1 = used1 ? next++ : -1;
        for (var i = 0; i < _n; i++)
        {
            if (_binOf[i] >= 0)
            {
                _bestBinOf[i] = _binOf[i];
            }
        }

        for (var u = 0; u < _pool.Count; u++)
        {
            _bestBinOf[_pool[u]] = _split[u] == 0 ? bin0 : bin1;
        }

        // Partial bins may have been emptied by the moves; renumber so the bins are 0..count-1 and none is empty.
        Array.Fill(_map, -1, 0, next);
        var count = 0;
        for (var i = 0; i < _n; i++)
        {
            ref var slot = ref _map[_bestBinOf[i]];
            if (slot < 0)
            {
                slot = count++;
            }

            _bestBinOf[i] = slot;
        }

        Debug.Assert(count < _bestCount, "a recorded packing has fewer bins than the previous best");
        _bestCount = count;
    }

    private bool IsTabu(int item, int b) => _tabuBin[item] == b && _tabuUntil[item] > _moves;

    private bool Fits(int j, int j2)
    {
        var d = _d;
        for (var k = 0; k < d; k++)
        {
            var v = _base[k] + _demands[(j * d) + k];
            if (j2 >= 0)
            {
                v += _demands[(j2 * d) + k];
            }

            if (v > _capacity[k])
            {
                return false;
            }
        }

        return true;
    }

    private bool SameDemand(int x, int y)
    {
        var d = _d;
        for (var k = 0; k < d; k++)
        {
            if (_demands[(x * d) + k] != _demands[(y * d) + k])
            {
                return false;
            }
        }

        return true;
    }

    private bool SameSum(int x1, int x2, int y1, int y2)
    {
        var d = _d;
        for (var k = 0; k < d; k++)
        {
            if (_demands[(x1 * d) + k] + _demands[(x2 * d) + k] != _demands[(y1 * d) + k] + _demands[(y2 * d) + k])
            {
                return false;
            }
        }

        return true;
    }

    private void AddTo(long[] target, int offset, int item)
    {
        for (var k = 0; k < _d; k++)
        {
            target[offset + k] += _demands[(item * _d) + k];
        }
    }

    private void SubtractFrom(long[] target, int offset, int item)
    {
        for (var k = 0; k < _d; k++)
        {
            target[offset + k] -= _demands[(item * _d) + k];
        }
    }

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        for (var b = 0; b < _partialCount; b++)
        {
            for (var k = 0; k < _d; k++)
            {
                Debug.Assert(_load[(b * _d) + k] <= _capacity[k], "no partial bin is over capacity");
            }
        }
    }
}
