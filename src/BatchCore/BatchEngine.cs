using System.Runtime.CompilerServices;
using System.Threading.Channels;
using BatchCore.Dispatch;
using BatchCore.Logs;
using BatchCore.Model;
using BatchCore.Validation;

namespace BatchCore;

/// <summary>
/// An embeddable AWS Batch: compute environments, job queues, job definitions, scheduling policies, consumable
/// resources and jobs, with AWS's names, rules and states. One async method per AWS Batch operation.
/// </summary>
/// <remarks>
/// One scheduling loop owns all state (single writer, no locks in BatchCore's code); every call is a message to it
/// through a bounded <see cref="Channel{T}"/> — when <see cref="BatchEngineOptions.RequestQueueCapacity"/> requests
/// wait, callers wait asynchronously (back-pressure instead of unbounded memory). Bad input throws
/// <see cref="BatchClientException"/> and changes nothing.
/// </remarks>
public sealed class BatchEngine : IAsyncDisposable
{
    private readonly EngineCore _core;
    private readonly Dispatch.RequestQueue<ICommand> _commands;
    private readonly Task _loop;
    private Task<bool>? _commandWait; // the loop's pending waits (see WaitForWorkAsync)
    private Task<bool>? _eventWait;
    private readonly CancellationTokenSource _stop = new();
    private readonly BatchEngineOptions _options;
    private readonly List<Journal.IJournalAck> _executed = [];
    private int _disposed;

    /// <summary>Creates and starts an engine.</summary>
    public BatchEngine(BatchEngineOptions? options = null)
    {
        _options = options ?? new BatchEngineOptions();
        ValidateOptions(_options);
        _core = new EngineCore(_options);
        if (_options.Journal.Durability == Journal.Durability.Journal)
        {
            try
            {
                _core.OpenJournal(_options.Journal.StateDirectory!);
            }
            catch
            {
                // A recovery that fails partway (a corrupt journal, a driver that cannot be created, a snapshot that
                // cannot be written) leaves nothing of its own open: drivers, providers, journal. Attempts the drivers
                // re-attached are released, not stopped: they run on as the crash left them, and the journal (which the
                // failed start did not change) still names them for the next start to take back.
                AbandonRecovery();
                throw;
            }
        }

        _commands = new Dispatch.RequestQueue<ICommand>(_options.RequestQueueCapacity);
        _loop = Task.Run(RunLoopAsync);
    }

    private void AbandonRecovery()
    {
        try
        {
            _core.CloseJournal();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _core.ReportUnexpected(e);
        }

        _core.DisposeDriversAsync(releaseReattached: true).AsTask().GetAwaiter().GetResult(); // reports what it cannot dispose, never throws
        _core.Telemetry.Dispose();
    }

    private static void ValidateOptions(BatchEngineOptions o)
    {
        var p = new Problems();
        p.Required(o.Region, "options.region");
        p.Required(o.AccountId, "options.accountId");
        p.Range(o.RequestQueueCapacity, 1, int.MaxValue, "options.requestQueueCapacity");
        p.Range(o.HostMemoryReserveMiB, 0, 1 << 20, "options.hostMemoryReserveMiB");
        if (o.Journal.Durability == Journal.Durability.Journal && string.IsNullOrEmpty(o.Journal.StateDirectory))
        {
            p.Add("options.journal.stateDirectory", "is required when durability is Journal");
        }

        if (o.Journal.PreallocateBytes < 0)
        {
            p.Add("options.journal.preallocateBytes", $"must not be negative, was {o.Journal.PreallocateBytes}");
        }

        if (o.TerminationGracePeriod < TimeSpan.Zero)
        {
            p.Add("options.terminationGracePeriod", "must not be negative");
        }

        if (o.ProvidedHostRecoveryTimeout < TimeSpan.Zero)
        {
            p.Add("options.providedHostRecoveryTimeout", "must not be negative");
        }

        if (o.TerminalJobRetention <= TimeSpan.Zero && o.TerminalJobRetention != Timeout.InfiniteTimeSpan)
        {
            p.Add("options.terminalJobRetention", $"must be positive (or Timeout.InfiniteTimeSpan to keep ended jobs), was {o.TerminalJobRetention}");
        }

        if (o.InactiveJobDefinitionRetention <= TimeSpan.Zero && o.InactiveJobDefinitionRetention != Timeout.InfiniteTimeSpan)
        {
            p.Add("options.inactiveJobDefinitionRetention", $"must be positive (or Timeout.InfiniteTimeSpan to keep deregistered revisions), was {o.InactiveJobDefinitionRetention}");
        }

        p.ThrowIfAny();
    }

    /// <summary>Attempts' logs (GetLogEvents).</summary>
    public LogStore Logs => _core.Logs;

    /// <summary>The options the engine runs with.</summary>
    public BatchEngineOptions Options => _options;

    /// <summary>Now, on the engine's clock (virtual or real).</summary>
    public DateTimeOffset UtcNow => _core.Time.GetUtcNow();

    // ---- compute environments ------------------------------------------------------------------------------------

    public Task<ComputeEnvironmentResponse> CreateComputeEnvironmentAsync(CreateComputeEnvironmentRequest request, CancellationToken ct = default) =>
        Run(c => { var r = c.CreateComputeEnvironment(request); c.JournalResource("CreateComputeEnvironment", request); return r; }, ct);

    public Task<ComputeEnvironmentResponse> UpdateComputeEnvironmentAsync(UpdateComputeEnvironmentRequest request, CancellationToken ct = default) =>
        Run(c => { var r = c.UpdateComputeEnvironment(request); c.JournalResource("UpdateComputeEnvironment", request); return r; }, ct);

    public Task DeleteComputeEnvironmentAsync(string computeEnvironment, CancellationToken ct = default) =>
        Run(c => { c.DeleteComputeEnvironment(computeEnvironment); c.JournalResource("DeleteComputeEnvironment", computeEnvironment); return true; }, ct);

    /// <summary>
    /// AWS DescribeComputeEnvironments: one page (up to <c>maxResults</c>, 100 by default), oldest first, with the
    /// <c>nextToken</c> of the next page.
    /// </summary>
    public Task<DescribeComputeEnvironmentsResponse> DescribeComputeEnvironmentsAsync(DescribeComputeEnvironmentsRequest? request = null, CancellationToken ct = default) =>
        Run(c => c.DescribeComputeEnvironments(request ?? new()), ct);

    // ---- job queues ----------------------------------------------------------------------------------------------

    public Task<JobQueueResponse> CreateJobQueueAsync(CreateJobQueueRequest request, CancellationToken ct = default) =>
        Run(c => { var r = c.CreateJobQueue(request); c.JournalResource("CreateJobQueue", request); return r; }, ct);

    public Task<JobQueueResponse> UpdateJobQueueAsync(UpdateJobQueueRequest request, CancellationToken ct = default) =>
        Run(c => { var r = c.UpdateJobQueue(request); c.JournalResource("UpdateJobQueue", request); return r; }, ct);

    public Task DeleteJobQueueAsync(string jobQueue, CancellationToken ct = default) =>
        Run(c => { c.DeleteJobQueue(jobQueue); c.JournalResource("DeleteJobQueue", jobQueue); return true; }, ct);

    /// <summary>
    /// AWS DescribeJobQueues: one page (up to <c>maxResults</c>, 100 by default), oldest first, with the
    /// <c>nextToken</c> of the next page.
    /// </summary>
    public Task<DescribeJobQueuesResponse> DescribeJobQueuesAsync(DescribeJobQueuesRequest? request = null, CancellationToken ct = default) =>
        Run(c => c.DescribeJobQueues(request ?? new()), ct);

    public Task<JobQueueSnapshot> GetJobQueueSnapshotAsync(string jobQueue, CancellationToken ct = default) =>
        Run(c => c.GetJobQueueSnapshot(jobQueue), ct);

    // ---- job definitions -----------------------------------------------------------------------------------------

    public Task<RegisterJobDefinitionResponse> RegisterJobDefinitionAsync(RegisterJobDefinitionRequest request, CancellationToken ct = default) =>
        Run(c => { var r = c.RegisterJobDefinition(request); c.JournalResource("RegisterJobDefinition", request); return r; }, ct);

    /// <summary>
    /// RegisterJobDefinition for declarative setups (a configuration applied at every start of a journaled engine): when
    /// the latest revision of that name is ACTIVE and was registered from an identical request, that revision is returned
    /// and nothing is registered; otherwise a new revision is, as by <see cref="RegisterJobDefinitionAsync"/>.
    /// </summary>
    public Task<RegisterJobDefinitionResponse> RegisterJobDefinitionIfChangedAsync(RegisterJobDefinitionRequest request, CancellationToken ct = default) =>
        Run(c =>
        {
            var (response, registered) = c.RegisterJobDefinitionIfChanged(request);
            if (registered)
            {
                c.JournalResource("RegisterJobDefinition", request);
            }

            return response;
        }, ct);

    public Task DeregisterJobDefinitionAsync(string jobDefinition, CancellationToken ct = default) =>
        Run(c =>
        {
            var at = c.NowMs;
            c.DeregisterJobDefinition(jobDefinition, at);
            c.JournalResource("DeregisterJobDefinition", new EngineCore.DeregisterRecord(jobDefinition, at)); // the time: recovery purges as the live engine does
            return true;
        }, ct);

    /// <summary>
    /// AWS DescribeJobDefinitions: one page (up to <c>maxResults</c>, 100 by default) in name then revision order, with
    /// the <c>nextToken</c> of the next page.
    /// </summary>
    public Task<DescribeJobDefinitionsResponse> DescribeJobDefinitionsAsync(DescribeJobDefinitionsRequest? request = null, CancellationToken ct = default) =>
        Run(c => c.DescribeJobDefinitions(request ?? new()), ct);

    // ---- scheduling policies ----------------------------------------------------------------------------------------

    public Task<SchedulingPolicyResponse> CreateSchedulingPolicyAsync(CreateSchedulingPolicyRequest request, CancellationToken ct = default) =>
        Run(c => { var r = c.CreateSchedulingPolicy(request); c.JournalResource("CreateSchedulingPolicy", request); return r; }, ct);

    public Task UpdateSchedulingPolicyAsync(UpdateSchedulingPolicyRequest request, CancellationToken ct = default) =>
        Run(c => { c.UpdateSchedulingPolicy(request); c.JournalResource("UpdateSchedulingPolicy", request); return true; }, ct);

    public Task DeleteSchedulingPolicyAsync(string arn, CancellationToken ct = default) =>
        Run(c => { c.DeleteSchedulingPolicy(arn); c.JournalResource("DeleteSchedulingPolicy", arn); return true; }, ct);

    /// <summary>AWS ListSchedulingPolicies: ARNs by name, 100 per page unless <c>maxResults</c> says fewer.</summary>
    public Task<ListSchedulingPoliciesResponse> ListSchedulingPoliciesAsync(ListSchedulingPoliciesRequest? request = null, CancellationToken ct = default) =>
        Run(c => c.ListSchedulingPolicies(request ?? new ListSchedulingPoliciesRequest()), ct);

    public Task<IReadOnlyList<SchedulingPolicyDetail>> DescribeSchedulingPoliciesAsync(IReadOnlyList<string>? arns = null, CancellationToken ct = default) =>
        Run(c => c.DescribeSchedulingPolicies(arns), ct);

    // ---- consumable resources -------------------------------------------------------------------------------------

    public Task<ConsumableResourceResponse> CreateConsumableResourceAsync(CreateConsumableResourceRequest request, CancellationToken ct = default) =>
        Run(c => { var r = c.CreateConsumableResource(request); c.JournalResource("CreateConsumableResource", request); return r; }, ct);

    public Task<ConsumableResourceResponse> UpdateConsumableResourceAsync(UpdateConsumableResourceRequest request, CancellationToken ct = default) =>
        Run(c => { var r = c.UpdateConsumableResource(request); c.JournalResource("UpdateConsumableResource", request); return r; }, ct);

    public Task DeleteConsumableResourceAsync(string consumableResource, CancellationToken ct = default) =>
        Run(c => { c.DeleteConsumableResource(consumableResource); c.JournalResource("DeleteConsumableResource", consumableResource); return true; }, ct);

    public Task<ConsumableResourceDetail> DescribeConsumableResourceAsync(string consumableResource, CancellationToken ct = default) =>
        Run(c => c.DescribeConsumableResource(consumableResource), ct);

    /// <summary>AWS ListConsumableResources: by name, 100 per page unless <c>maxResults</c> says fewer.</summary>
    public Task<ListConsumableResourcesResponse> ListConsumableResourcesAsync(ListConsumableResourcesRequest? request = null, CancellationToken ct = default) =>
        Run(c => c.ListConsumableResources(request ?? new ListConsumableResourcesRequest()), ct);

    /// <summary>AWS ListJobsByConsumableResource: the jobs (and array children) that need the resource, newest first.</summary>
    public Task<ListJobsByConsumableResourceResponse> ListJobsByConsumableResourceAsync(ListJobsByConsumableResourceRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Run(c => c.ListJobsByConsumableResource(request), ct);
    }

    // ---- jobs -------------------------------------------------------------------------------------------------------

    /// <summary>AWS SubmitJob. Returns once the job is accepted (SUBMITTED); nothing of a rejected request is kept.</summary>
    public Task<SubmitJobResponse> SubmitJobAsync(SubmitJobRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var p = new Problems();
        EngineCore.ValidateSubmitStateless(request, _options, p);
        p.ThrowIfAny();
        // A dedicated command (no delegate, no closure): SubmitJob is the hot request.
        return Post(new SubmitCommand(request, System.Diagnostics.Activity.Current?.Context), ct);
    }

    /// <summary>DescribeJobs for up to 100 job ids; unknown ids are left out.</summary>
    public Task<IReadOnlyList<JobDetail>> DescribeJobsAsync(IReadOnlyList<string> jobs, CancellationToken ct = default) =>
        Run(c => c.DescribeJobs(jobs), ct);

    public Task<ListJobsResponse> ListJobsAsync(ListJobsRequest request, CancellationToken ct = default) =>
        Run(c => c.ListJobs(request), ct);

    /// <summary>AWS CancelJob: SUBMITTED/PENDING/RUNNABLE jobs fail; STARTING/RUNNING ones are untouched (still succeeds).</summary>
    public Task CancelJobAsync(string jobId, string reason, CancellationToken ct = default) =>
        Run(c => { c.Cancel(jobId, reason); return true; }, ct);

    /// <summary>AWS TerminateJob: STARTING/RUNNING jobs are stopped and fail; earlier ones are cancelled.</summary>
    public Task TerminateJobAsync(string jobId, string reason, CancellationToken ct = default) =>
        Run(c => { c.Terminate(jobId, reason); return true; }, ct);

    /// <summary>Waits until the job reaches SUCCEEDED or FAILED and returns it then.</summary>
    public async Task<JobDetail> WaitForJobAsync(string jobId, CancellationToken ct = default)
    {
        var task = await Run(c => c.AddWaiter(jobId), ct).ConfigureAwait(false);
        try
        {
            return await task.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested && !task.IsCompleted)
        {
            // The caller gave up: its waiter goes (polling a long job with short tokens must not pile them up).
            _ = Run(c => { c.RemoveWaiter(jobId, task); return true; }, CancellationToken.None)
                .ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }
    }

    /// <summary>Every job state change from now on, in order, until the engine stops or the caller cancels.</summary>
    /// <param name="capacity">How many changes may wait for the reader before the oldest are dropped.</param>
    /// <param name="ct">Stops the stream.</param>
    public IAsyncEnumerable<JobStateChange> WatchJobsAsync(int capacity = 100_000, CancellationToken ct = default) =>
        WatchAsync(capacity, endedOnly: false, ct);

    /// <summary>
    /// The changes to SUCCEEDED or FAILED from now on, in order, until the engine stops or the caller cancels. The
    /// other transitions cost such a watcher nothing (no change is built for them).
    /// </summary>
    /// <param name="capacity">How many changes may wait for the reader before the oldest are dropped.</param>
    /// <param name="ct">Stops the stream.</param>
    public IAsyncEnumerable<JobStateChange> WatchEndedJobsAsync(int capacity = 100_000, CancellationToken ct = default) =>
        WatchAsync(capacity, endedOnly: true, ct);

    private async IAsyncEnumerable<JobStateChange> WatchAsync(int capacity, bool endedOnly, [EnumeratorCancellation] CancellationToken ct)
    {
        var reader = await Run(c => c.AddWatcher(capacity, endedOnly), ct).ConfigureAwait(false);
        try
        {
            while (await reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                while (reader.TryRead(out var change))
                {
                    yield return change;
                }
            }
        }
        finally
        {
            if (Volatile.Read(ref _disposed) == 0)
            {
                try
                {
                    await Run(c => { c.RemoveWatcher(reader); return true; }, CancellationToken.None).ConfigureAwait(false);
                }
                catch (ObjectDisposedException)
                {
                    // the engine stopped meanwhile
                }
            }
        }
    }

    // ---- tags -------------------------------------------------------------------------------------------------------

    public Task<IReadOnlyDictionary<string, string>> ListTagsForResourceAsync(string resourceArn, CancellationToken ct = default) =>
        Run(c => c.ListTagsForResource(resourceArn), ct);

    public Task TagResourceAsync(string resourceArn, IReadOnlyDictionary<string, string> tags, CancellationToken ct = default) =>
        Run(c => { c.TagResource(resourceArn, tags); c.JournalResource("TagResource", new EngineCore.TagRecord(resourceArn, tags, null)); return true; }, ct);

    public Task UntagResourceAsync(string resourceArn, IReadOnlyList<string> tagKeys, CancellationToken ct = default) =>
        Run(c => { c.UntagResource(resourceArn, tagKeys); c.JournalResource("UntagResource", new EngineCore.TagRecord(resourceArn, null, tagKeys)); return true; }, ct);

    // ---- logs and advice --------------------------------------------------------------------------------------------

    /// <summary>CloudWatch Logs' GetLogEvents over the engine's log streams.</summary>
    public GetLogEventsResponse GetLogEvents(string logStreamName, string? nextToken = null, int limit = 10_000) =>
        Logs.GetLogEvents(logStreamName, nextToken, limit);

    // ---- virtual time -----------------------------------------------------------------------------------------------

    /// <summary>
    /// Virtual time only: runs the engine until nothing is left to do — every timer fired, every job that can finish
    /// finished — moving the clock from event to event. Deterministic for the same calls and seed.
    /// </summary>
    public Task RunUntilIdleAsync(CancellationToken ct = default) => Run(c => { c.RunVirtual(long.MaxValue); return true; }, ct);

    /// <summary>Virtual time only: moves the clock forward by <paramref name="by"/>, running everything due meanwhile.</summary>
    public Task AdvanceTimeAsync(TimeSpan by, CancellationToken ct = default) =>
        Run(c => { c.RunVirtual(c.NowMs + (long)by.TotalMilliseconds); return true; }, ct);

    /// <summary>What recovery found when the engine opened its state directory (null without a journal).</summary>
    public RecoveryReport? Recovery => _core.Recovery;

    /// <summary>Counters of what the engine did.</summary>
    public EngineStatistics Statistics => _core.Statistics;

    /// <summary>Runs <paramref name="func"/> on the scheduling loop; the way tools and the simulator read state consistently.</summary>
    internal Task<T> Run<T>(Func<EngineCore, T> func, CancellationToken ct) => Post(new FuncCommand<T>(func), ct);

    private Task<T> Post<T>(Command<T> cmd, CancellationToken ct)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return Task.FromException<T>(new ObjectDisposedException(nameof(BatchEngine)));
        }

        // A request whose token is cancelled before it is queued is not applied (as when it is cancelled while it waits
        // for room); once queued, the loop applies it and the task reports that.
        if (ct.IsCancellationRequested)
        {
            return Task.FromCanceled<T>(ct);
        }

        var write = _commands.WriteAsync(cmd, ct);
        if (write.IsCompletedSuccessfully)
        {
            return cmd.Task;
        }

        return WriteSlowAsync(write, cmd);
    }

    private static async Task<T> WriteSlowAsync<T>(ValueTask write, Command<T> cmd)
    {
        try
        {
            await write.ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new ObjectDisposedException(nameof(BatchEngine));
        }

        return await cmd.Task.ConfigureAwait(false);
    }

    /// <summary>
    /// The scheduling loop: drain requests and driver events, fire due timers, run a scheduling cycle when something
    /// changed; sleep until a request, an event or the next timer.
    /// </summary>
    private async Task RunLoopAsync()
    {
        var reader = _commands.Reader;
        var events = _core.EventReader;
        var virtualTime = _core.IsVirtual;
        var spinBeforeWait = false; // the last busy round took requests
        while (true)
        {
            var did = false;
            _core.RefreshClock();
            var journaling = _core.Journaling;
            var taken = 0;
            for (; taken < 4096 && reader.TryRead(out var cmd); taken++)
            {
                if (_core.Stopping && !cmd.IsControl)
                {
                    // Queued behind the stop (a writer that waited for room): refused, not accepted by an engine that
                    // will neither run nor journal it.
                    cmd.Fail(new ObjectDisposedException(nameof(BatchEngine)));
                    continue;
                }

                cmd.Execute(_core);
                if (journaling)
                {
                    _executed.Add(cmd); // acknowledged only once its records are durable
                }
                else
                {
                    cmd.Complete();
                }

                did = true;
            }

            _commands.Release(taken);

            did |= DrainEventsSafely();
            if (!virtualTime)
            {
                did |= FireDueTimersSafely();
            }

            if (_core.Dirty)
            {
                RunCycleSafely();
                did = true;
            }

            if (journaling)
            {
                // Group commit: one write + one fsync for the whole batch, then the acknowledgements (on the journal's
                // flusher: the loop goes on with the next batch while this one is fsynced).
                _core.CommitJournal(_executed);
                _executed.Clear();
            }

            if (did)
            {
                spinBeforeWait = taken > 0;
                continue;
            }

            if (_stop.IsCancellationRequested && reader.Completion.IsCompleted)
            {
                return;
            }

            // Submitters that just got answers submit again: look again a few times, yielding the core, before paying
            // for an asynchronous wait and the wake-up that ends it (one per request when submitters trickle in). Not for
            // running attempts: in-process handlers wait in this thread's own queue (InProcessHostDriver.Launch) and run
            // here as soon as the loop awaits — spinning held them up (2-vCPU host, 10,000 no-op jobs: 53 → 38 ms and
            // 47 → 31 ms median in alternating runs).
            if (!virtualTime && spinBeforeWait && SpinForWork(reader, events))
            {
                continue;
            }

            spinBeforeWait = false;

            // Idle: wait for a request, a driver event or (real time) the next timer.
            var next = virtualTime ? null : _core.NextTimerDue();
            try
            {
                await WaitForWorkAsync(reader, events, next).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // timer due or stopping
            }

            if (reader.Completion.IsCompleted && !reader.TryPeek(out _) && _stop.IsCancellationRequested)
            {
                DrainEventsSafely();
                return;
            }
        }
    }

    /// <summary>Up to <see cref="IdleSpins"/> yields while nothing is there: true as soon as a request or an event is.</summary>
    private static bool SpinForWork(ChannelReader<ICommand> reader, ChannelReader<HostEvent> events)
    {
        for (var i = 0; i < IdleSpins; i++)
        {
            Thread.Yield();
            if (events.TryPeek(out _) || reader.TryPeek(out _))
            {
                return true;
            }
        }

        return false;
    }

    private const int IdleSpins = 16;

    private void RunCycleSafely()
    {
        try
        {
            _core.Settle();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A bug must not kill the loop (nor make it spin on the same failing cycle): the engine keeps serving,
            // the next change triggers a new cycle, and the error is kept for diagnostics.
            _core.ClearDirty();
            OnLoopError(e);
        }
    }

    // Driver events and timers are taken off their queues before they are handled: after a failure the loop goes on
    // with the next one (a driver whose Terminate throws on a job's timeout killed the loop before).

    private bool DrainEventsSafely()
    {
        try
        {
            return _core.DrainEvents();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            OnLoopError(e);
            return true;
        }
    }

    private bool FireDueTimersSafely()
    {
        try
        {
            return _core.FireDueTimers(_core.NowMs);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            OnLoopError(e);
            return true;
        }
    }

    private void OnLoopError(Exception e) => _core.ReportUnexpected(e);

    /// <summary>The last unexpected error the loop survived (null when none): for diagnostics and tests.</summary>
    public Exception? LastLoopError => _core.LastUnexpectedError;

    private async Task WaitForWorkAsync(ChannelReader<ICommand> reader, ChannelReader<HostEvent> events, long? nextDue)
    {
        // A wait still pending from an earlier round is kept, not asked for again: a single-reader channel cancels the
        // waiter it already has when asked for a new one (an exception per round on the busy path).
        var a = _commandWait;
        if (a is null)
        {
            var wait = reader.WaitToReadAsync(_stop.Token);
            if (wait.IsCompleted)
            {
                await wait.ConfigureAwait(false);
                return;
            }

            a = wait.AsTask();
        }

        var b = _eventWait;
        if (b is null)
        {
            var wait = events.WaitToReadAsync(_stop.Token);
            if (wait.IsCompleted)
            {
                _commandWait = a.IsCompleted ? null : a;
                await wait.ConfigureAwait(false);
                return;
            }

            b = wait.AsTask();
        }

        if (!a.IsCompleted && !b.IsCompleted)
        {
            if (nextDue is { } due)
            {
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                var delay = Task.Delay(TimeSpan.FromMilliseconds(Math.Max(0, due - _core.NowMs)), _core.Time, cts.Token);
                await Task.WhenAny(a, b, delay).ConfigureAwait(false);
                await cts.CancelAsync().ConfigureAwait(false);
            }
            else
            {
                await Task.WhenAny(a, b).ConfigureAwait(false);
            }
        }

        _commandWait = a.IsCompleted ? null : a;
        _eventWait = b.IsCompleted ? null : b;
    }

    /// <summary>
    /// Graceful stop, step 1: from now on SubmitJob is refused and nothing new is placed; attempts already running go on
    /// (wait for them, then <see cref="StopAsync"/>). Queues and compute environments keep their states and nothing is
    /// journaled: an engine restarted from the same state directory takes jobs again, and its waiting jobs are placed.
    /// </summary>
    public Task StopTakingJobsAsync(CancellationToken ct = default) => Run(c => { c.Draining = true; return true; }, ct);

    /// <summary>
    /// Stops the engine: no new requests; attempts still running are terminated (SIGTERM, then SIGKILL after the
    /// grace period) and their ends awaited for up to <paramref name="timeout"/>; those still running then are killed
    /// (in-process handlers abandoned); drivers are disposed.
    /// </summary>
    /// <param name="timeout">How long to wait for running attempts to end; <see cref="Timeout.InfiniteTimeSpan"/> waits as long as they take.</param>
    /// <remarks>A second call (or <see cref="DisposeAsync"/>) returns the first call's task: it completes when the engine has stopped.</remarks>
    public Task StopAsync(TimeSpan timeout)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "must be zero or more, or Timeout.InfiniteTimeSpan");
        }

        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return _stopped.Task;
        }

        return StopOnceAsync(timeout);
    }

    /// <summary>Completes when the first <see cref="StopAsync"/> has stopped the engine (every later call returns it).</summary>
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task StopOnceAsync(TimeSpan timeout)
    {
        try
        {
            await StopCoreAsync(timeout).ConfigureAwait(false);
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    private async Task StopCoreAsync(TimeSpan timeout)
    {
        // Task.WaitAsync takes up to ~49.7 days; longer (or infinite) means: no limit.
        if (timeout == Timeout.InfiniteTimeSpan || timeout.TotalMilliseconds >= uint.MaxValue - 1)
        {
            timeout = Timeout.InfiniteTimeSpan;
        }

        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        TimeSpan Left() => timeout == Timeout.InfiniteTimeSpan
            ? Timeout.InfiniteTimeSpan
            : TimeSpan.FromTicks(Math.Max(0, (timeout - System.Diagnostics.Stopwatch.GetElapsedTime(started)).Ticks));
        bool TimeLeft() => timeout == Timeout.InfiniteTimeSpan || Left() > TimeSpan.Zero;
        try
        {
            // With a journal, the journal is closed first: attempts stopped now stay RUNNING in it, and the next start
            // ends them as host failures and retries them per retryStrategy instead of recording them FAILED.
            var cmd = new FuncCommand<bool>(c => { c.Stopping = true; c.CommitJournal(); c.CloseJournal(); c.TerminateAll("Engine stopped"); return true; }) { IsControl = true };
            if (_commands.TryWriteControl(cmd))
            {
                await cmd.Task.WaitAsync(timeout).ConfigureAwait(false);
            }
        }
        catch (TimeoutException)
        {
            // the kill below still runs
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _core.ReportUnexpected(e);
        }

        var running = true;
        try
        {
            while (TimeLeft())
            {
                var check = new FuncCommand<int>(c => c.RunningAttempts) { IsControl = true };
                if (!_commands.TryWriteControl(check) || await check.Task.WaitAsync(Left()).ConfigureAwait(false) == 0)
                {
                    running = false;
                    break;
                }

                await Task.Delay(20).ConfigureAwait(false);
            }
        }
        catch (TimeoutException)
        {
            // timed out: kill what runs
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _core.ReportUnexpected(e);
        }

        if (running)
        {
            // The timeout passed with attempts still running (ignoring SIGTERM, or a grace period longer than the
            // timeout): kill them now (SIGKILL; in-process handlers are abandoned) rather than wait out their grace.
            try
            {
                var kill = new FuncCommand<bool>(c => { c.TerminateAll("Engine stopped", TimeSpan.Zero); return true; }) { IsControl = true };
                if (_commands.TryWriteControl(kill))
                {
                    await kill.Task.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                }
            }
            catch (TimeoutException)
            {
                // a loop that does not answer: the drivers' disposal below stops what they run
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _core.ReportUnexpected(e); // whatever failed, the drivers are still disposed (nothing is left running)
            }
        }

        _commands.Complete();
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _core.ReportUnexpected(e); // a loop that died must not keep the drivers from being disposed
        }

        _core.CompleteWatchers();
        try
        {
            _core.CloseJournal();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _core.ReportUnexpected(e); // a failing disk must not keep the drivers from being disposed either
        }

        await _core.DisposeDriversAsync().ConfigureAwait(false);
        _core.Telemetry.Dispose();
        while (_commands.Reader.TryRead(out var left))
        {
            left.Fail(new ObjectDisposedException(nameof(BatchEngine)));
        }

        _stop.Dispose();
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => new(StopAsync(_options.TerminationGracePeriod + TimeSpan.FromSeconds(5)));

    private interface ICommand : Journal.IJournalAck
    {
        /// <summary>An engine-control request (the stop's own steps): runs even once the engine is stopping.</summary>
        bool IsControl { get; }

        void Execute(EngineCore core);

        void Complete();

        void Fail(Exception e);
    }

    /// <summary>A request for the loop; it is its own completion source, so a request costs one object and its task.</summary>
    private abstract class Command<T>() : TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously), ICommand
    {
        private T? _result;
        private Exception? _error;

        public bool IsControl { get; init; }

        public void Execute(EngineCore core)
        {
            try
            {
                _result = Invoke(core);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _error = e;
            }
        }

        public void Complete()
        {
            if (_error is not null)
            {
                TrySetException(_error);
            }
            else
            {
                TrySetResult(_result!);
            }
        }

        public void Fail(Exception e) => TrySetException(e);

        public void Acknowledge(Exception? error)
        {
            if (error is null)
            {
                Complete();
            }
            else
            {
                Fail(error);
            }
        }

        protected abstract T Invoke(EngineCore core);
    }

    private sealed class FuncCommand<T>(Func<EngineCore, T> func) : Command<T>
    {
        protected override T Invoke(EngineCore core) => func(core);
    }

    private sealed class SubmitCommand(SubmitJobRequest request, System.Diagnostics.ActivityContext? submitter) : Command<SubmitJobResponse>
    {
        protected override SubmitJobResponse Invoke(EngineCore core) => core.SubmitJob(request, submitter);
    }
}
