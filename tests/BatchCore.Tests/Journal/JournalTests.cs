using BatchCore.Journal;
using BatchCore.Model;

namespace BatchCore.Tests.Journal;

public sealed class JournalTests() : StateDirectoryTest("bc-journal-")
{
    private string JournalPath => Path.Combine(Dir, "journal.bcj");

    /// <summary>The journal's records: every byte of the file up to the first zero header (or the end).</summary>
    private long RecordBytes()
    {
        var bytes = File.ReadAllBytes(JournalPath);
        var at = 8;
        while (at + 8 <= bytes.Length && BitConverter.ToUInt32(bytes, at) is var len and > 0)
        {
            at += 8 + (int)len;
        }

        return at;
    }

    private static async Task SetUpAsync(BatchEngine engine)
    {
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 2, MemoryMiB = 8192 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }], Tags = new Dictionary<string, string> { ["team"] = "a" } });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def", retry: new RetryStrategy { Attempts = 2 }));
    }

    /// <summary>
    /// An infrastructure update in the journal replays: the compute environment comes back with the new settings and its
    /// update policy, the job that ran on a replaced instance ends as a host failure and is retried, and new work runs.
    /// </summary>
    /// <summary>
    /// A compaction whose snapshot cannot be written (here its temporary file's path is taken by a directory; on a real
    /// machine a full disk) is reported and the journal goes on: nothing acknowledged is lost, the engine keeps serving,
    /// and a restart recovers every job.
    /// </summary>
    [Fact]
    public async Task Compaction_ThatCannotWriteItsSnapshot_IsReported_AndTheJournalGoesOn()
    {
        var reported = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var ids = new List<string>();
        await using (var engine = new BatchEngine(Options(compactAfterBytes: 4096) with { UnexpectedError = reported.Enqueue }))
        {
            await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new HostSpec { HostName = "h", Vcpus = 1, MemoryMiB = 2048 }] });
            await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
            await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
            Directory.CreateDirectory(Path.Combine(Dir, "snapshot.bcj.tmp")); // the snapshot's temporary file cannot be created
            for (var i = 0; i < 60; i++)
            {
                ids.Add((await engine.SubmitJobAsync(TestEngine.Job("j" + i, runSeconds: 3_600))).JobId);
            }

            // Tried again only after the journal grew by another CompactAfterBytes, not on every commit.
            Assert.InRange(reported.Count, 1, ids.Count / 3);
            Assert.All(reported, e => Assert.True(e is IOException or UnauthorizedAccessException, e.ToString()));
        }

        Directory.Delete(Path.Combine(Dir, "snapshot.bcj.tmp"));
        await using (var recovered = new BatchEngine(Options()))
        {
            var jobs = await recovered.DescribeJobsAsync(ids);
            Assert.Equal(60, jobs.Count);
        }
    }

    [Fact]
    public async Task InfrastructureUpdate_IsRecovered()
    {
        string job;
        await using (var engine = new BatchEngine(Options()))
        {
            await engine.CreateComputeEnvironmentAsync(new()
            {
                ComputeEnvironmentName = "m",
                Type = CEType.MANAGED,
                ComputeResources = new()
                {
                    Type = CRType.EC2, AllocationStrategy = CRAllocationStrategy.BEST_FIT_PROGRESSIVE, MaxvCpus = 16, InstanceTypes = ["c6i.large"],
                    Subnets = ["subnet-1"], SecurityGroupIds = ["sg-1"], InstanceRole = "ecsInstanceRole",
                },
            });
            await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "m" }] });
            await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def", retry: new RetryStrategy { Attempts = 2 }));
            job = (await engine.SubmitJobAsync(TestEngine.Job("long", runSeconds: 3_600))).JobId;
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
            await engine.UpdateComputeEnvironmentAsync(new()
            {
                ComputeEnvironment = "m",
                ComputeResources = new() { InstanceTypes = ["m6i.large"] },
                UpdatePolicy = new() { JobExecutionTimeoutMinutes = 5 },
            });
            Assert.Equal(ResourceStatus.UPDATING, (await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments.Single().Status);
        }

        await using (var engine = new BatchEngine(Options()))
        {
            var ce = (await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments.Single();
            Assert.Equal(["m6i.large"], ce.ComputeResources!.InstanceTypes);
            await engine.RunUntilIdleAsync();
            var recovered = await engine.DescribeAsync(job);
            Assert.Equal(JobStatus.SUCCEEDED, recovered.Status); // its host was lost with the engine: retried, on a new instance
            Assert.Contains("m6i", recovered.Container!.ContainerInstanceArn, StringComparison.Ordinal);
            Assert.Equal(ResourceStatus.VALID, (await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments.Single().Status);
        }
    }

    [Fact]
    public async Task RecoveredPlainArrayChildren_AreFoldedAgain_AndReadAsBefore()
    {
        string arr, failing, onFargate;
        string[] ids;
        string before;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
            arr = (await engine.SubmitJobAsync(TestEngine.Job("arr", arraySize: 4, runSeconds: 5))).JobId;
            failing = (await engine.SubmitJobAsync(TestEngine.Job("failing", arraySize: 2, exitCode: 3, runSeconds: 5))).JobId;
            await engine.CreateComputeEnvironmentAsync(new()
            {
                ComputeEnvironmentName = "fargate",
                Type = CEType.MANAGED,
                ComputeResources = new ComputeResource { Type = CRType.FARGATE, MaxvCpus = 4, Subnets = ["subnet-1"], SecurityGroupIds = ["sg-1"] },
            });
            await engine.CreateJobQueueAsync(new() { JobQueueName = "fq", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "fargate" }] });
            var fargateDefinition = TestEngine.Definition("fdef");
            await engine.RegisterJobDefinitionAsync(fargateDefinition with
            {
                PlatformCapabilities = [PlatformCapability.FARGATE],
                ContainerProperties = fargateDefinition.ContainerProperties! with
                {
                    ExecutionRoleArn = "arn:aws:iam::000000000000:role/exec",
                    ResourceRequirements = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, "2048")],
                },
            });
            onFargate = (await engine.SubmitJobAsync(TestEngine.Job("onfargate", queue: "fq", def: "fdef", arraySize: 2, runSeconds: 5))).JobId;
            await engine.RunUntilIdleAsync();
            ids = [.. Enumerable.Range(0, 4).Select(i => $"{arr}:{i}"), $"{failing}:0", $"{failing}:1", $"{onFargate}:0", $"{onFargate}:1"];
            before = System.Text.Json.JsonSerializer.Serialize(await engine.DescribeJobsAsync(ids));
            Assert.Equal(4, await engine.Run(c => c.FoldedChildren(arr), CancellationToken.None));
            Assert.Equal(2, await engine.Run(c => c.FoldedChildren(onFargate), CancellationToken.None));
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(onFargate));
            stoppedAt = engine.UtcNow;
        }

        // From the journal, then (compacted at that start) from the snapshot alone. Children that ran on Fargate are not
        // folded again: their single-use hosts are gone, and a folded child reads its host.
        foreach (var compactAfterBytes in new[] { 256L << 20, 0L, 256L << 20 })
        {
            await using var engine = new BatchEngine(Options(stoppedAt, compactAfterBytes));
            Assert.Equal(4, await engine.Run(c => c.FoldedChildren(arr), CancellationToken.None));
            Assert.Equal(0, await engine.Run(c => c.FoldedChildren(failing), CancellationToken.None)); // failed twice: records kept
            Assert.Equal(0, await engine.Run(c => c.FoldedChildren(onFargate), CancellationToken.None));
            Assert.Equal(before, System.Text.Json.JsonSerializer.Serialize(await engine.DescribeJobsAsync(ids)));
        }
    }

    [Fact]
    public async Task Restart_RecoversResourcesAndJobs_InTheirStates()
    {
        string done, failed, queued, arr, dependent;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
            done = (await engine.SubmitJobAsync(TestEngine.Job("done", runSeconds: 5))).JobId;
            failed = (await engine.SubmitJobAsync(TestEngine.Job("failed", exitCode: 3, runSeconds: 5))).JobId;
            arr = (await engine.SubmitJobAsync(TestEngine.Job("arr", arraySize: 3, runSeconds: 5))).JobId;
            await engine.RunUntilIdleAsync();
            queued = (await engine.SubmitJobAsync(TestEngine.Job("queued", vcpus: 2, runSeconds: 5) with { DependsOn = [new() { JobId = done }] })).JobId;
            dependent = (await engine.SubmitJobAsync(TestEngine.Job("dep", dependsOn: [new() { JobId = queued }]))).JobId;
            stoppedAt = engine.UtcNow;
        }

        await using (var engine = new BatchEngine(Options(stoppedAt)))
        {
            Assert.Equal(5, engine.Recovery!.Jobs);
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(done));
            var f = await engine.DescribeAsync(failed);
            Assert.Equal(JobStatus.FAILED, f.Status);
            Assert.Equal(2, f.Attempts.Count);
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(arr));
            Assert.Equal(3, (await engine.DescribeAsync(arr)).ArrayProperties!.StatusSummary![JobStatus.SUCCEEDED]);
            Assert.Equal("a", (await engine.ListTagsForResourceAsync("arn:aws:batch:local:000000000000:job-queue/q"))["team"]);
            await engine.RunUntilIdleAsync();
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(queued));
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(dependent));
            var again = await engine.SubmitJobAsync(TestEngine.Job("after"));
            Assert.NotEqual(done, again.JobId);
        }
    }

    [Fact]
    public async Task AttemptRunningAtCrash_EndsAsHostFailure_AndIsRetried()
    {
        string id;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
            id = (await engine.SubmitJobAsync(TestEngine.Job("long", runSeconds: 1000))).JobId;
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(id));
            stoppedAt = engine.UtcNow;
        }

        await using (var engine = new BatchEngine(Options(stoppedAt)))
        {
            Assert.Equal(1, engine.Recovery!.InterruptedAttempts);
            var job = await engine.DescribeAsync(id);
            Assert.Equal(StatusReasons.EngineRestarted, Assert.Single(job.Attempts).StatusReason);
            await engine.RunUntilIdleAsync();
            job = await engine.DescribeAsync(id);
            Assert.Equal(JobStatus.SUCCEEDED, job.Status);
            Assert.Equal(2, job.Attempts.Count);
        }
    }

    [Fact]
    public async Task JobsRecovered_ExpireLater_AndAJobRetriedByRecoveryReleasesItsDependencyWhenItGoes()
    {
        string dep, dependent, bystander;
        DateTimeOffset stoppedAt;
        var options = Options() with { TerminalJobRetention = TimeSpan.FromHours(1) };
        await using (var engine = new BatchEngine(options))
        {
            await SetUpAsync(engine);
            dep = (await engine.SubmitJobAsync(TestEngine.Job("dep"))).JobId;
            await engine.RunUntilIdleAsync();
            dependent = (await engine.SubmitJobAsync(TestEngine.Job("dependent", runSeconds: 1000, dependsOn: [new JobDependency { JobId = dep }]))).JobId;
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(dependent));
            stoppedAt = engine.UtcNow;
        }

        await using (var engine = new BatchEngine(options with { VirtualStart = stoppedAt }))
        {
            Assert.Equal(1, engine.Recovery!.InterruptedAttempts); // the dependent's attempt: retried, runs to its end
            bystander = (await engine.SubmitJobAsync(TestEngine.Job("bystander", runSeconds: 3 * 3600))).JobId;
            await engine.AdvanceTimeAsync(TimeSpan.FromHours(2));
            await engine.SubmitJobAsync(TestEngine.Job("trigger"));
            await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1));

            Assert.Empty(await engine.DescribeJobsAsync([dep, dependent]));
            Assert.Equal(JobStatus.RUNNING, await engine.StatusAsync(bystander));
        }
    }

    [Fact]
    public async Task TornFinalRecord_IsCutOff()
    {
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
            await engine.SubmitJobAsync(TestEngine.Job("a"));
        }

        // A crash mid-write: half a record at the end of the journal.
        var journal = Path.Combine(Dir, "journal.bcj");
        await File.AppendAllBytesAsync(journal, [200, 0, 0, 0, 1, 2, 3, 4, 5, 6], TestContext.Current.CancellationToken);
        await using (var engine = new BatchEngine(Options()))
        {
            Assert.Equal(1, engine.Recovery!.Jobs);
        }
    }

    [Fact]
    public async Task Preallocation_ZeroFillsAheadWhileRunning_AndACleanStopTrimsIt()
    {
        await using (var engine = new BatchEngine(Options(preallocate: 64 * 1024)))
        {
            await SetUpAsync(engine);
            await engine.SubmitJobAsync(TestEngine.Job("a"));

            // Acknowledged: the records are on disk, followed by the zeros written ahead of them.
            var length = new FileInfo(JournalPath).Length;
            Assert.True(length >= 64 * 1024 && length > RecordBytes(), $"journal {length} bytes, records {RecordBytes()}");
            var bytes = await File.ReadAllBytesAsync(JournalPath, TestContext.Current.CancellationToken);
            Assert.DoesNotContain(bytes.AsSpan((int)RecordBytes()).ToArray(), b => b != 0);
        }

        Assert.Equal(RecordBytes(), new FileInfo(JournalPath).Length);
    }

    [Fact]
    public async Task WithoutPreallocation_TheFileIsItsRecords()
    {
        await using var engine = new BatchEngine(Options(preallocate: 0));
        await SetUpAsync(engine);
        await engine.SubmitJobAsync(TestEngine.Job("a"));

        Assert.Equal(RecordBytes(), new FileInfo(JournalPath).Length);
    }

    [Fact]
    public async Task CrashWithAPreallocatedTail_RecoversEveryRecord_AndAppendsWhereTheRecordsEnd()
    {
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
            await engine.SubmitJobAsync(TestEngine.Job("a"));
        }

        // A crash leaves the zeros the writer put ahead of its records.
        await File.AppendAllBytesAsync(JournalPath, new byte[100_000], TestContext.Current.CancellationToken);
        await using (var engine = new BatchEngine(Options()))
        {
            Assert.Equal(1, engine.Recovery!.Jobs);
            await engine.SubmitJobAsync(TestEngine.Job("b"));
        }

        await using (var engine = new BatchEngine(Options()))
        {
            Assert.Equal(2, engine.Recovery!.Jobs);
        }
    }

    [Fact]
    public async Task TornRecordBeforeThePreallocatedTail_IsCutOff()
    {
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
            await engine.SubmitJobAsync(TestEngine.Job("a"));
        }

        // Half a record (its header and a few payload bytes), then the zeros it was being written over.
        await File.AppendAllBytesAsync(JournalPath, [200, 0, 0, 0, 1, 2, 3, 4, 5, 6, .. new byte[4096]], TestContext.Current.CancellationToken);
        await using (var engine = new BatchEngine(Options()))
        {
            Assert.Equal(1, engine.Recovery!.Jobs);
        }

        Assert.Equal(RecordBytes(), new FileInfo(JournalPath).Length); // neither half record nor zeros are left
    }

    /// <summary>A recovery that fails partway disposes the drivers it had created (no process or container is left behind).</summary>
    [Fact]
    public async Task FailedRecovery_DisposesTheDriversItCreated()
    {
        var drivers = new List<TrackedDriver>();
        BatchEngineOptions WithDriver() => Options() with
        {
            DriverFactories = new Dictionary<string, Func<HostSpec, BatchCore.Hosts.HostDriver>>
            {
                ["tracked"] = _ => { var d = new TrackedDriver(); drivers.Add(d); return d; },
            },
        };
        await using (var engine = new BatchEngine(WithDriver()))
        {
            await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "t", Type = CEType.UNMANAGED, Hosts = [new HostSpec { HostName = "t0", Driver = "tracked", Vcpus = 1, MemoryMiB = 1024 }] });
        }

        await File.AppendAllBytesAsync(JournalPath, [.. new byte[16], 7, 0, 0, 0], TestContext.Current.CancellationToken); // corrupt
        Assert.Throws<JournalCorruptException>(() => new BatchEngine(WithDriver()));

        Assert.Equal(2, drivers.Count); // the first engine's, and the one the failed recovery created
        Assert.All(drivers, d => Assert.True(d.Disposed));
    }

    private sealed class TrackedDriver : BatchCore.Hosts.HostDriver
    {
        public bool Disposed { get; private set; }

        public override string Kind => "tracked";

        public override void Launch(BatchCore.Hosts.AttemptLaunch launch, BatchCore.Hosts.IAttemptEventSink sink) => sink.Started(launch.Token);

        public override void Terminate(BatchCore.Hosts.AttemptToken token, TimeSpan gracePeriod)
        {
        }

        public override ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task DataAfterAnEmptyRecordHeader_StopsRecovery()
    {
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
        }

        // A hole of zeros in the middle of records: not the end of the log, and never skipped silently.
        var records = RecordBytes();
        await File.AppendAllBytesAsync(JournalPath, [.. new byte[16], 7, 0, 0, 0], TestContext.Current.CancellationToken);
        var e = Assert.Throws<JournalCorruptException>(() => new BatchEngine(Options()));
        Assert.Equal(records, e.Offset);
        Assert.Contains("empty record header followed by data", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FullDisk_FailsSubmissionsAsNotDurable_AfterAcknowledgingWhatFit()
    {
        // A 256 KiB tmpfs: preallocating 8 MiB fails at once (the writer then appends without it) and the records
        // themselves run out of space a few thousand submissions later.
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            Assert.Skip("mounts a small tmpfs (Linux, root)");
        }

        Directory.CreateDirectory(Dir);
        using (var mount = System.Diagnostics.Process.Start("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", Dir])!)
        {
            await mount.WaitForExitAsync(TestContext.Current.CancellationToken);
            if (mount.ExitCode != 0)
            {
                Assert.Skip("mount -t tmpfs failed here");
            }
        }

        try
        {
            var engine = new BatchEngine(Options() with { Journal = new JournalOptions { Durability = Durability.Journal, StateDirectory = Path.Combine(Dir, "state") } });
            await SetUpAsync(engine);
            var acknowledged = 0;
            IOException? failure = null;
            for (var i = 0; i < 20_000 && failure is null; i++)
            {
                try
                {
                    await engine.SubmitJobAsync(TestEngine.Job("j" + i));
                    acknowledged++;
                }
                catch (IOException e)
                {
                    failure = e;
                }
            }

            Assert.True(acknowledged > 100, $"only {acknowledged} submissions were acknowledged");
            Assert.NotNull(failure);
            Assert.Contains("submissions are not durable", failure.Message, StringComparison.Ordinal);
            var again = await Assert.ThrowsAsync<IOException>(() => engine.SubmitJobAsync(TestEngine.Job("after")));
            Assert.Contains("not durable", again.Message, StringComparison.Ordinal);
            // Every request from then on fails the same way (reads too: a request is answered only through the journal).
            await Assert.ThrowsAsync<IOException>(() => engine.ListJobsAsync(new() { JobQueue = "q", JobStatus = JobStatus.RUNNABLE }));
            await engine.DisposeAsync(); // stopping on a full disk does not throw
        }
        finally
        {
            using var umount = System.Diagnostics.Process.Start("umount", ["-l", Dir])!;
            await umount.WaitForExitAsync(CancellationToken.None);
        }
    }

    [Fact]
    public void NegativePreallocation_IsRejected_NamingTheField()
    {
        var e = Assert.Throws<BatchClientException>(() => new BatchEngine(Options(preallocate: -1)));
        Assert.Contains("options.journal.preallocateBytes must not be negative, was -1", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(JournalPath));
    }

    [Fact]
    public async Task CorruptRecordInTheMiddle_StopsRecovery_NamingFileAndOffset()
    {
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
        }

        // The journal holds three resource records; corrupt the first one's payload.
        var snapshot = Path.Combine(Dir, "journal.bcj");
        var bytes = await File.ReadAllBytesAsync(snapshot, TestContext.Current.CancellationToken);
        bytes[8 + 8 + 3] ^= 0xFF;
        await File.WriteAllBytesAsync(snapshot, bytes, TestContext.Current.CancellationToken);
        var e = Assert.Throws<JournalCorruptException>(() => new BatchEngine(Options()));
        Assert.Equal(snapshot, e.Path);
        Assert.Equal(8, e.Offset);
        Assert.Contains("corrupt record at offset 8", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task StateDirectory_IsReadableByItsOwnerOnly()
    {
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine);
        }

        if (OperatingSystem.IsWindows())
        {
            Assert.Skip("unix permissions");
            return;
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Dir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(Dir, "journal.bcj")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(Dir, "snapshot.bcj")));
    }

    [Fact]
    public async Task Compaction_DropsTerminalJobsPastRetention_KeepsTheRest()
    {
        string old, recent;
        DateTimeOffset stoppedAt;
        var options = Options() with { TerminalJobRetention = TimeSpan.FromHours(1) };
        await using (var engine = new BatchEngine(options))
        {
            await SetUpAsync(engine);
            old = (await engine.SubmitJobAsync(TestEngine.Job("old"))).JobId;
            await engine.RunUntilIdleAsync();
            await engine.AdvanceTimeAsync(TimeSpan.FromHours(2));
            recent = (await engine.SubmitJobAsync(TestEngine.Job("recent"))).JobId;
            await engine.RunUntilIdleAsync();
            stoppedAt = engine.UtcNow;
        }

        await using (var engine = new BatchEngine(options with { VirtualStart = stoppedAt }))
        {
            Assert.Empty(await engine.DescribeJobsAsync([old]));
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(recent));
        }
    }

    [Fact]
    public async Task JobsForgottenWhileRunning_StayForgottenAfterRestart_PinsHold_AndRecoveredJobsExpireLater()
    {
        string old, pinned, dependent;
        DateTimeOffset stoppedAt;
        var options = Options() with { TerminalJobRetention = TimeSpan.FromHours(1) };
        await using (var engine = new BatchEngine(options))
        {
            await SetUpAsync(engine);
            old = (await engine.SubmitJobAsync(TestEngine.Job("old"))).JobId;
            pinned = (await engine.SubmitJobAsync(TestEngine.Job("pinned"))).JobId;
            await engine.RunUntilIdleAsync();
            dependent = (await engine.SubmitJobAsync(TestEngine.Job("dependent", runSeconds: 50 * 60, dependsOn: [new JobDependency { JobId = pinned }]))).JobId;
            await engine.RunUntilIdleAsync(); // the dependent ends ~50 min after the others
            await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(20));
            await engine.SubmitJobAsync(TestEngine.Job("trigger"));
            await engine.RunUntilIdleAsync();
            Assert.Empty(await engine.DescribeJobsAsync([old]));
            Assert.Equal(2, (await engine.DescribeJobsAsync([pinned, dependent])).Count); // expired, but the dependent is kept
            stoppedAt = engine.UtcNow;
        }

        await using (var engine = new BatchEngine(options with { VirtualStart = stoppedAt }))
        {
            Assert.Empty(await engine.DescribeJobsAsync([old]));
            Assert.Equal(2, (await engine.DescribeJobsAsync([pinned, dependent])).Count);

            await engine.AdvanceTimeAsync(TimeSpan.FromHours(2));
            await engine.SubmitJobAsync(TestEngine.Job("trigger"));
            await engine.RunUntilIdleAsync();
            Assert.Empty(await engine.DescribeJobsAsync([pinned, dependent])); // recovered ended jobs expire like the others
        }

        await using (var engine = new BatchEngine(options with { VirtualStart = stoppedAt + TimeSpan.FromHours(3) }))
        {
            Assert.Empty(await engine.DescribeJobsAsync([old, pinned, dependent]));
        }
    }
}
