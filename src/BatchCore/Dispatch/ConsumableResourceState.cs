namespace BatchCore.Dispatch;

/// <summary>A consumable resource (AWS §2.8): locked at STARTING, unlocked at SUCCEEDED/FAILED if replenishable.</summary>
internal sealed class ConsumableResourceState
{
    public required string Name { get; init; }
    public required string Arn { get; init; }
    public required bool Replenishable { get; init; }
    public long TotalQuantity { get; set; }
    public long InUse { get; set; }
    public long CreatedAt { get; init; }
    public Dictionary<string, string> Tags { get; init; } = new(StringComparer.Ordinal);
    public long Available => TotalQuantity - InUse;
}
