namespace BatchCore.Placement.Packing;

/// <summary>How <see cref="VectorPacker"/> assigns items to bins.</summary>
public enum PackingStrategy
{
    /// <summary>
    /// The BatchCore strategy: a portfolio of greedy orderings, then a bounded bin-elimination local search.
    /// Never uses more bins than <see cref="FirstFit"/>, <see cref="FirstFitDecreasing"/> or <see cref="BestFitDecreasing"/>.
    /// </summary>
    Optimized = 0,

    /// <summary>Items in the given (online) order, each into the first open bin where it fits.</summary>
    FirstFit,

    /// <summary>Items by decreasing normalised size (sum over dimensions of demand/capacity), then first fit.</summary>
    FirstFitDecreasing,

    /// <summary>Items by decreasing normalised size, each into the open bin it leaves with the least normalised residual.</summary>
    BestFitDecreasing,

    /// <summary>Items in the given order, each into the open bin it leaves with the most normalised residual (worst fit).</summary>
    Spread,

    /// <summary>
    /// Items in the given order, each into the open bin it leaves with the least normalised residual
    /// (sum over dimensions of (residual/capacity)²).
    /// </summary>
    BestFit,
}
