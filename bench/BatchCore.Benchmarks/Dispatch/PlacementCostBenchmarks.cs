using BatchCore.Dispatch;
using BatchCore.Hosts;
using BatchCore.Model;
using BatchCore.Placement;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;

namespace BatchCore.Benchmarks.Dispatch;

/// <summary>
/// Cost of one placement decision as the fleet grows. BestFit: <see cref="HostIndex.FindBestFit"/> against a naive
/// linear scan that scores every feasible host (the baseline). FirstFit: <see cref="HostIndex.FindFirstFit"/> (a max
/// tree in Id order) against the linear scan it replaced (every host, least Id: the baseline), on the same fleet and on
/// a "packed front" fleet as first fit leaves it (the earliest 90 % of hosts with under 1 vCPU free), where it is set
/// against a scan in Id order that stops at the first fit. Hosts are 16-vCPU/64-GiB with a random part already used
/// (fixed seed); 1,000 random requests (1–4 vCPU, 1–8 GiB) per invocation; the time is per decision.
/// Update: the hot-path cost the tree adds — take a request from a random host and give it back (two
/// <see cref="HostIndex.Update"/> calls) — against the same on a copy of the fleet detached from the tree, which runs
/// exactly the bucket-only Update that preceded it (the baseline).
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class PlacementCostBenchmarks
{
    private const int Requests = 1_000;
    private HostIndex _index = null!;
    private Host[] _hosts = [];
    private HostIndex _packedIndex = null!;
    private Host[] _packedHosts = [];
    private HostIndex _detachedIndex = null!;
    private Host[] _detachedHosts = [];
    private int[] _targets = [];
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

        _packedIndex = new HostIndex();
        _packedHosts = new Host[Hosts];
        for (var i = 0; i < Hosts; i++)
        {
            var cap = new ResourceVector(16_000, 65_536, 0);
            var h = new Host(i + 1, "p" + i, ce, cap, driver);
            h.Free = i < Hosts * 9 / 10
                ? new ResourceVector(rng.Next(0, 4) * 250, rng.Next(0, 65) * 1024, 0)
                : new ResourceVector(rng.Next(0, 65) * 250, rng.Next(0, 65) * 1024, 0);
            _packedHosts[i] = h;
            _packedIndex.Add(h);
        }

        _requests = new ResourceVector[Requests];
        for (var i = 0; i < Requests; i++)
        {
            _requests[i] = new ResourceVector(rng.Next(1, 5) * 1000, rng.Next(1, 9) * 1024, 0);
        }

        _detachedIndex = new HostIndex();
        _detachedHosts = new Host[Hosts];
        for (var i = 0; i < Hosts; i++)
        {
            var h = new Host(i + 1, "d" + i, ce, _hosts[i].Capacity, driver) { Free = _hosts[i].Free };
            _detachedIndex.Add(h);
            h.TreeSlot = -1; // detached: Update skips the tree (benchmark only; such an index must not be searched)
            _detachedHosts[i] = h;
        }

        _targets = new int[Requests];
        for (var i = 0; i < Requests; i++)
        {
            _targets[i] = rng.Next(Hosts);
        }
    }

    [BenchmarkCategory("BestFit")]
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

    [BenchmarkCategory("BestFit")]
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

    [BenchmarkCategory("FirstFit")]
    [Benchmark(Baseline = true, OperationsPerInvoke = Requests, Description = "linear first-fit scan (all hosts, least Id)")]
    public int LinearFirstFit() => CountFound(_hosts, static (hosts, r) => NaiveFirstFit(hosts, r));

    [BenchmarkCategory("FirstFit")]
    [Benchmark(OperationsPerInvoke = Requests, Description = "HostIndex.FindFirstFit")]
    public int IndexFirstFit() => CountFound(_index);

    [BenchmarkCategory("FirstFit")]
    [Benchmark(OperationsPerInvoke = Requests, Description = "packed front: scan in Id order to the first fit")]
    public int PackedEarlyExitScan() => CountFound(_packedHosts, static (hosts, r) => EarlyExitFirstFit(hosts, r));

    [BenchmarkCategory("FirstFit")]
    [Benchmark(OperationsPerInvoke = Requests, Description = "packed front: HostIndex.FindFirstFit")]
    public int PackedIndexFirstFit() => CountFound(_packedIndex);

    [BenchmarkCategory("Update")]
    [Benchmark(Baseline = true, OperationsPerInvoke = Requests, Description = "take + give back, bucket-only Update")]
    public int BucketOnlyUpdate() => TakeAndGiveBack(_detachedIndex, _detachedHosts);

    [BenchmarkCategory("Update")]
    [Benchmark(OperationsPerInvoke = Requests, Description = "take + give back, HostIndex.Update (with tree)")]
    public int TreeUpdate() => TakeAndGiveBack(_index, _hosts);

    private int TakeAndGiveBack(HostIndex index, Host[] hosts)
    {
        var moved = 0;
        for (var i = 0; i < _requests.Length; i++)
        {
            var h = hosts[_targets[i]];
            var r = _requests[i];
            if (!h.Free.Fits(r))
            {
                r = h.Free; // take all that is left: still a change in every dimension
            }

            h.Free -= r;
            index.Update(h);
            h.Free += r;
            index.Update(h);
            moved++;
        }

        return moved;
    }

    private int CountFound(HostIndex index)
    {
        var found = 0;
        foreach (var r in _requests)
        {
            if (index.FindFirstFit(r, null) is not null)
            {
                found++;
            }
        }

        return found;
    }

    private int CountFound(Host[] hosts, Func<Host[], ResourceVector, Host?> find)
    {
        var found = 0;
        foreach (var r in _requests)
        {
            if (find(hosts, r) is not null)
            {
                found++;
            }
        }

        return found;
    }

    /// <summary>The old <c>HostIndex.FindFirstFit</c>: every host, the feasible one with the least Id.</summary>
    internal static Host? NaiveFirstFit(Host[] hosts, ResourceVector r)
    {
        Host? best = null;
        foreach (var h in hosts)
        {
            if (h.Accepts && h.Free.Fits(r) && (best is null || h.Id < best.Id))
            {
                best = h;
            }
        }

        return best;
    }

    /// <summary>Hosts in Id order, stop at the first feasible one.</summary>
    internal static Host? EarlyExitFirstFit(Host[] hosts, ResourceVector r)
    {
        foreach (var h in hosts)
        {
            if (h.Accepts && h.Free.Fits(r))
            {
                return h;
            }
        }

        return null;
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
