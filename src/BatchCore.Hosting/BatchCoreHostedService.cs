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
/// On an engine recovered from its state directory (a journal), what already exists is kept: configured resources
/// of a name the engine has are not created again, and a job definition gets a new revision only when its configuration
/// changed (<see cref="BatchEngine.RegisterJobDefinitionIfChangedAsync"/>).
/// At stop, gracefully: 1. stop taking jobs (<see cref="BatchEngine.StopTakingJobsAsync"/>: no submissions, no new
/// placements; queue and compute-environment states untouched, nothing journaled); 2. wait up to <see cref="BatchCoreOptions.DrainTimeout"/> for running attempts to end; 3.
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

        // A recovered engine (journal) already has what an earlier start created: kept, not created again.
        var recovered = engine.Recovery is not null;
        var count = 0;
        for (var i = 0; i < o.ConsumableResources.Count; i++)
        {
            var r = o.ConsumableResources[i];
            count += await CreateAsync($"{Section}:ConsumableResources:{i}", "consumableResourceName", r.ConsumableResourceName, recovered,
                async name => (await engine.ListConsumableResourcesAsync(new() { Filters = [new() { Name = ListConsumableResourcesFilterName.CONSUMABLE_RESOURCE_NAME, Values = [name] }] }, cancellationToken)
                    .ConfigureAwait(false)).ConsumableResources.Any(c => c.ConsumableResourceName == name),
                () => engine.CreateConsumableResourceAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        for (var i = 0; i < o.SchedulingPolicies.Count; i++)
        {
            var r = o.SchedulingPolicies[i];
            count += await CreateAsync($"{Section}:SchedulingPolicies:{i}", "name", r.Name, recovered,
                async name => (await engine.DescribeSchedulingPoliciesAsync([name], cancellationToken).ConfigureAwait(false)).Count > 0,
                () => engine.CreateSchedulingPolicyAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        for (var i = 0; i < o.ComputeEnvironments.Count; i++)
        {
            var r = o.ComputeEnvironments[i];
            count += await CreateAsync($"{Section}:ComputeEnvironments:{i}", "computeEnvironmentName", r.ComputeEnvironmentName, recovered,
                async name => (await engine.DescribeComputeEnvironmentsAsync(new() { ComputeEnvironments = [name] }, cancellationToken).ConfigureAwait(false)).Count > 0,
                () => engine.CreateComputeEnvironmentAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        for (var i = 0; i < o.JobQueues.Count; i++)
        {
            var r = o.JobQueues[i];
            count += await CreateAsync($"{Section}:JobQueues:{i}", "jobQueueName", r.JobQueueName, recovered,
                async name => (await engine.DescribeJobQueuesAsync([name], cancellationToken).ConfigureAwait(false)).Count > 0,
                () => engine.CreateJobQueueAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        for (var i = 0; i < o.JobDefinitions.Count; i++)
        {
            // Registered again only when its configuration changed (a recovered engine has the earlier revision).
            var r = o.JobDefinitions[i];
            count += await CreateAsync($"{Section}:JobDefinitions:{i}", "jobDefinitionName", r.JobDefinitionName, recovered: false, exists: null,
                () => engine.RegisterJobDefinitionIfChangedAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        Log.ResourcesCreated(_logger, count);
    }

    /// <summary>Creates one configured resource (1), or keeps the one a recovered engine has (0); a rejected one fails the start.</summary>
    private static async Task<int> CreateAsync(string path, string nameField, string? name, bool recovered, Func<string, Task<bool>>? exists, Func<Task> create)
    {
        if (recovered && name is not null && exists is not null && await exists(name).ConfigureAwait(false))
        {
            return 0;
        }

        try
        {
            await create().ConfigureAwait(false);
            return 1;
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
            await engine.StopTakingJobsAsync(CancellationToken.None).ConfigureAwait(false);
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
