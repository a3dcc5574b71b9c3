using BatchCore.Jobs;
using BenchmarkDotNet.Attributes;

namespace BatchCore.Benchmarks.Dispatch;

/// <summary>
/// One job id (a random version-4 UUID string) per operation: the engine's seeded xoshiro256** generator against the
/// seeded <see cref="Random"/> it replaced (baseline; .NET's legacy algorithm draws one sample per byte).
/// </summary>
[MemoryDiagnoser]
public class JobIdBenchmarks
{
    private Random _random = null!;
    private JobIdGenerator _ids;

    [GlobalSetup]
    public void Setup()
    {
        _random = new Random(1);
        _ids = new JobIdGenerator(1);
    }

    [Benchmark(Baseline = true, Description = "seeded Random.NextBytes + Guid")]
    public string SeededRandom()
    {
        Span<byte> b = stackalloc byte[16];
        _random.NextBytes(b);
        b[7] = (byte)((b[7] & 0x0F) | 0x40);
        b[8] = (byte)((b[8] & 0x3F) | 0x80);
        return new Guid(b).ToString();
    }

    [Benchmark(Description = "JobIdGenerator.Next")]
    public string Generator() => _ids.Next();
}
