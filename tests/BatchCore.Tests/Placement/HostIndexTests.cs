using BatchCore.Dispatch;
using BatchCore.Hosts;
using BatchCore.Model;
using BatchCore.Placement;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace BatchCore.Tests.Placement;

/// <summary>One step of a random HostIndex history: add a host, remove one, change one's free capacity, or drain it.</summary>
public sealed record IndexOp(char Kind, int Target, int CapVcpuQuarters, int CapMemGiB, bool Arm, int FreeVcpuQuarters, int FreeMemGiB)
{
    public override string ToString() => Kind switch
    {
        'A' => $"add({CapVcpuQuarters}q/{CapMemGiB}G{(Arm ? "/arm" : "")} free {FreeVcpuQuarters}q/{FreeMemGiB}G)",
        'R' => $"remove #{Target}",
        'D' => $"drain #{Target}",
        _ => $"update #{Target} free {FreeVcpuQuarters}q/{FreeMemGiB}G",
    };
}

/// <summary>A history and the requests to look up afterwards.</summary>
/// <param name="Scale">Multiplies every vCPU figure: 317 spreads 16-vCPU shapes over ~5,000 one-vCPU buckets (several
/// words of the index's bitmap and of its summary).</param>
public sealed record IndexCase(IndexOp[] Ops, (int VcpuQuarters, int MemGiB, string? Arch)[] Requests, int Scale = 1)
{
    public override string ToString() => $"scale {Scale} ops [{string.Join(", ", Ops.Select(o => o.ToString()))}] requests [{string.Join(", ", Requests.Select(r => $"{r.VcpuQuarters}q/{r.MemGiB}G/{r.Arch}"))}]";
}

public static class HostIndexGenerators
{
    public static Arbitrary<IndexCase> Cases() => Arb.From(
        from n in Gen.Choose(1, 40)
        from ops in (from kind in Gen.Frequency((4, Gen.Constant('A')), (1, Gen.Constant('R')), (3, Gen.Constant('U')), (1, Gen.Constant('D')))
                     from target in Gen.Choose(0, 50)
                     from cap in Gen.Choose(1, 64)
                     from mem in Gen.Choose(1, 64)
                     from arm in Gen.Frequency((3, Gen.Constant(false)), (1, Gen.Constant(true)))
                     from freeCpu in Gen.Choose(0, 64)
                     from freeMem in Gen.Choose(0, 64)
                     select new IndexOp(kind, target, cap, mem, arm, freeCpu, freeMem)).ArrayOf(n)
        from rn in Gen.Choose(1, 10)
        from requests in (from v in Gen.Choose(1, 32)
                          from m in Gen.Choose(1, 32)
                          from a in Gen.Elements<string?>(null, null, "x86_64", "arm64")
                          select (v, m, a)).ArrayOf(rn)
        from scale in Gen.Elements(1, 1, 317)
        select new IndexCase(ops, requests, scale));
}

public class HostIndexTests
{
    private static readonly ComputeEnvironmentState Ce = new() { Name = "ce", Arn = "arn:ce", Type = CEType.UNMANAGED, State = ResourceState.ENABLED };
    private static readonly HostDriver Driver = new SimulatedHostDriver(new NullScheduler());

    private static Host NewHost(int id, int vcpuMilli, int memMiB, int freeVcpuMilli = -1, int freeMemMiB = -1, string arch = "x86_64")
    {
        var h = new Host(id, "h" + id, Ce, new ResourceVector(vcpuMilli, memMiB, 0), Driver) { Architecture = arch };
        if (freeVcpuMilli >= 0)
        {
            h.Free = new ResourceVector(freeVcpuMilli, freeMemMiB, 0);
        }

        return h;
    }

    [Fact]
    public void Empty_index_finds_nothing()
    {
        var index = new HostIndex();
        Assert.Null(index.FindBestFit(new ResourceVector(1000, 1024, 0), null));
        Assert.Null(index.FindFirstFit(new ResourceVector(1000, 1024, 0), null));
        Assert.Null(index.FindSpread(new ResourceVector(1000, 1024, 0), null));
    }

    [Fact]
    public void BestFit_picks_the_tightest_host_FirstFit_the_earliest_Spread_the_emptiest()
    {
        var index = new HostIndex();
        var roomy = NewHost(1, 16_000, 65_536);
        var tight = NewHost(2, 16_000, 65_536, 2_000, 4_096);
        var middle = NewHost(3, 16_000, 65_536, 8_000, 16_384);
        foreach (var h in new[] { roomy, tight, middle })
        {
            index.Add(h);
        }

        var request = new ResourceVector(2_000, 2_048, 0);
        Assert.Same(tight, index.FindBestFit(request, null));
        Assert.Same(roomy, index.FindFirstFit(request, null));
        Assert.Same(roomy, index.FindSpread(request, null));
        index.AssertInvariants();
    }

    [Fact]
    public void BestFit_with_a_filter_skips_rejected_hosts_and_takes_the_next_tightest()
    {
        var index = new HostIndex();
        var tight = NewHost(1, 16_000, 65_536, 2_000, 4_096);
        var middle = NewHost(2, 16_000, 65_536, 8_000, 16_384);
        var roomy = NewHost(3, 16_000, 65_536);
        foreach (var h in new[] { tight, middle, roomy })
        {
            index.Add(h);
        }

        var request = new ResourceVector(2_000, 2_048, 0);
        Assert.Same(middle, index.FindBestFit(request, null, h => h != tight));
        Assert.Same(roomy, index.FindBestFit(request, null, h => h == roomy));
        Assert.Null(index.FindBestFit(request, null, _ => false));
        Assert.Same(tight, index.FindBestFit(request, null, null));
    }

    [Fact]
    public void BestFit_with_a_filter_gives_up_after_a_bounded_number_of_rejections()
    {
        var index = new HostIndex();
        var calls = 0;
        for (var i = 1; i <= 100; i++)
        {
            index.Add(NewHost(i, 4_000, 8_192));
        }

        Assert.Null(index.FindBestFit(new ResourceVector(1_000, 1_024, 0), null, _ => { calls++; return false; }));
        Assert.InRange(calls, 1, 32);
    }

    [Fact]
    public void Update_moves_a_host_between_buckets_and_Remove_forgets_it()
    {
        var index = new HostIndex();
        var a = NewHost(1, 4_000, 8_192);
        var b = NewHost(2, 4_000, 8_192);
        index.Add(a);
        index.Add(b);
        a.Free = new ResourceVector(1_000, 8_192, 0);
        index.Update(a);
        Assert.Same(a, index.FindBestFit(new ResourceVector(1_000, 1_024, 0), null));
        index.Remove(a);
        Assert.Same(b, index.FindBestFit(new ResourceVector(1_000, 1_024, 0), null));
        Assert.Equal(1, index.Count);
        index.Remove(a); // removing twice is harmless
        Assert.Equal(1, index.Count);
        index.AssertInvariants();
    }

    [Fact]
    public void Memory_and_architecture_filter_hosts_with_enough_vCPU()
    {
        var index = new HostIndex();
        var lowMemory = NewHost(1, 8_000, 1_024);
        var arm = NewHost(2, 8_000, 65_536, arch: "arm64");
        index.Add(lowMemory);
        index.Add(arm);
        Assert.Null(index.FindBestFit(new ResourceVector(1_000, 4_096, 0), "x86_64"));
        Assert.Same(arm, index.FindBestFit(new ResourceVector(1_000, 4_096, 0), "arm64"));
        Assert.Same(arm, index.FindBestFit(new ResourceVector(1_000, 4_096, 0), null));
    }

    [Fact]
    public void Draining_hosts_are_never_found()
    {
        var index = new HostIndex();
        var h = NewHost(1, 8_000, 8_192);
        index.Add(h);
        h.Draining = true;
        Assert.Null(index.FindBestFit(new ResourceVector(1_000, 1_024, 0), null));
        Assert.Null(index.FindSpread(new ResourceVector(1_000, 1_024, 0), null));
        Assert.Null(index.FindFirstFit(new ResourceVector(1_000, 1_024, 0), null));
    }

    /// <summary>
    /// After random Add/Remove/Update/drain histories: every strategy finds a host iff a brute-force scan finds a
    /// feasible one (accepting, fits in every dimension, architecture); FirstFit's pick is the earliest feasible host;
    /// BestFit's pick lies in the lowest free-vCPU bucket holding a feasible host and — when that bucket holds at most
    /// the 16 candidates BestFit compares — has the least leftover there; Spread's lies in the highest such bucket;
    /// every host sits in the bucket of its free vCPU and AssertInvariants holds.
    /// </summary>
    [Property(Arbitrary = [typeof(HostIndexGenerators)], MaxTest = 500)]
    public void Index_agrees_with_a_brute_force_scan(IndexCase c)
    {
        var index = new HostIndex();
        var live = new List<Host>();
        var nextId = 1;
        foreach (var op in c.Ops)
        {
            switch (op.Kind)
            {
                case 'A':
                    var cap = new ResourceVector(op.CapVcpuQuarters * 250 * c.Scale, op.CapMemGiB * 1024, 0);
                    var h = NewHost(nextId++, cap.VcpuMilli, cap.MemoryMiB, Math.Min(op.FreeVcpuQuarters * 250 * c.Scale, cap.VcpuMilli), Math.Min(op.FreeMemGiB * 1024, cap.MemoryMiB), op.Arm ? "arm64" : "x86_64");
                    index.Add(h);
                    live.Add(h);
                    break;
                case 'R' when live.Count > 0:
                    var r = live[op.Target % live.Count];
                    index.Remove(r);
                    live.Remove(r);
                    break;
                case 'D' when live.Count > 0:
                    live[op.Target % live.Count].Draining = true;
                    break;
                case 'U' when live.Count > 0:
                    var u = live[op.Target % live.Count];
                    u.Free = new ResourceVector(Math.Min(op.FreeVcpuQuarters * 250 * c.Scale, u.Capacity.VcpuMilli), Math.Min(op.FreeMemGiB * 1024, u.Capacity.MemoryMiB), 0);
                    index.Update(u);
                    break;
                default:
                    break;
            }
        }

        index.AssertInvariants();
        Assert.Equal(live.Count, index.Count);
        Assert.Equal(live.Count, index.All.Count);
        Assert.All(live, h => Assert.Equal(h.Free.VcpuMilli / HostIndex.BucketMilli, h.Bucket));

        foreach (var (q, g, arch) in c.Requests)
        {
            var request = new ResourceVector(q * 250 * c.Scale, g * 1024, 0);
            var feasible = live.Where(h => h.Accepts && h.Free.Fits(request) && (arch is null || arch == h.Architecture)).ToList();
            var best = index.FindBestFit(request, arch);
            var first = index.FindFirstFit(request, arch);
            var spread = index.FindSpread(request, arch);
            Assert.True((best is null) == (feasible.Count == 0), $"BestFit {(best is null ? "found nothing" : "found a host")} with {feasible.Count} feasible; {c}");
            Assert.True((first is null) == (feasible.Count == 0), $"FirstFit disagrees with the scan; {c}");
            Assert.True((spread is null) == (feasible.Count == 0), $"Spread disagrees with the scan; {c}");
            if (feasible.Count == 0)
            {
                continue;
            }

            Assert.Contains(best!, feasible);
            Assert.Contains(spread!, feasible);
            Assert.Same(feasible.MinBy(h => h.Id), first);

            var lowest = feasible.Min(h => h.Bucket);
            Assert.Equal(lowest, best!.Bucket);
            var inBucket = feasible.Where(h => h.Bucket == lowest).ToList();
            if (inBucket.Count <= 16)
            {
                Assert.Equal(inBucket.Min(h => Leftover(h, request)), Leftover(best, request), 12);
            }

            Assert.Equal(feasible.Max(h => h.Bucket), spread!.Bucket);
        }
    }

    private static double Leftover(Host h, ResourceVector r)
    {
        var cpu = (double)(h.Free.VcpuMilli - r.VcpuMilli) / Math.Max(1, h.Capacity.VcpuMilli);
        var mem = (double)(h.Free.MemoryMiB - r.MemoryMiB) / Math.Max(1, h.Capacity.MemoryMiB);
        return (cpu * cpu) + (mem * mem);
    }
}
