namespace BatchCore.Placement;

/// <summary>How the dispatcher chooses among the hosts a job fits.</summary>
public enum PlacementStrategy
{
    /// <summary>Bin-packing: the host left with the least free capacity across all dimensions (vector-aware).</summary>
    BestFit,

    /// <summary>The least allocated host: spreads load, keeps headroom on every host.</summary>
    Spread,

    /// <summary>The first host, in the order hosts joined, that fits: the classic baseline.</summary>
    FirstFit,
}
