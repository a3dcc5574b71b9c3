namespace BatchCore.Placement.Packing;

/// <summary>The outcome of <see cref="VectorPacker.Pack"/>.</summary>
public sealed record PackingResult
{
    /// <summary>Bins used; bins are numbered 0..BinCount-1 and none is empty.</summary>
    public required int BinCount { get; init; }

    /// <summary>For each item, its bin.</summary>
    public required int[] BinOfItem { get; init; }

    /// <summary>Max over dimensions of ceil(total demand / capacity): no packing uses fewer bins.</summary>
    public required int LowerBound { get; init; }

    /// <summary>Max over dimensions of the Martello–Toth L2 bound of that dimension; at least <see cref="LowerBound"/>.</summary>
    public required int LowerBoundL2 { get; init; }

    /// <summary>The improvement phase stopped on the time budget (the result is still a valid packing).</summary>
    public bool TimedOut { get; init; }

    /// <summary>Improvement-phase iterations run (0 for greedy strategies).</summary>
    public long Iterations { get; init; }
}
