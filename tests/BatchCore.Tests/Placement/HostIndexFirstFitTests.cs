using BatchCore.Dispatch;
using BatchCore.Hosts;
using BatchCore.Model;
using BatchCore.Placement;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace BatchCore.Tests.Placement;

/// <summary>
/// One step of a random history for the first-fit tree. Kinds: A add (Shape 0 balanced, 1 vCPU-heavy, 2 memory-heavy,
/// 3 GPU host; OutOfOrder gives it an Id below every earlier one), R remove, U update free capacity (fractions in
/// eighths of the capacity), F set Ready/Draining and tell the index, S drain without telling the index.
/// </summary>
public sealed record FitOp(char Kind, int Target, int Shape, bool Arm, bool OutOfOrder, int CpuEighths, int MemEighths, int Gpus, bool Ready, bool Draining)
{
    public override string ToString() => Kind switch
    {
        'A' => $"add(shape {Shape}{(Arm ? "/arm" : "")}{(OutOfOrder ? "/low id" : "")} free {CpuEighths}/8 cpu {MemEighths}/8 mem {Gpus} gpu)",
        'R' => $"remove #{Target}",
        'F' => $"flags #{Target} ready={Ready} draining={Draining}",
        'S' => $"stale drain #{Target}",
        _ => $"update #{Target} free {CpuEighths}/8 cpu {MemEighths}/8 mem {Gpus} gpu",
    };
}

/// <summary>A request for the first-fit tree: vCPU in quarters, memory in GiB, GPUs, architecture (ppc64le: no host has it).</summary>
public sealed record FitRequest(int VcpuQuarters, int MemGiB, int Gpus, string? Arch)
{
    public ResourceVector Vector => new(VcpuQuarters * 250, MemGiB * 1024, Gpus);

    public override string ToString() => $"{VcpuQuarters}q/{MemGiB}G/{Gpus}g/{Arch ?? "any"}";
}

/// <summary>A history interleaved with lookups: after op i, the requests of step i are looked up.</summary>
public sealed record FitCase(FitOp[] Ops, FitRequest[] Requests)
{
    public override string ToString() =>
        $"ops [{string.Join(", ", Ops.Select(o => o.ToString()))}] requests [{string.Join(", ", Requests.Select(r => r.ToString()))}]";
}

public static class FirstFitGenerators
{
    private static readonly Gen<FitOp> Op =
        from kind in Gen.Frequency((6, Gen.Constant('A')), (3, Gen.Constant('R')), (6, Gen.Constant('U')), (2, Gen.Constant('F')), (1, Gen.Constant('S')))
        from target in Gen.Choose(0, 1_000)
        from shape in Gen.Choose(0, 3)
        from arm in Gen.Frequency((4, Gen.Constant(false)), (1, Gen.Constant(true)))
        from outOfOrder in Gen.Frequency((15, Gen.Constant(false)), (1, Gen.Constant(true)))
        // Skewed free capacity (all of one dimension, none of the other) makes subtree maxima admit requests no single
        // host fits: the descent must back out of such dead ends.
        from cpu in Gen.Frequency((1, Gen.Constant(0)), (1, Gen.Constant(8)), (3, Gen.Choose(0, 8)))
        from mem in Gen.Frequency((1, Gen.Constant(0)), (1, Gen.Constant(8)), (3, Gen.Choose(0, 8)))
        from gpus in Gen.Choose(0, 4)
        from ready in Gen.Frequency((3, Gen.Constant(true)), (1, Gen.Constant(false)))
        from draining in Gen.Frequency((3, Gen.Constant(false)), (1, Gen.Constant(true)))
        select new FitOp(kind, target, shape, arm, outOfOrder, cpu, mem, gpus, ready, draining);

    private static readonly Gen<FitRequest> Request =
        from v in Gen.Choose(1, 64)
        from m in Gen.Choose(1, 64)
        from g in Gen.Frequency((4, Gen.Constant(0)), (1, Gen.Choose(1, 4)))
        from a in Gen.Elements<string?>(null, null, "x86_64", "arm64", "ppc64le")
        select new FitRequest(v, m, g, a);

    public static Arbitrary<FitCase> Cases() => Arb.From(
        from n in Gen.Choose(1, 300)
        from ops in Op.ArrayOf(n)
        from requests in Request.ArrayOf(n)
        select new FitCase(ops, requests));
}

public class HostIndexFirstFitTests
{
    private static readonly ComputeEnvironmentState Ce = new() { Name = "ce", Arn = "arn:ce", Type = CEType.UNMANAGED, State = ResourceState.ENABLED };
    private static readonly HostDriver Driver = new SimulatedHostDriver(new NullScheduler());

    /// <summary>Capacities by shape: balanced, vCPU-heavy, memory-heavy, GPU host (vCPU milli, MiB, GPUs).</summary>
    private static readonly ResourceVector[] Shapes =
    [
        new(8_000, 32_768, 0),
        new(16_000, 8_192, 0),
        new(4_000, 65_536, 0),
        new(8_000, 32_768, 4),
    ];

    private static Host NewHost(int id, ResourceVector capacity, string arch = "x86_64") =>
        new(id, "h" + id, Ce, capacity, Driver) { Architecture = arch };

    private static ResourceVector FreeOf(ResourceVector cap, FitOp op) =>
        new(cap.VcpuMilli * op.CpuEighths / 8, cap.MemoryMiB * op.MemEighths / 8, Math.Min(op.Gpus, cap.Gpus));

    /// <summary>The reference: every host, the least Id among the feasible ones.</summary>
    private static Host? NaiveFirstFit(List<Host> live, ResourceVector r, string? arch) =>
        live.Where(h => h.Accepts && h.Free.Fits(r) && (arch is null || arch == h.Architecture)).MinBy(h => h.Id);

    /// <summary>
    /// After every step of a random history of additions (some out of Id order), removals (enough to compact the
    /// tree), capacity updates (skewed so that subtree maxima mislead), Ready/Draining changes (told to the index, or a
    /// drain not told), FindFirstFit picks exactly the host a linear scan picks: the least-Id feasible one.
    /// </summary>
    [Property(Arbitrary = [typeof(FirstFitGenerators)], MaxTest = 300)]
    public void FindFirstFit_picks_the_same_host_as_a_linear_scan(FitCase c)
    {
        var index = new HostIndex();
        var live = new List<Host>();
        var nextId = 1;
        var lowId = 0;
        for (var step = 0; step < c.Ops.Length; step++)
        {
            var op = c.Ops[step];
            switch (op.Kind)
            {
                case 'A':
                    var cap = Shapes[op.Shape];
                    var h = NewHost(op.OutOfOrder ? --lowId : nextId++, cap, op.Arm ? "arm64" : "x86_64");
                    h.Free = FreeOf(cap, op);
                    index.Add(h);
                    live.Add(h);
                    break;
                case 'R' when live.Count > 0:
                    var r = live[op.Target % live.Count];
                    index.Remove(r);
                    live.Remove(r);
                    break;
                case 'U' when live.Count > 0:
                    var u = live[op.Target % live.Count];
                    u.Free = FreeOf(u.Capacity, op);
                    index.Update(u);
                    break;
                case 'F' when live.Count > 0:
                    var f = live[op.Target % live.Count];
                    f.Ready = op.Ready;
                    f.Draining = op.Draining;
                    index.Update(f);
                    break;
                case 'S' when live.Count > 0:
                    live[op.Target % live.Count].Draining = true; // not told: the pick is still checked
                    break;
                default:
                    break;
            }

            var req = c.Requests[step];
            var expected = NaiveFirstFit(live, req.Vector, req.Arch);
            var actual = index.FindFirstFit(req.Vector, req.Arch);
            Assert.True(ReferenceEquals(expected, actual), $"step {step} request {req}: expected {expected?.Name ?? "none"}, got {actual?.Name ?? "none"}; {c}");
            Assert.Same(actual, index.Find(req.Vector, req.Arch, PlacementStrategy.FirstFit));
        }

        Assert.Equal(live.Count, index.Count);
        index.AssertInvariants();
    }

    [Fact]
    public void FindFirstFit_backs_out_of_subtrees_whose_maxima_mislead()
    {
        // Alternating hosts with only vCPU free and only memory free: every subtree's maxima admit a request for both,
        // yet only the last host fits it.
        var index = new HostIndex();
        var hosts = new List<Host>();
        for (var i = 1; i <= 1_000; i++)
        {
            var h = NewHost(i, new ResourceVector(8_000, 32_768, 0));
            h.Free = i % 2 == 0 ? new ResourceVector(8_000, 0, 0) : new ResourceVector(0, 32_768, 0);
            index.Add(h);
            hosts.Add(h);
        }

        var request = new ResourceVector(1_000, 1_024, 0);
        Assert.Null(index.FindFirstFit(request, null));
        hosts[^1].Free = hosts[^1].Capacity;
        index.Update(hosts[^1]);
        Assert.Same(hosts[^1], index.FindFirstFit(request, null));
        hosts[500].Free = new ResourceVector(1_000, 1_024, 0);
        index.Update(hosts[500]);
        Assert.Same(hosts[500], index.FindFirstFit(request, null));
        index.AssertInvariants();
    }

    [Fact]
    public void FindFirstFit_keeps_join_order_through_removals_and_compaction()
    {
        var index = new HostIndex();
        var hosts = new List<Host>();
        for (var i = 1; i <= 5_000; i++)
        {
            var h = NewHost(i, new ResourceVector(4_000, 8_192, 0));
            index.Add(h);
            hosts.Add(h);
        }

        // Remove all but every 97th host: many compactions; the survivors keep their order.
        foreach (var h in hosts.Where(h => h.Id % 97 != 0).ToList())
        {
            index.Remove(h);
            hosts.Remove(h);
        }

        index.AssertInvariants();
        var request = new ResourceVector(1_000, 1_024, 0);
        foreach (var h in hosts)
        {
            Assert.Same(h, index.FindFirstFit(request, null));
            h.Free = new ResourceVector(0, 8_192, 0);
            index.Update(h);
        }

        Assert.Null(index.FindFirstFit(request, null));
        var late = NewHost(10_000, new ResourceVector(4_000, 8_192, 0));
        index.Add(late);
        Assert.Same(late, index.FindFirstFit(request, null));
        index.AssertInvariants();
    }

    [Fact]
    public void A_host_that_becomes_ready_is_found_once_the_index_is_told()
    {
        var index = new HostIndex();
        var booting = NewHost(1, new ResourceVector(4_000, 8_192, 0));
        booting.Ready = false;
        var later = NewHost(2, new ResourceVector(4_000, 8_192, 0));
        index.Add(booting);
        index.Add(later);
        var request = new ResourceVector(1_000, 1_024, 0);
        Assert.Same(later, index.FindFirstFit(request, null));
        booting.Ready = true;
        index.Update(booting);
        Assert.Same(booting, index.FindFirstFit(request, null));
        booting.Draining = true;
        index.Update(booting);
        Assert.Same(later, index.FindFirstFit(request, null));
    }

    [Fact]
    public void Architectures_past_the_31st_share_a_bit_and_are_still_told_apart()
    {
        var index = new HostIndex();
        var hosts = new List<Host>();
        for (var i = 1; i <= 40; i++)
        {
            var h = NewHost(i, new ResourceVector(4_000, 8_192, 0), "arch" + i);
            index.Add(h);
            hosts.Add(h);
        }

        var request = new ResourceVector(1_000, 1_024, 0);
        Assert.Same(hosts[0], index.FindFirstFit(request, null));
        Assert.Same(hosts[4], index.FindFirstFit(request, "arch5"));
        Assert.Same(hosts[34], index.FindFirstFit(request, "arch35"));
        Assert.Same(hosts[39], index.FindFirstFit(request, "arch40"));
        Assert.Null(index.FindFirstFit(request, "arch41"));
        Assert.Null(index.FindFirstFit(request, "x86_64"));
        index.AssertInvariants();
    }
}
