using BatchCore.Placement.Packing;
using FsCheck.Xunit;

namespace BatchCore.Tests.Placement.Packing;

public class VectorPackerPropertyTests
{
    // Deterministic: a fixed iteration budget, no time budget, a fixed seed.
    private static readonly PackingOptions Options = new()
    {
        MaxIterations = 3_000, TimeBudget = Timeout.InfiniteTimeSpan, Seed = 7,
    };

    private static readonly PackingStrategy[] AllStrategies = Enum.GetValues<PackingStrategy>();

    [Property(Arbitrary = [typeof(PackingGenerators)], MaxTest = 200)]
    public bool Every_strategy_returns_a_valid_packing_at_or_above_the_lower_bounds(ProblemCase c)
    {
        var problem = c.ToProblem();
        foreach (var strategy in AllStrategies)
        {
            var result = VectorPacker.Pack(problem, strategy, Options);
            if (PackingValidation.Check(problem, result) is { } error)
            {
                throw new InvalidOperationException($"{strategy}: {error}");
            }

            if (result.BinCount < result.LowerBoundL2 || result.LowerBoundL2 < result.LowerBound)
            {
                return false;
            }
        }

        return true;
    }

    [Property(Arbitrary = [typeof(PackingGenerators)], MaxTest = 200)]
    public bool Optimized_never_uses_more_bins_than_FirstFit_or_FirstFitDecreasing(ProblemCase c)
    {
        var problem = c.ToProblem();
        var optimized = VectorPacker.Pack(problem, PackingStrategy.Optimized, Options).BinCount;
        return optimized <= VectorPacker.Pack(problem, PackingStrategy.FirstFit).BinCount
            && optimized <= VectorPacker.Pack(problem, PackingStrategy.FirstFitDecreasing).BinCount
            && optimized <= VectorPacker.Pack(problem, PackingStrategy.BestFitDecreasing).BinCount;
    }

    [Property(Arbitrary = [typeof(PackingGenerators)], MaxTest = 100)]
    public bool Optimized_is_deterministic_for_a_seed_and_iteration_budget(ProblemCase c)
    {
        var problem = c.ToProblem();
        var a = VectorPacker.Pack(problem, PackingStrategy.Optimized, Options);
        var b = VectorPacker.Pack(problem, PackingStrategy.Optimized, Options);
        return a.BinCount == b.BinCount && a.BinOfItem.AsSpan().SequenceEqual(b.BinOfItem);
    }

    [Property(Arbitrary = [typeof(PackingGenerators)], MaxTest = 200)]
    public bool PackInto_never_overfills_an_existing_or_new_bin(ProblemCase c)
    {
        var d = c.Capacity.Length;
        var n = c.Demands.Length / d;

        // Existing bins: three hosts with some of the capacity already used.
        var residuals = new long[3 * d];
        for (var b = 0; b < 3; b++)
        {
            for (var k = 0; k < d; k++)
            {
                residuals[(b * d) + k] = c.Capacity[k] * (b + 1) / 4;
            }
        }

        var binOf = new int[n];
        var opened = VectorPacker.PackInto(residuals, d, c.Demands, c.Capacity, binOf, Options);
        var load = new long[(3 + opened) * d];
        for (var i = 0; i < n; i++)
        {
            if (binOf[i] < 0 || binOf[i] >= 3 + opened)
            {
                return false; // every generated item fits a new bin, so nothing may be left out
            }

            for (var k = 0; k < d; k++)
            {
                load[(binOf[i] * d) + k] += c.Demands[(i * d) + k];
            }
        }

        for (var b = 0; b < 3 + opened; b++)
        {
            for (var k = 0; k < d; k++)
            {
                var limit = b < 3 ? residuals[(b * d) + k] : c.Capacity[k];
                if (load[(b * d) + k] > limit)
                {
                    return false;
                }
            }
        }

        return true;
    }
}
