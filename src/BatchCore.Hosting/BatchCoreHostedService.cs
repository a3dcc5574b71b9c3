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
/// of a name the engine has are not created again but updated where the configuration changed since (the fields it
/// sets; see <see cref="RecoveredResourceUpdates"/>: a change AWS cannot update, such as a compute environment's type,
/// fails the start naming the field), and a job definition gets a new revision only when its configuration changed
/// (<see cref="BatchEngine.RegisterJobDefinitionIfChangedAsync"/>).
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

        // A recovered engine (journal) already has what an earlier start created: kept, and updated where the
        // configuration changed since (RecoveredResourceUpdates). Every configured resource is planned before anything is
        // changed, so a change that cannot be applied fails the start with nothing updated.
        var recovered = engine.Recovery is not null;
        var plan = new List<Step>();
        for (var i = 0; i < o.ConsumableResources.Count; i++)
        {
            var r = o.ConsumableResources[i];
            await PlanAsync(plan, $"{Section}:ConsumableResources:{i}", "consumableResourceName", r.ConsumableResourceName, recovered,
                async name =>
                {
                    var listed = await engine.ListConsumableResourcesAsync(new() { Filters = [new() { Name = ListConsumableResourcesFilterName.CONSUMABLE_RESOURCE_NAME, Values = [name] }] }, cancellationToken).ConfigureAwait(false);
                    if (!listed.ConsumableResources.Any(c => c.ConsumableResourceName == name))
                    {
                        return null;
                    }

                    var had = await engine.DescribeConsumableResourceAsync(name, cancellationToken).ConfigureAwait(false);
                    var update = RecoveredResourceUpdates.ConsumableResource(r, had);
                    return UpdateAndTag(update, u => engine.UpdateConsumableResourceAsync(u, cancellationToken), had.ConsumableResourceArn, r.Tags, had.Tags, cancellationToken);
                },
                () => engine.CreateConsumableResourceAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        for (var i = 0; i < o.SchedulingPolicies.Count; i++)
        {
            var r = o.SchedulingPolicies[i];
            await PlanAsync(plan, $"{Section}:SchedulingPolicies:{i}", "name", r.Name, recovered,
                async name =>
                {
                    if ((await engine.DescribeSchedulingPoliciesAsync([name], cancellationToken).ConfigureAwait(false)) is not [var had])
                    {
                        return null;
                    }

                    var update = RecoveredResourceUpdates.SchedulingPolicy(r, had);
                    return UpdateAndTag(update, u => engine.UpdateSchedulingPolicyAsync(u, cancellationToken), had.Arn, r.Tags, had.Tags, cancellationToken);
                },
                () => engine.CreateSchedulingPolicyAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        for (var i = 0; i < o.ComputeEnvironments.Count; i++)
        {
            var r = o.ComputeEnvironments[i];
            await PlanAsync(plan, $"{Section}:ComputeEnvironments:{i}", "computeEnvironmentName", r.ComputeEnvironmentName, recovered,
                async name =>
                {
                    if ((await engine.DescribeComputeEnvironmentsAsync(new() { ComputeEnvironments = [name] }, cancellationToken).ConfigureAwait(false)).ComputeEnvironments is not [var had])
                    {
                        return null;
                    }

                    var update = RecoveredResourceUpdates.ComputeEnvironment(r, had, out var warning);
                    if (warning is not null)
                    {
                        Log.RecoveredKept(_logger, $"{Section}:ComputeEnvironments:{i}", name, warning);
                    }

                    return UpdateAndTag(update, u => engine.UpdateComputeEnvironmentAsync(u, cancellationToken), had.ComputeEnvironmentArn, r.Tags, had.Tags, cancellationToken);
                },
                () => engine.CreateComputeEnvironmentAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        for (var i = 0; i < o.JobQueues.Count; i++)
        {
            var r = o.JobQueues[i];
            await PlanAsync(plan, $"{Section}:JobQueues:{i}", "jobQueueName", r.JobQueueName, recovered,
                async name =>
                {
                    if ((await engine.DescribeJobQueuesAsync(new() { JobQueues = [name] }, cancellationToken).ConfigureAwait(false)).JobQueues is not [var had])
                    {
                        return null;
                    }

                    var update = RecoveredResourceUpdates.JobQueue(r, had);
                    return UpdateAndTag(update, u => engine.UpdateJobQueueAsync(u, cancellationToken), had.JobQueueArn, r.Tags, had.Tags, cancellationToken);
                },
                () => engine.CreateJobQueueAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        for (var i = 0; i < o.JobDefinitions.Count; i++)
        {
            // Registered again only when its configuration changed (a recovered engine has the earlier revision).
            var r = o.JobDefinitions[i];
            await PlanAsync(plan, $"{Section}:JobDefinitions:{i}", "jobDefinitionName", r.JobDefinitionName, recovered: false, keep: null,
                () => engine.RegisterJobDefinitionIfChangedAsync(r, cancellationToken)).ConfigureAwait(false);
        }

        var created = 0;
        foreach (var step in plan)
        {
            await RunAsync(step.Where, step.Action).ConfigureAwait(false);
            created += step.Creates ? 1 : 0;
        }

        Log.ResourcesCreated(_logger, created);
    }

    /// <summary>One configured resource's start-up action: its create, or the update of the one a recovered engine has.</summary>
    private readonly record struct Step(string Where, Func<Task> Action, bool Creates);

    /// <summary>
    /// Plans one configured resource: its create, or — when the engine was recovered and <paramref name="keep"/> finds
    /// the resource — what <paramref name="keep"/> returns (the update to the configuration). A change that cannot be
    /// applied fails the start here, before any step runs.
    /// </summary>
    private static async Task PlanAsync(List<Step> plan, string path, string nameField, string? name, bool recovered,
        Func<string, Task<Func<Task>?>>? keep, Func<Task> create)
    {
        var where = name is null ? path : $"{path} ({nameField} {name})";
        var update = await RunAsync(where, async () =>
            recovered && name is not null && keep is not null ? await keep(name).ConfigureAwait(false) : null).ConfigureAwait(false);
        plan.Add(update is null ? new Step(where, create, Creates: true) : new Step(where, update, Creates: false));
    }

    /// <summary>Runs one step; a rejected request fails the start naming the configured resource.</summary>
    private static async Task<T> RunAsync<T>(string where, Func<Task<T>> step)
    {
        try
        {
            return await step().ConfigureAwait(false);
        }
        catch (BatchClientException e)
        {
            throw new BatchCoreConfigurationException(where, e.Message, e);
        }
    }

    private static Task RunAsync(string where, Func<Task> step) => RunAsync(where, async () =>
    {
        await step().ConfigureAwait(false);
        return true;
    });

    /// <summary>A recovered resource's step: its update (when the configuration changed it), then its added or changed tags.</summary>
    private Func<Task> UpdateAndTag<T>(T? update, Func<T, Task> apply, string arn, IReadOnlyDictionary<string, string>? configured,
        IReadOnlyDictionary<string, string> had, CancellationToken ct)
        where T : class =>
        async () =>
        {
            if (update is not null)
            {
                await apply(update).ConfigureAwait(false);
            }

            await TagAsync(arn, configured, had, ct).ConfigureAwait(false);
        };

    /// <summary>Adds the configured tags a recovered resource lacks or has with another value.</summary>
    private async Task TagAsync(string arn, IReadOnlyDictionary<string, string>? configured, IReadOnlyDictionary<string, string> had, CancellationToken ct)
    {
        if (RecoveredResourceUpdates.Tags(configured, had) is { } tags)
        {
            await engine.TagResourceAsync(arn, tags, ct).ConfigureAwait(false);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        try
        {
            // The host's token bounds these too: a loop that does not answer must not keep the engine from stopping.
            var queues = await EngineQueries.AllJobQueuesAsync(engine, cancellationToken).ConfigureAwait(false);
            await engine.StopTakingJobsAsync(cancellationToken).ConfigureAwait(false);
            var running = await RunningVcpusAsync(queues, cancellationToken).ConfigureAwait(false);
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
                        running = await RunningVcpusAsync(queues, drain.Token).ConfigureAwait(false);
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
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Log.TerminatingRemaining(_logger); // the host's shutdown timeout passed before the drain began or ended
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

    /// <summary>vCPUs held by STARTING and RUNNING jobs over all queues (GetJobQueueSnapshot's totalCapacityUsage).</summary>
    private async Task<double> RunningVcpusAsync(IReadOnlyList<JobQueueDetail> queues, CancellationToken ct)
    {
        var sum = 0.0;
        foreach (var q in queues)
        {
            var snapshot = await engine.GetJobQueueSnapshotAsync(q.JobQueueArn, ct).ConfigureAwait(false);
            foreach (var usage in snapshot.QueueUtilization.TotalCapacityUsage)
            {
                sum += usage.Quantity;
            }
        }

        return sum;
    }

    /// <summary>
    /// A failed job's container reason (its last attempt's), when it says more than the job's reason: the change does not
    /// carry it, so it is described (failed jobs only; a succeeded job's container has nothing to add).
    /// </summary>
    private async Task<string?> ContainerReasonAsync(JobStateChange change, CancellationToken ct)
    {
        if ((await engine.DescribeJobsAsync([change.JobId], ct).ConfigureAwait(false)) is not [var job])
        {
            return null; // already forgotten (TerminalJobRetention)
        }

        var why = job.Container?.Reason ?? (job.Attempts is [.., var last] ? last.Container?.Reason : null);
        return string.IsNullOrEmpty(why) || why == change.StatusReason ? null : why;
    }

    private async Task WatchAsync(CancellationToken ct)
    {
        try
        {
            // Debug off (the usual production level): only the ended jobs are logged, so only they are watched.
            var changes = _logger.IsEnabled(LogLevel.Debug) ? engine.WatchJobsAsync(ct: ct) : engine.WatchEndedJobsAsync(ct: ct);
            await foreach (var change in changes.ConfigureAwait(false))
            {
                if (change.Status is JobStatus.FAILED && await ContainerReasonAsync(change, ct).ConfigureAwait(false) is { } why)
                {
                    Log.JobEndedWithContainerReason(_logger, change.JobId, change.JobName, change.Status, change.StatusReason, why);
                }
                else if (change.Status is JobStatus.SUCCEEDED or JobStatus.FAILED && change.StatusReason is null)
                {
                    Log.JobEndedWithoutReason(_logger, change.JobId, change.JobName, change.Status); // not "...: (null)"
                }
                else if (change.Status is JobStatus.SUCCEEDED or JobStatus.FAILED)
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
