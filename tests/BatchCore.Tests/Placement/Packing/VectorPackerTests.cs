using BatchCore.Placement.Packing;

namespace BatchCore.Tests.Placement.Packing;

public class VectorPackerTests
{
    private static readonly PackingOptions Deterministic = new()
    {
        MaxIterations = 10_000, TimeBudget = Timeout.InfiniteTimeSpan, Seed = 1,
    };

    private static readonly long[] OneD = [6, 5, 4, 4, 3, 3];

    [Fact]
    public void FirstFit_keeps_the_given_order()
    {
        var result = VectorPacker.Pack(PackingProblem.OneDimensional(10, OneD), PackingStrategy.FirstFit);

        // 6 → b0; 5 → b1; 4 → b0 (6+4); 4 → b1 (5+4); 3 → b2; 3 → b2.
        Assert.Equal([0, 1, 0, 1, 2, 2], result.BinOfItem);
        Assert.Equal(3, result.BinCount);
    }

    [Fact]
    public void FirstFitDecreasing_sorts_by_size_first()
    {
        var result = VectorPacker.Pack(PackingProblem.OneDimensional(10, [3, 6, 4, 5, 4, 3]), PackingStrategy.FirstFitDecreasing);

        // 6 4 | 5 4 | 3 3
        Assert.Equal(3, result.BinCount);
        Assert.Equal(result.BinOfItem[1], result.BinOfItem[2]);
        Assert.Null(PackingValidation.Check(PackingProblem.OneDimensional(10, [3, 6, 4, 5, 4, 3]), result));
    }

    [Fact]
    public void BestFit_chooses_the_fullest_bin_that_fits()
    {
        // 5 → b0, 8 → b1, 2 → best fit is b1 (8+2 = 10) where first fit would pick b0.
        var result = VectorPacker.Pack(PackingProblem.OneDimensional(10, [5, 8, 2]), PackingStrategy.BestFit);
        Assert.Equal([0, 1, 1], result.BinOfItem);
    }

    [Fact]
    public void Spread_chooses_the_emptiest_bin_that_fits()
    {
        // 5 → b0, 8 → b1, 2 → worst fit is b0 (5+2 leaves 3, 8+2 leaves 0).
        var result = VectorPacker.Pack(PackingProblem.OneDimensional(10, [5, 8, 2]), PackingStrategy.Spread);
        Assert.Equal([0, 1, 0], result.BinOfItem);
    }

    [Fact]
    public void BestFit_uses_the_normalised_residual_in_every_dimension()
    {
        // Capacity (10, 10). (6,2) → b0; (5,6) does not fit b0 → b1; (4,2) fits both: it leaves (0,6) in b0
        // [Σ(r/c)² = 0.36] and (1,2) in b1 [0.05], so best fit is b1 where first fit would take b0.
        var problem = new PackingProblem([10, 10], [6, 2, 5, 6, 4, 2]);
        Assert.Equal([0, 1, 1], VectorPacker.Pack(problem, PackingStrategy.BestFit).BinOfItem);
        Assert.Equal([0, 1, 0], VectorPacker.Pack(problem, PackingStrategy.FirstFit).BinOfItem);
    }

    [Fact]
    public void Optimized_finds_the_perfect_packing_that_FirstFitDecreasing_misses()
    {
        // Capacity 100. FFD: 42 42 | 33 33 33 | 25 25 25 21 | 21 → 4 bins.
        long[] sizes = [42, 42, 33, 33, 33, 25, 25, 25, 21, 21];
        var problem = PackingProblem.OneDimensional(100, sizes);
        var ffd = VectorPacker.Pack(problem, PackingStrategy.FirstFitDecreasing);
        var optimized = VectorPacker.Pack(problem, PackingStrategy.Optimized, Deterministic);

        // Σ = 300: the optimum is 42+33+25, 42+33+25, 33+25+21+21 = 3 bins.
        Assert.Equal(4, ffd.BinCount);
        Assert.Equal(3, optimized.BinCount);
        Assert.Equal(3, optimized.LowerBound);
        Assert.Null(PackingValidation.Check(problem, optimized));
    }

    [Fact]
    public void LowerBoundL2_counts_items_larger_than_half_a_bin()
    {
        // Three items of 60 in bins of 100: Σ/C = 1.8 → 2, but no two share a bin → 3.
        var result = VectorPacker.Pack(PackingProblem.OneDimensional(100, [60, 60, 60]), PackingStrategy.FirstFit);
        Assert.Equal(2, result.LowerBound);
        Assert.Equal(3, result.LowerBoundL2);
        Assert.Equal(3, result.BinCount);
    }

    [Fact]
    public void LowerBound_is_the_largest_dimension()
    {
        var result = VectorPacker.Pack(new PackingProblem([10, 10], [1, 9, 1, 9, 1, 9]), PackingStrategy.FirstFitDecreasing);
        Assert.Equal(3, result.LowerBound);
        Assert.Equal(3, result.BinCount);
    }

    [Fact]
    public void Empty_problem_uses_no_bins()
    {
        var result = VectorPacker.Pack(new PackingProblem([10, 10], []));
        Assert.Equal(0, result.BinCount);
        Assert.Empty(result.BinOfItem);
    }

    [Fact]
    public void Problem_rejects_an_item_too_large_for_a_bin_naming_item_and_dimension()
    {
        var ex = Assert.Throws<BatchClientException>(() => new PackingProblem([10, 4], [1, 1, 2, 5]));
        Assert.Contains("item 1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("dimension 1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Problem_rejects_a_non_positive_capacity()
    {
        var ex = Assert.Throws<BatchClientException>(() => new PackingProblem([10, 0], []));
        Assert.Contains("capacity[1]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_reject_a_negative_iteration_budget()
    {
        var problem = PackingProblem.OneDimensional(10, [1]);
        Assert.Throws<BatchClientException>(() => VectorPacker.Pack(problem, PackingStrategy.Optimized, new PackingOptions { MaxIterations = -1 }));
    }

    [Fact]
    public void Optimized_with_a_zero_iteration_budget_returns_the_best_greedy()
    {
        long[] sizes = [42, 42, 33, 33, 33, 25, 25, 25, 21, 21];
        var problem = PackingProblem.OneDimensional(100, sizes);
        var result = VectorPacker.Pack(problem, PackingStrategy.Optimized, Deterministic with { MaxIterations = 0 });
        Assert.Null(PackingValidation.Check(problem, result));
        Assert.Equal(0, result.Iterations);
        Assert.True(result.BinCount <= VectorPacker.Pack(problem, PackingStrategy.FirstFitDecreasing).BinCount);
    }

    [Fact]
    public void PackInto_prefers_existing_bins_and_opens_new_ones_for_the_rest()
    {
        // Two existing hosts with (4 vCPU, 8 GiB) and (1, 1) free; new hosts have (8, 16).
        long[] residuals = [4, 8, 1, 1];
        long[] demands = [4, 8, 1, 1, 6, 6, 6, 6, 9, 1];
        var binOf = new int[5];

        var opened = VectorPacker.PackInto(residuals, 2, demands, [8, 16], binOf, Deterministic);

        Assert.Equal(0, binOf[0]); // fills host 0 exactly
        Assert.Equal(1, binOf[1]); // fills host 1 exactly
        Assert.Equal(2, opened);   // the two (6, 6) items cannot share a new (8, 16) host
        Assert.True(binOf[2] >= 2 && binOf[3] >= 2 && binOf[2] != binOf[3]);
        Assert.Equal(-1, binOf[4]); // 9 vCPU fits nowhere
    }

    [Fact]
    public void PackInto_without_a_new_bin_shape_leaves_the_rest_unplaced()
    {
        var binOf = new int[2];
        var opened = VectorPacker.PackInto([5], 1, [3, 3], [], binOf);
        Assert.Equal(0, opened);
        Assert.Equal(1, binOf.Count(b => b == 0));
        Assert.Equal(1, binOf.Count(b => b == -1));
    }
}
