using BatchCore.Placement.Packing;
using BatchCore.Placement.Packing.Instances;
using BenchmarkDotNet.Attributes;

namespace BatchCore.Benchmarks;

/// <summary>Cost of a packing: FFD against the Optimized strategy (default budget) on Falkenauer u1000_00.</summary>
[MemoryDiagnoser]
public class PackingBenchmarks
{
    private PackingProblem _problem = null!;

    [GlobalSetup]
    public void Setup()
    {
        var data = PackingDataDirectory.Find();
        if (data is not null)
        {
            _problem = BenchmarkInstances.Falkenauer(data, "falkenauer_u").Find(i => i.Name == "Falkenauer_u1000_00")!.Problem;
            return;
        }

        // No shared data: a uniform instance of the same shape (capacity 150, sizes 20..100, fixed seed).
        var rng = new Random(1000);
        var sizes = new long[1000];
        for (var i = 0; i < sizes.Length; i++)
        {
            sizes[i] = rng.Next(20, 101);
        }

        _problem = PackingProblem.OneDimensional(150, sizes);
    }

    [Benchmark(Baseline = true)]
    public int FirstFitDecreasing() => VectorPacker.Pack(_problem, PackingStrategy.FirstFitDecreasing).BinCount;

    [Benchmark]
    public int Optimized() => VectorPacker.Pack(_problem, PackingStrategy.Optimized).BinCount;
}
