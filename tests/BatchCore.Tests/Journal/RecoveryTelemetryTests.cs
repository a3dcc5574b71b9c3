using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using BatchCore.Model;

namespace BatchCore.Tests.Journal;

/// <summary>
/// Recovery replays what the previous run did; its telemetry counted that already. A restart reports only what happens
/// in this run: an attempt the restart cut short and that has no retry left fails now, and counts. The stop before it
/// counted no end for that attempt: a journaled engine's stop does not journal what it terminates.
/// </summary>
public sealed class RecoveryTelemetryTests() : StateDirectoryTest("bc-rectel-")
{
    /// <summary>Counter totals per engine (Meter.Scope), from the moment the instruments are created.</summary>
    private sealed class Counters : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentDictionary<(object? Scope, string Name), long> _totals = new();

        public Counters()
        {
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "BatchCore")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((i, v, _, _) => _totals.AddOrUpdate((i.Meter.Scope, i.Name), v, (_, old) => old + v));
            _listener.Start();
        }

        public long Of(object scope, string name) => _totals.GetValueOrDefault((scope, name));

        public void Dispose() => _listener.Dispose();
    }

    private static async Task SetUpAsync(BatchEngine engine, int attempts)
    {
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 4, MemoryMiB = 16384 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def", retry: new RetryStrategy { Attempts = attempts }));
    }

    [Fact]
    public async Task Restart_DoesNotCountReplayedSubmissionsOrEnds_ButCountsWhatTheRestartFails()
    {
        using var counters = new Counters();
        DateTimeOffset stoppedAt;
        object first;
        await using (var engine = new BatchEngine(Options()))
        {
            first = await engine.Run(c => (object)c, TestContext.Current.CancellationToken);
            await SetUpAsync(engine, attempts: 1);
            await engine.SubmitJobAsync(TestEngine.Job("ok", runSeconds: 5));
            await engine.SubmitJobAsync(TestEngine.Job("bad", exitCode: 1, runSeconds: 5));
            await engine.SubmitJobAsync(TestEngine.Job("arr", runSeconds: 5) with { ArrayProperties = new ArrayProperties { Size = 3 } });
            await engine.RunUntilIdleAsync();
            await engine.SubmitJobAsync(TestEngine.Job("cut", runSeconds: 1_000));
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(10));
            stoppedAt = engine.UtcNow;
        }

        Assert.Equal(6, counters.Of(first, "batchcore.jobs.submitted")); // ok, bad, 3 children, cut
        Assert.Equal(4, counters.Of(first, "batchcore.jobs.succeeded"));
        Assert.Equal(1, counters.Of(first, "batchcore.jobs.failed")); // the stop's terminate of "cut" is not durable: the restart counts its end

        await using (var engine = new BatchEngine(Options(stoppedAt)))
        {
            var second = await engine.Run(c => (object)c, TestContext.Current.CancellationToken);
            Assert.Equal(1, engine.Recovery!.Failed); // "cut" ran when the engine stopped and has no retry left
            Assert.Equal(0, counters.Of(second, "batchcore.jobs.submitted"));
            Assert.Equal(0, counters.Of(second, "batchcore.jobs.started"));
            Assert.Equal(0, counters.Of(second, "batchcore.jobs.succeeded"));
            Assert.Equal(1, counters.Of(second, "batchcore.jobs.failed"));
        }
    }
}
