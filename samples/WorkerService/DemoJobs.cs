using BatchCore;
using BatchCore.Model;

namespace WorkerService;

/// <summary>
/// Submits the demo jobs once the host has started (BatchCore's hosted service created the queues and definitions
/// first), waits for them, prints their logs, then stops the application — so the sample ends on its own.
/// </summary>
internal sealed partial class DemoJobs(BatchEngine engine, IHostApplicationLifetime lifetime, ILogger<DemoJobs> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            var jobs = new List<string>
            {
                (await engine.SubmitJobAsync(new SubmitJobRequest
                {
                    JobName = "monthly-report",
                    JobQueue = "reports",
                    JobDefinition = "render-report",
                    ArrayProperties = new ArrayProperties { Size = 4 },
                }, stoppingToken).ConfigureAwait(false)).JobId,
                (await engine.SubmitJobAsync(new SubmitJobRequest
                {
                    JobName = "inline-summary",
                    JobQueue = "reports",
                    JobDefinition = "summary",
                }, stoppingToken).ConfigureAwait(false)).JobId,
                (await engine.SubmitJobAsync(new SubmitJobRequest
                {
                    JobName = "count-words",
                    JobQueue = "scripts",
                    JobDefinition = "word-count",
                    ArrayProperties = new ArrayProperties { Size = 2 },
                    Parameters = new Dictionary<string, string> { ["text"] = "one two three" },
                }, stoppingToken).ConfigureAwait(false)).JobId,
            };

            var failed = 0;
            foreach (var id in jobs)
            {
                var job = await engine.WaitForJobAsync(id, stoppingToken).ConfigureAwait(false);
                LogFinished(logger, job.JobName, job.Status);
                failed += job.Status == JobStatus.SUCCEEDED ? 0 : 1;
                await PrintLogsAsync(job, stoppingToken).ConfigureAwait(false);
            }

            Environment.ExitCode = failed == 0 ? 0 : 1;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogDemoFailed(logger, e);
            Environment.ExitCode = 2;
        }
        finally
        {
            lifetime.StopApplication();
        }
    }

    private async Task PrintLogsAsync(JobDetail job, CancellationToken ct)
    {
        var streams = new List<string>();
        if (job.ArrayProperties?.Size is { } size)
        {
            var children = await engine.ListJobsAsync(new ListJobsRequest { ArrayJobId = job.JobId, JobStatus = JobStatus.SUCCEEDED }, ct).ConfigureAwait(false);
            var details = await engine.DescribeJobsAsync([.. children.JobSummaryList.Select(c => c.JobId)], ct).ConfigureAwait(false);
            streams.AddRange(details.OrderBy(d => d.ArrayProperties?.Index).Select(d => d.Container?.LogStreamName).OfType<string>());
            LogChildren(logger, job.JobName, size);
        }
        else if (job.Container?.LogStreamName is { } stream)
        {
            streams.Add(stream);
        }

        foreach (var stream in streams)
        {
            foreach (var e in engine.GetLogEvents(stream).Events)
            {
                LogLine(logger, stream, e.Message);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{JobName} finished {Status}")]
    private static partial void LogFinished(ILogger logger, string jobName, string status);

    [LoggerMessage(Level = LogLevel.Information, Message = "{JobName} is an array job of {Size} children")]
    private static partial void LogChildren(ILogger logger, string jobName, int size);

    [LoggerMessage(Level = LogLevel.Information, Message = "  [{Stream}] {Line}")]
    private static partial void LogLine(ILogger logger, string stream, string line);

    [LoggerMessage(Level = LogLevel.Error, Message = "The demo failed")]
    private static partial void LogDemoFailed(ILogger logger, Exception exception);
}
