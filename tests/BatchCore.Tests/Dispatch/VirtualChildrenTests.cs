using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using BatchCore.Model;
using BatchCore.Provisioning;
using BatchCore.Tests.Properties;
using BatchCore.Tests.Telemetry;

namespace BatchCore.Tests.Dispatch;

/// <summary>
/// Virtual array children (src/BatchCore/Dispatch/EngineCore.Cohorts.cs): a plain array on simulated EC2 hosts keeps
/// no object per child until one is looked at, and reads exactly as the per-child path would. In the
/// <see cref="ActivityListenerCollection"/>: another test's activity listener would make every attempt an object.
/// </summary>
[Collection(ActivityListenerCollection.Name)]
public sealed class VirtualChildrenTests
{
    private static Task<(int Live, int Spawned, int Folded)> StateAsync(BatchEngine engine, string arrayId) =>
        engine.Run(c => { c.Settle(); return (c.VirtualArrayCount, c.VirtualArraysSpawned, c.FoldedChildren(arrayId)); }, CancellationToken.None);

    [Fact]
    public async Task A_plain_array_keeps_no_object_per_child_until_one_is_looked_at()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 2, vcpus: 4, memoryMiB: 8192);
        var id = (await engine.SubmitJobAsync(TestEngine.Job(arraySize: 100, runSeconds: 10))).JobId;
        var start = engine.UtcNow.ToUnixTimeMilliseconds();
        Assert.Equal((1, 1, 0), await StateAsync(engine, id));

        // The parent's summary is kept by counts: reading it looks at no child.
        var parent = await engine.DescribeAsync(id);
        Assert.Equal(8, parent.ArrayProperties!.StatusSummary![JobStatus.RUNNING]);
        Assert.Equal(92, parent.ArrayProperties.StatusSummary[JobStatus.RUNNABLE]);
        Assert.Equal(8, await engine.Run(c => c.RunningAttempts, CancellationToken.None));
        Assert.Equal((1, 1, 0), await StateAsync(engine, id));

        // One child looked at: the array's children become objects, with what the per-child path would have given them.
        var child = await engine.DescribeAsync(id + ":3");
        Assert.Equal(0, (await StateAsync(engine, id)).Live);
        Assert.Equal(JobStatus.RUNNING, child.Status);
        Assert.Equal(start, child.StartedAt);
        Assert.Equal(JobStatus.RUNNABLE, (await engine.DescribeAsync(id + ":50")).Status);

        await engine.RunUntilIdleAsync();
        var done = await engine.DescribeAsync(id);
        Assert.Equal(JobStatus.SUCCEEDED, done.Status);
        Assert.Equal(start + (13 * 10_000), done.StoppedAt); // 100 children, 8 at a time: 13 rounds of 10 s
    }

    [Fact]
    public async Task Children_that_end_virtual_are_folded_with_their_hosts_and_times()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 2, vcpus: 4, memoryMiB: 8192);
        var id = (await engine.SubmitJobAsync(TestEngine.Job(arraySize: 20, runSeconds: 10))).JobId;
        var start = engine.UtcNow.ToUnixTimeMilliseconds();
        await engine.RunUntilIdleAsync();

        Assert.Equal((0, 1, 20), await StateAsync(engine, id)); // never an object: folded from the cohorts
        var children = await engine.DescribeJobsAsync(Enumerable.Range(0, 20).Select(i => id + ":" + i.ToString(CultureInfo.InvariantCulture)).ToList());
        Assert.All(children, c => Assert.Equal(JobStatus.SUCCEEDED, c.Status));
        var round = children.Select(c => (c.StartedAt - start) / 10_000).ToList();
        Assert.Equal([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2], round); // index order, 8 per round
        Assert.All(children, c => Assert.Equal(c.StartedAt + 10_000, c.StoppedAt));
        Assert.Equal(["ce-h0", "ce-h1"], children.Select(c => EngineProbe.HostOf(c.Attempts.Single())).Distinct().Order().ToList());
        var statistics = engine.Statistics;
        Assert.Equal((20, 20, 21), (statistics.Started, statistics.Placements, statistics.Succeeded)); // and the parent
    }

    public static TheoryData<string> PerChildCases => ["SEQUENTIAL", "timeout", "failing attempts", "concurrency cap", "fair share", "watcher"];

    /// <summary>An array whose children can differ from one another, or an engine that records every child, keeps objects.</summary>
    [Theory]
    [MemberData(nameof(PerChildCases))]
    public async Task Arrays_whose_children_can_differ_keep_an_object_per_child(string why)
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1);
        {
            if (why == "fair share")
            {
                var policy = (await engine.CreateSchedulingPolicyAsync(new() { Name = "fair", FairsharePolicy = new() { ShareDecaySeconds = 600 } })).Arn;
                await engine.CreateJobQueueAsync(new() { JobQueueName = "fq", Priority = 2, SchedulingPolicyArn = policy, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
            }

            if (why == "watcher")
            {
                await engine.Run(c => c.AddWatcher(1024), CancellationToken.None);
            }

            await engine.RegisterJobDefinitionAsync(TestEngine.Definition("timed", timeout: 60));
            var request = why switch
            {
                "SEQUENTIAL" => TestEngine.Job(arraySize: 5, dependsOn: [new JobDependency { Type = ArrayJobDependency.SEQUENTIAL }]),
                "timeout" => TestEngine.Job(arraySize: 5, def: "timed"),
                "failing attempts" => TestEngine.Job(arraySize: 5, exitCode: 1, failingAttempts: 1),
                "concurrency cap" => TestEngine.Job(arraySize: 5, arrayMaxConcurrency: 2),
                "fair share" => TestEngine.Job(arraySize: 5, queue: "fq", share: "a"),
                _ => TestEngine.Job(arraySize: 5),
            };
            var id = (await engine.SubmitJobAsync(request)).JobId;
            Assert.Equal((0, 0), (await StateAsync(engine, id)) is var s ? (s.Live, s.Spawned) : default);
            await engine.RunUntilIdleAsync();
            Assert.NotNull((await engine.DescribeAsync(id)).StoppedAt);
        }
    }

    /// <summary>
    /// A head that no host takes is made an object alone (it goes the per-child way: reasons, provisioning); the rest stay
    /// virtual, and a backfilling queue does not make the next ones objects one by one to find they do not fit either.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_blocked_array_makes_only_its_head_an_object(bool backfill)
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 2, memoryMiB: 4096, extensions: new JobQueueExtensions { Backfill = backfill });
        var id = (await engine.SubmitJobAsync(TestEngine.Job(arraySize: 50, runSeconds: 10))).JobId;
        await StateAsync(engine, id);
        await engine.AdvanceTimeAsync(TimeSpan.Zero); // another cycle: nothing changed, nothing more is made an object

        // Two run, child 2 is the blocked head (an object, with its reason), 47 are still virtual.
        Assert.Equal(47, await engine.Run(c => c.VirtualRunnableChildren(id), CancellationToken.None));
        var head = await engine.DescribeAsync(id + ":2");
        Assert.Equal(JobStatus.RUNNABLE, head.Status);
        Assert.StartsWith(StatusReasons.InsufficientInstanceCapacity, head.StatusReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_queue_snapshot_lists_virtual_children_in_order_without_making_them_objects()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 2, memoryMiB: 4096);
        var id = (await engine.SubmitJobAsync(TestEngine.Job(arraySize: 300, runSeconds: 10))).JobId;
        await StateAsync(engine, id);
        var snapshot = await engine.GetJobQueueSnapshotAsync("q");

        var front = snapshot.FrontOfQueue.Jobs;
        Assert.Equal(100, front.Count); // AWS: the first 100
        Assert.EndsWith("/" + id + ":2", front[0].JobArn, StringComparison.Ordinal); // 0 and 1 run
        Assert.EndsWith("/" + id + ":101", front[^1].JobArn, StringComparison.Ordinal);
        Assert.Equal(1, (await StateAsync(engine, id)).Live);
    }

    [Fact]
    public async Task Metrics_count_virtual_children_as_the_per_child_path_does()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 4);
        var scope = await engine.Run(c => (object)c, TestContext.Current.CancellationToken);
        var counts = new ConcurrentDictionary<string, long>();
        var histograms = new ConcurrentDictionary<string, int>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "BatchCore" && ReferenceEquals(instrument.Meter.Scope, scope))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((i, v, _, _) => counts.AddOrUpdate(i.Name, v, (_, old) => old + v));
        listener.SetMeasurementEventCallback<double>((i, v, _, _) => histograms.AddOrUpdate(i.Name + "=" + v.ToString(CultureInfo.InvariantCulture), 1, (_, old) => old + 1));
        listener.Start();

        var id = (await engine.SubmitJobAsync(TestEngine.Job(arraySize: 10, runSeconds: 5))).JobId;
        Assert.Equal(1, (await StateAsync(engine, id)).Live);
        await engine.RunUntilIdleAsync();

        Assert.Equal((10, 10, 10), (counts["batchcore.jobs.submitted"], counts["batchcore.jobs.started"], counts["batchcore.jobs.succeeded"]));
        Assert.Equal(10, histograms["batchcore.job.run_time=5"]);
        // 4 at a time: placed after 0, 5 and 10 s of waiting (4, 4 and 2 children).
        Assert.Equal((4, 4, 2), (histograms["batchcore.dispatch.latency=0"], histograms["batchcore.dispatch.latency=5"], histograms["batchcore.dispatch.latency=10"]));
        Assert.Equal(10, histograms.Where(h => h.Key.StartsWith("batchcore.job.wait_time=", StringComparison.Ordinal)).Sum(h => h.Value));
    }

    [Fact]
    public async Task With_an_activity_listener_every_attempt_gets_its_own_activity()
    {
        var stopped = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == "BatchCore",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Add,
        };
        ActivitySource.AddActivityListener(listener);
        await using var engine = await TestEngine.WithQueueAsync(hosts: 1, vcpus: 4);
        // A name of its own: engines of other tests running meanwhile (same seed, same ids) are heard by this listener too.
        var name = "traced-" + Guid.NewGuid().ToString("N");
        var id = (await engine.SubmitJobAsync(TestEngine.Job(name, arraySize: 6, runSeconds: 5))).JobId;
        Assert.Equal((0, 1), (await StateAsync(engine, id)) is var s ? (s.Live, s.Spawned) : default); // spawned by counts, placed as objects
        await engine.RunUntilIdleAsync();

        var mine = stopped.Where(a => (string?)a.GetTagItem("batchcore.job.name") == name).ToList();
        Assert.Equal(6, mine.Count);
        Assert.Equal(6, mine.Select(a => (string?)a.GetTagItem("batchcore.job.id")).Distinct().Count());
    }

    /// <summary>The same calls on both paths (virtual children on and off) must read the same.</summary>
    private static async Task AssertSameAsync(Func<bool, Task<(List<string> Trace, int Spawned)>> run)
    {
        var (virtualTrace, spawned) = await run(true);
        var (objectTrace, none) = await run(false);
        Assert.True(spawned > 0, "the array was not kept virtual");
        Assert.Equal(0, none);
        Assert.Equal(objectTrace, virtualTrace);
    }

    private static async Task<List<string>> DescribeAllAsync(BatchEngine engine, IReadOnlyList<(string Id, int Size)> jobs)
    {
        var ids = new List<string>();
        foreach (var (id, size) in jobs)
        {
            ids.Add(id);
            ids.AddRange(Enumerable.Range(0, size).Select(i => id + ":" + i.ToString(CultureInfo.InvariantCulture)));
        }

        var tops = jobs.Select(j => j.Id).ToList();
        string Name(string jobId) => VirtualChildrenProperties.NameIn(tops, jobId);

        var result = new List<string>();
        foreach (var chunk in ids.Chunk(100))
        {
            result.AddRange((await engine.DescribeJobsAsync(chunk)).Select(d => VirtualChildrenProperties.Project(d, Name)));
        }

        return result;
    }

    /// <summary>
    /// A managed Spot environment that launches instances for the array (its head goes the per-child way, which
    /// provisions) and interrupts some (a host's attempts are looked at: the array becomes objects), retried children
    /// included: every child reads the same as on the per-child path.
    /// </summary>
    [Theory]
    [InlineData(14)]
    [InlineData(1)]
    [InlineData(7)]
    public async Task Provisioning_and_spot_interruptions_read_the_same_as_the_per_child_path(int seed) =>
        await AssertSameAsync(async virtualChildren =>
        {
            await using var engine = TestEngine.Create(new BatchEngineOptions
            {
                Seed = seed, VirtualArrayChildren = virtualChildren,
                Provisioning = new ProvisioningOptions { DemandSizedScaleOut = false, SimulateSpotInterruptions = true },
            });
            await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
            {
                ComputeEnvironmentName = "ce",
                Type = CEType.MANAGED,
                ComputeResources = new()
                {
                    Type = CRType.SPOT, AllocationStrategy = CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED, MaxvCpus = 16, InstanceTypes = ["c6i.xlarge"],
                    Subnets = ["subnet-1"], SecurityGroupIds = ["sg-1"], InstanceRole = "ecsInstanceRole",
                },
            });
            await engine.CreateJobQueueAsync(new CreateJobQueueRequest { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
            await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def", retry: new RetryStrategy { Attempts = 10 }));
            var id = (await engine.SubmitJobAsync(TestEngine.Job(arraySize: 40, runSeconds: 500 * 3600))).JobId;
            var spawned = await engine.Run(c => { c.Settle(); return c.VirtualArraysSpawned; }, CancellationToken.None);
            await engine.RunUntilIdleAsync();
            var trace = await DescribeAllAsync(engine, [(id, 40)]);
            Assert.True(engine.Statistics.SpotInterruptions > 0, "a seed that interrupts");
            trace.Add(string.Create(CultureInfo.InvariantCulture, $"interruptions={engine.Statistics.SpotInterruptions} hosts={engine.Statistics.HostsLaunched}"));
            return (trace, spawned);
        });

    /// <summary>Stopping the engine terminates running virtual children as it terminates objects.</summary>
    [Fact]
    public async Task Stopping_the_engine_ends_running_virtual_children_as_the_per_child_path_does() =>
        await AssertSameAsync(async virtualChildren =>
        {
            var engine = await TestEngine.WithQueueAsync(hosts: 2, vcpus: 4, options: new BatchEngineOptions { VirtualArrayChildren = virtualChildren });
            var id = (await engine.SubmitJobAsync(TestEngine.Job(arraySize: 30, runSeconds: 100))).JobId;
            var spawned = await engine.Run(c => { c.Settle(); return c.VirtualArraysSpawned; }, CancellationToken.None);
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(150));
            await engine.StopAsync(TimeSpan.FromSeconds(5));
            var s = engine.Statistics;
            await engine.DisposeAsync();
            return ([string.Create(CultureInfo.InvariantCulture, $"started={s.Started} succeeded={s.Succeeded} failed={s.Failed}")], spawned);
        });
}
