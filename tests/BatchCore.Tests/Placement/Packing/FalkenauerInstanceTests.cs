using BatchCore.Placement.Packing;
using BatchCore.Placement.Packing.Instances;

namespace BatchCore.Tests.Placement.Packing;

/// <summary>Real instances from the shared data folder; skipped when it is absent.</summary>
public class FalkenauerInstanceTests
{
    private static readonly PackingOptions Deterministic = new()
    {
        MaxIterations = 200_000, TimeBudget = Timeout.InfiniteTimeSpan, Seed = 0,
    };

    public static TheoryData<string, string> Instances => new()
    {
        { "falkenauer_u", "Falkenauer_u120_00" },
        { "falkenauer_u", "Falkenauer_u120_07" },
        { "falkenauer_u", "Falkenauer_u120_19" },
        { "falkenauer_t", "Falkenauer_t60_00" },
        { "falkenauer_t", "Falkenauer_t60_05" },
        { "falkenauer_t", "Falkenauer_t120_03" },
    };

    [Theory]
    [MemberData(nameof(Instances))]
    public void Optimized_is_valid_and_within_one_bin_of_the_optimum(string family, string name)
    {
        var data = PackingDataDirectory.Find();
        if (data is null)
        {
            Assert.Skip($"benchmark data not found (set {PackingDataDirectory.EnvironmentVariable} or provide <repoRoot>/../shared/data)");
        }

        var instance = BenchmarkInstances.Falkenauer(data, family).Find(i => i.Name == name);
        Assert.NotNull(instance);

        var result = VectorPacker.Pack(instance.Problem, PackingStrategy.Optimized, Deterministic);
        var ffd = VectorPacker.Pack(instance.Problem, PackingStrategy.FirstFitDecreasing);

        Assert.Null(PackingValidation.Check(instance.Problem, result));
        Assert.True(result.BinCount <= instance.Optimum + 1, $"{name}: {result.BinCount} bins, optimum {instance.Optimum}");
        Assert.True(result.BinCount <= ffd.BinCount);
    }

    [Theory]
    [InlineData("Falkenauer_t60_00")]
    [InlineData("Falkenauer_t120_03")]
    [InlineData("Falkenauer_t249_07")]
    [InlineData("Falkenauer_t501_11")]
    public void Optimized_reaches_the_optimum_of_triplet_instances(string name)
    {
        var data = PackingDataDirectory.Find();
        if (data is null)
        {
            Assert.Skip($"benchmark data not found (set {PackingDataDirectory.EnvironmentVariable} or provide <repoRoot>/../shared/data)");
        }

        var instance = BenchmarkInstances.Falkenauer(data, "falkenauer_t").Find(i => i.Name == name);
        Assert.NotNull(instance);

        var result = VectorPacker.Pack(instance.Problem, PackingStrategy.Optimized, Deterministic);

        Assert.Null(PackingValidation.Check(instance.Problem, result));
        Assert.Equal(instance.Optimum, result.BinCount);
    }
}
