using BatchCore.Logs;

namespace BatchCore.Hosts.InProcess;

/// <summary>Configures an <see cref="InProcessHostDriver"/>. Validated and copied when the driver is created.</summary>
public sealed record InProcessHostDriverOptions
{
    /// <summary>
    /// Finds the handler named by a job definition's <c>extensions.handler</c>; null when there is none. Called on the
    /// thread pool once per attempt, e.g. <see cref="InProcessHandlerRegistry.Resolve"/>.
    /// </summary>
    public required Func<string, IBatchJobHandler?> HandlerResolver { get; init; }

    /// <summary>Receives what handlers write to <see cref="BatchJobContext.Log"/>. Pass the engine's store.</summary>
    public required LogStore LogStore { get; init; }

    /// <summary>
    /// Where <see cref="BatchJobContext.Logger"/> also forwards each entry (category <c>BatchCore.Jobs.&lt;definition&gt;</c>,
    /// with a scope holding the job id and attempt), besides the job's log stream. The default is null: the stream only.
    /// </summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>Stamps log lines and times the grace period after a termination.</summary>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>How long <see cref="InProcessHostDriver.DisposeAsync"/> lets cancelled handlers finish before abandoning them.</summary>
    /// <value>The default is 5 seconds (<see cref="InProcessHostDriverDefaults.DisposeGracePeriod"/>).</value>
    public TimeSpan DisposeGracePeriod { get; init; } = InProcessHostDriverDefaults.DisposeGracePeriod;

    internal void Validate()
    {
        List<string>? problems = null;
        if (HandlerResolver is null)
        {
            (problems ??= []).Add("HandlerResolver is required");
        }

        if (LogStore is null)
        {
            (problems ??= []).Add("LogStore is required");
        }

        if (TimeProvider is null)
        {
            (problems ??= []).Add("TimeProvider is required");
        }

        if (DisposeGracePeriod < TimeSpan.Zero)
        {
            (problems ??= []).Add($"DisposeGracePeriod must not be negative, was {DisposeGracePeriod}");
        }

        if (problems is not null)
        {
            throw new BatchClientException(problems);
        }
    }
}

/// <summary>Default values and fixed texts of the in-process driver, in one place.</summary>
public static class InProcessHostDriverDefaults
{
    /// <summary>The driver kind, as written in <c>hosts[].driver</c>: <c>inprocess</c>.</summary>
    public const string Kind = "inprocess";

    /// <summary>The exit code of a handler that ended by throwing (other than on termination): 1.</summary>
    public const int ExceptionExitCode = 1;

    /// <summary>The exit code of a terminated handler that stopped by observing its token: 143 (128 + SIGTERM).</summary>
    public const int TerminatedExitCode = 143;

    /// <summary>The exit code of a terminated handler that ignored its token past the grace period: 137 (128 + SIGKILL).</summary>
    public const int AbandonedExitCode = 137;

    /// <summary>AWS caps <c>container.reason</c> at 255 characters.</summary>
    public const int MaxReasonLength = 255;

    /// <summary>The default of <see cref="InProcessHostDriverOptions.DisposeGracePeriod"/>: 5 seconds.</summary>
    public static readonly TimeSpan DisposeGracePeriod = TimeSpan.FromSeconds(5);
}
