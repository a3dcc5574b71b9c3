using System.Diagnostics;
using System.Diagnostics.Metrics;
using BatchCore.Dispatch;
using BatchCore.Jobs;

namespace BatchCore.Telemetry;

/// <summary>
/// BatchCore's metrics (Meter <c>BatchCore</c>) and traces (ActivitySource <c>BatchCore</c>). Instruments are
/// checked for listeners before any tag is built, so an engine nobody observes pays one branch per event.
/// </summary>
internal sealed class BatchCoreTelemetry : IDisposable
{
    /// <summary>The name of the Meter and of the ActivitySource.</summary>
    public const string Name = "BatchCore";

    private static readonly ActivitySource Source = new(Name);
    private readonly Meter _meter;
    private readonly Counter<long> _submitted;
    private readonly Counter<long> _started;
    private readonly Counter<long> _succeeded;
    private readonly Counter<long> _failed;
    private readonly Histogram<double> _dispatchLatency;
    private readonly Histogram<double> _waitTime;
    private readonly Histogram<double> _runTime;
    private volatile JobQueueState[] _queues = [];
    private volatile ComputeEnvironmentState[] _ces = [];

    private readonly Action<Exception>? _onListenerError;

    /// <param name="scope">Identifies the engine: <c>Meter.Scope</c>, so a listener can tell engines of one process apart.</param>
    /// <param name="onListenerError">
    /// Told of an exception a listener's callback threw: listeners run inside the engine's state changes, which must
    /// complete whatever they do.
    /// </param>
    public BatchCoreTelemetry(object? scope = null, Action<Exception>? onListenerError = null)
    {
        _onListenerError = onListenerError;
        _meter = new Meter(new MeterOptions(Name) { Scope = scope });
        _submitted = _meter.CreateCounter<long>("batchcore.jobs.submitted", "{job}", "Jobs accepted by SubmitJob (array children included).");
        _started = _meter.CreateCounter<long>("batchcore.jobs.started", "{job}", "Attempts that reached STARTING.");
        _succeeded = _meter.CreateCounter<long>("batchcore.jobs.succeeded", "{job}", "Jobs that ended SUCCEEDED.");
        _failed = _meter.CreateCounter<long>("batchcore.jobs.failed", "{job}", "Jobs that ended FAILED.");
        _dispatchLatency = _meter.CreateHistogram<double>("batchcore.dispatch.latency", "s", "From RUNNABLE to placed on a host (STARTING).");
        _waitTime = _meter.CreateHistogram<double>("batchcore.job.wait_time", "s", "From createdAt to the attempt's start (RUNNING).");
        _runTime = _meter.CreateHistogram<double>("batchcore.job.run_time", "s", "From an attempt's start to its end.");
        _meter.CreateObservableGauge("batchcore.queue.depth", ObserveDepth, "{job}", "RUNNABLE jobs per queue.");
        _meter.CreateObservableGauge("batchcore.jobs.running", ObserveRunning, "{job}", "STARTING and RUNNING jobs per queue.");
        _meter.CreateObservableGauge("batchcore.hosts", ObserveHosts, "{host}", "Hosts per compute environment.");
        _meter.CreateObservableGauge("batchcore.compute_environment.utilization", ObserveUtilization, "1", "vCPUs in use / vCPUs of the hosts, per compute environment.");
    }

    /// <summary>Called by the loop when the set of queues or CEs changes (gauges read these copies, never the loop's dictionaries).</summary>
    public void SetResources(IEnumerable<JobQueueState> queues, IEnumerable<ComputeEnvironmentState> ces)
    {
        _queues = [.. queues];
        _ces = [.. ces];
    }

    public void Submitted(Job job, int count)
    {
        if (_submitted.Enabled)
        {
            try
            {
                _submitted.Add(count, new KeyValuePair<string, object?>("queue", job.Queue.Name));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _onListenerError?.Invoke(e);
            }
        }
    }

    /// <summary>
    /// Records a state change (counters, histograms, the attempt's activity). A listener callback that throws is reported
    /// and the change goes on: the job's state change must complete (journal, dependents, waiters).
    /// </summary>
    public void Transition(Job job, JobState prev, JobState next, long nowMs)
    {
        try
        {
            Record(job, prev, next, nowMs);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Activity.Current = null; // an activity listener that threw may have left the attempt ambient on the loop
            _onListenerError?.Invoke(e);
        }
    }

    private void Record(Job job, JobState prev, JobState next, long nowMs)
    {
        var queue = new KeyValuePair<string, object?>("queue", job.Queue.Name);
        switch (next)
        {
            case JobState.Starting:
                if (_started.Enabled)
                {
                    _started.Add(1, queue);
                }

                if (_dispatchLatency.Enabled)
                {
                    _dispatchLatency.Record((nowMs - job.RunnableSince) / 1000.0, queue);
                }

                StartActivity(job);
                break;
            case JobState.Running:
                if (_waitTime.Enabled)
                {
                    _waitTime.Record((nowMs - job.CreatedAt) / 1000.0, queue);
                }

                break;
            case JobState.Succeeded when !job.IsArrayParent:
                if (_succeeded.Enabled)
                {
                    _succeeded.Add(1, queue);
                }

                break;
            case JobState.Failed when !job.IsArrayParent:
                if (_failed.Enabled)
                {
                    _failed.Add(1, queue);
                }

                break;
            default:
                break;
        }

        if (prev is JobState.Starting or JobState.Running && next is not (JobState.Starting or JobState.Running))
        {
            if (prev == JobState.Running && _runTime.Enabled)
            {
                _runTime.Record((nowMs - job.AttemptStartedAt) / 1000.0, queue);
            }

            StopActivity(job, next);
        }
    }

    /// <summary>Whether anyone listens for attempt activities (an attempt kept without an object cannot carry one).</summary>
    public static bool TracesAttempts => Source.HasListeners();

    /// <summary>
    /// <paramref name="count"/> array children placed and started together (RUNNABLE → STARTING → RUNNING at
    /// <paramref name="nowMs"/>): what <see cref="Transition"/> records for each, without an object per child.
    /// </summary>
    public void StartedMany(JobQueueState q, int count, long runnableSince, long createdAt, long nowMs)
    {
        try
        {
            var queue = new KeyValuePair<string, object?>("queue", q.Name);
            if (_started.Enabled)
            {
                _started.Add(count, queue);
            }

            for (var i = 0; _dispatchLatency.Enabled && i < count; i++)
            {
                _dispatchLatency.Record((nowMs - runnableSince) / 1000.0, queue);
            }

            for (var i = 0; _waitTime.Enabled && i < count; i++)
            {
                _waitTime.Record((nowMs - createdAt) / 1000.0, queue);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _onListenerError?.Invoke(e);
        }
    }

    /// <summary><paramref name="count"/> array children that started at <paramref name="startedAt"/> succeeded together (RUNNING → SUCCEEDED).</summary>
    public void SucceededMany(JobQueueState q, int count, long startedAt, long nowMs)
    {
        try
        {
            var queue = new KeyValuePair<string, object?>("queue", q.Name);
            if (_succeeded.Enabled)
            {
                _succeeded.Add(count, queue);
            }

            for (var i = 0; _runTime.Enabled && i < count; i++)
            {
                _runTime.Record((nowMs - startedAt) / 1000.0, queue);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _onListenerError?.Invoke(e);
        }
    }

    /// <summary>One activity per attempt, linked to the activity that submitted the job.</summary>
    private static void StartActivity(Job job)
    {
        if (!Source.HasListeners())
        {
            return;
        }

        var links = job.SubmitterContext is { } ctx ? new[] { new ActivityLink(ctx) } : null;
        var activity = Source.StartActivity("batchcore.attempt", ActivityKind.Internal, parentContext: default, links: links);
        if (activity is null)
        {
            return;
        }

        activity.SetTag("batchcore.job.id", job.Id);
        activity.SetTag("batchcore.job.name", job.Name);
        activity.SetTag("batchcore.job.queue", job.Queue.Name);
        activity.SetTag("batchcore.job.attempt", job.AttemptCount + 1);
        activity.SetTag("batchcore.host", job.Host?.Name);
        job.Activity = activity;
        Activity.Current = null; // the loop must not carry the attempt as its ambient activity
    }

    private static void StopActivity(Job job, JobState next)
    {
        if (job.Activity is not { } activity)
        {
            return;
        }

        activity.SetTag("batchcore.job.status", next.ToAws());
        if (next == JobState.Failed)
        {
            activity.SetStatus(ActivityStatusCode.Error, job.StatusReason);
        }

        activity.Stop();
        job.Activity = null;
    }

    private IEnumerable<Measurement<int>> ObserveDepth()
    {
        foreach (var q in _queues)
        {
            yield return new Measurement<int>(q.RunnableCount, new KeyValuePair<string, object?>("queue", q.Name));
        }
    }

    private IEnumerable<Measurement<int>> ObserveRunning()
    {
        foreach (var q in _queues)
        {
            yield return new Measurement<int>(q.RunningCount, new KeyValuePair<string, object?>("queue", q.Name));
        }
    }

    private IEnumerable<Measurement<int>> ObserveHosts()
    {
        foreach (var ce in _ces)
        {
            yield return new Measurement<int>(ce.HostCount, new KeyValuePair<string, object?>("compute_environment", ce.Name));
        }
    }

    private IEnumerable<Measurement<double>> ObserveUtilization()
    {
        foreach (var ce in _ces)
        {
            var capacity = ce.CapacityVcpuMilli;
            yield return new Measurement<double>(capacity == 0 ? 0 : (double)ce.UsedVcpuMilli / capacity, new KeyValuePair<string, object?>("compute_environment", ce.Name));
        }
    }

    public void Dispose() => _meter.Dispose();
}
