namespace BatchCore.Model;

/// <summary>AWS <c>CreateSchedulingPolicy</c> request.</summary>
public sealed record CreateSchedulingPolicyRequest
{
    public string? Name { get; init; }
    public FairsharePolicy? FairsharePolicy { get; init; }
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
}

/// <summary>AWS <c>FairsharePolicy</c>.</summary>
public sealed record FairsharePolicy
{
    /// <summary>0–604,800 s; 0 means AWS's minimum window of 600 s.</summary>
    public int ShareDecaySeconds { get; init; }
    /// <summary>0–99: share of max vCPUs reserved for share identifiers not yet active.</summary>
    public int ComputeReservation { get; init; }
    public IReadOnlyList<ShareAttributes> ShareDistribution { get; init; } = [];
}

/// <summary>AWS <c>ShareAttributes</c>.</summary>
public sealed record ShareAttributes
{
    /// <summary>≤255 chars; may end with <c>*</c> to match a prefix.</summary>
    public string? ShareIdentifier { get; init; }
    /// <summary>0.0001–999.9999; lower gets more compute. The default is 1.0.</summary>
    public double? WeightFactor { get; init; }
}

/// <summary>AWS <c>UpdateSchedulingPolicy</c> request.</summary>
public sealed record UpdateSchedulingPolicyRequest
{
    public string? Arn { get; init; }
    public FairsharePolicy? FairsharePolicy { get; init; }
}

/// <summary>AWS <c>CreateSchedulingPolicy</c> response.</summary>
public sealed record SchedulingPolicyResponse(string Name, string Arn);

/// <summary>AWS <c>SchedulingPolicyDetail</c>.</summary>
public sealed record SchedulingPolicyDetail
{
    public required string Name { get; init; }
    public required string Arn { get; init; }
    public required FairsharePolicy FairsharePolicy { get; init; }
    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();
}

/// <summary>AWS <c>ListSchedulingPolicies</c> request.</summary>
public sealed record ListSchedulingPoliciesRequest
{
    /// <summary>1–100. The default is 100.</summary>
    public int? MaxResults { get; init; }
    public string? NextToken { get; init; }
}

/// <summary>AWS <c>ListSchedulingPolicies</c> response: policies by name.</summary>
public sealed record ListSchedulingPoliciesResponse(IReadOnlyList<SchedulingPolicyListingDetail> SchedulingPolicies, string? NextToken);

/// <summary>AWS <c>SchedulingPolicyListingDetail</c>.</summary>
public sealed record SchedulingPolicyListingDetail(string Arn);
