namespace BatchCore.Logs;

/// <summary>
/// Log streams, one per attempt, named like AWS's (<c>&lt;jobDefinitionName&gt;/default/&lt;id&gt;</c>) in the log group
/// <c>/aws/batch/job</c>. Drivers append; users read with <see cref="GetLogEvents"/>. Implementations are thread-safe.
/// </summary>
public abstract class LogStore
{
    /// <summary>The log group AWS Batch writes to.</summary>
    public const string LogGroupName = "/aws/batch/job";

    /// <summary>
    /// The most UTF-8 bytes of one event's message the drivers write: 262,118, CloudWatch Logs' 256 KiB event size
    /// (262,144 bytes) less the 26 bytes it counts per event, as Docker's awslogs driver (what AWS Batch jobs log through)
    /// cuts a longer line. A line of job output longer than this becomes several consecutive events, cut between
    /// characters, nothing lost; a driver never holds more than this of a line that has not ended. Counted in UTF-8 bytes,
    /// as CloudWatch counts, so a message is also at most this many characters.
    /// </summary>
    public const int MaxEventBytes = (256 * 1024) - 26;

    /// <summary>Appends one line (without its newline) to a stream, creating the stream if needed. The drivers append at
    /// most <see cref="MaxEventBytes"/> UTF-8 bytes per call.</summary>
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
