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

/// <summary>AWS <c>ListConsumableResources</c> request.</summary>
public sealed record ListConsumableResourcesRequest
{
    /// <summary>
    /// At most one filter, <see cref="ListConsumableResourcesFilterName.CONSUMABLE_RESOURCE_NAME"/>: case-insensitive names;
    /// a value ending in <c>*</c> matches names that begin with what precedes it.
    /// </summary>
    public IReadOnlyList<KeyValuesPair>? Filters { get; init; }
    /// <summary>1–100. The default is 100.</summary>
    public int? MaxResults { get; init; }
    public string? NextToken { get; init; }
}

/// <summary>AWS <c>ListConsumableResources</c> response: resources by name.</summary>
public sealed record ListConsumableResourcesResponse(IReadOnlyList<ConsumableResourceSummary> ConsumableResources, string? NextToken);

/// <summary>AWS <c>ConsumableResourceSummary</c>.</summary>
public sealed record ConsumableResourceSummary
{
    public required string ConsumableResourceArn { get; init; }
    public required string ConsumableResourceName { get; init; }
    public long TotalQuantity { get; init; }
    public long InUseQuantity { get; init; }
    public required string ResourceType { get; init; }
}

/// <summary>AWS <c>ListJobsByConsumableResource</c> request.</summary>
public sealed record ListJobsByConsumableResourceRequest
{
    /// <summary>Name or ARN. Required.</summary>
    public string? ConsumableResource { get; init; }
    /// <summary>
    /// <see cref="ListJobsByConsumableResourceFilterName.JOB_STATUS"/> (any of the listed statuses) and/or
    /// <see cref="ListJobsByConsumableResourceFilterName.JOB_NAME"/> (case-insensitive; a value ending in <c>*</c> matches a
    /// prefix), each at most once; a job must match every filter given.
    /// </summary>
    public IReadOnlyList<KeyValuesPair>? Filters { get; init; }
    /// <summary>1–100. The default is 100.</summary>
    public int? MaxResults { get; init; }
    public string? NextToken { get; init; }
}

/// <summary>AWS <c>ListJobsByConsumableResource</c> response.</summary>
public sealed record ListJobsByConsumableResourceResponse(IReadOnlyList<ListJobsByConsumableResourceSummary> Jobs, string? NextToken);

/// <summary>AWS <c>ListJobsByConsumableResourceSummary</c>: a job that needs the resource.</summary>
public sealed record ListJobsByConsumableResourceSummary
{
    public required string JobArn { get; init; }
    public required string JobQueueArn { get; init; }
    public required string JobName { get; init; }
    public string? JobDefinitionArn { get; init; }
    public string? ShareIdentifier { get; init; }
    public required string JobStatus { get; init; }
    /// <summary>How much of the resource the job needs (each array child needs this much while it runs).</summary>
    public required long Quantity { get; init; }
    public string? StatusReason { get; init; }
    public long? StartedAt { get; init; }
    /// <summary>When the job was created (epoch milliseconds).</summary>
    public required long CreatedAt { get; init; }
    /// <summary>Every consumable resource the job needs.</summary>
    public required ConsumableResourceProperties ConsumableResourceProperties { get; init; }
}
