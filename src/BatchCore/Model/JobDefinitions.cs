namespace BatchCore.Model;

/// <summary>AWS <c>RegisterJobDefinition</c> request.</summary>
public sealed record RegisterJobDefinitionRequest
{
    public string? JobDefinitionName { get; init; }
    /// <summary><see cref="JobDefinitionType"/>: <c>container</c> (multinode is not supported yet).</summary>
    public string? Type { get; init; }
    public IReadOnlyDictionary<string, string>? Parameters { get; init; }
    /// <summary>0–9999; only used by fair-share queues, higher first.</summary>
    public int? SchedulingPriority { get; init; }
    public ContainerProperties? ContainerProperties { get; init; }
    /// <summary>Multi-node parallel properties: rejected with a clear error (not supported yet).</summary>
    public object? NodeProperties { get; init; }
    /// <summary>AWS's task-shaped properties: rejected with a clear error (describe the container in <see cref="ContainerProperties"/>).</summary>
    public object? EcsProperties { get; init; }
    /// <summary>AWS's EKS pod properties: rejected with a clear error (BatchCore runs no Kubernetes pods).</summary>
    public object? EksProperties { get; init; }
    public RetryStrategy? RetryStrategy { get; init; }
    public bool? PropagateTags { get; init; }
    public JobTimeout? Timeout { get; init; }
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
    public IReadOnlyList<string>? PlatformCapabilities { get; init; }
    public ConsumableResourceProperties? ConsumableResourceProperties { get; init; }
    /// <summary>BatchCore extensions: run a .NET handler in-process instead of a command or image.</summary>
    public JobDefinitionExtensions? Extensions { get; init; }
}

/// <summary>BatchCore extensions to a job definition.</summary>
public sealed record JobDefinitionExtensions
{
    /// <summary>
    /// The name of an in-process .NET job handler (run by the <c>inprocess</c> host driver) instead of
    /// <c>containerProperties.command</c> or <c>image</c>.
    /// </summary>
    public string? Handler { get; init; }
}

/// <summary>
/// AWS <c>ContainerProperties</c>. Every field is validated by AWS's rules and echoed by DescribeJobDefinitions; which
/// ones a host driver applies is in <c>docs/architecture.md</c> ("Container fields").
/// </summary>
public sealed record ContainerProperties
{
    public string? Image { get; init; }
    public IReadOnlyList<string>? Command { get; init; }
    public string? JobRoleArn { get; init; }
    public string? ExecutionRoleArn { get; init; }
    public IReadOnlyList<KeyValuePair>? Environment { get; init; }
    public IReadOnlyList<ResourceRequirement>? ResourceRequirements { get; init; }
    public LinuxParameters? LinuxParameters { get; init; }
    public bool? Privileged { get; init; }
    public bool? ReadonlyRootFilesystem { get; init; }
    public string? User { get; init; }
    /// <summary>Deprecated by AWS in favour of <see cref="ResourceRequirements"/>; still honoured.</summary>
    public int? Vcpus { get; init; }
    /// <summary>Deprecated by AWS in favour of <see cref="ResourceRequirements"/>; still honoured (MiB).</summary>
    public int? Memory { get; init; }
    public RuntimePlatform? RuntimePlatform { get; init; }
    public FargatePlatformConfiguration? FargatePlatformConfiguration { get; init; }
    public string? InstanceType { get; init; }
    public IReadOnlyList<Volume>? Volumes { get; init; }
    public IReadOnlyList<MountPoint>? MountPoints { get; init; }
    /// <summary>Not on Fargate.</summary>
    public IReadOnlyList<Ulimit>? Ulimits { get; init; }
    public IReadOnlyList<Secret>? Secrets { get; init; }
    public LogConfiguration? LogConfiguration { get; init; }
    /// <summary>Fargate only.</summary>
    public NetworkConfiguration? NetworkConfiguration { get; init; }
    /// <summary>Fargate only: 21–200 GiB.</summary>
    public EphemeralStorage? EphemeralStorage { get; init; }
    public bool? EnableExecuteCommand { get; init; }
    public RepositoryCredentials? RepositoryCredentials { get; init; }
}

/// <summary>AWS <c>Volume</c>: a host path (<c>host.sourcePath</c>) or an EFS file system, named for <c>mountPoints</c>.</summary>
public sealed record Volume
{
    public string? Name { get; init; }
    public VolumeHost? Host { get; init; }
    public EfsVolumeConfiguration? EfsVolumeConfiguration { get; init; }
}

/// <summary>AWS <c>Host</c> (a volume's <c>host</c>): the path on the host to mount.</summary>
public sealed record VolumeHost
{
    public string? SourcePath { get; init; }
}

/// <summary>AWS <c>EFSVolumeConfiguration</c>.</summary>
public sealed record EfsVolumeConfiguration
{
    public string? FileSystemId { get; init; }
    public string? RootDirectory { get; init; }
    /// <summary>ENABLED or DISABLED.</summary>
    public string? TransitEncryption { get; init; }
    public int? TransitEncryptionPort { get; init; }
    public EfsAuthorizationConfig? AuthorizationConfig { get; init; }
}

/// <summary>AWS <c>EFSAuthorizationConfig</c>.</summary>
public sealed record EfsAuthorizationConfig
{
    public string? AccessPointId { get; init; }
    /// <summary>ENABLED or DISABLED.</summary>
    public string? Iam { get; init; }
}

/// <summary>AWS <c>MountPoint</c>: where a named volume appears in the container.</summary>
public sealed record MountPoint
{
    public string? ContainerPath { get; init; }
    public bool? ReadOnly { get; init; }
    public string? SourceVolume { get; init; }
}

/// <summary>AWS <c>Ulimit</c>.</summary>
public sealed record Ulimit
{
    public string? Name { get; init; }
    public int? SoftLimit { get; init; }
    public int? HardLimit { get; init; }
}

/// <summary>AWS <c>Secret</c>: an environment variable read from Secrets Manager or SSM (<c>valueFrom</c>).</summary>
public sealed record Secret
{
    public string? Name { get; init; }
    public string? ValueFrom { get; init; }
}

/// <summary>AWS <c>LogConfiguration</c>.</summary>
public sealed record LogConfiguration
{
    public string? LogDriver { get; init; }
    public IReadOnlyDictionary<string, string>? Options { get; init; }
    public IReadOnlyList<Secret>? SecretOptions { get; init; }
}

/// <summary>AWS <c>NetworkConfiguration</c> (Fargate).</summary>
public sealed record NetworkConfiguration
{
    /// <summary>ENABLED or DISABLED.</summary>
    public string? AssignPublicIp { get; init; }
}

/// <summary>AWS <c>EphemeralStorage</c> (Fargate).</summary>
public sealed record EphemeralStorage
{
    public int? SizeInGiB { get; init; }
}

/// <summary>AWS <c>RepositoryCredentials</c>.</summary>
public sealed record RepositoryCredentials
{
    public string? CredentialsParameter { get; init; }
}

/// <summary>AWS <c>KeyValuePair</c> (environment variable).</summary>
public sealed record KeyValuePair
{
    public KeyValuePair() { }
    public KeyValuePair(string name, string value) { Name = name; Value = value; }
    public string? Name { get; init; }
    public string? Value { get; init; }
}

/// <summary>AWS <c>ResourceRequirement</c>: a value as a string, e.g. VCPU "0.5", MEMORY "2048", GPU "1".</summary>
public sealed record ResourceRequirement
{
    public ResourceRequirement() { }
    public ResourceRequirement(string type, string value) { Type = type; Value = value; }
    public string? Type { get; init; }
    public string? Value { get; init; }
}

/// <summary>AWS <c>LinuxParameters</c>.</summary>
public sealed record LinuxParameters
{
    public IReadOnlyList<Device>? Devices { get; init; }
    public bool? InitProcessEnabled { get; init; }
    public int? SharedMemorySize { get; init; }
    public IReadOnlyList<Tmpfs>? Tmpfs { get; init; }
    public int? MaxSwap { get; init; }
    public int? Swappiness { get; init; }
}

/// <summary>AWS <c>Device</c>.</summary>
public sealed record Device
{
    public string? HostPath { get; init; }
    public string? ContainerPath { get; init; }
    public IReadOnlyList<string>? Permissions { get; init; }
}

/// <summary>AWS <c>Tmpfs</c>.</summary>
public sealed record Tmpfs
{
    public string? ContainerPath { get; init; }
    public int Size { get; init; }
    public IReadOnlyList<string>? MountOptions { get; init; }
}

/// <summary>AWS <c>RuntimePlatform</c>.</summary>
public sealed record RuntimePlatform
{
    public string? OperatingSystemFamily { get; init; }
    /// <summary><c>X86_64</c> or <c>ARM64</c>.</summary>
    public string? CpuArchitecture { get; init; }
}

/// <summary>AWS <c>FargatePlatformConfiguration</c>.</summary>
public sealed record FargatePlatformConfiguration
{
    public string? PlatformVersion { get; init; }
}

/// <summary>AWS <c>RetryStrategy</c>.</summary>
public sealed record RetryStrategy
{
    /// <summary>1–10: how many times the job may move to RUNNABLE.</summary>
    public int? Attempts { get; init; }
    /// <summary>≤5 entries, evaluated in order; the first match decides; no match retries.</summary>
    public IReadOnlyList<EvaluateOnExit>? EvaluateOnExit { get; init; }
}

/// <summary>AWS <c>EvaluateOnExit</c>.</summary>
public sealed record EvaluateOnExit
{
    public string? OnStatusReason { get; init; }
    public string? OnReason { get; init; }
    public string? OnExitCode { get; init; }
    /// <summary>RETRY or EXIT (case-insensitive).</summary>
    public string? Action { get; init; }
}

/// <summary>AWS <c>JobTimeout</c>.</summary>
public sealed record JobTimeout
{
    /// <summary>≥60 s (≥1 s with the engine's AllowShortTimeouts), measured from the attempt's startedAt.</summary>
    public int? AttemptDurationSeconds { get; init; }
}

/// <summary>AWS <c>RegisterJobDefinition</c> response.</summary>
public sealed record RegisterJobDefinitionResponse(string JobDefinitionName, string JobDefinitionArn, int Revision);

/// <summary>AWS <c>JobDefinition</c>: one revision, immutable.</summary>
public sealed record JobDefinition
{
    public required string JobDefinitionName { get; init; }
    public required string JobDefinitionArn { get; init; }
    public required int Revision { get; init; }
    /// <summary>ACTIVE or INACTIVE.</summary>
    public required string Status { get; init; }
    public required string Type { get; init; }
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();
    public int? SchedulingPriority { get; init; }
    public RetryStrategy? RetryStrategy { get; init; }
    public ContainerProperties? ContainerProperties { get; init; }
    public JobTimeout? Timeout { get; init; }
    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();
    public bool? PropagateTags { get; init; }
    public IReadOnlyList<string> PlatformCapabilities { get; init; } = [PlatformCapability.EC2];
    public ConsumableResourceProperties? ConsumableResourceProperties { get; init; }
    public JobDefinitionExtensions? Extensions { get; init; }
}

/// <summary>AWS <c>DescribeJobDefinitions</c> request.</summary>
public sealed record DescribeJobDefinitionsRequest
{
    /// <summary>≤100 names, <c>name:revision</c> or ARNs.</summary>
    public IReadOnlyList<string>? JobDefinitions { get; init; }
    public string? JobDefinitionName { get; init; }
    /// <summary>ACTIVE or INACTIVE.</summary>
    public string? Status { get; init; }
    /// <summary>1–100 per page; without it, up to 100 and a <c>nextToken</c> when there are more (AWS).</summary>
    public int? MaxResults { get; init; }
    /// <summary>The <c>nextToken</c> of the previous page.</summary>
    public string? NextToken { get; init; }
}

/// <summary>
/// AWS <c>DescribeJobDefinitions</c> response: one page in name (ordinal) then revision order, and the token of the next
/// page (null on the last).
/// </summary>
public sealed record DescribeJobDefinitionsResponse(IReadOnlyList<JobDefinition> JobDefinitions, string? NextToken);
