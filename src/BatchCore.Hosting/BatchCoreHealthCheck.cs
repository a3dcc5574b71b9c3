using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace BatchCore.Hosting;

/// <summary>
/// Healthy while the engine's scheduling loop answers (a DescribeJobQueues round-trip within
/// <see cref="BatchCoreOptions.HealthCheckTimeout"/>); Degraded when the loop survived an unexpected error
/// (<see cref="BatchEngine.LastLoopError"/>); Unhealthy once the engine stopped or when the loop does not answer.
/// </summary>
public sealed class BatchCoreHealthCheck(BatchEngine engine, IOptions<BatchCoreOptions> options) : IHealthCheck
{
    /// <inheritdoc />
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        IReadOnlyList<Model.JobQueueDetail> queues;
        try
        {
            queues = await EngineQueries.AllJobQueuesAsync(engine, cancellationToken)
                .WaitAsync(options.Value.HealthCheckTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            return new HealthCheckResult(context?.Registration.FailureStatus ?? HealthStatus.Unhealthy, "the BatchCore engine is stopped");
        }
        catch (TimeoutException e)
        {
            return new HealthCheckResult(context?.Registration.FailureStatus ?? HealthStatus.Unhealthy,
                $"the BatchCore scheduling loop did not answer within {options.Value.HealthCheckTimeout}", e);
        }

        var data = new Dictionary<string, object> { ["jobQueues"] = queues.Count };
        if (engine.LastLoopError is { } error)
        {
            return HealthCheckResult.Degraded("the BatchCore scheduling loop survived an unexpected error: " + error.Message, error, data);
        }

        return HealthCheckResult.Healthy("the BatchCore scheduling loop answers", data);
    }
}
