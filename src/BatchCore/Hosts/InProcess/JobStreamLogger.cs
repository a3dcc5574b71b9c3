using BatchCore.Logs;
using Microsoft.Extensions.Logging;

namespace BatchCore.Hosts.InProcess;

/// <summary>
/// The <see cref="ILogger"/> of an in-process attempt: entries become log events of the attempt's stream (readable
/// with GetLogEvents, like a container's stdout) and, when given, also go to the application's logger. An entry is one
/// event, its newlines kept; one over <see cref="LogStore.MaxEventBytes"/> UTF-8 bytes becomes consecutive events, cut
/// between characters.
/// </summary>
internal sealed class JobStreamLogger(LogStore store, TimeProvider time, string stream, ILogger? forward, string jobId, int attempt,
    int maxEventBytes = LogStore.MaxEventBytes) : ILogger
{
    private readonly KeyValuePair<string, object>[] _scope =
    [
        new("AwsBatchJobId", jobId),
        new("AwsBatchJobAttempt", attempt),
    ];

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => forward?.BeginScope(state);

    /// <summary>The stream takes every level but <see cref="LogLevel.None"/>; the forward logger filters by its own rules.</summary>
    public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        ArgumentNullException.ThrowIfNull(formatter);
        if (logLevel == LogLevel.None)
        {
            return;
        }

        var message = formatter(state, exception);
        var line = exception is null ? LevelText(logLevel) + ": " + message : LevelText(logLevel) + ": " + message + Environment.NewLine + exception;
        LineSplitter.AppendCapped(line, (store, stream, At: time.GetUtcNow().ToUnixTimeMilliseconds()),
            static (s, piece) => s.store.Append(s.stream, s.At, piece), maxEventBytes);
        if (forward is not null && forward.IsEnabled(logLevel))
        {
            using (forward.BeginScope(_scope))
            {
                forward.Log(logLevel, eventId, state, exception, formatter);
            }
        }
    }

    private static string LevelText(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => "none",
    };
}
