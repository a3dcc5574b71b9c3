using System.Globalization;
using BatchCore.Model;
using BatchCore.Placement;
using FsCheck;
using FsCheck.Fluent;

namespace BatchCore.Tests.Properties;

/// <summary>A simulated host of the scenario's UNMANAGED compute environment.</summary>
public sealed record HostCase(double Vcpus, int MemoryMiB, bool Arm)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Vcpus}v/{MemoryMiB}M{(Arm ? "/arm" : "")}");
}

/// <summary>
/// A job of the scenario. <see cref="DependsOn"/> is the index of an earlier job (ignored when not earlier);
/// <see cref="Arch"/> is null (any), <c>X86_64</c> or <c>ARM64</c>.
/// </summary>
public sealed record JobCase(double Vcpus, int MemoryMiB, int RunSeconds, int ExitCode, int FailingAttempts, int Attempts,
    int? TimeoutSeconds, string? Arch, int ArraySize, bool Sequential, int? ArrayMaxConcurrency, int DependsOn, bool AnyCondition)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"job({Vcpus}v/{MemoryMiB}M run={RunSeconds}s exit={ExitCode}x{FailingAttempts} attempts={Attempts} timeout={TimeoutSeconds} arch={Arch} array={ArraySize}{(Sequential ? " SEQ" : "")} cap={ArrayMaxConcurrency} dep={DependsOn}{(AnyCondition ? " ANY" : "")})");
}

/// <summary>What the scenario does next: submit the next job, advance the clock, cancel or terminate a known job.</summary>
public sealed record OpCase(char Kind, int Value)
{
    public override string ToString() => Kind switch
    {
        'S' => "submit",
        'A' => string.Create(CultureInfo.InvariantCulture, $"advance {Value}s"),
        'C' => string.Create(CultureInfo.InvariantCulture, $"cancel #{Value}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"terminate #{Value}"),
    };
}

/// <summary>One random engine run: hosts, jobs, the order of events, placement settings and a per-queue cap.</summary>
public sealed record Scenario(HostCase[] Hosts, JobCase[] Jobs, OpCase[] Ops, PlacementStrategy Strategy, int BatchThreshold, int? MaxRunning, int Seed)
{
    public override string ToString() =>
        $"hosts [{string.Join(", ", Hosts.Select(h => h.ToString()))}]\n jobs [{string.Join(",\n  ", Jobs.Select(j => j.ToString()))}]\n ops [{string.Join(", ", Ops.Select(o => o.ToString()))}]\n strategy={Strategy} batch={BatchThreshold} maxRunning={MaxRunning} seed={Seed}";

    /// <summary>Usable capacity of a host as the engine computes it (memory minus the 32 MiB ECS reserve).</summary>
    public static ResourceVector Capacity(HostCase h) => new(ResourceVector.ToMilli(h.Vcpus), h.MemoryMiB - BatchEngineDefaults.HostMemoryReserveMiB, 0);

    public static ResourceVector Request(JobCase j) => new(ResourceVector.ToMilli(j.Vcpus), j.MemoryMiB, 0);

    public static bool ArchMatches(JobCase j, HostCase h) => j.Arch is null || (j.Arch == "ARM64") == h.Arm;

    public static string HostName(int i) => "h" + i.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Generators of the property tests.</summary>
public static class ScenarioGens
{
    public static Gen<HostCase> Host =>
        from v in Gen.Elements(1.0, 2.0, 4.0)
        from m in Gen.Elements(2048, 4096, 8192)
        from arm in Gen.Frequency((4, Gen.Constant(false)), (1, Gen.Constant(true)))
        select new HostCase(v, m, arm);

    public static Gen<JobCase> Job =>
        from v in Gen.Elements(1.0, 1.0, 2.0)
        from m in Gen.Elements(512, 1024, 2048, 3072)
        from run in Gen.Choose(1, 30)
        from fails in Gen.Frequency((3, Gen.Constant(0)), (1, Gen.Choose(1, 3)))
        from attempts in Gen.Choose(1, 3)
        from timeout in Gen.Frequency((4, Gen.Constant<int?>(null)), (1, Gen.Choose(2, 20).Select(t => (int?)t)))
        from arch in Gen.Frequency((6, Gen.Constant<string?>(null)), (1, Gen.Constant<string?>("X86_64")), (1, Gen.Constant<string?>("ARM64")))
        from array in Gen.Frequency((3, Gen.Constant(0)), (1, Gen.Choose(2, 5)))
        from seq in Gen.Frequency((3, Gen.Constant(false)), (1, Gen.Constant(true)))
        from cap in Gen.Frequency((3, Gen.Constant<int?>(null)), (1, Gen.Choose(1, 2).Select(c => (int?)c)))
        from dep in Gen.Frequency((2, Gen.Constant(-1)), (1, Gen.Choose(0, 6)))
        from any in Gen.Frequency((2, Gen.Constant(false)), (1, Gen.Constant(true)))
        select new JobCase(v, m, run, fails > 0 ? 1 : 0, fails, attempts, timeout, arch, array, array > 0 && seq, array > 0 ? cap : null, dep, any);

    public static Gen<OpCase> Op => Gen.Frequency(
        (5, Gen.Constant(new OpCase('S', 0))),
        (3, Gen.Choose(1, 20).Select(s => new OpCase('A', s))),
        (1, Gen.Choose(0, 30).Select(k => new OpCase('C', k))),
        (1, Gen.Choose(0, 30).Select(k => new OpCase('T', k))));

    public static Gen<Scenario> Scenario =>
        from hn in Gen.Choose(1, 4)
        from hosts in Host.ArrayOf(hn)
        from jn in Gen.Choose(1, 8)
        from jobs in Job.ArrayOf(jn)
        from opCount in Gen.Choose(1, 24)
        from ops in Op.ArrayOf(opCount)
        from strategy in Gen.Elements(PlacementStrategy.BestFit, PlacementStrategy.FirstFit, PlacementStrategy.Spread)
        from batch in Gen.Elements(0, 0, 2)
        from maxRunning in Gen.Frequency((3, Gen.Constant<int?>(null)), (1, Gen.Choose(1, 3).Select(c => (int?)c)))
        from seed in Gen.Choose(1, 1000)
        select new Scenario(hosts, jobs, ops, strategy, batch, maxRunning, seed);
}

/// <summary>The arbitraries FsCheck finds by type.</summary>
public static class ScenarioGenerators
{
    public static Arbitrary<Scenario> Scenarios() => Arb.From(ScenarioGens.Scenario);
}
