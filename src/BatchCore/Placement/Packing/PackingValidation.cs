namespace BatchCore.Placement.Packing;

/// <summary>Checks a packing: every item in exactly one bin of 0..BinCount-1, no bin empty or over capacity.</summary>
internal static class PackingValidation
{
    /// <summary>Returns null for a valid packing, else what is wrong.</summary>
    internal static string? Check(PackingProblem problem, PackingResult result)
    {
        var n = problem.ItemCount;
        var d = problem.Dimensions;
        if (result.BinOfItem.Length != n)
        {
            return $"BinOfItem has {result.BinOfItem.Length} entries for {n} items";
        }

        var load = new long[result.BinCount * d];
        var used = new bool[result.BinCount];
        for (var i = 0; i < n; i++)
        {
            var b = result.BinOfItem[i];
            if (b < 0 || b >= result.BinCount)
            {
                return $"item {i} is in bin {b}, outside 0..{result.BinCount - 1}";
            }

            used[b] = true;
            for (var k = 0; k < d; k++)
            {
                load[(b * d) + k] += problem.Demands[(i * d) + k];
                if (load[(b * d) + k] > problem.Capacity[k])
                {
                    return $"bin {b} is over capacity in dimension {k}";
                }
            }
        }

        for (var b = 0; b < result.BinCount; b++)
        {
            if (!used[b])
            {
                return $"bin {b} is empty";
            }
        }

        return result.BinCount < result.LowerBound ? "fewer bins than the lower bound" : null;
    }
}
