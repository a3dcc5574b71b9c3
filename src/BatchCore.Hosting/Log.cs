using Microsoft.Extensions.Logging;

namespace BatchCore.Hosting;

/// <summary>The hosting layer's log messages (source-generated: nothing is formatted or boxed when the level is off).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "BatchCore created {Count} configured resources (those a recovered engine already had were kept)")]
    public static partial void ResourcesCreated(ILogger logger, int count);

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "Job {JobId} ({JobName}) {PreviousStatus} -> {Status}")]
    public static partial void JobStateChanged(ILogger logger, string jobId, string jobName, string previousStatus, string status);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Job {JobId} ({JobName}) {Status}: {StatusReason}")]
    public static partial void JobEnded(ILogger logger, string jobId, string jobName, string status, string? statusReason);

    /// <summary>An ended job without a statusReason (an array job: its children's lines carry theirs).</summary>
    [LoggerMessage(EventId = 12, Level = LogLevel.Information, Message = "Job {JobId} ({JobName}) {Status}")]
    public static partial void JobEndedWithoutReason(ILogger logger, string jobId, string jobName, string status);

    /// <summary>
    /// A failed job whose container gave a reason the job's own does not say (AWS's generic "Essential container in task
    /// exited" hides e.g. <c>CannotStartContainerError: ...</c> or <c>OutOfMemoryError: ...</c>).
    /// </summary>
    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "Job {JobId} ({JobName}) {Status}: {StatusReason}: {ContainerReason}")]
    public static partial void JobEndedWithContainerReason(ILogger logger, string jobId, string jobName, string status, string? statusReason, string containerReason);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "BatchCore stopping: no new jobs taken or placed, waiting up to {DrainTimeout} for {Running} running vCPUs")]
    public static partial void Draining(ILogger logger, TimeSpan drainTimeout, double running);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "BatchCore stopping: attempts still running after the drain timeout are terminated")]
    public static partial void TerminatingRemaining(ILogger logger);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "BatchCore stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "BatchCore: {Path} ({Name}) differs from what the state directory recovered: {Warning}")]
    public static partial void RecoveredKept(ILogger logger, string path, string name, string warning);

    [LoggerMessage(EventId = 9, Level = LogLevel.Error, Message = "BatchCore: the scheduling loop survived an unexpected error (the engine keeps serving)")]
    public static partial void LoopError(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 10, Level = LogLevel.Warning, Message = "BatchCore process driver: {Message}")]
    public static partial void ProcessDriverDiagnostic(ILogger logger, string message);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "BatchCore: watching job state changes ended with an error")]
    public static partial void WatchFailed(ILogger logger, Exception exception);
}
