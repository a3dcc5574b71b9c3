using BatchCore.Dispatch;
using BatchCore.Hosts;
using BatchCore.Model;
using BatchCore.Placement;
using BenchmarkDotNet.Attributes;

namespace BatchCore.Benchmarks.Dispatch;

/// <summary>
/// Cost of one best-fit decision as the fleet grows: <see cref="HostIndex.FindBestFit"/> against a naive linear scan
/// that scores every feasible host (the baseline). Hosts are 16-vCPU/64-GiB with a random part already used
/// (fixed seed); 1,000 random requests (1–4 vCPU) per invocation; the time is per decision.
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class PlacementCostBenchmarks
{
    private const int Requests = 1_000;
    private HostIndex _index = null!;
    private Host[] _hosts = [];
    private ResourceVector[] _requests = [];

    [Params(100, 1_000, 10_000, 100_000)]
    public int Hosts { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        var ce = new ComputeEnvironmentState { Name = "ce", Arn = "arn", Type = CEType.UNMANAGED, State = ResourceState.ENABLED };
        var driver = new SimulatedHostDriver(new NullScheduler());
        _index = new HostIndex();
        _hosts = new Host[Hosts];
        for (var i = 0; i < Hosts; i++)
        {
            var cap = new ResourceVector(16_000, 65_536, 0);
            var h = new Host(i + 1, "h" + i, ce, cap, driver);
            h.Free = new ResourceVector(rng.Next(0, 65) * 250, rng.Next(0, 65) * 1024, 0);
            _hosts[i] = h;
            _index.Add(h);
        }

        _requests = new ResourceVector[Requests];
        for (var i = 0; i < Requests; i++)
        {
            _requests[i] = new ResourceVector(rng.Next(1, 5) * 1000, rng.Next(1, 9) * 1024, 0);
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Requests, Description = "linear best-fit scan")]
    public int LinearScan()
    {
        var found = 0;
        foreach (var r in _requests)
        {
            if (NaiveBestFit(_hosts, r) is not null)
            {
                found++;
            }
        }

        return found;
    }

    [Benchmark(OperationsPerInvoke = Requests, Description = "HostIndex.FindBestFit")]
    public int IndexBestFit()
    {
        var found = 0;
        foreach (var r in _requests)
        {
            if (_index.FindBestFit(r, null) is not null)
            {
                found++;
            }
        }

        return found;
    }

    /// <summary>Every feasible host scored by the index's own leftover measure; the least wins.</summary>
    internal static Host? NaiveBestFit(Host[] hosts, ResourceVector r)
    {
        Host? best = null;
        var bestScore = double.MaxValue;
        foreach (var h in hosts)
        {
            if (!h.Accepts || !h.Free.Fits(r))
            {
                continue;
            }

            var cpu = (double)(h.Free.VcpuMilli - r.VcpuMilli) / h.Capacity.VcpuMilli;
            var mem = (double)(h.Free.MemoryMiB - r.MemoryMiB) / h.Capacity.MemoryMiB;
            var score = (cpu * cpu) + (mem * mem);
            if (score < bestScore)
            {
                bestScore = score;
                best = h;
            }
        }

        return best;
    }

    private sealed class NullScheduler : ISimulationScheduler
    {
        public long NowMs => 0;

        public object Schedule(long dueMs, Action callback) => callback;

        public void Cancel(object handle)
        {
        }
    }
}
