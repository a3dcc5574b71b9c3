namespace BatchCore.Hosts.InProcess;

/// <summary>
/// A .NET job handler that the <c>inprocess</c> host driver runs in this process instead of a command or an image.
/// A job definition names it with <c>extensions.handler</c>.
/// </summary>
/// <remarks>
/// The returned number is the attempt's exit code (AWS's <c>container.exitCode</c>): 0 succeeds, anything else fails the
/// attempt and AWS's <c>retryStrategy</c> decides whether it is retried. An exception fails the attempt with exit
/// code 1 and the exception's type as <c>container.reason</c>. When the attempt is terminated (TerminateJob, the job's
/// timeout, the engine stopping) the token passed to <see cref="RunAsync"/> fires; see <see cref="InProcessHostDriver"/>.
/// </remarks>
public interface IBatchJobHandler
{
    /// <summary>Runs one attempt of a job.</summary>
    /// <param name="context">The job, attempt, parameters, environment and log stream.</param>
    /// <param name="cancellationToken">Fires when the attempt is terminated (the equivalent of SIGTERM).</param>
    /// <returns>The exit code: 0 for success.</returns>
    Task<int> RunAsync(BatchJobContext context, CancellationToken cancellationToken);
}
