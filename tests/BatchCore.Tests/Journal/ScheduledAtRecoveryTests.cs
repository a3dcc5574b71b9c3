using System.Collections.Concurrent;
using BatchCore.Hosts;
using BatchCore.Model;

namespace BatchCore.Tests.Journal;

/// <summary>
/// ListJobs' <c>scheduledAt</c> (RUNNABLE → STARTING) across restarts: journaled with the attempt's STARTING record and
/// every record after it, so a job placed before a restart reads the same after it — running and re-attached, still
/// STARTING and re-attached, ended, folded array children, and an attempt the restart cut short — from the journal,
/// from a snapshot, and from both.
/// </summary>
public sealed class ScheduledAtRecoveryTests() : StateDirectoryTest("bc-scheduled-")
{
    private BatchEngineOptions With(HoldDriver driver, DateTimeOffset? start = null, long compactAfterBytes = 256L << 20) =>
        Options(start, compactAfterBytes) with { DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>> { ["hold"] = _ => driver } };

    private static SubmitJobRequest Plain(string name, string def = "def", int? arraySize = null) =>
        new() { JobName = name, JobQueue = "q", JobDefinition = def, ArrayProperties = arraySize is null ? null : new ArrayProperties { Size = arraySize } };

    [Fact]
    public async Task ScheduledAt_ReadsTheSameAfterEveryRestart_ForRunningReattachedEndedAndFoldedJobs()
    {
        var driver = new HoldDriver();
        string ended, failed, running, starting, lost, array, waiting;
        long t0;
        List<JobSummary> before;
        IReadOnlyList<JobDetail> described;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(With(driver)))
        {
            await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 16, MemoryMiB = 65536, Driver = "hold" }] });
            await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
            await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
            await engine.RegisterJobDefinitionAsync(TestEngine.Definition("big", vcpus: 32));
            t0 = engine.UtcNow.ToUnixTimeMilliseconds();
            ended = (await engine.SubmitJobAsync(Plain("ended"))).JobId;
            failed = (await engine.SubmitJobAsync(TestEngine.Job("failed"))).JobId; // one with overrides: replayed through SubmitJob
            running = (await engine.SubmitJobAsync(Plain("running"))).JobId;
            starting = (await engine.SubmitJobAsync(Plain("starting"))).JobId;
            lost = (await engine.SubmitJobAsync(Plain("lost"))).JobId;
            array = (await engine.SubmitJobAsync(Plain("array", arraySize: 3))).JobId;
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(5)); // all placed at t0; the drivers start them 5 s later
            driver.Start(id => id != starting);
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(5));
            driver.Exit(ended, 0);
            driver.Exit(failed, 1);
            driver.Exit(id => id.StartsWith(array + ":", StringComparison.Ordinal), 0);
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
            waiting = (await engine.SubmitJobAsync(Plain("waiting", def: "big"))).JobId; // no host fits: never placed
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));

            Assert.Equal(3, await engine.Run(c => c.FoldedChildren(array), TestContext.Current.CancellationToken));
            before = await SummariesAsync(engine, array);
            described = await engine.DescribeJobsAsync(before.Select(s => s.JobId).ToList());
            stoppedAt = engine.UtcNow;
        }

        var byId = before.ToDictionary(s => s.JobId);
        foreach (var id in new[] { ended, failed, running, starting, lost, array + ":0", array + ":1", array + ":2" })
        {
            Assert.Equal(t0, byId[id].ScheduledAt);
        }

        Assert.Equal(t0 + 5000, byId[running].StartedAt);
        Assert.Equal(JobStatus.STARTING, byId[starting].Status);
        Assert.Null(byId[waiting].ScheduledAt);

        // 1. Running and STARTING attempts re-attached; "lost" cannot be (its attempt fails as a host failure, no
        // retries): recovery changed the state, so it writes a snapshot.
        var restarted = new HoldDriver(refuse: lost);
        await using (var engine = new BatchEngine(With(restarted, stoppedAt)))
        {
            Assert.Equal(2, engine.Recovery!.Reattached);
            Assert.Equal(1, engine.Recovery.InterruptedAttempts);
            var after = await SummariesAsync(engine, array);
            AssertSame(before.Where(s => s.JobId != lost), after);
            AssertSameDetails(described.Where(d => d.JobId != lost), await engine.DescribeJobsAsync(described.Select(d => d.JobId).ToList()));
            var cutShort = after.Single(s => s.JobId == lost);
            Assert.Equal((JobStatus.FAILED, t0, t0 + 5000), (cutShort.Status, cutShort.ScheduledAt, cutShort.StartedAt));
            Assert.Equal(3, await engine.Run(c => c.FoldedChildren(array), TestContext.Current.CancellationToken));

            // The re-attached attempts end: their placement is still the one before the restart.
            restarted.Start(id => id == starting);
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(5));
            restarted.Exit(running, 0);
            restarted.Exit(starting, 0);
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
            before = await SummariesAsync(engine, array);
            described = await engine.DescribeJobsAsync(before.Select(s => s.JobId).ToList());
            Assert.All(before.Where(s => s.JobId is var id && (id == running || id == starting)), s => Assert.Equal((JobStatus.SUCCEEDED, t0), (s.Status, s.ScheduledAt)));
            stoppedAt = engine.UtcNow;
        }

        // 2. Snapshot + the journal appended to since; 3. compacted at start; 4. the snapshot alone.
        foreach (var compactAfterBytes in new[] { 256L << 20, 0, 256L << 20 })
        {
            await using var engine = new BatchEngine(With(new HoldDriver(), stoppedAt, compactAfterBytes));
            Assert.Equal(0, engine.Recovery!.Reattached + engine.Recovery.InterruptedAttempts);
            AssertSame(before, await SummariesAsync(engine, array));
            AssertSameDetails(described, await engine.DescribeJobsAsync(described.Select(d => d.JobId).ToList()));
        }
    }

    /// <summary>Every job of queue <c>q</c> and the children of <paramref name="array"/>.</summary>
    private static async Task<List<JobSummary>> SummariesAsync(BatchEngine engine, string array)
    {
        var all = (await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", Filters = [new KeyValuesPair { Name = "JOB_NAME", Values = ["*"] }] })).JobSummaryList.ToList();
        foreach (var status in JobStatus.All)
        {
            all.AddRange((await engine.ListJobsAsync(new ListJobsRequest { ArrayJobId = array, JobStatus = status })).JobSummaryList);
        }

        return all;
    }

    private static void AssertSame(IEnumerable<JobSummary> before, IReadOnlyList<JobSummary> after)
    {
        var recovered = after.ToDictionary(s => s.JobId);
        foreach (var b in before)
        {
            var a = recovered[b.JobId];
            Assert.Equal((b.JobId, b.Status, b.CreatedAt, b.StartedAt, b.StoppedAt, b.ScheduledAt), (a.JobId, a.Status, a.CreatedAt, a.StartedAt, a.StoppedAt, a.ScheduledAt));
            if (b.Status != JobStatus.RUNNABLE)
            {
                Assert.Equal(b.StatusReason, a.StatusReason); // a waiting job's CAPACITY:/MISCONFIGURATION: reason comes with the next cycle
            }
        }
    }

    private static void AssertSameDetails(IEnumerable<JobDetail> before, IReadOnlyList<JobDetail> after)
    {
        var recovered = after.ToDictionary(d => d.JobId);
        foreach (var b in before)
        {
            var a = recovered[b.JobId];
            Assert.Equal((b.JobId, b.Status, b.StartedAt, b.StoppedAt, b.IsCancelled, b.IsTerminated), (a.JobId, a.Status, a.StartedAt, a.StoppedAt, a.IsCancelled, a.IsTerminated));
            if (b.Status != JobStatus.RUNNABLE)
            {
                Assert.Equal(b.StatusReason, a.StatusReason);
            }

            Assert.Equal(b.Attempts, a.Attempts);
        }
    }

    /// <summary>
    /// Holds every attempt until the test starts or ends it (virtual time: the events apply at the clock's time when the
    /// loop next runs); takes back every attempt of a previous engine but <c>refuse</c>'s, reporting nothing until told.
    /// </summary>
    private sealed class HoldDriver(string? refuse = null) : HostDriver
    {
        private readonly ConcurrentDictionary<string, (AttemptToken Token, IAttemptEventSink Sink)> _attempts = new(StringComparer.Ordinal);

        public override string Kind => "hold";

        public override void Launch(AttemptLaunch launch, IAttemptEventSink sink) => _attempts[launch.JobId] = (launch.Token, sink);

        public override bool TryReattach(AttemptReattach reattach, IAttemptEventSink sink)
        {
            if (reattach.JobId == refuse)
            {
                return false;
            }

            _attempts[reattach.JobId] = (reattach.Token, sink);
            return true;
        }

        public override void Terminate(AttemptToken token, TimeSpan gracePeriod)
        {
            foreach (var (id, (t, sink)) in _attempts)
            {
                if (t == token && _attempts.TryRemove(id, out _))
                {
                    sink.Exited(token, new AttemptExit(143));
                }
            }
        }

        public void Start(Func<string, bool> which)
        {
            foreach (var (id, (token, sink)) in _attempts)
            {
                if (which(id) && id.Contains(':', StringComparison.Ordinal))
                {
                    sink.Started(token); // no handle: a handle keeps a part of the job that a folded child has not
                }
                else if (which(id))
                {
                    sink.Started(token, "handle-" + id);
                }
            }
        }

        public void Exit(string jobId, int code) => Exit(id => id == jobId, code);

        public void Exit(Func<string, bool> which, int code)
        {
            foreach (var (id, (token, sink)) in _attempts)
            {
                if (which(id) && _attempts.TryRemove(id, out _))
                {
                    sink.Exited(token, new AttemptExit(code));
                }
            }
        }
    }
}
