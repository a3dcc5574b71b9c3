using System.Runtime.CompilerServices;

namespace BatchCore.Placement.Packing;

/// <summary>
/// Offline vector bin packing: assigns items (demand vectors) to as few identical bins as possible, and places a
/// window of items into existing bins with known residual capacity.
/// </summary>
public static class VectorPacker
{
    /// <summary>Packs every item of <paramref name="problem"/>; the result is always a valid packing.</summary>
    /// <param name="problem">The instance.</param>
    /// <param name="strategy">The heuristic; the default is <see cref="PackingStrategy.Optimized"/>.</param>
    /// <param name="options">Budget and seed of the improvement phase; only <see cref="PackingStrategy.Optimized"/> uses them.</param>
    public static PackingResult Pack(
        PackingProblem problem, PackingStrategy strategy = PackingStrategy.Optimized, PackingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(problem);
        options ??= PackingOptions.Default;
        options.Validate();

        var n = problem.ItemCount;
        var demands = problem.DemandArray;
        var capacity = problem.CapacityArray;
        var lb = LowerBounds.Continuous(demands, capacity);
        var lb2 = Math.Max(lb, LowerBounds.MartelloTothL2(demands, capacity));
        if (n == 0)
        {
            return new PackingResult { BinCount = 0, BinOfItem = [], LowerBound = 0, LowerBoundL2 = 0 };
        }

        var order = new int[n];
        var keys = new double[n];
        var residual = new long[n * problem.Dimensions];
        var binOf = new int[n];
        int bins;
        switch (strategy)
        {
            case PackingStrategy.FirstFit:
                bins = ItemCentric(GreedyPacker.ItemOrder.Given, GreedyPacker.BinChoice.First);
                break;
            case PackingStrategy.FirstFitDecreasing:
                bins = ItemCentric(GreedyPacker.ItemOrder.DecreasingSum, GreedyPacker.BinChoice.First);
                break;
            case PackingStrategy.BestFitDecreasing:
                bins = ItemCentric(GreedyPacker.ItemOrder.DecreasingSum, GreedyPacker.BinChoice.Best);
                break;
            case PackingStrategy.Spread:
                bins = ItemCentric(GreedyPacker.ItemOrder.Given, GreedyPacker.BinChoice.Worst);
                break;
            case PackingStrategy.BestFit:
                bins = ItemCentric(GreedyPacker.ItemOrder.Given, GreedyPacker.BinChoice.Best);
                break;
            case PackingStrategy.Optimized:
                return Optimized(problem, options, lb, lb2);
            default:
                throw new BatchClientException($"strategy must be a defined PackingStrategy, was {(int)strategy}");
        }

        return new PackingResult { BinCount = bins, BinOfItem = binOf, LowerBound = lb, LowerBoundL2 = lb2 };

        int ItemCentric(GreedyPacker.ItemOrder kind, GreedyPacker.BinChoice choice)
        {
            GreedyPacker.Order(demands, capacity, kind, order, keys);
            return GreedyPacker.PackItemCentric(demands, capacity, order, choice, binOf, residual);
        }
    }

    /// <summary>
    /// Places a window of items into existing bins first (best fit, largest items first), then packs what is left into
    /// as few new bins of shape <paramref name="newBinCapacity"/> as the <see cref="PackingStrategy.Optimized"/> strategy finds.
    /// </summary>
    /// <param name="residuals">Free capacity of the m existing bins, bin-major (m × <paramref name="dims"/>).</param>
    /// <param name="dims">The number of dimensions d.</param>
    /// <param name="demands">The n items' demands, item-major (n × d).</param>
    /// <param name="newBinCapacity">The shape of a new bin (length d), or empty when no bin may be opened.</param>
    /// <param name="binOfItem">Receives each item's bin: 0..m-1 existing, m.. new bins in opening order, -1 fits nowhere.</param>
    /// <param name="options">Budget of the new-bin packing; the default is <see cref="PackingOptions.Default"/>.</param>
    /// <returns>The number of new bins opened.</returns>
    public static int PackInto(
        ReadOnlySpan<long> residuals,
        int dims,
        ReadOnlySpan<long> demands,
        ReadOnlySpan<long> newBinCapacity,
        Span<int> binOfItem,
        PackingOptions? options = null)
    {
        if (dims <= 0)
        {
            throw new BatchClientException($"dims must be positive, was {dims}");
        }

        if (residuals.Length % dims != 0 || demands.Length % dims != 0)
        {
            throw new BatchClientException($"residuals and demands lengths must be multiples of dims {dims}");
        }

        if (!newBinCapacity.IsEmpty && newBinCapacity.Length != dims)
        {
            throw new BatchClientException($"newBinCapacity must be empty or have {dims} values, had {newBinCapacity.Length}");
        }

        var m = residuals.Length / dims;
        var n = demands.Length / dims;
        if (binOfItem.Length != n)
        {
            throw new BatchClientException($"binOfItem must have one slot per item ({n}), had {binOfItem.Length}");
        }

        CheckNonNegative(residuals, "residuals");
        CheckNonNegative(demands, "demands");
        CheckNonNegative(newBinCapacity, "newBinCapacity");
        if (n == 0)
        {
            return 0;
        }

        // Normalise by the new-bin shape when there is one, else by the largest residual of each dimension.
        var scale = new long[dims];
        for (var k = 0; k < dims; k++)
        {
            var s = newBinCapacity.IsEmpty ? 0 : newBinCapacity[k];
            for (var b = 0; b < m && newBinCapacity.IsEmpty; b++)
            {
                s = Math.Max(s, residuals[(b * dims) + k]);
            }

            scale[k] = Math.Max(1, s);
        }

        var demandArray = demands.ToArray();
        var order = new int[n];
        GreedyPacker.Order(demandArray, scale, GreedyPacker.ItemOrder.DecreasingSum, order, new double[n]);
        var free = residuals.ToArray();

        // 1. Existing bins: best fit decreasing, the bin left with the least normalised residual.
        var leftover = 0;
        for (var idx = 0; idx < n; idx++)
        {
            var i = order[idx];
            var best = -1;
            var bestScore = double.MaxValue;
            for (var b = 0; b < m; b++)
            {
                double score = 0;
                var fits = true;
                for (var k = 0; k < dims; k++)
                {
                    var left = free[(b * dims) + k] - demandArray[(i * dims) + k];
                    if (left < 0)
                    {
                        fits = false;
                        break;
                    }

                    var x = (double)left / scale[k];
                    score += x * x;
                }

                if (fits && score < bestScore)
                {
                    bestScore = score;
                    best = b;
                }
            }

            if (best >= 0)
            {
                for (var k = 0; k < dims; k++)
                {
                    free[(best * dims) + k] -= demandArray[(i * dims) + k];
                }
            }
            else
            {
                order[leftover++] = i; // reuse the order array for the items still to place
            }

            binOfItem[i] = best;
        }

        if (leftover == 0 || newBinCapacity.IsEmpty)
        {
            return 0;
        }

        // 2. New bins: the items that fit an empty new bin, packed as an offline problem.
        var fitting = 0;
        for (var idx = 0; idx < leftover; idx++)
        {
            var i = order[idx];
            var fits = true;
            for (var k = 0; k < dims && fits; k++)
            {
                fits = demandArray[(i * dims) + k] <= newBinCapacity[k];
            }

            if (fits)
            {
                order[fitting++] = i;
            }
        }

        if (fitting == 0)
        {
            return 0;
        }

        Array.Sort(order, 0, fitting); // given order for the sub-problem: by item index
        var sub = new long[fitting * dims];
        for (var idx = 0; idx < fitting; idx++)
        {
            demands.Slice(order[idx] * dims, dims).CopyTo(sub.AsSpan(idx * dims, dims));
        }

        var packed = Pack(new PackingProblem(newBinCapacity, sub), PackingStrategy.Optimized, options);
        for (var idx = 0; idx < fitting; idx++)
        {
            binOfItem[order[idx]] = m + packed.BinOfItem[idx];
        }

        return packed.BinCount;
    }

    // Branch-and-bound nodes per bin for minimum bin slack: enough to find exact fills of a few items.
    private const int MinimumBinSlackNodes = 4_000;

    // The exact search recurses once per item: above this many items it is skipped (stack depth, and time).
    private const int ExactSearchMaxItems = 2_000;

    private static PackingResult Optimized(PackingProblem problem, PackingOptions options, int lb, int lb2)
    {
        var n = problem.ItemCount;
        var d = problem.Dimensions;
        var demands = problem.DemandArray;
        var capacity = problem.CapacityArray;
        var order = new int[n];
        var keys = new double[n];
        var residual = new long[n * d];
        var candidate = new int[n];
        var best = new int[n];
        var bestBins = int.MaxValue;

        // 1. Greedy portfolio. FF, FFD and BFD are in it, so the result is never worse than any of them.
        ReadOnlySpan<GreedyPacker.ItemOrder> orders =
        [
            GreedyPacker.ItemOrder.DecreasingSum, GreedyPacker.ItemOrder.DecreasingMax,
            GreedyPacker.ItemOrder.DecreasingSquares, GreedyPacker.ItemOrder.DecreasingProduct,
            GreedyPacker.ItemOrder.Given,
        ];
        ReadOnlySpan<GreedyPacker.BinChoice> choices =
            [GreedyPacker.BinChoice.First, GreedyPacker.BinChoice.Best, GreedyPacker.BinChoice.DotProduct];
        foreach (var kind in orders)
        {
            if (d == 1 && kind is not (GreedyPacker.ItemOrder.DecreasingSum or GreedyPacker.ItemOrder.Given))
            {
                continue; // in one dimension every decreasing order is the same order
            }

            GreedyPacker.Order(demands, capacity, kind, order, keys);
            foreach (var choice in choices)
            {
                Keep(GreedyPacker.PackItemCentric(demands, capacity, order, choice, candidate, residual));
                if (bestBins == lb2)
                {
                    return Result(false, 0);
                }
            }
        }

        if (d > 1)
        {
            Keep(GreedyPacker.PackBinCentric(demands, capacity, candidate, residual, order));
        }

        if (bestBins > lb2)
        {
            GreedyPacker.Order(demands, capacity, GreedyPacker.ItemOrder.DecreasingSum, order, keys);
            Keep(new MinimumBinSlack(demands, capacity, MinimumBinSlackNodes).Pack(order, candidate));
        }

        if (bestBins == lb2 || options.MaxIterations == 0)
        {
            return Result(false, 0);
        }

        // 2. Improvement: eliminate bins one at a time until the lower bound or the budget.
        var clock = options.TimeProvider ?? TimeProvider.System;
        var budget = options.TimeBudget ?? PackingDefaults.TimeBudgetFor(n);
        var deadline = budget == Timeout.InfiniteTimeSpan
            ? long.MaxValue
            : clock.GetTimestamp() + (long)(budget.TotalSeconds * clock.TimestampFrequency);
        long iterations = 0;
        var timedOut = false;

        // 2a. One dimension: an exact bin-by-bin search for a packing into the lower bound, for half the budget. It is
        //     what finds the exactly full bins of instances with no slack (Falkenauer's triplets). One node counts as
        //     one iteration.
        if (d == 1 && n <= ExactSearchMaxItems)
        {
            var exactStart = clock.GetTimestamp();
            var exactDeadline = deadline == long.MaxValue ? long.MaxValue : exactStart + ((deadline - exactStart) / 2);
            var exact = new ExactFillSearch(demands, capacity[0], options.Seed)
                .Run(lb2, options.MaxIterations / 2, clock, exactDeadline, candidate);
            iterations += exact.Nodes;
            if (exact.Found)
            {
                Keep(lb2);
                return Result(false, iterations);
            }
        }

        // 2b. Perturbed minimum bin slack: the order jittered by up to ±10 %, for a quarter of the budget left. One
        //     restart counts as n iterations.
        var rng = new Random(options.Seed);
        var mbs = new MinimumBinSlack(demands, capacity, MinimumBinSlackNodes);
        var baseKeys = new double[n];
        GreedyPacker.Order(demands, capacity, GreedyPacker.ItemOrder.DecreasingSum, order, baseKeys);
        var start = clock.GetTimestamp();
        var mbsDeadline = deadline == long.MaxValue ? long.MaxValue : start + ((deadline - start) / 4);
        var mbsIterations = iterations + ((options.MaxIterations - iterations) / 4);
        while (bestBins > lb2 && iterations + n <= mbsIterations)
        {
            if (mbsDeadline != long.MaxValue && clock.GetTimestamp() >= mbsDeadline)
            {
                break;
            }

            iterations += n;
            for (var i = 0; i < n; i++)
            {
                keys[i] = baseKeys[i] * (0.9 + (0.2 * rng.NextDouble()));
            }

            GreedyPacker.SortDescending(order, keys);
            Keep(mbs.Pack(order, candidate));
        }

        if (bestBins == lb2)
        {
            return Result(false, iterations);
        }

        // 2c. Bin elimination with the rest of the budget.
        var search = new BinEliminationSearch(demands, capacity, options.Seed);
        var outcome = search.Run(best, bestBins, lb2, options.MaxIterations - iterations, clock, deadline);
        if (outcome.BinCount < bestBins)
        {
            bestBins = outcome.BinCount;
            search.BestBinOf.AsSpan().CopyTo(best);
        }

        iterations += outcome.Iterations;
        timedOut |= outcome.TimedOut;
        return Result(timedOut, iterations);

        void Keep(int bins)
        {
            if (bins < bestBins)
            {
                bestBins = bins;
                candidate.AsSpan().CopyTo(best);
            }
        }

        PackingResult Result(bool timedOut, long iterations) => new()
        {
            BinCount = bestBins,
            BinOfItem = best,
            LowerBound = lb,
            LowerBoundL2 = lb2,
            TimedOut = timedOut,
            Iterations = iterations,
        };
    }

    private static void CheckNonNegative(ReadOnlySpan<long> values, string field)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] < 0)
            {
                ThrowNegative(field, i, values[i]);
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNegative(string field, int index, long value) =>
        throw new BatchClientException($"{field}[{index}] must not be negative, was {value}");
}
