using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace BatchCore.Tests.Telemetry;

/// <summary>In <see cref="ActivityListenerCollection"/>: its ActivityListener is process-wide.</summary>
[Collection(ActivityListenerCollection.Name)]
public class TelemetryTests
{
    [Fact]
    public async Task Metrics_CountSubmittedStartedSucceededFailed_ByQueue_AndObserveGauges()
    {
        var counts = new ConcurrentDictionary<string, long>();
        var histograms = new ConcurrentDictionary<string, int>();
        var gauges = new ConcurrentDictionary<string, double>();
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1);
        var scope = await engine.Run(c => (object)c, TestContext.Current.CancellationToken); // this engine's Meter only (tests run in parallel)
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "BatchCore" && ReferenceEquals(instrument.Meter.Scope, scope))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        var queueTags = new ConcurrentBag<object?>();
        var runTimes = new ConcurrentBag<double>();
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) =>
        {
            Assert.Equal("queue", tags[0].Key);
            queueTags.Add(tags[0].Value);
            counts.AddOrUpdate(i.Name, v, (_, old) => old + v);
        });
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) =>
        {
            if (i is Histogram<double>)
            {
                Assert.Equal(("queue", (object?)"q"), (tags[0].Key, tags[0].Value));
                histograms.AddOrUpdate(i.Name, 1, (_, old) => old + 1);
                if (i.Name == "batchcore.job.run_time")
                {
                    runTimes.Add(v);
                }
            }
            else
            {
                gauges[i.Name] = v;
            }
        });
        listener.SetMeasurementEventCallback<int>((i, v, _, _) => gauges[i.Name] = v);
        listener.Start();

        await engine.SubmitJobAsync(TestEngine.Job("ok", runSeconds: 10));
        await engine.SubmitJobAsync(TestEngine.Job("bad", exitCode: 1, runSeconds: 10));
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        listener.RecordObservableInstruments();
        Assert.Equal(1, gauges["batchcore.queue.depth"]);
        Assert.Equal(1, gauges["batchcore.jobs.running"]);
        Assert.Equal(1, gauges["batchcore.hosts"]);
        Assert.Equal(1.0, gauges["batchcore.compute_environment.utilization"]);

        await engine.RunUntilIdleAsync();
        Assert.Equal(2, counts["batchcore.jobs.submitted"]);
        Assert.Equal(2, counts["batchcore.jobs.started"]);
        Assert.Equal(1, counts["batchcore.jobs.succeeded"]);
        Assert.Equal(1, counts["batchcore.jobs.failed"]);
        Assert.Equal(2, histograms["batchcore.job.run_time"]);
        Assert.Equal(2, histograms["batchcore.job.wait_time"]);
        Assert.Equal(2, histograms["batchcore.dispatch.latency"]);
        Assert.All(queueTags, t => Assert.Equal("q", t));
        Assert.Equal([10.0, 10.0], runTimes); // both ran their 10 simulated seconds
    }

    [Fact]
    public async Task Traces_OneActivityPerAttempt_LinkedToTheSubmitter()
    {
        var stopped = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is "BatchCore" or "test",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => stopped.Add(a),
        };
        ActivitySource.AddActivityListener(listener);
        using var source = new ActivitySource("test");
        await using var engine = await TestEngine.WithQueueAsync();
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("retry", retry: new BatchCore.Model.RetryStrategy { Attempts = 2 }));
        ActivityTraceId traceId;
        string jobId;
        using (var submit = source.StartActivity("submit"))
        {
            traceId = submit!.TraceId;
            jobId = (await engine.SubmitJobAsync(TestEngine.Job(def: "retry", exitCode: 1, failingAttempts: 1))).JobId;
        }

        await engine.RunUntilIdleAsync();
        // The listener hears every engine of the process (tests run in parallel, and engines with the same seed give the
        // same job ids): keep this job's attempts, and assert the ones of this job id link to this submitter.
        var ofThisId = stopped.Where(a => a.OperationName == "batchcore.attempt" && (string?)a.GetTagItem("batchcore.job.id") == jobId).ToList();
        var attempts = ofThisId.Where(a => a.Links.Any(l => l.Context.TraceId == traceId)).ToList();
        Assert.Equal(2, attempts.Count);
        Assert.All(attempts, a => Assert.Equal(traceId, Assert.Single(a.Links).Context.TraceId));
        Assert.Contains(attempts, a => (string?)a.GetTagItem("batchcore.job.status") == "SUCCEEDED");
    }

    /// <summary>
    /// A metrics listener whose callback throws (it runs inside the engine's state changes) is reported, and the job's
    /// state change completes: the job still runs and ends.
    /// </summary>
    [Fact]
    public async Task ThrowingListener_IsReported_AndTheJobStillEnds()
    {
        var reported = new ConcurrentQueue<Exception>();
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 1, options: new BatchCore.BatchEngineOptions { UnexpectedError = reported.Enqueue });
        var scope = await engine.Run(c => (object)c, TestContext.Current.CancellationToken);
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "batchcore.jobs.started" && ReferenceEquals(instrument.Meter.Scope, scope))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, _, _) => throw new InvalidOperationException("listener broke"));
        listener.Start();

        var job = await engine.SubmitJobAsync(TestEngine.Job("ok", runSeconds: 10));
        await engine.RunUntilIdleAsync();

        Assert.Equal(BatchCore.Model.JobStatus.SUCCEEDED, (await engine.DescribeAsync(job.JobId)).Status);
        Assert.Equal("listener broke", Assert.Single(reported).Message);
    }
}
