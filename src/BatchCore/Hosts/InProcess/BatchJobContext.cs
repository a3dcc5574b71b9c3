using System.Globalization;

namespace BatchCore.Hosts.InProcess;

/// <summary>
/// What an <see cref="IBatchJobHandler"/> knows about the attempt it runs: AWS's <c>AWS_BATCH_*</c> facts as
/// properties, the job's parameters and environment, and <see cref="Log"/>, a writer into the attempt's log stream.
/// </summary>
/// <remarks>Not derivable outside BatchCore (no public constructor): the in-process driver's attempt is its own context.</remarks>
public class BatchJobContext
{
    // Either a launch (HostDriver.Launch: any caller) or the engine's own facts (InProcessHostDriver.LaunchFromEngine):
    // the job's immutable parts (its top-level job's name, spec and id; the queue's, host's and CE's names) and this
    // attempt's numbers — no AttemptLaunch built per attempt (181 bytes and 25 fields copied for every no-op job).
    private readonly AttemptLaunch? _launch;
    private readonly Jobs.TopJob? _top;
    private readonly Placement.Host? _host;
    private readonly long _token;
    private readonly int _attempt;
    private readonly int _arrayIndex;
    private readonly InProcessHostDriver _driver;
    private Extras? _extras;

    /// <summary>
    /// What an attempt builds only when asked (ids, environment, log writers) or needs only when terminated or waited
    /// for: one object, allocated on first use, so a handler that reads none of it costs 48 bytes less.
    /// </summary>
    private protected sealed class Extras
    {
        public string? JobId;
        public string? LogStreamName;
        public IReadOnlyDictionary<string, string>? Environment;
        public JobLogWriter? Log;
        public JobStreamLogger? Logger;
        public ITimer? GraceTimer;
        /// <summary>When <see cref="GraceTimer"/> fires (the time provider's UTC ticks): a shorter terminate brings it forward.</summary>
        public long GraceDeadlineTicks;
        public TaskCompletionSource? Reported;
        /// <summary>Engine launches of a job with secrets: the engine's resolver.</summary>
        public Func<Model.Secret, CancellationToken, ValueTask<string>>? SecretResolver;
        /// <summary>The secrets are in <see cref="Environment"/>: the handler may start.</summary>
        public bool SecretsResolved;
        /// <summary>Engine launches of a traced job: the attempt's activity.</summary>
        public System.Diagnostics.Activity? Activity;
    }

    /// <summary>The extras, created on first use (from any thread: exactly one is published).</summary>
    private protected Extras More => Volatile.Read(ref _extras) ?? CreateExtras();

    /// <summary>The extras if anything created them, else null.</summary>
    private protected Extras? MoreIfAny => Volatile.Read(ref _extras);

    private Extras CreateExtras()
    {
        var created = new Extras();
        return Interlocked.CompareExchange(ref _extras, created, null) ?? created;
    }

    internal BatchJobContext(AttemptLaunch launch, InProcessHostDriver driver)
    {
        _launch = launch;
        _driver = driver;
        _token = launch.Token.Value;
    }

    /// <param name="top">The job, or the array job of a child: only its immutable facts are read (from any thread).</param>
    /// <param name="arrayIndex">The child's index, or -1.</param>
    /// <param name="host">The host the attempt was placed on.</param>
    /// <param name="token">The attempt's token.</param>
    /// <param name="attempt">The 1-based attempt number.</param>
    /// <param name="driver">The driver running it.</param>
    internal BatchJobContext(Jobs.TopJob top, int arrayIndex, Placement.Host host, long token, int attempt, InProcessHostDriver driver)
    {
        _top = top;
        _arrayIndex = arrayIndex;
        _host = host;
        _token = token;
        _attempt = attempt;
        _driver = driver;
    }

    /// <summary>The job's id (<c>AWS_BATCH_JOB_ID</c>; array children: <c>parentId:index</c>).</summary>
    public string JobId => _launch is { } l ? l.JobId
        : _arrayIndex < 0 ? _top!.Id : More.JobId ??= Jobs.ArrayChildren.ChildId(_top!.JobId, _arrayIndex); // its own copy: the array's cache is the loop's

    /// <summary>The job's name.</summary>
    public string JobName => _launch is { } l ? l.JobName : _top!.JobName;

    /// <summary>The job queue's name (<c>AWS_BATCH_JQ_NAME</c>).</summary>
    public string JobQueueName => _launch is { } l ? l.JobQueueName : _top!.JobQueue.Name;

    /// <summary>The job definition's name.</summary>
    public string JobDefinitionName => _launch is { } l ? l.JobDefinitionName : _top!.JobSpec.Definition.JobDefinitionName;

    /// <summary>The 1-based attempt number (<c>AWS_BATCH_JOB_ATTEMPT</c>).</summary>
    public int Attempt => _launch is { } l ? l.Attempt : _attempt;

    /// <summary>Array children: the 0-based index (<c>AWS_BATCH_JOB_ARRAY_INDEX</c>); otherwise null.</summary>
    public int? ArrayIndex => _launch is { } l ? l.ArrayIndex : _arrayIndex < 0 ? null : _arrayIndex;

    /// <summary>Array children: the parent's size (<c>AWS_BATCH_JOB_ARRAY_SIZE</c>); otherwise null.</summary>
    public int? ArraySize => _launch is not { } launch ? (_arrayIndex < 0 ? null : _top!.ArraySize)
        : launch.LazyCeName is not null
        ? (launch.LazyParentId is null ? null : launch.LazyArraySize) // the engine's launch: no environment to build
        : launch.Environment.TryGetValue("AWS_BATCH_JOB_ARRAY_SIZE", out var s) &&
          int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var size) ? size : null;

    /// <summary>
    /// The attempt's trace activity (<c>batchcore.attempt</c>, linked to the submitter's) when the engine traces it, else
    /// null. It is <see cref="System.Diagnostics.Activity.Current"/> while the handler runs, so the handler's own spans
    /// (HTTP calls, queries) are part of the attempt's trace.
    /// </summary>
    public System.Diagnostics.Activity? Activity => _launch is { } l ? l.Activity : MoreIfAny?.Activity;

    /// <summary>The job's parameters: the definition's defaults merged with the submitted ones.</summary>
    public IReadOnlyDictionary<string, string> Parameters => _launch is { } l ? l.Parameters : _top!.JobSpec.Parameters;

    /// <summary>
    /// The handler's arguments: <c>containerProperties.command</c> (or the override), <c>Ref::</c> parameters substituted;
    /// empty when the definition has none.
    /// </summary>
    public IReadOnlyList<string> Command => _launch is { } l ? l.Command : _top!.JobSpec.Command;

    /// <summary>The job's environment: the definition's, the overrides and the <c>AWS_BATCH_*</c> variables.</summary>
    public IReadOnlyDictionary<string, string> Environment => _launch is { } l ? l.Environment
        : More.Environment ??= AttemptLaunch.BuildEnvironment(_top!.JobSpec.Environment, JobId, _attempt, _host!.ComputeEnvironment.Name,
            _top.JobQueue.Name, _arrayIndex < 0 ? null : _arrayIndex, _arrayIndex < 0 ? 0 : _top.ArraySize);

    /// <summary>The job definition's <c>containerProperties.secrets</c> (empty when none).</summary>
    private protected IReadOnlyList<Model.Secret> Secrets =>
        (_launch is { } l ? l.Container : _top!.JobSpec.Definition.ContainerProperties)?.Secrets ?? [];

    /// <summary>
    /// Resolves <see cref="Secrets"/> into <see cref="Environment"/> (AWS injects them as environment variables): null
    /// when done, else AWS's <c>ResourceInitializationError</c> reason. Engine launches use the engine's resolver, kept
    /// in the extras (<see cref="Extras.SecretResolver"/>) so that an attempt without secrets carries no field for it.
    /// </summary>
    private protected async ValueTask<string?> ResolveSecretsAsync(CancellationToken ct)
    {
        if (_launch is { } launch)
        {
            return await launch.ResolveSecretsAsync(ct).ConfigureAwait(false);
        }

        var (env, error) = await AttemptLaunch.ResolveSecretsAsync(Secrets, MoreIfAny?.SecretResolver, Environment, ct).ConfigureAwait(false);
        if (env is not null)
        {
            More.Environment = env;
        }

        return error;
    }

    /// <summary>The vCPUs the job reserved (its VCPU resource requirement).</summary>
    public double Vcpus => _launch is { } l ? l.Vcpus : _top!.JobSpec.Request.Vcpus;

    /// <summary>The memory in MiB the job reserved. Not enforced in-process: the handler shares this process's heap.</summary>
    public int MemoryMiB => _launch is { } l ? l.MemoryMiB : _top!.JobSpec.Request.MemoryMiB;

    /// <summary>
    /// The GPUs the job reserved (its GPU resource requirement; 0 when none): the host accounts for them, so handlers of
    /// GPU jobs never share more GPUs than the host has.
    /// </summary>
    public int Gpus => _launch is { } l ? l.Gpus : _top!.JobSpec.Request.Gpus;

    /// <summary>The host the attempt was placed on.</summary>
    public string HostName => _launch is { } l ? l.HostName : _host!.Name;

    /// <summary>The attempt's log stream (<c>&lt;jobDefinitionName&gt;/default/&lt;id&gt;</c>), readable with GetLogEvents.</summary>
    public string LogStreamName => _launch is { } l ? l.LogStreamName
        : More.LogStreamName ??= Jobs.AttemptRecord.LogStreamName(JobDefinitionName, JobId, _attempt);

    /// <summary>
    /// Writes into the attempt's log stream: each line (up to a newline, or flushed) becomes one log event, as a
    /// container's stdout would; a line longer than <see cref="Logs.LogStore.MaxEventBytes"/> UTF-8 bytes becomes several
    /// events, cut between characters, as every driver cuts one. Thread-safe.
    /// </summary>
    public TextWriter Log => More.Log ??= new JobLogWriter(_driver.LogStore, _driver.TimeProvider, LogStreamName);

    /// <summary>
    /// An <see cref="Microsoft.Extensions.Logging.ILogger"/> writing into the attempt's log stream: each entry is one log
    /// event, <c>&lt;level&gt;: &lt;message&gt;</c>, followed by the exception when there is one (an entry over
    /// <see cref="Logs.LogStore.MaxEventBytes"/> UTF-8 bytes: consecutive events, cut between characters). When the driver was given a
    /// logger factory (the Generic Host integration passes the app's), entries also go there, in a scope with
    /// <c>AwsBatchJobId</c> and <c>AwsBatchJobAttempt</c>.
    /// </summary>
    public Microsoft.Extensions.Logging.ILogger Logger => More.Logger ??= new JobStreamLogger(
        _driver.LogStore, _driver.TimeProvider, LogStreamName,
        _driver.LoggerFactory?.CreateLogger("BatchCore.Jobs." + JobDefinitionName), JobId, Attempt);

    /// <summary>The attempt's token (for the driver's attempt, which is this context).</summary>
    private protected long TokenValue => _token;

    /// <summary>The handler named by the job definition (<c>extensions.handler</c>), or null.</summary>
    private protected string? HandlerName => _launch is { } l ? l.Handler : _top!.JobSpec.Definition.Extensions?.Handler;

    /// <summary>The driver running the attempt.</summary>
    private protected InProcessHostDriver Driver => _driver;

    /// <summary>Flushes a partial last line, when the handler wrote one.</summary>
    internal void FlushLog()
    {
        try
        {
            MoreIfAny?.Log?.Flush();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A failing log store must not lose the attempt's exit (nor escape a thread-pool item and end the process).
        }
    }
}
