namespace BatchCore.Placement.Packing;

/// <summary>
/// Minimum bin slack, largest item first (Gupta &amp; Ho 1999, MBS' of Fleszar &amp; Hindi 2002): bins are built one at a
/// time; each starts with the largest unpacked item and takes the subset of the other unpacked items that fills it
/// best (largest Σ demand/capacity), found by depth-first branch and bound with a node limit. It finds the exactly
/// full bins that item-at-a-time greedy misses, which is what instances like Falkenauer's triplets need.
/// </summary>
internal sealed class MinimumBinSlack
{
    private const double Epsilon = 1e-9;

    private readonly long[] _demands;
    private readonly long[] _capacity;
    private readonly int _d;
    private readonly double[] _weight;
    private readonly int[] _remaining;
    private readonly double[] _suffix;
    private readonly long[] _load;
    private readonly int[] _chosen;
    private readonly int[] _bestChosen;
    private readonly int _nodeLimit;
    private int _count;
    private int _bestCount;
    private double _best;
    private double _perfect;
    private int _nodes;

    internal MinimumBinSlack(long[] demands, long[] capacity, int nodeLimit)
    {
        _demands = demands;
        _capacity = capacity;
        _d = capacity.Length;
        var n = demands.Length / _d;
        _weight = new double[n];
        for (var i = 0; i < n; i++)
        {
            for (var k = 0; k < _d; k++)
            {
                _weight[i] += (double)demands[(i * _d) + k] / capacity[k];
            }
        }

        _remaining = new int[n];
        _suffix = new double[n + 1];
        _load = new long[(n + 1) * _d];
        _chosen = new int[n];
        _bestChosen = new int[n];
        _nodeLimit = nodeLimit;
    }

    /// <summary>Packs all items; <paramref name="order"/> is the item order by decreasing weight (ties decide). Returns the bin count.</summary>
    internal int Pack(ReadOnlySpan<int> order, int[] binOfItem)
    {
        var d = _d;
        _count = order.Length;
        order.CopyTo(_remaining);
        var bins = 0;
        while (_count > 0)
        {
            var first = _remaining[0];
            _suffix[_count] = 0;
            for (var x = _count - 1; x >= 1; x--)
            {
                _suffix[x] = _suffix[x + 1] + _weight[_remaining[x]];
            }
            for (var k = 0; k < d; k++)
            {
                _load[k] = _demands[(first * d) + k];
            }

            // A bin cannot hold more than every dimension full: d in normalised weight.
            _perfect = d - Epsilon;
            _best = _weight[first];
            _bestCount = 0;
            _nodes = 0;
            Search(1, 0, _weight[first], 0);

            binOfItem[first] = bins;
            for (var c = 0; c < _bestCount; c++)
            {
                binOfItem[_remaining[_bestChosen[c]]] = bins;
            }

            // Compact the remaining list, keeping its order (chosen positions are increasing).
            var write = 0;
            var next = 0;
            for (var x = 1; x < _count; x++)
            {
                if (next < _bestCount && _bestChosen[next] == x)
                {
                    next++;
                    continue;
                }

                _remaining[write++] = _remaining[x];
            }

            _count = write;
            bins++;
        }

        return bins;
    }

    private void Search(int at, int depth, double weight, int taken)
    {
        if (weight > _best + Epsilon)
        {
            _best = weight;
            _bestCount = taken;
            Array.Copy(_chosen, _bestChosen, taken);
        }

        if (at >= _count || _best >= _perfect || weight + _suffix[at] <= _best + Epsilon || ++_nodes > _nodeLimit)
        {
            return;
        }

        var d = _d;
        var load = _load.AsSpan(depth * d, d);
        var next = _load.AsSpan((depth + 1) * d, d);
        for (var x = at; x < _count; x++)
        {
            if (weight + _suffix[x] <= _best + Epsilon || _best >= _perfect || _nodes > _nodeLimit)
            {
                return;
            }

            var item = _remaining[x];
            var fits = true;
            for (var k = 0; k < d; k++)
            {
                next[k] = load[k] + _demands[(item * d) + k];
                if (next[k] > _capacity[k])
                {
                    fits = false;
                    break;
                }
            }

            if (!fits)
            {
                continue;
            }

            _chosen[taken] = x;
            Search(x + 1, depth + 1, weight + _weight[item], taken + 1);
        }
    }
}
