using BatchCore.Model;

namespace BatchCore.Tests.Journal;

/// <summary>
/// Recovery from states a live engine writes that replay used to get wrong (found by an audit of the journal): job tags
/// in snapshots, submissions replayed against resources deleted since, queue deletions replayed while every job is
/// still SUBMITTED, a crash while a snapshot is put in place, a deregistered definition's plain jobs, fair-share usage.
/// </summary>
public sealed class RecoveryEdgeTests() : StateDirectoryTest("bc-recovery-edge-")
{
    private const string JobArn = "arn:aws:batch:local:000000000000:job/";

    private static async Task SetUpAsync(BatchEngine engine, RetryStrategy? retry = null)
    {
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 2, MemoryMiB = 8192 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def", retry: retry));
    }

    private static Task CreateOtherQueueAsync(BatchEngine engine) =>
        engine.CreateJobQueueAsync(new() { JobQueueName = "other", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });

    private static async Task DeleteOtherQueueAsync(BatchEngine engine)
    {
        await engine.UpdateJobQueueAsync(new() { JobQueue = "other", State = ResourceState.DISABLED });
        await engine.DeleteJobQueueAsync("other");
    }

    /// <summary>
    /// Tags set on a job after it was submitted are journaled with the resources; a snapshot used to write them before
    /// the jobs, so the next start tagged a job that did not exist yet and threw (every later start too).
    /// </summary>
    /// <summary>
    /// The recovered engine's random (boot jitter, spot interruptions) is seeded by a fixed function of the options' seed,
    /// the recovered job count and the clock: the same in every process. It was <c>HashCode.Combine</c>, randomized per
    /// process, so these values changed from one test run to the next.
    /// </summary>
    [Theory]
    [InlineData(1, 0, 0L, RecoveredSeedOf1)]
    [InlineData(1, 3, 1_767_225_600_000L, RecoveredSeedOf2)]
    public void RecoveredSeed_IsTheSameInEveryProcess(int seed, int jobs, long nowMs, int expected) =>
        Assert.Equal(expected, BatchCore.Dispatch.EngineCore.RecoveredSeed(seed, jobs, nowMs));

    private const int RecoveredSeedOf1 = 922_921_446;
    private const int RecoveredSeedOf2 = 162_699_868;

    [Fact]
    public async Task JobTaggedAfterSubmission_SurvivesSnapshotsAtEveryRestart()
    {
        string id, untagged;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
            id = (await engine.SubmitJobAsync(TestEngine.Job("a", runSeconds: 1000))).JobId;
            untagged = (await engine.SubmitJobAsync(TestEngine.Job("b", runSeconds: 1000))).JobId;
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
            await engine.TagResourceAsync(JobArn + id, new Dictionary<string, string> { ["k"] = "v", ["gone"] = "x" });
            await engine.UntagResourceAsync(JobArn + id, ["gone"]);
            await engine.TagResourceAsync(JobArn + untagged, new Dictionary<string, string> { ["k"] = "w" });
            await engine.UntagResourceAsync(JobArn + untagged, ["k"]);
            stoppedAt = engine.UtcNow; // stopped while both run: the next start writes a snapshot
        }

        for (var restart = 0; restart < 3; restart++)
        {
            await using var engine = new BatchEngine(Options(stoppedAt));
            Assert.Equal(new Dictionary<string, string> { ["k"] = "v" }, await engine.ListTagsForResourceAsync(JobArn + id));
            Assert.Empty(await engine.ListTagsForResourceAsync(JobArn + untagged));
        }
    }

    /// <summary>A snapshot replays the resources as they are, then the jobs: a consumable resource deleted after its job ended is gone by then.</summary>
    [Fact]
    public async Task ConsumableResourceDeletedAfterItsJobEnded_Recovers()
    {
        string id;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options(compactAfterBytes: 0)))
        {
            await SetUpAsync(engine);
            await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "lic", TotalQuantity = 4 });
            await engine.RegisterJobDefinitionAsync(TestEngine.Definition("cdef") with { ConsumableResourceProperties = new() { ConsumableResourceList = [new() { ConsumableResource = "lic", Quantity = 1 }] } });
            id = (await engine.SubmitJobAsync(TestEngine.Job("a", def: "cdef"))).JobId;
            await engine.RunUntilIdleAsync();
            await engine.DeleteConsumableResourceAsync("lic");
            await engine.SubmitJobAsync(TestEngine.Job("b")); // another commit: a compaction writes the snapshot
            stoppedAt = engine.UtcNow;
        }

        for (var restart = 0; restart < 2; restart++)
        {
            await using var engine = new BatchEngine(Options(stoppedAt));
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(id));
        }
    }

    /// <summary>
    /// A job of a deleted queue is not kept in snapshots; a job that named it as a dependency replays without it (its own
    /// record says how it ended). The second start used to throw "dependsOn[0].jobId … does not exist".
    /// </summary>
    [Fact]
    public async Task DependencyInADeletedQueue_RecoversAtEveryRestart()
    {
        string y;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
            await CreateOtherQueueAsync(engine);
            var x = (await engine.SubmitJobAsync(TestEngine.Job("x", queue: "other", runSeconds: 1000))).JobId;
            y = (await engine.SubmitJobAsync(TestEngine.Job("y", dependsOn: [new() { JobId = x }]))).JobId;
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(5));
            await DeleteOtherQueueAsync(engine);
            await engine.RunUntilIdleAsync();
            Assert.Equal(JobStatus.FAILED, await engine.StatusAsync(y));
            stoppedAt = engine.UtcNow;
        }

        for (var restart = 0; restart < 3; restart++)
        {
            await using var engine = new BatchEngine(Options(stoppedAt));
            Assert.Equal(JobStatus.FAILED, await engine.StatusAsync(y));
        }
    }

    /// <summary>
    /// Replaying DeleteJobQueue used to terminate the queue's jobs as they stood at that point of the replay (all still
    /// SUBMITTED): one that had SUCCEEDED then failed its dependents in other queues.
    /// </summary>
    [Fact]
    public async Task ReplayedQueueDeletion_LeavesDependentsOfJobsThatSucceededWaiting()
    {
        string y;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
            await CreateOtherQueueAsync(engine);
            var x = (await engine.SubmitJobAsync(TestEngine.Job("x", queue: "other", runSeconds: 5))).JobId;
            var never = (await engine.SubmitJobAsync(TestEngine.Job("never", vcpus: 4))).JobId; // no host holds it: RUNNABLE throughout
            y = (await engine.SubmitJobAsync(TestEngine.Job("y", dependsOn: [new() { JobId = x }, new() { JobId = never }]))).JobId;
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(x));
            await DeleteOtherQueueAsync(engine);
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
            Assert.Equal(JobStatus.PENDING, await engine.StatusAsync(y));
            stoppedAt = engine.UtcNow;
        }

        await using (var engine = new BatchEngine(Options(stoppedAt)))
        {
            var detail = await engine.DescribeAsync(y);
            Assert.True(detail.Status == JobStatus.PENDING, $"y is {detail.Status}: {detail.StatusReason}");
        }
    }

    /// <summary>Replay counts no share identifier as active (every job is SUBMITTED then): more shares over time than the quota allows at once still replay.</summary>
    [Fact]
    public async Task MoreShareIdentifiersOverTimeThanTheActiveQuota_Recover()
    {
        var options = Options() with { Quotas = new BatchQuotas { MaxActiveShareIdentifiers = 2 } };
        var ids = new List<string>();
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(options))
        {
            await CreateFairShareAsync(engine, decaySeconds: 0);
            foreach (var share in new[] { "a", "b", "c" })
            {
                ids.Add((await engine.SubmitJobAsync(TestEngine.Job("j" + share, share: share))).JobId);
                await engine.RunUntilIdleAsync();
            }

            stoppedAt = engine.UtcNow;
        }

        await using (var engine = new BatchEngine(options with { VirtualStart = stoppedAt }))
        {
            foreach (var id in ids)
            {
                Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(id));
            }
        }
    }

    /// <summary>
    /// A crash inside the snapshot's installation leaves either the new snapshot beside the replaced journal (the snapshot
    /// already contains it: not replayed again, which duplicated jobs and ran finished ones again) or the new snapshot not
    /// yet in place (the old snapshot and the journal are the state).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task CrashWhileInstallingASnapshot_NeitherReplaysTheJournalTwiceNorLosesIt(bool snapshotInPlace)
    {
        string done, running;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
            done = (await engine.SubmitJobAsync(TestEngine.Job("done", runSeconds: 1))).JobId;
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(5));
            await engine.SubmitJobAsync(TestEngine.Job("long", runSeconds: 10_000)); // running at the stop: the next start writes a snapshot
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
            stoppedAt = engine.UtcNow;
        }

        // The files before and after a start that writes a snapshot.
        var snapshot = Path.Combine(Dir, "snapshot.bcj");
        var journal = Path.Combine(Dir, "journal.bcj");
        var oldSnapshot = File.Exists(snapshot) ? File.ReadAllBytes(snapshot) : null;
        var oldJournal = File.ReadAllBytes(journal);
        await using (var engine = new BatchEngine(Options(stoppedAt)))
        {
            running = (await engine.SubmitJobAsync(TestEngine.Job("later", runSeconds: 100))).JobId; // after the snapshot: in the new journal
        }

        var newSnapshot = File.ReadAllBytes(snapshot);
        var newJournal = File.ReadAllBytes(journal);

        // Rebuild what each crash point leaves.
        File.Delete(journal);
        File.WriteAllBytes(Path.Combine(Dir, "journal.replaced.bcj"), oldJournal);
        if (snapshotInPlace)
        {
            File.WriteAllBytes(snapshot, newSnapshot);
        }
        else
        {
            if (oldSnapshot is null)
            {
                File.Delete(snapshot);
            }
            else
            {
                File.WriteAllBytes(snapshot, oldSnapshot);
            }

            File.WriteAllBytes(snapshot + ".tmp", newSnapshot);
        }

        await using (var engine = new BatchEngine(Options(stoppedAt)))
        {
            Assert.Equal(2, engine.Recovery!.Jobs);
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(done));
            var listed = (await engine.ListJobsAsync(new() { JobQueue = "q", JobStatus = JobStatus.SUCCEEDED })).JobSummaryList;
            Assert.Equal([done], listed.Select(j => j.JobId));
            Assert.Single((await engine.DescribeAsync(done)).Attempts);
            Assert.False(File.Exists(Path.Combine(Dir, "journal.replaced.bcj")));
            Assert.False(File.Exists(snapshot + ".tmp"));
        }

        _ = running;
        _ = newJournal;
    }

    /// <summary>Deregistering (or tagging) a definition replaces its record; its plain jobs stay plain in snapshots (a Debug assertion fired).</summary>
    [Fact]
    public async Task PlainJobOfADeregisteredAndTaggedDefinition_IsSnapshotted()
    {
        string id;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
            id = (await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "plain", JobQueue = "q", JobDefinition = "def" })).JobId;
            await engine.RunUntilIdleAsync();
            await engine.TagResourceAsync("arn:aws:batch:local:000000000000:job-definition/def:1", new Dictionary<string, string> { ["t"] = "1" });
            await engine.DeregisterJobDefinitionAsync("def:1");
            stoppedAt = engine.UtcNow;
        }

        for (var restart = 0; restart < 2; restart++)
        {
            await using var engine = new BatchEngine(Options(stoppedAt, compactAfterBytes: 0));
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(id));
        }
    }

    /// <summary>
    /// Deregistrations are journaled with their time: a restart counts the 180 days from the deregistration (not from
    /// the restart), brings no purged revision back nor gives its number again, and recovers the jobs that ran with it.
    /// </summary>
    [Fact]
    public async Task PurgedDefinition_StaysPurgedAcrossRestarts_AndItsJobsRecover()
    {
        string ended, running;
        DateTimeOffset deregisteredAt;
        var options = Options() with { TerminalJobRetention = Timeout.InfiniteTimeSpan };
        await using (var engine = new BatchEngine(options))
        {
            await SetUpAsync(engine, new RetryStrategy { Attempts = 5 }); // def:1
            await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def")); // def:2
            ended = (await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "plain", JobQueue = "q", JobDefinition = "def:1" })).JobId;
            await engine.RunUntilIdleAsync();
            running = (await engine.SubmitJobAsync(TestEngine.Job("long", def: "def:1", runSeconds: 1000 * 86_400))).JobId;
            await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1));
            await engine.DeregisterJobDefinitionAsync("def:1");
            deregisteredAt = engine.UtcNow;
        }

        await using (var engine = new BatchEngine(options with { VirtualStart = deregisteredAt + TimeSpan.FromDays(1) }))
        {
            Assert.Equal(["INACTIVE", "ACTIVE"], await DefinitionStatusesAsync(engine));
            await engine.AdvanceTimeAsync(TimeSpan.FromDays(179) + TimeSpan.FromMinutes(1)); // 180 days after the deregistration
            Assert.Equal(["ACTIVE"], await DefinitionStatusesAsync(engine));
        }

        for (var restart = 0; restart < 2; restart++)
        {
            // From the journal, then from the snapshot the first of these starts wrote.
            await using var engine = new BatchEngine(options with { VirtualStart = deregisteredAt + TimeSpan.FromDays(200), Journal = options.Journal with { CompactAfterBytes = 0 } });
            Assert.Equal(["ACTIVE"], await DefinitionStatusesAsync(engine));
            var jobs = await engine.DescribeJobsAsync([ended, running]);
            Assert.Equal(2, jobs.Count);
            Assert.All(jobs, j => Assert.EndsWith("job-definition/def:1", j.JobDefinition, StringComparison.Ordinal));
            Assert.Equal(JobStatus.SUCCEEDED, jobs[0].Status);
        }

        await using (var engine = new BatchEngine(options with { VirtualStart = deregisteredAt + TimeSpan.FromDays(200) }))
        {
            Assert.Equal(3, (await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"))).Revision);
        }
    }

    private static async Task<IReadOnlyList<string>> DefinitionStatusesAsync(BatchEngine engine) =>
        (await engine.DescribeJobDefinitionsAsync(new DescribeJobDefinitionsRequest { JobDefinitionName = "def" })).JobDefinitions.Select(d => d.Status).ToList();

    /// <summary>
    /// Fair-share usage is not journaled: recovery rebuilds it from the attempts. Without it a restart forgot that share a
    /// had just used the whole host, and a ran before b.
    /// </summary>
    [Fact]
    public async Task FairShareUsage_SurvivesARestart_AsItWouldWithout()
    {
        // Without a restart: b (no usage) runs before a (3,600 vCPU-seconds).
        await using (var live = TestEngine.Create())
        {
            await CreateFairShareAsync(live, decaySeconds: 36_000);
            await live.SubmitJobAsync(TestEngine.Job("a1", share: "a", runSeconds: 1800, vcpus: 2));
            await live.RunUntilIdleAsync();
            var (a, b) = await ThenAAndBAsync(live);
            Assert.True((await live.DescribeAsync(b)).StartedAt < (await live.DescribeAsync(a)).StartedAt);
        }

        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options()))
        {
            await CreateFairShareAsync(engine, decaySeconds: 36_000);
            await engine.SubmitJobAsync(TestEngine.Job("a1", share: "a", runSeconds: 1800, vcpus: 2));
            await engine.RunUntilIdleAsync();
            stoppedAt = engine.UtcNow;
        }

        await using (var engine = new BatchEngine(Options(stoppedAt)))
        {
            var snapshot = await engine.GetJobQueueSnapshotAsync("q");
            var (a, b) = await ThenAAndBAsync(engine);
            Assert.True((await engine.DescribeAsync(b)).StartedAt < (await engine.DescribeAsync(a)).StartedAt, "after the restart share a's usage was forgotten: a ran before b");
            _ = snapshot;
        }

        static async Task<(string A, string B)> ThenAAndBAsync(BatchEngine engine)
        {
            await engine.SubmitJobAsync(TestEngine.Job("blocker", share: "c", runSeconds: 10, vcpus: 2));
            var a = (await engine.SubmitJobAsync(TestEngine.Job("a2", share: "a", runSeconds: 10, vcpus: 2))).JobId;
            var b = (await engine.SubmitJobAsync(TestEngine.Job("b1", share: "b", runSeconds: 10, vcpus: 2))).JobId;
            await engine.RunUntilIdleAsync();
            return (a, b);
        }
    }

    /// <summary>A cancelled array with running children at the crash ends cancelled once they complete.</summary>
    [Fact]
    public async Task CancelledArrayWithRunningChildrenAtTheCrash_EndsCancelled()
    {
        string array;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine, new RetryStrategy { Attempts = 3 });
            array = (await engine.SubmitJobAsync(TestEngine.Job("arr", arraySize: 4, runSeconds: 100))).JobId;
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(10));
            await engine.CancelJobAsync(array, "user cancel");
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
            stoppedAt = engine.UtcNow;
        }

        await using (var engine = new BatchEngine(Options(stoppedAt)))
        {
            await engine.RunUntilIdleAsync();
            var parent = await engine.DescribeAsync(array);
            Assert.Equal((JobStatus.FAILED, "user cancel"), (parent.Status, parent.StatusReason));
        }
    }

    /// <summary>Compaction at every commit and restarts in the middle of arrays linked N_TO_N under a concurrency cap: every child ends once.</summary>
    [Fact]
    public async Task CompactionsAndRestartsMidArray_EveryChildSucceedsOnce()
    {
        string a1, a2;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options(compactAfterBytes: 0)))
        {
            await SetUpAsync(engine, new RetryStrategy { Attempts = 10 });
            a1 = (await engine.SubmitJobAsync(TestEngine.Job("a1", arraySize: 6, runSeconds: 10, arrayMaxConcurrency: 1))).JobId;
            a2 = (await engine.SubmitJobAsync(TestEngine.Job("a2", arraySize: 6, runSeconds: 10, dependsOn: [new() { JobId = a1, Type = ArrayJobDependency.N_TO_N }]))).JobId;
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(25));
            stoppedAt = engine.UtcNow;
        }

        for (var restart = 0; restart < 3; restart++)
        {
            await using var engine = new BatchEngine(Options(stoppedAt, compactAfterBytes: 0));
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(15));
            stoppedAt = engine.UtcNow;
        }

        await using (var engine = new BatchEngine(Options(stoppedAt)))
        {
            await engine.RunUntilIdleAsync();
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(a1));
            Assert.Equal(6, (await engine.DescribeAsync(a2)).ArrayProperties!.StatusSummary![JobStatus.SUCCEEDED]);
        }
    }

    private static async Task CreateFairShareAsync(BatchEngine engine, int decaySeconds)
    {
        await engine.CreateSchedulingPolicyAsync(new() { Name = "fs", FairsharePolicy = new() { ShareDecaySeconds = decaySeconds } });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 2, MemoryMiB = 8192 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, SchedulingPolicyArn = "arn:aws:batch:local:000000000000:scheduling-policy/fs", ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def", vcpus: 2));
    }
}
