using BatchCore.Hosts.InProcess;

namespace WorkerService;

/// <summary>
/// An in-process job handler resolved from DI in a scope per attempt. Attempt 1 of array child 2 fails on purpose to
/// show the job definition's retryStrategy (2 attempts) at work.
/// </summary>
internal sealed partial class RenderReportHandler(ILogger<RenderReportHandler> logger) : IBatchJobHandler
{
    public async Task<int> RunAsync(BatchJobContext context, CancellationToken cancellationToken)
    {
        var index = context.ArrayIndex ?? 0;
        LogRendering(logger, context.JobId, index, context.Attempt);
        await Task.Delay(TimeSpan.FromMilliseconds(100 * (index + 1)), cancellationToken).ConfigureAwait(false);
        if (index == 2 && context.Attempt == 1)
        {
            throw new InvalidOperationException("the template cache was cold (fails once on purpose)");
        }

        // The definition's secret, resolved from configuration into the job's environment (never logged).
        var signed = context.Environment.ContainsKey("REPORT_SIGNING_KEY");

        // context.Logger: into the job's log stream (GetLogEvents) and, through the Generic Host, the app's logs too.
        LogRendered(context.Logger, index, context.ArraySize ?? 1, context.Parameters["format"], signed);
        return 0;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Rendering {JobId} page {Index}, attempt {Attempt}")]
    private static partial void LogRendering(ILogger logger, string jobId, int index, int attempt);

    [LoggerMessage(Level = LogLevel.Information, Message = "rendered page {Index} of {Count} as {Format} (signed: {Signed})")]
    private static partial void LogRendered(ILogger logger, int index, int count, string format, bool signed);
}
