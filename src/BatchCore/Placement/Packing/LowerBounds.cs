namespace BatchCore.Placement.Packing;

/// <summary>Lower bounds on the bin count. Each dimension alone is a 1-D relaxation, so its bound holds for the vector.</summary>
internal static class LowerBounds
{
    /// <summary>Max over dimensions of ceil(Σ demand / capacity).</summary>
    internal static int Continuous(long[] demands, long[] capacity)
    {
        var d = capacity.Length;
        var n = demands.Length / d;
        long best = 0;
        for (var k = 0; k < d; k++)
        {
            long sum = 0;
            for (var i = 0; i < n; i++)
            {
                sum += demands[(i * d) + k];
            }

            best = Math.Max(best, (sum + capacity[k] - 1) / capacity[k]);
        }

        return (int)best;
    }

    /// <summary>Max over dimensions of the Martello–Toth L2 bound of that dimension's sizes.</summary>
    internal static int MartelloTothL2(long[] demands, long[] capacity)
    {
        var d = capacity.Length;
        var n = demands.Length / d;
        var sizes = new long[n];
        var prefix = new long[n + 1];
        var best = 0;
        for (var k = 0; k < d; k++)
        {
            for (var i = 0; i < n; i++)
            {
                sizes[i] = demands[(i * d) + k];
            }

            Array.Sort(sizes);
            for (var i = 0; i < n; i++)
            {
                prefix[i + 1] = prefix[i] + sizes[i];
            }

            best = Math.Max(best, L2(sizes, prefix, capacity[k]));
        }

        return best;
    }

    // L2 = max over K in {0} ∪ {sizes ≤ C/2} of |N1| + |N2| + max(0, ceil((ΣN3 − (|N2|·C − ΣN2)) / C)) with
    // N1 = {w > C−K}, N2 = {C/2 < w ≤ C−K}, N3 = {K ≤ w ≤ C/2} (Martello & Toth 1990).
    private static int L2(long[] sorted, long[] prefix, long c)
    {
        var n = sorted.Length;
        var half = c / 2;
        var idxHalf = UpperBound(sorted, half);
        var best = 0L;
        long previousK = -1;
        for (var s = -1; s < idxHalf; s++)
        {
            var kk = s < 0 ? 0 : sorted[s];
            if (kk == previousK)
            {
                continue;
            }

            previousK = kk;
            var idx1 = UpperBound(sorted, c - kk);
            var n1 = n - idx1;
            var n2 = Math.Max(0, idx1 - idxHalf);
            var sumN2 = prefix[Math.Max(idx1, idxHalf)] - prefix[idxHalf];
            var lo = LowerBound(sorted, kk);
            var sumN3 = prefix[idxHalf] - prefix[Math.Min(lo, idxHalf)];
            var excess = sumN3 - ((n2 * c) - sumN2);
            var extra = excess > 0 ? (excess + c - 1) / c : 0;
            best = Math.Max(best, n1 + n2 + extra);
        }

        return (int)best;
    }

    private static int UpperBound(long[] sorted, long value)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (sorted[mid] <= value)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    private static int LowerBound(long[] sorted, long value)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (sorted[mid] < value)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }
}
