using System.Diagnostics;

namespace BatchCore.Placement.Packing;

/// <summary>
/// The greedy heuristics: item-centric (an order of items, a rule choosing the bin) and bin-centric (open one bin,
/// fill it with the item that best matches what is left). All work on flat arrays, no allocation per item.
/// </summary>
internal static class GreedyPacker
{
    /// <summary>How an item-centric heuristic chooses among the open bins where the item fits.</summary>
    internal enum BinChoice
    {
        /// <summary>The lowest-numbered bin.</summary>
        First,

        /// <summary>The bin left with the least normalised residual, Σ(residual/capacity)².</summary>
        Best,

        /// <summary>The bin left with the most normalised residual (worst fit, spreads load).</summary>
        Worst,

        /// <summary>The bin whose normalised load has the largest dot product with the item's normalised demand.</summary>
        DotProduct,
    }

    /// <summary>How items are ordered before an item-centric heuristic.</summary>
    internal enum ItemOrder
    {
        /// <summary>As given.</summary>
        Given,

        /// <summary>Decreasing Σ demand/capacity.</summary>
        DecreasingSum,

        /// <summary>Decreasing max demand/capacity, ties by sum.</summary>
        DecreasingMax,

        /// <summary>Decreasing Σ (demand/capacity)².</summary>
        DecreasingSquares,

        /// <summary>Decreasing Σ log(demand/capacity) (the volume).</summary>
        DecreasingProduct,
    }

    /// <summary>Fills <paramref name="order"/> with the item indices in the requested order (stable: ties by index).</summary>
    internal static void Order(long[] demands, long[] capacity, ItemOrder kind, int[] order, double[] keyScratch)
    {
        var d = capacity.Length;
        var n = order.Length;
        for (var i = 0; i < n; i++)
        {
            order[i] = i;
        }

        if (kind == ItemOrder.Given)
        {
            return;
        }

        for (var i = 0; i < n; i++)
        {
            double sum = 0, max = 0, squares = 0, logs = 0;
            for (var k = 0; k < d; k++)
            {
                var x = (double)demands[(i * d) + k] / capacity[k];
                sum += x;
                squares += x * x;
                logs += Math.Log(x + 1e-6);
                if (x > max)
                {
                    max = x;
                }
            }

            keyScratch[i] = kind switch
            {
                ItemOrder.DecreasingSum => sum,
                ItemOrder.DecreasingMax => max + (sum * 1e-6),
                ItemOrder.DecreasingSquares => squares,
                _ => logs,
            };
        }

        Array.Sort(order, new DescendingKey(keyScratch));
    }

    /// <summary>Sorts all item indices by decreasing key, ties by index.</summary>
    internal static void SortDescending(int[] order, double[] keys)
    {
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        Array.Sort(order, new DescendingKey(keys));
    }

    /// <summary>
    /// Packs the items in <paramref name="order"/> into bins opened on demand. <paramref name="residual"/> must hold
    /// n × d values. Returns the bin count; <paramref name="binOfItem"/> gets each item's bin.
    /// </summary>
    internal static int PackItemCentric(
        long[] demands, long[] capacity, ReadOnlySpan<int> order, BinChoice choice, int[] binOfItem, long[] residual)
    {
        var d = capacity.Length;
        var bins = 0;
        for (var idx = 0; idx < order.Length; idx++)
        {
            var i = order[idx];
            var demand = demands.AsSpan(i * d, d);
            var chosen = choice == BinChoice.First
                ? FirstFitting(residual, bins, d, demand)
                : ScoredFitting(residual, bins, capacity, demand, choice);
            if (chosen < 0)
            {
                chosen = bins++;
                capacity.AsSpan().CopyTo(residual.AsSpan(chosen * d, d));
            }

            var r = residual.AsSpan(chosen * d, d);
            for (var k = 0; k < d; k++)
            {
                r[k] -= demand[k];
                Debug.Assert(r[k] >= 0, "an item is only placed where it fits");
            }

            binOfItem[i] = chosen;
        }

        return bins;
    }

    /// <summary>
    /// Bin-centric dot product (Panigrahy et al.): open one bin, repeatedly add the unpacked item that fits with the
    /// largest dot product of normalised demand and normalised residual, close the bin when nothing fits.
    /// </summary>
    internal static int PackBinCentric(long[] demands, long[] capacity, int[] binOfItem, long[] residual, int[] unpacked)
    {
        var d = capacity.Length;
        var n = binOfItem.Length;
        for (var i = 0; i < n; i++)
        {
            unpacked[i] = i;
        }

        var remaining = n;
        var bins = 0;
        Span<double> inv = d <= 64 ? stackalloc double[d] : new double[d];
        for (var k = 0; k < d; k++)
        {
            inv[k] = 1.0 / capacity[k];
        }

        while (remaining > 0)
        {
            var b = bins++;
            var r = residual.AsSpan(b * d, d);
            capacity.AsSpan().CopyTo(r);
            while (true)
            {
                var bestPos = -1;
                var bestScore = double.NegativeInfinity;
                for (var pos = 0; pos < remaining; pos++)
                {
                    var i = unpacked[pos];
                    var fits = true;
                    double score = 0;
                    for (var k = 0; k < d; k++)
                    {
                        var x = demands[(i * d) + k];
                        if (x > r[k])
                        {
                            fits = false;
                            break;
                        }

                        score += x * inv[k] * r[k] * inv[k];
                    }

                    if (fits && score > bestScore)
                    {
                        bestScore = score;
                        bestPos = pos;
                    }
                }

                if (bestPos < 0)
                {
                    break;
                }

                var item = unpacked[bestPos];
                for (var k = 0; k < d; k++)
                {
                    r[k] -= demands[(item * d) + k];
                }

                binOfItem[item] = b;
                unpacked[bestPos] = unpacked[--remaining];
            }
        }

        return bins;
    }

    private static int FirstFitting(long[] residual, int bins, int d, ReadOnlySpan<long> demand)
    {
        for (var b = 0; b < bins; b++)
        {
            var r = residual.AsSpan(b * d, d);
            var k = 0;
            while (k < d && demand[k] <= r[k])
            {
                k++;
            }

            if (k == d)
            {
                return b;
            }
        }

        return -1;
    }

    private static int ScoredFitting(long[] residual, int bins, long[] capacity, ReadOnlySpan<long> demand, BinChoice choice)
    {
        var d = capacity.Length;
        var best = -1;
        var bestScore = double.NegativeInfinity;
        for (var b = 0; b < bins; b++)
        {
            var r = residual.AsSpan(b * d, d);
            double squares = 0, dot = 0;
            var fits = true;
            for (var k = 0; k < d; k++)
            {
                var left = r[k] - demand[k];
                if (left < 0)
                {
                    fits = false;
                    break;
                }

                var c = (double)capacity[k];
                var leftN = left / c;
                squares += leftN * leftN;
                dot += demand[k] / c * ((c - r[k]) / c);
            }

            if (!fits)
            {
                continue;
            }

            // Higher is better for every rule; strict '>' keeps the lowest-numbered bin on ties.
            var score = choice switch
            {
                BinChoice.Best => -squares,
                BinChoice.Worst => squares,
                _ => dot,
            };
            if (score > bestScore)
            {
                bestScore = score;
                best = b;
            }
        }

        return best;
    }

    private sealed class DescendingKey(double[] keys) : IComparer<int>
    {
        public int Compare(int x, int y)
        {
            var c = keys[y].CompareTo(keys[x]);
            return c != 0 ? c : x.CompareTo(y);
        }
    }
}
