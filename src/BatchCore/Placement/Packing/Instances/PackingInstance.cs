namespace BatchCore.Placement.Packing.Instances;

/// <summary>A benchmark instance with what is known about it.</summary>
/// <param name="Name">The instance name, e.g. <c>Falkenauer_u120_00</c> or <c>class1_20_3_0</c>.</param>
/// <param name="Family">The family or class it is reported under, e.g. <c>u120</c>, <c>t60</c>, <c>class4</c>.</param>
/// <param name="Problem">The items and the bin.</param>
/// <param name="Optimum">The proven optimal bin count, or null when unknown.</param>
/// <param name="LowerBound">A published lower bound, or null.</param>
/// <param name="BestHeuristic">Bins of the best published heuristic, or null.</param>
internal sealed record PackingInstance(
    string Name, string Family, PackingProblem Problem, int? Optimum, int? LowerBound, int? BestHeuristic);
