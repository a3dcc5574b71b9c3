using BatchCore.Model;
using BatchCore.Placement;

namespace BatchCore.Jobs;

/// <summary>
/// What a job runs and needs, resolved once at submission from the definition and the overrides. Shared by all
/// children of an array job (they differ only by index), which keeps memory per queued job small.
/// </summary>
internal sealed class JobSpec
{
    public required JobDefinition Definition { get; init; }

    /// <summary>
    /// Built from a request that overrides nothing: the definition's shared spec, journaled as the job's fields alone
    /// (stays so when the definition is later deregistered or tagged, which replaces its record).
    /// </summary>
    public bool Plain { get; set; }
    /// <summary>The definition names an in-process handler (<c>extensions.handler</c>): the job runs on <c>inprocess</c> hosts only.</summary>
    public bool IsHandlerJob => _kind != 0 ? _kind == HandlerKind : FindKind();

    // 0: not looked up yet (placement asks per CE tried: the definition's extensions are read once).
    private byte _kind;
    private const byte HandlerKind = 2;

    private bool FindKind()
    {
        var handler = Definition.Extensions?.Handler is not null;
        _kind = handler ? HandlerKind : (byte)1;
        return handler;
    }
    public required ResourceVector Request { get; init; }
    public required IReadOnlyList<string> Command { get; init; }
    public required IReadOnlyList<Model.KeyValuePair> Environment { get; init; }
    public string? Image { get; init; }
    public required IReadOnlyDictionary<string, string> Parameters { get; init; }
    public required int MaxAttempts { get; init; }
    public IReadOnlyList<EvaluateOnExit>? EvaluateOnExit { get; init; }
    public RetryStrategy? RetryStrategy { get; init; }
    public int? TimeoutSeconds { get; init; }
    public required bool Fargate { get; init; }
    /// <summary>x86_64, arm64, or null for any.</summary>
    public string? Architecture { get; init; }
    public string? ShareIdentifier { get; init; }
    public int SchedulingPriority { get; init; }
    public required IReadOnlyDictionary<string, string> Tags { get; init; }
    public bool? PropagateTags { get; init; }
    /// <summary>Consumable resources, resolved to engine objects, with quantities.</summary>
    public (Dispatch.ConsumableResourceState Resource, long Quantity)[] Consumables { get; init; } = [];
    public ConsumableResourceProperties? ConsumableResourceProperties { get; init; }
    public required IReadOnlyList<ResourceRequirement> ResourceRequirements { get; init; }
    public double SimulatedRunTimeSeconds { get; init; }
    public int SimulatedExitCode { get; init; }
    public int SimulatedFailingAttempts { get; init; }
    public int? ArrayMaxConcurrency { get; init; }
    public IReadOnlyList<JobDependency> DependsOn { get; init; } = [];
}
