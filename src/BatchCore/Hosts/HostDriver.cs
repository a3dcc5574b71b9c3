namespace BatchCore.Hosts;

/// <summary>
/// Runs attempts on one kind of host (simulated, process, docker, inprocess, slurm).
/// The dispatcher calls <see cref="Launch"/> from its scheduling loop, so implementations must return quickly and do
/// their work asynchronously; they report progress only through the <see cref="IAttemptEventSink"/> they are given.
/// A failure to start (missing executable, missing image) is reported as an <see cref="AttemptExit"/>, never thrown.
/// </summary>
public abstract class HostDriver : IAsyncDisposable
{
    /// <summary>The driver kind as written in specs: <c>simulated</c>, <c>process</c>, <c>docker</c>, ...</summary>
    public abstract string Kind { get; }

    /// <summary>
    /// Starts an attempt. Must not block: returns once the launch is under way. The driver later calls
    /// <see cref="IAttemptEventSink.Started(AttemptToken)"/> (STARTING → RUNNING) and exactly once <see cref="IAttemptEventSink.Exited"/>.
    /// </summary>
    public abstract void Launch(AttemptLaunch launch, IAttemptEventSink sink);

    /// <summary>
    /// Stops a launched attempt: SIGTERM (or the driver's equivalent) to everything it started, SIGKILL after
    /// <paramref name="gracePeriod"/>. The attempt still reports <see cref="IAttemptEventSink.Exited"/> exactly once.
    /// Terminating an attempt that already exited does nothing.
    /// </summary>
    public abstract void Terminate(AttemptToken token, TimeSpan gracePeriod);

    /// <summary>
    /// After an engine crash or restart: takes back an attempt a previous engine launched on this host, found by the
    /// handle the driver reported with <see cref="IAttemptEventSink.Started(AttemptToken, string)"/> (null when the
    /// engine died before that was journaled). Returns true when the driver knows the attempt's fate: it still runs (the
    /// driver reports <see cref="IAttemptEventSink.Started(AttemptToken)"/>, then its exit) or it ended while the engine
    /// was down with a recorded exit (the driver reports that exit). Either way it reports
    /// <see cref="IAttemptEventSink.Exited"/> exactly once under <see cref="AttemptReattach.Token"/>, and
    /// <see cref="Terminate"/> works on that token. Returns false when it cannot: the driver has then made sure nothing
    /// of the attempt is left running, and the engine ends the attempt as a host failure. May block briefly (it runs
    /// once per interrupted attempt while the engine recovers). The default does not support re-attaching.
    /// </summary>
    public virtual bool TryReattach(AttemptReattach reattach, IAttemptEventSink sink) => false;

    /// <summary>
    /// The engine's start failed after this driver took attempts back with <see cref="TryReattach"/>: stop following them
    /// without stopping them or removing anything of theirs, and report nothing more for them, so that they run on as the
    /// crashed engine left them and the next start takes them back. Completes once nothing of the driver follows them;
    /// <see cref="DisposeAsync"/> comes next. The default does nothing (a driver that does not re-attach has nothing to let go).
    /// </summary>
    public virtual ValueTask ReleaseReattachedAsync() => ValueTask.CompletedTask;

    /// <summary>Stops every attempt still running and releases the driver's resources.</summary>
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}

/// <summary>Identifies one attempt of one job on one host; handed back in every event.</summary>
/// <param name="Value">An engine-assigned number, unique for the engine's lifetime.</param>
public readonly record struct AttemptToken(long Value);

/// <summary>Receives attempt progress from a driver. Implementations are thread-safe and never block.</summary>
public interface IAttemptEventSink
{
    /// <summary>The container or process is up (AWS: STARTING → RUNNING).</summary>
    void Started(AttemptToken token);

    /// <summary>
    /// The container or process is up, and <paramref name="reattachHandle"/> is what the driver needs to find it again
    /// after an engine restart (<see cref="HostDriver.TryReattach"/>): opaque to the engine, which journals it.
    /// </summary>
    void Started(AttemptToken token, string reattachHandle) => Started(token);

    /// <summary>The attempt ended. Called exactly once per launched attempt.</summary>
    void Exited(AttemptToken token, AttemptExit exit);

    /// <summary>
    /// The attempt started <paramref name="startedAgoMs"/> milliseconds before this call (the in-process driver reports
    /// once a handler's synchronous part returned, with how long that part ran).
    /// </summary>
    internal void StartedEarlier(AttemptToken token, long startedAgoMs) => Started(token);

    /// <summary>
    /// The attempt started <paramref name="startedAgoMs"/> milliseconds ago and has already ended: <see cref="Started(AttemptToken)"/>
    /// and <see cref="Exited"/> in one report (an in-process handler that completed synchronously). The engine still applies
    /// both transitions, STARTING → RUNNING → the exit's state, with the start time this gives.
    /// </summary>
    internal void Ran(AttemptToken token, AttemptExit exit, long startedAgoMs)
    {
        StartedEarlier(token, startedAgoMs);
        Exited(token, exit);
    }
}

/// <summary>How an attempt ended, as AWS reports it in <c>attempts[].container</c>.</summary>
/// <param name="ExitCode">The container's exit code, or <c>null</c> when it never ran.</param>
/// <param name="Reason">AWS's <c>container.reason</c>, e.g. <c>OutOfMemoryError: Container killed due to memory usage</c>.</param>
/// <param name="HostFailure">True when the host, not the job, ended the attempt (lost host, launch failure).</param>
public readonly record struct AttemptExit(int? ExitCode, string? Reason = null, bool HostFailure = false)
{
    /// <summary>AWS's reason text for a container killed by its memory limit.</summary>
    public const string OutOfMemoryReason = "OutOfMemoryError: Container killed due to memory usage";
}

/// <summary>
/// Everything a driver needs to run one attempt. Immutable. The engine builds <see cref="JobId"/> (array children),
/// <see cref="LogStreamName"/> and <see cref="Environment"/> on first read, so a driver (or an in-process handler) that
/// never reads them costs no strings and no dictionary per attempt.
/// </summary>
public sealed record AttemptLaunch
{
    private const long NoTicks = long.MinValue;
    private const int NoIndex = int.MinValue;

    private string? _jobId;
    private string? _logStreamName;
    private IReadOnlyDictionary<string, string>? _environment;
    // Optional values without Nullable's padding (the engine builds one launch per attempt).
    private long _timeoutTicks = NoTicks;
    private long _simulatedRunTicks = NoTicks;
    private int _arrayIndex = NoIndex;

    public required AttemptToken Token { get; init; }

    /// <summary>The job's id (array children: <c>parentId:index</c>).</summary>
    public string JobId
    {
        get => _jobId ??= LazyParentId is { } parent
            ? Jobs.ArrayChildren.ChildId(parent, _arrayIndex)
            : throw new InvalidOperationException("AttemptLaunch.JobId was not set");
        init => _jobId = value;
    }
    /// <summary>1-based attempt number (<c>AWS_BATCH_JOB_ATTEMPT</c>).</summary>
    public required int Attempt { get; init; }
    public required string JobDefinitionName { get; init; }
    /// <summary><c>&lt;jobDefinitionName&gt;/default/&lt;id&gt;</c>, as AWS names log streams.</summary>
    public string LogStreamName
    {
        get => _logStreamName ??= Jobs.AttemptRecord.LogStreamName(JobDefinitionName, JobId, Attempt);
        init => _logStreamName = value;
    }
    /// <summary>The container image, for image jobs; null for process jobs.</summary>
    public string? Image { get; init; }
    /// <summary>The command in exec form, <c>Ref::</c> parameters already substituted token by token.</summary>
    public required IReadOnlyList<string> Command { get; init; }
    /// <summary>The final environment: definition, overrides and the <c>AWS_BATCH_*</c> variables.</summary>
    public IReadOnlyDictionary<string, string> Environment
    {
        get => _environment ??= LazyCeName is not null ? BuildEnvironment() : throw new InvalidOperationException("AttemptLaunch.Environment was not set");
        init => _environment = value;
    }

    // What the engine builds JobId and Environment from when first read: immutable facts, no reference to the engine's
    // mutable job (a driver thread may build them while the loop goes on).

    /// <summary>Array children: the parent's id (<see cref="JobId"/> is built from it).</summary>
    internal string? LazyParentId { get; init; }
    /// <summary>Array children: the parent's size.</summary>
    internal int LazyArraySize { get; init; }
    /// <summary>Set by the engine: the compute environment's name (<c>AWS_BATCH_CE_NAME</c>); <see cref="Environment"/> is built when read.</summary>
    internal string? LazyCeName { get; init; }
    /// <summary>The definition's environment with the overrides.</summary>
    internal IReadOnlyList<Model.KeyValuePair> LazySpecEnvironment { get; init; } = [];
    /// <summary>Set by the engine: <see cref="BatchEngineOptions.SecretResolver"/>, for <see cref="ResolveSecretsAsync(CancellationToken)"/>.</summary>
    internal Func<Model.Secret, CancellationToken, ValueTask<string>>? SecretResolver { get; init; }

    /// <summary>AWS's reason prefix when an attempt's secrets cannot be resolved (the task never starts).</summary>
    public const string SecretsErrorPrefix = "ResourceInitializationError: unable to pull secrets: ";

    /// <summary>
    /// Resolves <see cref="Container"/>'s <c>secrets</c> with the engine's <see cref="BatchEngineOptions.SecretResolver"/>
    /// and adds them to <see cref="Environment"/> (AWS injects secrets as environment variables). Drivers that run a
    /// command or a container call it before they start the attempt. Returns null when done (or when there is nothing
    /// to resolve), else the reason to end the attempt with, unstarted (<see cref="SecretsErrorPrefix"/>…).
    /// </summary>
    public async ValueTask<string?> ResolveSecretsAsync(CancellationToken ct = default)
    {
        if (Container?.Secrets is not { Count: > 0 } secrets)
        {
            return null;
        }

        var (env, error) = await ResolveSecretsAsync(secrets, SecretResolver, Environment, ct).ConfigureAwait(false);
        _environment = env ?? _environment;
        return error;
    }

    /// <summary>
    /// <see cref="ResolveSecretsAsync(CancellationToken)"/> for drivers whose <c>Terminate</c> cancels
    /// <paramref name="ct"/> while the attempt has not started: a terminate during resolution (a resolver waiting on a
    /// vault) ends the attempt unstarted with <paramref name="terminatedReason"/> instead of waiting for the resolver.
    /// </summary>
    internal async ValueTask<string?> ResolveSecretsUnlessTerminatedAsync(string terminatedReason, CancellationToken ct)
    {
        try
        {
            return await ResolveSecretsAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return terminatedReason;
        }
    }

    /// <summary>
    /// <paramref name="environment"/> plus <paramref name="secrets"/> resolved by <paramref name="resolver"/>, or the
    /// reason they cannot be (<see cref="SecretsErrorPrefix"/>…): the one place drivers' secrets are resolved.
    /// </summary>
    internal static async ValueTask<(Dictionary<string, string>? Environment, string? Error)> ResolveSecretsAsync(IReadOnlyList<Model.Secret> secrets,
        Func<Model.Secret, CancellationToken, ValueTask<string>>? resolver, IReadOnlyDictionary<string, string> environment, CancellationToken ct)
    {
        var env = new Dictionary<string, string>(environment, StringComparer.Ordinal);
        foreach (var secret in secrets)
        {
            if (resolver is null)
            {
                return (null, SecretsErrorPrefix + $"{secret.Name} ({secret.ValueFrom}): no secret resolver is configured (BatchEngineOptions.SecretResolver)");
            }

            try
            {
                // WaitAsync: a resolver that ignores the token still lets a terminated attempt end.
                env[secret.Name!] = await resolver(secret, ct).AsTask().WaitAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                return (null, SecretsErrorPrefix + $"{secret.Name} ({secret.ValueFrom}): {e.Message}");
            }
        }

        return (env, null);
    }

    /// <summary>Requested vCPUs (VCPU resource requirement), possibly fractional.</summary>
    public required double Vcpus { get; init; }
    /// <summary>Requested memory in MiB (MEMORY resource requirement): a hard limit.</summary>
    public required int MemoryMiB { get; init; }
    public int Gpus { get; init; }
    /// <summary>The name of the host the attempt was placed on.</summary>
    public required string HostName { get; init; }
    /// <summary>Where the attempt may keep files; the driver creates it. Null: the driver picks a temporary directory.</summary>
    public string? WorkingDirectory { get; init; }
    /// <summary>Array children: the 0-based index; otherwise null.</summary>
    public int? ArrayIndex
    {
        get => _arrayIndex == NoIndex ? null : _arrayIndex;
        init => _arrayIndex = value ?? NoIndex;
    }
    /// <summary>The job's parameters (definition defaults merged with the submitted ones).</summary>
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = NoParameters;

    private static readonly IReadOnlyDictionary<string, string> NoParameters = System.Collections.ObjectModel.ReadOnlyDictionary<string, string>.Empty;
    /// <summary>
    /// The job definition's <c>containerProperties</c> (volumes, mount points, ulimits, user, read-only root, privileged,
    /// linux parameters), for drivers that can apply them (docker); null when the engine has none to give.
    /// </summary>
    public Model.ContainerProperties? Container { get; init; }
    /// <summary>
    /// With <c>propagateTags</c>: the job definition's and the job's tags (the job's win), which AWS copies to the ECS task;
    /// the docker driver sets them as container labels. Null otherwise.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
    /// <summary>
    /// The attempt's trace activity (<c>batchcore.attempt</c>, linked to the submitter's) when the engine traces it, else
    /// null: a driver may parent its own spans to it.
    /// </summary>
    public System.Diagnostics.Activity? Activity { get; init; }
    /// <summary>In-process jobs: the handler name from the definition's <c>extensions.handler</c>.</summary>
    public string? Handler { get; init; }
    /// <summary>
    /// The attempt's timeout (<c>timeout.attemptDurationSeconds</c>), or null. The engine enforces it itself; drivers
    /// of systems with their own time limit (Slurm's <c>--time</c>) pass it on as a backstop.
    /// </summary>
    public TimeSpan? Timeout
    {
        get => _timeoutTicks == NoTicks ? null : new TimeSpan(_timeoutTicks);
        init => _timeoutTicks = value?.Ticks ?? NoTicks;
    }
    /// <summary>The job's name.</summary>
    public string JobName { get; init; } = "";
    /// <summary>The job queue's name.</summary>
    public string JobQueueName { get; init; } = "";
    /// <summary>
    /// True when the engine journals its state: a driver that can should run the attempt so that it survives an engine
    /// crash and report a re-attach handle with <see cref="IAttemptEventSink.Started(AttemptToken, string)"/>.
    /// </summary>
    public bool Reattachable { get; init; }
    /// <summary>
    /// The identity of the journaling engine's state directory (the same across its restarts, different for every other
    /// engine), or null when the engine does not journal. A driver that leaves something on the machine to find a
    /// reattachable attempt by its job id and attempt number (the process driver's run directories) scopes it by this, so
    /// that two engines whose jobs share an id never take each other's attempts for their own leftovers.
    /// </summary>
    public string? EngineId { get; init; }
    /// <summary>Simulated drivers only: how long the attempt runs and how it exits.</summary>
    public TimeSpan? SimulatedRunTime
    {
        get => _simulatedRunTicks == NoTicks ? null : new TimeSpan(_simulatedRunTicks);
        init => _simulatedRunTicks = value?.Ticks ?? NoTicks;
    }
    /// <summary>Simulated drivers only: the exit code the attempt ends with.</summary>
    public int SimulatedExitCode { get; init; }

    /// <summary>The definition's environment plus overrides plus AWS's injected variables.</summary>
    private Dictionary<string, string> BuildEnvironment() =>
        BuildEnvironment(LazySpecEnvironment, JobId, Attempt, LazyCeName!, JobQueueName, LazyParentId is null ? null : _arrayIndex, LazyArraySize);

    /// <summary>An attempt's environment: <paramref name="spec"/> (the definition's plus the overrides) and AWS's variables.</summary>
    internal static Dictionary<string, string> BuildEnvironment(IReadOnlyList<Model.KeyValuePair> spec, string jobId, int attempt, string ceName,
        string queueName, int? arrayIndex, int arraySize)
    {
        var env = new Dictionary<string, string>(spec.Count + 6, StringComparer.Ordinal);
        foreach (var kv in spec)
        {
            env[kv.Name!] = kv.Value ?? "";
        }

        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        env["AWS_BATCH_JOB_ID"] = jobId;
        env["AWS_BATCH_JOB_ATTEMPT"] = attempt.ToString(invariant);
        env["AWS_BATCH_CE_NAME"] = ceName;
        env["AWS_BATCH_JQ_NAME"] = queueName;
        if (arrayIndex is { } index)
        {
            env["AWS_BATCH_JOB_ARRAY_INDEX"] = index.ToString(invariant);
            env["AWS_BATCH_JOB_ARRAY_SIZE"] = arraySize.ToString(invariant);
        }

        return env;
    }
}

/// <summary>An attempt of a previous engine to take back (<see cref="HostDriver.TryReattach"/>). Immutable.</summary>
public sealed record AttemptReattach
{
    /// <summary>The token this engine gives the attempt: every event and <see cref="HostDriver.Terminate"/> use it.</summary>
    public required AttemptToken Token { get; init; }
    public required string JobId { get; init; }
    /// <summary>1-based attempt number.</summary>
    public required int Attempt { get; init; }
    /// <summary>Where the attempt's output goes, as at launch.</summary>
    public required string LogStreamName { get; init; }
    /// <summary>The name of the host the attempt runs on.</summary>
    public required string HostName { get; init; }
    /// <summary>The handle the driver reported when the attempt started; null when the engine died before journaling it.</summary>
    public string? Handle { get; init; }
    /// <summary>The engine's identity, as in the attempt's launch (<see cref="AttemptLaunch.EngineId"/>).</summary>
    public string? EngineId { get; init; }
}

/// <summary>Cancelling an attempt's token sources from a driver's Terminate.</summary>
internal static class AttemptCancellation
{
    /// <summary>
    /// Requests cancellation with the callbacks run off the calling thread (they are user code, and Terminate runs on the
    /// engine's loop); a source the attempt already disposed (it ended meanwhile) is left alone.
    /// </summary>
    public static void CancelOffThread(CancellationTokenSource source)
    {
        try
        {
            _ = source.CancelAsync();
        }
        catch (ObjectDisposedException)
        {
            // the attempt ended meanwhile
        }
    }
}
