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

/// <summary>AWS <c>ContainerProperties</c> (the fields BatchCore uses; the rest are accepted and echoed).</summary>
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
}
