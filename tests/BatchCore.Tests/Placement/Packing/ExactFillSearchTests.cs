using BatchCore.Placement.Packing;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace BatchCore.Tests.Placement.Packing;

/// <summary>A triplet instance: every bin of the optimum is exactly full with three items (Falkenauer's t sets).</summary>
public sealed record TripletCase(long Capacity, long[] Sizes)
{
    public override string ToString() => $"capacity {Capacity} sizes [{string.Join(",", Sizes)}]";
}

public static class TripletGenerators
{
    /// <summary>Falkenauer's construction, scaled: first item in [0.38C, 0.49C], second in [C/4, (C − first)/2], third the rest.</summary>
    public static Arbitrary<TripletCase> Triplets() => Arb.From(
        from bins in Gen.Choose(2, 30)
        from seed in Gen.Choose(0, int.MaxValue - 1)
        select Generate(1000, bins, seed));

    public static TripletCase Generate(long capacity, int bins, int seed)
    {
        var rng = new Random(seed);
        var sizes = new List<long>(3 * bins);
        for (var b = 0; b < bins; b++)
        {
            var first = rng.NextInt64((capacity * 38 / 100), (capacity * 49 / 100) + 1);
            var second = rng.NextInt64(capacity / 4, ((capacity - first) / 2) + 1);
            sizes.Add(first);
            sizes.Add(second);
            sizes.Add(capacity - first - second);
        }

        // Shuffle (seeded) so the generator's order gives nothing away.
        var array = sizes.ToArray();
        rng.Shuffle(array);
        return new TripletCase(capacity, array);
    }
}

public class ExactFillSearchTests
{
    private static readonly PackingOptions Deterministic = new()
    {
        MaxIterations = 400_000, TimeBudget = Timeout.InfiniteTimeSpan, Seed = 0,
    };

    [Theory]
    [InlineData(20, 1)]
    [InlineData(40, 2)]
    [InlineData(83, 3)]
    [InlineData(167, 4)]
    public void Optimized_packs_generated_triplets_into_exactly_full_bins(int bins, int seed)
    {
        var c = TripletGenerators.Generate(1000, bins, seed);
        var problem = PackingProblem.OneDimensional(c.Capacity, c.Sizes);

        var result = VectorPacker.Pack(problem, PackingStrategy.Optimized, Deterministic);
        var ffd = VectorPacker.Pack(problem, PackingStrategy.FirstFitDecreasing);

        Assert.Null(PackingValidation.Check(problem, result));
        Assert.True(ffd.BinCount > bins, $"the instance should defeat FFD ({ffd.BinCount} bins)");
        Assert.Equal(bins, result.BinCount);
    }

    [Fact]
    public void Search_reports_no_packing_when_the_sizes_cannot_fill_the_bins_exactly()
    {
        // Σ = 2·C but no three sizes make 100: the search must say so, not invent a packing.
        long[] sizes = [40, 40, 40, 26, 27, 27];
        var binOf = new int[sizes.Length];
        var outcome = new ExactFillSearch(sizes, 100, seed: 0).Run(2, 100_000, TimeProvider.System, long.MaxValue, binOf);
        Assert.False(outcome.Found);
    }

    [Fact]
    public void Search_with_slack_finds_a_packing_into_the_lower_bound()
    {
        // Σ = 30 = three bins of 10 with no waste: {6, 4}, {5, 5}, {3, 3, 2, 2}.
        long[] sizes = [6, 5, 5, 4, 3, 3, 2, 2];
        var binOf = new int[sizes.Length];
        var outcome = new ExactFillSearch(sizes, 10, seed: 0).Run(3, 100_000, TimeProvider.System, long.MaxValue, binOf);
        Assert.True(outcome.Found);
        AssertValid(sizes, 10, 3, binOf);
    }

    /// <summary>Whatever the search reports as found is a packing into exactly the target, no bin over capacity.</summary>
    [Property(Arbitrary = [typeof(PackingGenerators)], MaxTest = 300)]
    public bool A_found_packing_is_valid_and_uses_the_target(ProblemCase c)
    {
        if (c.Capacity.Length != 1 || c.Demands.Length == 0)
        {
            return true;
        }

        var problem = c.ToProblem();
        var target = VectorPacker.Pack(problem, PackingStrategy.FirstFitDecreasing).LowerBoundL2;
        var binOf = new int[c.Demands.Length];
        var outcome = new ExactFillSearch(c.Demands, c.Capacity[0], seed: 3).Run(target, 5_000, TimeProvider.System, long.MaxValue, binOf);
        return !outcome.Found || IsValid(c.Demands, c.Capacity[0], target, binOf);
    }

    [Property(Arbitrary = [typeof(TripletGenerators)], MaxTest = 60)]
    public bool Triplet_instances_get_a_valid_packing_no_worse_than_FFD(TripletCase c)
    {
        var problem = PackingProblem.OneDimensional(c.Capacity, c.Sizes);
        var options = Deterministic with { MaxIterations = 20_000 };
        var result = VectorPacker.Pack(problem, PackingStrategy.Optimized, options);
        return PackingValidation.Check(problem, result) is null
            && result.BinCount <= VectorPacker.Pack(problem, PackingStrategy.FirstFitDecreasing).BinCount
            && result.BinCount >= c.Sizes.Length / 3;
    }

    private static void AssertValid(long[] sizes, long capacity, int target, int[] binOf) =>
        Assert.True(IsValid(sizes, capacity, target, binOf), $"bins [{string.Join(",", binOf)}]");

    private static bool IsValid(long[] sizes, long capacity, int target, int[] binOf)
    {
        var load = new long[target];
        for (var i = 0; i < sizes.Length; i++)
        {
            if (binOf[i] < 0 || binOf[i] >= target)
            {
                return false;
            }

            load[binOf[i]] += sizes[i];
        }

        return load.All(l => l <= capacity);
    }
}
