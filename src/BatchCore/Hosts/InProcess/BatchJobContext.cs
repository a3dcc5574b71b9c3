using System.Globalization;

namespace BatchCore.Hosts.InProcess;

/// <summary>
/// What an <see cref="IBatchJobHandler"/> knows about the attempt it runs: AWS's <c>AWS_BATCH_*</c> facts as
/// properties, the job's parameters and environment, and <see cref="Log"/>, a writer into the attempt's log stream.
/// </summary>
/// <remarks>Not derivable outside BatchCore (no public constructor): the in-process driver's attempt is its own context.</remarks>
public class BatchJobContext
{
    private readonly AttemptLaunch _launch;
    private readonly InProcessHostDriver _driver;
    private JobLogWriter? _log;
    private JobStreamLogger? _logger;

    internal BatchJobContext(AttemptLaunch launch, InProcessHostDriver driver)
    {
        _launch = launch;
        _driver = driver;
    }

    /// <summary>The job's id (<c>AWS_BATCH_JOB_ID</c>; array children: <c>parentId:index</c>).</summary>
    public string JobId => _launch.JobId;

    /// <summary>The job's name.</summary>
    public string JobName => _launch.JobName;

    /// <summary>The job queue's name (<c>AWS_BATCH_JQ_NAME</c>).</summary>
    public string JobQueueName => _launch.JobQueueName;

    /// <summary>The job definition's name.</summary>
    public string JobDefinitionName => _launch.JobDefinitionName;

    /// <summary>The 1-based attempt number (<c>AWS_BATCH_JOB_ATTEMPT</c>).</summary>
    public int Attempt => _launch.Attempt;

    /// <summary>Array children: the 0-based index (<c>AWS_BATCH_JOB_ARRAY_INDEX</c>); otherwise null.</summary>
    public int? ArrayIndex => _launch.ArrayIndex;

    /// <summary>Array children: the parent's size (<c>AWS_BATCH_JOB_ARRAY_SIZE</c>); otherwise null.</summary>
    public int? ArraySize => _launch.LazyCeName is not null
        ? (_launch.LazyParentId is null ? null : _launch.LazyArraySize) // the engine's launch: no environment to build
        : _launch.Environment.TryGetValue("AWS_BATCH_JOB_ARRAY_SIZE", out var s) &&
          int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var size) ? size : null;

    /// <summary>The job's parameters: the definition's defaults merged with the submitted ones.</summary>
    public IReadOnlyDictionary<string, string> Parameters => _launch.Parameters;

    /// <summary>
    /// The handler's arguments: <c>containerProperties.command</c> (or the override), <c>Ref::</c> parameters substituted;
    /// empty when the definition has none.
    /// </summary>
    public IReadOnlyList<string> Command => _launch.Command;

    /// <summary>The job's environment: the definition's, the overrides and the <c>AWS_BATCH_*</c> variables.</summary>
    public IReadOnlyDictionary<string, string> Environment => _launch.Environment;

    /// <summary>The vCPUs the job reserved (its VCPU resource requirement).</summary>
    public double Vcpus => _launch.Vcpus;

    /// <summary>The memory in MiB the job reserved. Not enforced in-process: the handler shares this process's heap.</summary>
    public int MemoryMiB => _launch.MemoryMiB;

    /// <summary>The host the attempt was placed on.</summary>
    public string HostName => _launch.HostName;

    /// <summary>The attempt's log stream (<c>&lt;jobDefinitionName&gt;/default/&lt;id&gt;</c>), readable with GetLogEvents.</summary>
    public string LogStreamName => _launch.LogStreamName;

    /// <summary>
    /// Writes into the attempt's log stream: each line (up to a newline, or flushed) becomes one log event, as a
    /// container's stdout would. Thread-safe.
    /// </summary>
    public TextWriter Log => _log ??= new JobLogWriter(_driver.LogStore, _driver.TimeProvider, _launch.LogStreamName);

    /// <summary>
    /// An <see cref="Microsoft.Extensions.Logging.ILogger"/> writing into the attempt's log stream: each entry is one log
    /// event, <c>&lt;level&gt;: &lt;message&gt;</c>, followed by the exception when there is one. When the driver was given a
    /// logger factory (the Generic Host integration passes the app's), entries also go there, in a scope with
    /// <c>AwsBatchJobId</c> and <c>AwsBatchJobAttempt</c>.
    /// </summary>
    public Microsoft.Extensions.Logging.ILogger Logger => _logger ??= new JobStreamLogger(
        _driver.LogStore, _driver.TimeProvider, _launch.LogStreamName,
        _driver.LoggerFactory?.CreateLogger("BatchCore.Jobs." + _launch.JobDefinitionName), _launch.JobId, _launch.Attempt);

    /// <summary>The launch this context describes (for the driver's attempt, which is this context).</summary>
    private protected AttemptLaunch Launch => _launch;

    /// <summary>The driver running the attempt.</summary>
    private protected InProcessHostDriver Driver => _driver;

    /// <summary>Flushes a partial last line, when the handler wrote one.</summary>
    internal void FlushLog() => _log?.Flush();
}
