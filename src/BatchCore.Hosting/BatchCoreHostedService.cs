using BatchCore.Model;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BatchCore.Hosting;

/// <summary>
/// Starts BatchCore with the application and stops it with it. At start: creates the configured consumable resources,
/// scheduling policies, compute environments, job queues and job definitions, in that order (each depends only on
/// earlier ones); a rejected one fails the start with a <see cref="BatchCoreConfigurationException"/> naming its path.
/// At stop, gracefully: 1. stop taking jobs (every queue and compute environment DISABLED: no submissions, no new
/// placements); 2. wait up to <see cref="BatchCoreOptions.DrainTimeout"/> for running attempts to end; 3.
/// <see cref="BatchEngine.StopAsync"/>, which terminates what still runs and waits up to
/// <see cref="BatchCoreOptions.TerminateTimeout"/>. The host's own <c>HostOptions.ShutdownTimeout</c> cuts step 2 short.
/// </summary>
internal sealed class BatchCoreHostedService(BatchEngine engine, IOptions<BatchCoreOptions> options, ILogger<BatchCoreHostedService>? logger = null)
    : IHostedService
{
    private const string Section = BatchCoreHostingDefaults.SectionName;
    private static readonly TimeSpan DrainPollInterval = TimeSpan.FromMilliseconds(50);

    private readonly ILogger _logger = (ILogger?)logger ?? NullLogger.Instance;
    private readonly CancellationTokenSource _watchStop = new();
    private Task? _watch;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (o.LogJobStateChanges && (_logger.IsEnabled(LogLevel.Debug) || _logger.IsEnabled(LogLevel.Information)))
        {
            _watch = WatchAsync(_watchStop.Token);
        }

        var count = 0;
        for (var i = 0; i < o.ConsumableResources.Count; i++, count++)
        {
            var r = o.ConsumableResources[i];
            await Create($"{Section}:ConsumableResources:{i}", "consumableResourceName", r.ConsumableResourceName,
                () => engine.CreateConsumableResourceAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        for (var i = 0; i < o.SchedulingPolicies.Count; i++, count++)
        {
            var r = o.SchedulingPolicies[i];
            await Create($"{Section}:SchedulingPolicies:{i}", "name", r.Name,
                () => engine.CreateSchedulingPolicyAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        for (var i = 0; i < o.ComputeEnvironments.Count; i++, count++)
        {
            var r = o.ComputeEnvironments[i];
            await Create($"{Section}:ComputeEnvironments:{i}", "computeEnvironmentName", r.ComputeEnvironmentName,
                () => engine.CreateComputeEnvironmentAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        for (var i = 0; i < o.JobQueues.Count; i++, count++)
        {
            var r = o.JobQueues[i];
            await Create($"{Section}:JobQueues:{i}", "jobQueueName", r.JobQueueName,
                () => engine.CreateJobQueueAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        for (var i = 0; i < o.JobDefinitions.Count; i++, count++)
        {
            var r = o.JobDefinitions[i];
            await Create($"{Section}:JobDefinitions:{i}", "jobDefinitionName", r.JobDefinitionName,
                () => engine.RegisterJobDefinitionAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        Log.ResourcesCreated(_logger, count);
    }

    private static async Task Create(string path, string nameField, string? name, Func<Task> create)
    {
        try
        {
            await create().ConfigureAwait(false);
        }
        catch (BatchClientException e)
        {
            var where = name is null ? path : $"{path} ({nameField} {name})";
            throw new BatchCoreConfigurationException(where, e.Message, e);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        try
        {
            var queues = await engine.DescribeJobQueuesAsync(ct: CancellationToken.None).ConfigureAwait(false);
            await StopTakingJobsAsync(queues).ConfigureAwait(false);
            var running = await RunningVcpusAsync(queues).ConfigureAwait(false);
            if (running > 0)
            {
                Log.Draining(_logger, o.DrainTimeout, running);
                using var drain = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                drain.CancelAfter(o.DrainTimeout);
                try
                {
                    while (running > 0)
                    {
                        await Task.Delay(DrainPollInterval, drain.Token).ConfigureAwait(false);
                        running = await RunningVcpusAsync(queues).ConfigureAwait(false);
                    }
                }
                catch (OperationCanceledException)
                {
                    Log.TerminatingRemaining(_logger);
                }
            }
        }
        catch (ObjectDisposedException)
        {
            // the engine was stopped by someone else already
        }

        await engine.StopAsync(o.TerminateTimeout).ConfigureAwait(false);
        await _watchStop.CancelAsync().ConfigureAwait(false);
        if (_watch is { } watch)
        {
            await watch.ConfigureAwait(false);
        }

        _watchStop.Dispose();
        Log.Stopped(_logger);
    }

    /// <summary>AWS: a DISABLED queue takes no submissions; a DISABLED compute environment gets no new placements.</summary>
    private async Task StopTakingJobsAsync(IReadOnlyList<JobQueueDetail> queues)
    {
        foreach (var q in queues)
        {
            if (q.State == ResourceState.ENABLED)
            {
                try
                {
                    await engine.UpdateJobQueueAsync(new UpdateJobQueueRequest { JobQueue = q.JobQueueArn, State = ResourceState.DISABLED }).ConfigureAwait(false);
                }
                catch (BatchClientException e)
                {
                    Log.DisableFailed(_logger, q.JobQueueName, e);
                }
            }
        }

        foreach (var ce in await engine.DescribeComputeEnvironmentsAsync().ConfigureAwait(false))
        {
            if (ce.State == ResourceState.ENABLED)
            {
                try
                {
                    await engine.UpdateComputeEnvironmentAsync(new UpdateComputeEnvironmentRequest
                    {
                        ComputeEnvironment = ce.ComputeEnvironmentArn,
                        State = ResourceState.DISABLED,
                    }).ConfigureAwait(false);
                }
                catch (BatchClientException e)
                {
                    Log.DisableFailed(_logger, ce.ComputeEnvironmentName, e);
                }
            }
        }
    }

    /// <summary>vCPUs held by STARTING and RUNNING jobs over all queues (GetJobQueueSnapshot's capacityUsage).</summary>
    private async Task<double> RunningVcpusAsync(IReadOnlyList<JobQueueDetail> queues)
    {
        var sum = 0.0;
        foreach (var q in queues)
        {
            var snapshot = await engine.GetJobQueueSnapshotAsync(q.JobQueueArn).ConfigureAwait(false);
            foreach (var (_, vcpus) in snapshot.CapacityUsage)
            {
                sum += vcpus;
            }
        }

        return sum;
    }

    private async Task WatchAsync(CancellationToken ct)
    {
        try
        {
            // Debug off (the usual production level): only the ended jobs are logged, so only they are watched.
            var changes = _logger.IsEnabled(LogLevel.Debug) ? engine.WatchJobsAsync(ct: ct) : engine.WatchEndedJobsAsync(ct: ct);
            await foreach (var change in changes.ConfigureAwait(false))
            {
                if (change.Status is JobStatus.SUCCEEDED or JobStatus.FAILED)
                {
                    Log.JobEnded(_logger, change.JobId, change.JobName, change.Status, change.StatusReason);
                }
                else
                {
                    Log.JobStateChanged(_logger, change.JobId, change.JobName, change.PreviousStatus, change.Status);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (ObjectDisposedException)
        {
            // the engine stopped
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Log.WatchFailed(_logger, e);
        }
    }
}
