namespace BatchCore.Logs;

/// <summary>
/// Log streams, one per attempt, named like AWS's (<c>&lt;jobDefinitionName&gt;/default/&lt;id&gt;</c>) in the log group
/// <c>/aws/batch/job</c>. Drivers append; users read with <see cref="GetLogEvents"/>. Implementations are thread-safe.
/// </summary>
public abstract class LogStore
{
    /// <summary>The log group AWS Batch writes to.</summary>
    public const string LogGroupName = "/aws/batch/job";

    /// <summary>Appends one line (without its newline) to a stream, creating the stream if needed.</summary>
    public abstract void Append(string logStreamName, long timestampMs, string message);

    /// <summary>Reads events of a stream from the start, like CloudWatch Logs' GetLogEvents with startFromHead.</summary>
    /// <param name="logStreamName">The stream.</param>
    /// <param name="nextToken">Null for the first page, else the token a previous page returned.</param>
    /// <param name="limit">At most this many events (1–10,000).</param>
    public abstract GetLogEventsResponse GetLogEvents(string logStreamName, string? nextToken = null, int limit = 10_000);

    /// <summary>Whether the stream exists.</summary>
    public abstract bool StreamExists(string logStreamName);
}

/// <summary>One log line.</summary>
public sealed record OutputLogEvent(long Timestamp, string Message);

/// <summary>A page of log events.</summary>
public sealed record GetLogEventsResponse(IReadOnlyList<OutputLogEvent> Events, string? NextForwardToken);
