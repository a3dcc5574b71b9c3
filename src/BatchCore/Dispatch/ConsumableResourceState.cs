namespace BatchCore.Dispatch;

/// <summary>A consumable resource (AWS §2.8): locked at STARTING, unlocked at SUCCEEDED/FAILED if replenishable.</summary>
internal sealed class ConsumableResourceState
{
    public required string Name { get; init; }
    public required string Arn { get; init; }
    public required bool Replenishable { get; init; }

    /// <summary>
    /// The total asked for (CreateConsumableResource, then UpdateConsumableResource). An update may set it below what
    /// running jobs hold (<see cref="InUse"/>); AWS: "If there are units in use, Batch reduces the available quantity
    /// immediately and, as jobs finish, Batch reduces the total (available) quantity so that it eventually arrives at
    /// the new number". So <see cref="Available"/> is then 0 and <see cref="ReportedTotal"/> what the jobs hold.
    /// </summary>
    public long TotalQuantity { get; set; }

    public long InUse { get; set; }
    public long CreatedAt { get; init; }
    public Dictionary<string, string> Tags { get; init; } = new(StringComparer.Ordinal);

    /// <summary>What a job may still lock: never negative, also while jobs hold more than <see cref="TotalQuantity"/>.</summary>
    public long Available => Math.Max(0, TotalQuantity - InUse);

    /// <summary>The total that exists now (describe's totalQuantity): at least what running jobs hold.</summary>
    public long ReportedTotal => Math.Max(TotalQuantity, InUse);

    /// <summary>A job that held <paramref name="quantity"/> ended.</summary>
    public void Release(long quantity)
    {
        if (!Replenishable)
        {
            // Used up: what exists shrinks by it, and the total asked for caps what is left (units an update removed
            // while jobs held them are not counted twice).
            TotalQuantity = Math.Min(TotalQuantity, ReportedTotal - quantity);
        }

        InUse -= quantity;
    }
}
