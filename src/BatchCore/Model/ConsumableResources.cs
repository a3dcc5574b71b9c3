namespace BatchCore.Model;

/// <summary>AWS <c>CreateConsumableResource</c> request.</summary>
public sealed record CreateConsumableResourceRequest
{
    public string? ConsumableResourceName { get; init; }
    public long? TotalQuantity { get; init; }
    /// <summary><see cref="ConsumableResourceType"/>. The default is REPLENISHABLE.</summary>
    public string? ResourceType { get; init; }
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
}

/// <summary>AWS <c>UpdateConsumableResource</c> request.</summary>
public sealed record UpdateConsumableResourceRequest
{
    /// <summary>Name or ARN.</summary>
    public string? ConsumableResource { get; init; }
    /// <summary>SET (default), ADD or REMOVE.</summary>
    public string? Operation { get; init; }
    public long? Quantity { get; init; }
}

/// <summary>AWS <c>CreateConsumableResource</c> response.</summary>
public sealed record ConsumableResourceResponse(string ConsumableResourceName, string ConsumableResourceArn);

/// <summary>AWS <c>DescribeConsumableResource</c> response.</summary>
public sealed record ConsumableResourceDetail
{
    public required string ConsumableResourceName { get; init; }
    public required string ConsumableResourceArn { get; init; }
    public required long TotalQuantity { get; init; }
    public required long InUseQuantity { get; init; }
    public required long AvailableQuantity { get; init; }
    public required string ResourceType { get; init; }
    public long CreatedAt { get; init; }
    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();
}

/// <summary>AWS <c>ConsumableResourceRequirement</c>.</summary>
public sealed record ConsumableResourceRequirement
{
    /// <summary>Name or ARN.</summary>
    public string? ConsumableResource { get; init; }
    public long Quantity { get; init; }
}

/// <summary>AWS <c>ConsumableResourceProperties</c>.</summary>
public sealed record ConsumableResourceProperties
{
    public IReadOnlyList<ConsumableResourceRequirement> ConsumableResourceList { get; init; } = [];
}
