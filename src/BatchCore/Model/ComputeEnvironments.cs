namespace BatchCore.Model;

/// <summary>AWS <c>CreateComputeEnvironment</c> request, plus BatchCore's host list and provider (extensions).</summary>
public sealed record CreateComputeEnvironmentRequest
{
    public string? ComputeEnvironmentName { get; init; }
    /// <summary><see cref="CEType"/>: MANAGED or UNMANAGED.</summary>
    public string? Type { get; init; }
    /// <summary><see cref="ResourceState"/>; AWS requires ENABLED at creation. The default is ENABLED.</summary>
    public string? State { get; init; }
    public int? UnmanagedvCpus { get; init; }
    public ComputeResource? ComputeResources { get; init; }
    public string? ServiceRole { get; init; }
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
    /// <summary>BatchCore extension: the hosts of an UNMANAGED compute environment.</summary>
    public IReadOnlyList<HostSpec>? Hosts { get; init; }
    /// <summary>
    /// BatchCore extension: who provides a MANAGED CE's hosts (<c>simulated</c> or <c>local</c>; the default is
    /// <c>simulated</c>), or an UNMANAGED CE's hosts (a provider registered in <see cref="BatchEngineOptions.HostProviders"/>,
    /// e.g. <c>slurm</c>; the default is the <see cref="Hosts"/> list).
    /// </summary>
    public string? Provider { get; init; }
    /// <summary>BatchCore extension: the settings of an UNMANAGED CE's host provider (e.g. Slurm's <c>slurmConf</c>, <c>partition</c>).</summary>
    public IReadOnlyDictionary<string, string>? ProviderSettings { get; init; }
}

/// <summary>BatchCore extension: one host of an UNMANAGED compute environment.</summary>
public sealed record HostSpec
{
    public string? HostName { get; init; }
    /// <summary>The host driver: <c>simulated</c>, <c>process</c>, <c>docker</c>, <c>inprocess</c>. The default is <c>simulated</c>.</summary>
    public string? Driver { get; init; }
    /// <summary>Driver endpoint, e.g. <c>unix:///var/run/docker.sock</c>.</summary>
    public string? Endpoint { get; init; }
    public double Vcpus { get; init; }
    public int MemoryMiB { get; init; }
    public int Gpus { get; init; }
    /// <summary><c>x86_64</c> (default) or <c>arm64</c>.</summary>
    public string? Architecture { get; init; }
    /// <summary>Allow plain TCP to a non-loopback Docker endpoint.</summary>
    public bool AllowInsecureRemote { get; init; }
}

/// <summary>AWS <c>ComputeResource</c>.</summary>
public sealed record ComputeResource
{
    /// <summary><see cref="CRType"/>.</summary>
    public string? Type { get; init; }
    /// <summary><see cref="CRAllocationStrategy"/>. The default is BEST_FIT.</summary>
    public string? AllocationStrategy { get; init; }
    public int? MinvCpus { get; init; }
    public int? MaxvCpus { get; init; }
    public int? DesiredvCpus { get; init; }
    public IReadOnlyList<string>? InstanceTypes { get; init; }
    public string? ImageId { get; init; }
    public IReadOnlyList<string>? Subnets { get; init; }
    public IReadOnlyList<string>? SecurityGroupIds { get; init; }
    public string? Ec2KeyPair { get; init; }
    public string? InstanceRole { get; init; }
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
    public string? PlacementGroup { get; init; }
    public int? BidPercentage { get; init; }
    public string? SpotIamFleetRole { get; init; }
    public LaunchTemplateSpecification? LaunchTemplate { get; init; }
    public IReadOnlyList<Ec2Configuration>? Ec2Configuration { get; init; }
    public ComputeScalingPolicy? ScalingPolicy { get; init; }
}

/// <summary>AWS <c>LaunchTemplateSpecification</c>.</summary>
public sealed record LaunchTemplateSpecification
{
    public string? LaunchTemplateId { get; init; }
    public string? LaunchTemplateName { get; init; }
    public string? Version { get; init; }
}

/// <summary>AWS <c>Ec2Configuration</c>.</summary>
public sealed record Ec2Configuration
{
    public string? ImageType { get; init; }
    public string? ImageIdOverride { get; init; }
}

/// <summary>AWS <c>scalingPolicy</c>.</summary>
public sealed record ComputeScalingPolicy
{
    /// <summary>20–10,080 minutes an idle instance is kept before it is terminated.</summary>
    public int? MinScaleDownDelayMinutes { get; init; }
}

/// <summary>AWS <c>UpdateComputeEnvironment</c> request.</summary>
public sealed record UpdateComputeEnvironmentRequest
{
    /// <summary>Name or ARN.</summary>
    public string? ComputeEnvironment { get; init; }
    public string? State { get; init; }
    public int? UnmanagedvCpus { get; init; }
    public ComputeResourceUpdate? ComputeResources { get; init; }
    public string? ServiceRole { get; init; }
    /// <summary>What an infrastructure update does to the jobs running on the instances it replaces.</summary>
    public UpdatePolicy? UpdatePolicy { get; init; }
}

/// <summary>AWS <c>UpdatePolicy</c>.</summary>
public sealed record UpdatePolicy
{
    /// <summary>Terminate the jobs on the replaced instances at once. The default is false.</summary>
    public bool? TerminateJobsOnUpdate { get; init; }
    /// <summary>How long jobs on the replaced instances may still run, 1–7,200 minutes. The default is 30.</summary>
    public long? JobExecutionTimeoutMinutes { get; init; }
}

/// <summary>AWS <c>ComputeResourceUpdate</c>: scaling fields and infrastructure fields.</summary>
public sealed record ComputeResourceUpdate
{
    public int? MinvCpus { get; init; }
    public int? MaxvCpus { get; init; }
    public int? DesiredvCpus { get; init; }
    public string? AllocationStrategy { get; init; }
    public IReadOnlyList<string>? InstanceTypes { get; init; }
    public IReadOnlyList<string>? Subnets { get; init; }
    public IReadOnlyList<string>? SecurityGroupIds { get; init; }
    public int? BidPercentage { get; init; }
    public string? ImageId { get; init; }
    public string? InstanceRole { get; init; }
    public string? Ec2KeyPair { get; init; }
    public string? Type { get; init; }
    public ComputeScalingPolicy? ScalingPolicy { get; init; }
    /// <summary>EC2 tags of the instances (an infrastructure field).</summary>
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
    public string? PlacementGroup { get; init; }
    public LaunchTemplateSpecification? LaunchTemplate { get; init; }
    public IReadOnlyList<Ec2Configuration>? Ec2Configuration { get; init; }
    /// <summary>Replace the instances with ones of the latest image (an infrastructure update).</summary>
    public bool? UpdateToLatestImageVersion { get; init; }
}

/// <summary>AWS <c>CreateComputeEnvironment</c> / <c>UpdateComputeEnvironment</c> response.</summary>
public sealed record ComputeEnvironmentResponse(string ComputeEnvironmentName, string ComputeEnvironmentArn);

/// <summary>AWS <c>ComputeEnvironmentDetail</c>.</summary>
public sealed record ComputeEnvironmentDetail
{
    public required string ComputeEnvironmentName { get; init; }
    public required string ComputeEnvironmentArn { get; init; }
    public required string Type { get; init; }
    public required string State { get; init; }
    public required string Status { get; init; }
    public string? StatusReason { get; init; }
    public ComputeResource? ComputeResources { get; init; }
    public int? UnmanagedvCpus { get; init; }
    public string? ServiceRole { get; init; }
    public string? EcsClusterArn { get; init; }
    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<HostSpec>? Hosts { get; init; }
    public string? Provider { get; init; }
    public IReadOnlyDictionary<string, string>? ProviderSettings { get; init; }
}

/// <summary>AWS <c>DescribeComputeEnvironments</c> request.</summary>
public sealed record DescribeComputeEnvironmentsRequest
{
    /// <summary>≤100 names or ARNs; none: every compute environment.</summary>
    public IReadOnlyList<string>? ComputeEnvironments { get; init; }
    /// <summary>1–100 per page; without it, up to 100 and a <c>nextToken</c> when there are more (AWS).</summary>
    public int? MaxResults { get; init; }
    /// <summary>The <c>nextToken</c> of the previous page.</summary>
    public string? NextToken { get; init; }
}

/// <summary>
/// AWS <c>DescribeComputeEnvironments</c> response: one page, oldest environment first, and the token of the next page
/// (null on the last).
/// </summary>
public sealed record DescribeComputeEnvironmentsResponse(IReadOnlyList<ComputeEnvironmentDetail> ComputeEnvironments, string? NextToken);
