using BatchCore.Placement.Packing;
using FsCheck;
using FsCheck.Fluent;

namespace BatchCore.Tests.Placement.Packing;

/// <summary>A generated instance; <see cref="ToString"/> prints it so a failing case can be pinned.</summary>
public sealed record ProblemCase(long[] Capacity, long[] Demands)
{
    public PackingProblem ToProblem() => new(Capacity, Demands);

    public override string ToString() => $"capacity [{string.Join(",", Capacity)}] demands [{string.Join(",", Demands)}]";
}

/// <summary>Random packing instances: 1–3 dimensions, capacities 5–60, 0–40 items that each fit an empty bin.</summary>
public static class PackingGenerators
{
    public static Arbitrary<ProblemCase> Problems() => Arb.From(
        from d in Gen.Choose(1, 3)
        from capacity in Gen.Choose(5, 60).ArrayOf(d)
        from n in Gen.Choose(0, 40)
        from demands in Gen.CollectToArray(Enumerable.Range(0, n * d), idx => Gen.Choose(0, (int)capacity[idx % d]))
        select new ProblemCase(Array.ConvertAll(capacity, c => (long)c), Array.ConvertAll(demands, v => (long)v)));
}
