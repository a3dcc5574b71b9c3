using System.Buffers;
using System.Text.Json;
using BatchCore.Journal;
using BatchCore.Model;
using MessagePack;

namespace BatchCore.Tests.Journal;

/// <summary>Format 3 records (compact submissions, MessagePack attempts), the journal kept across restarts, and older formats.</summary>
public sealed class JournalFormatTests() : StateDirectoryTest("bc-jformat-")
{
    private static string JournalPath(string dir) => Path.Combine(dir, "journal.bcj");

    [Fact]
    public void Crc32_IsIeee()
    {
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
    }

    [Fact]
    public async Task PlainAndOverridingSubmissions_RecoverTheSame_FromTheJournal_AndFromTheSnapshot()
    {
        var ids = new List<string>();
        IReadOnlyList<JobDetail> live;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options()))
        {
            await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 2, MemoryMiB = 8192 }] });
            await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
            await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def", retry: new RetryStrategy { Attempts = 2 }));
            await engine.RegisterJobDefinitionAsync(TestEngine.Definition("big", vcpus: 4));

            // Plain requests (journaled as the job's fields), a plain array, a job no host fits, and requests with overrides.
            ids.Add((await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "plain", JobQueue = "q", JobDefinition = "def" })).JobId);
            var array = (await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "plain-array", JobQueue = "q", JobDefinition = "def", ArrayProperties = new() { Size = 3 } })).JobId;
            ids.Add(array);
            ids.AddRange(Enumerable.Range(0, 3).Select(i => $"{array}:{i}"));
            ids.Add((await engine.SubmitJobAsync(TestEngine.Job("fails", exitCode: 3, runSeconds: 5))).JobId);
            ids.Add((await engine.SubmitJobAsync(TestEngine.Job("after", runSeconds: 5, dependsOn: [new() { JobId = ids[0] }]) with { Parameters = new Dictionary<string, string> { ["p"] = "v" } })).JobId);
            await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1));
            ids.Add((await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "waits", JobQueue = "q", JobDefinition = "big" })).JobId);
            await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1)); // the head of the queue that no host fits: blocks it (AWS)
            live = await engine.DescribeJobsAsync(ids);
            stoppedAt = engine.UtcNow;
        }

        Assert.Equal(ids.Count, live.Count);
        Assert.True(live.Any(j => j.Status == JobStatus.FAILED && j.Attempts.Count > 0), string.Join(", ", live.Select(j => $"{j.JobName} {j.Status} {j.Attempts.Count}")));
        Assert.Contains(live, j => j.Status == JobStatus.RUNNABLE);

        // 1. The journal replays to the same state, and is kept (appended to) rather than compacted.
        await using (var engine = new BatchEngine(Options(stoppedAt)))
        {
            Assert.Equal(5, engine.Recovery!.Jobs);
            AssertSame(live, await engine.DescribeJobsAsync(ids));
        }

        Assert.True(new FileInfo(JournalPath(Dir)).Length > JournalFile.HeaderSize);

        // 2. Compacted at start (the journal passes CompactAfterBytes): the snapshot holds it all.
        await using (var engine = new BatchEngine(Options(stoppedAt, compactAfterBytes: 0)))
        {
            AssertSame(live, await engine.DescribeJobsAsync(ids));
        }

        Assert.Equal(JournalFile.HeaderSize, new FileInfo(JournalPath(Dir)).Length);

        // 3. The snapshot alone.
        await using (var engine = new BatchEngine(Options(stoppedAt)))
        {
            Assert.Equal(5, engine.Recovery!.Jobs);
            AssertSame(live, await engine.DescribeJobsAsync(ids));
            var next = await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "next", JobQueue = "q", JobDefinition = "def" });
            Assert.DoesNotContain(next.JobId, ids);
        }
    }

    private static void AssertSame(IReadOnlyList<JobDetail> live, IReadOnlyList<JobDetail> recovered)
    {
        var after = recovered.ToDictionary(j => j.JobId);
        foreach (var before in live)
        {
            var a = after[before.JobId];
            Assert.Equal(before.Status, a.Status);
            if (before.Status != JobStatus.RUNNABLE)
            {
                Assert.Equal(before.StatusReason, a.StatusReason);
            }

            Assert.Equal(before.JobName, a.JobName);
            Assert.Equal(before.JobQueue, a.JobQueue);
            Assert.Equal(before.JobDefinition, a.JobDefinition);
            Assert.Equal(before.CreatedAt, a.CreatedAt);
            Assert.Equal(before.StartedAt, a.StartedAt);
            Assert.Equal(before.StoppedAt, a.StoppedAt);
            Assert.Equal(before.Parameters, a.Parameters);
            Assert.Equal(before.Container?.Command, a.Container?.Command);
            Assert.Equal(before.ArrayProperties?.StatusSummary, a.ArrayProperties?.StatusSummary);
            Assert.Equal(before.Attempts, a.Attempts); // records: exit code, reason, times, log stream, instance and task ARNs
        }
    }

    [Fact]
    public async Task Format2Journal_IsRead_AndRewrittenAsFormat4()
    {
        Directory.CreateDirectory(Dir);
        const string id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        const long created = 1_700_000_000_000;
        var attempt = new AttemptDetail
        {
            Container = new AttemptContainerDetail { ExitCode = 0, LogStreamName = "def/default/" + id + "-1", TaskArn = "arn:aws:ecs:local:000000000000:task/ce/" + id + "-1" },
            StartedAt = created + 1000,
            StoppedAt = created + 6000,
            StatusReason = "Essential container in task exited",
        };
        var buffer = new ArrayBufferWriter<byte>();
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "CreateComputeEnvironment", new CreateComputeEnvironmentRequest { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 2, MemoryMiB = 8192 }] }));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "CreateJobQueue", new CreateJobQueueRequest { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] }));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "RegisterJobDefinition", TestEngine.Definition("def")));
        Frame(buffer, (ref MessagePackWriter w) =>
        {
            // Format 2 submit: [2, jobId, createdAt, definitionArn, requestJson]
            w.WriteArrayHeader(5);
            w.Write((byte)2);
            w.Write(id);
            w.Write(created);
            w.Write("arn:aws:batch:local:000000000000:job-definition/def:1");
            w.Write(JsonSerializer.SerializeToUtf8Bytes(new SubmitJobRequest { JobName = "old", JobQueue = "q", JobDefinition = "def" }, JournalCodec.Json));
        });
        Frame(buffer, (ref MessagePackWriter w) =>
        {
            // Format 2 state: [3, jobId, state, reason, time, startedAt, stoppedAt, flags, attemptJson, host, driver, handle]
            w.WriteArrayHeader(12);
            w.Write((byte)3);
            w.Write(id);
            w.Write(5); // SUCCEEDED
            w.Write("Essential container in task exited");
            w.Write(created + 6000);
            w.Write(created + 1000);
            w.Write(created + 6000);
            w.Write(0);
            w.Write(JsonSerializer.SerializeToUtf8Bytes(attempt, JournalCodec.Json));
            w.WriteNil();
            w.WriteNil();
            w.WriteNil();
        });
        await File.WriteAllBytesAsync(JournalPath(Dir), [.. "BCJRNL02"u8.ToArray(), .. buffer.WrittenSpan.ToArray()], TestContext.Current.CancellationToken);

        var start = DateTimeOffset.FromUnixTimeMilliseconds(created + 10_000);
        for (var restart = 0; restart < 2; restart++)
        {
            // First from the format 2 journal; then from the format 4 snapshot that recovery wrote.
            await using var engine = new BatchEngine(Options(start));
            Assert.Equal(1, engine.Recovery!.Jobs);
            var job = await engine.DescribeAsync(id);
            Assert.Equal(JobStatus.SUCCEEDED, job.Status);
            Assert.Equal(created, job.CreatedAt);
            Assert.Equal(attempt, Assert.Single(job.Attempts));
            Assert.Equal("BCJRNL04"u8.ToArray(), File.ReadAllBytes(Path.Combine(Dir, "snapshot.bcj"))[..8]);
        }
    }

    /// <summary>
    /// A version 3 journal (the exact bytes a version 3 engine wrote: a plain submission, its STARTING, RUNNING and
    /// SUCCEEDED records of 12 fields, a DeregisterJobDefinition with its time) replays as before — the job with its
    /// attempt, no scheduledAt (version 3 did not record it) — and is never appended to: the first start writes
    /// everything as a version 4 snapshot and starts a version 4 journal, so that no engine reading only version 3 ever
    /// meets a version 4 record in a file that says 3 (it refuses the files by their header instead). The same records
    /// as a version 3 snapshot replay the same; that snapshot is kept as it is (it holds version 3 records only) and the
    /// journal beside it is version 4.
    /// </summary>
    [Theory]
    [InlineData("journal.bcj")]
    [InlineData("snapshot.bcj")]
    public async Task Format3File_ReplaysAsBefore_AndIsContinuedAsFormat4_NeverAppendedTo(string file)
    {
        Directory.CreateDirectory(Dir);
        const string id = "6d3f3d2e-5c1b-4f5e-9a3e-0b1c2d3e4f50";
        const string arn = "arn:aws:batch:local:000000000000:job-definition/def:1";
        var created = BatchEngineDefaults.VirtualStart.ToUnixTimeMilliseconds();
        var buffer = new ArrayBufferWriter<byte>();
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "CreateComputeEnvironment", new CreateComputeEnvironmentRequest { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 2, MemoryMiB = 8192 }] }));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "CreateJobQueue", new CreateJobQueueRequest { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] }));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "RegisterJobDefinition", TestEngine.Definition("def")));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "RegisterJobDefinition", TestEngine.Definition("other")));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "DeregisterJobDefinition", new { jobDefinition = "other:1", deregisteredAtMs = created }));
        Frame(buffer, (ref MessagePackWriter w) =>
        {
            // Format 3 submit: [2, jobId, createdAt, definitionArn, queue, jobName, arraySize, requestJson?]
            w.WriteArrayHeader(8);
            w.Write((byte)2);
            w.Write(id);
            w.Write(created);
            w.Write(arn);
            w.Write("q");
            w.Write("old");
            w.Write(0);
            w.WriteNil();
        });

        // Format 3 state: [3, jobId, state, reason, time, startedAt, stoppedAt, flags, attempt?, host?, driver?, handle?]
        Frame(buffer, (ref MessagePackWriter w) => State3(ref w, id, state: 3, time: created, startedAt: null, stoppedAt: null, attempt: false, host: "h"));
        Frame(buffer, (ref MessagePackWriter w) => State3(ref w, id, state: 4, time: created + 1000, startedAt: created + 1000, stoppedAt: null, attempt: false, host: "h"));
        Frame(buffer, (ref MessagePackWriter w) => State3(ref w, id, state: 5, time: created + 6000, startedAt: created + 1000, stoppedAt: created + 6000, attempt: true, host: null));
        await File.WriteAllBytesAsync(Path.Combine(Dir, file), [.. "BCJRNL03"u8.ToArray(), .. buffer.WrittenSpan.ToArray()], TestContext.Current.CancellationToken);

        var start = BatchEngineDefaults.VirtualStart + TimeSpan.FromSeconds(10);
        string? next = null;
        for (var restart = 0; restart < 3; restart++)
        {
            await using var engine = new BatchEngine(Options(start));
            var job = await engine.DescribeAsync(id);
            Assert.Equal((JobStatus.SUCCEEDED, created, created + 1000, created + 6000), (job.Status, job.CreatedAt, job.StartedAt, job.StoppedAt));
            var attempt = Assert.Single(job.Attempts);
            Assert.Equal((0, created + 1000, created + 6000, StatusReasons.Essential), (attempt.Container!.ExitCode, attempt.StartedAt, attempt.StoppedAt, attempt.StatusReason));
            var summary = (await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", JobStatus = JobStatus.SUCCEEDED })).JobSummaryList.Single(s => s.JobId == id);
            Assert.Null(summary.ScheduledAt);
            Assert.Equal(["def"], (await engine.DescribeJobDefinitionsAsync(new DescribeJobDefinitionsRequest { Status = "ACTIVE" })).JobDefinitions.Select(d => d.JobDefinitionName));
            if (next is not null)
            {
                Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(next));
            }

            // The version 3 journal went into a version 4 snapshot; a version 3 snapshot with nothing to add is kept.
            Assert.Equal(file == "journal.bcj" ? "BCJRNL04"u8.ToArray() : "BCJRNL03"u8.ToArray(), File.ReadAllBytes(Path.Combine(Dir, "snapshot.bcj"))[..8]);
            Assert.Equal("BCJRNL04"u8.ToArray(), File.ReadAllBytes(JournalPath(Dir))[..8]);
            next ??= (await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "new", JobQueue = "q", JobDefinition = "def" })).JobId;
            await engine.RunUntilIdleAsync();
        }
    }

    /// <summary>[3, jobId, state, reason, time, startedAt, stoppedAt, flags, attempt?, host?, driver?, handle?] as version 3 wrote it.</summary>
    private static void State3(ref MessagePackWriter w, string id, int state, long time, long? startedAt, long? stoppedAt, bool attempt, string? host)
    {
        w.WriteArrayHeader(12);
        w.Write((byte)3);
        w.Write(id);
        w.Write(state);
        if (state == 5)
        {
            w.Write(StatusReasons.Essential);
        }
        else
        {
            w.WriteNil();
        }

        w.Write(time);
        WriteNullable(ref w, startedAt);
        WriteNullable(ref w, stoppedAt);
        w.Write(0);
        if (attempt)
        {
            // [number, exitCode?, reason?, startedAt?, stoppedAt, statusReason, hostName, ceName]
            w.WriteArrayHeader(8);
            w.Write(1);
            w.Write(0);
            w.WriteNil();
            w.Write(startedAt!.Value);
            w.Write(stoppedAt!.Value);
            w.Write(StatusReasons.Essential);
            w.Write("h");
            w.Write("ce");
        }
        else
        {
            w.WriteNil();
        }

        if (host is null)
        {
            w.WriteNil();
            w.WriteNil();
        }
        else
        {
            w.Write(host);
            w.Write("simulated");
        }

        w.WriteNil();

        static void WriteNullable(ref MessagePackWriter w, long? v)
        {
            if (v is { } x)
            {
                w.Write(x);
            }
            else
            {
                w.WriteNil();
            }
        }
    }

    [Fact]
    public async Task NewJournal_IsVersion4_AndStaysSoWhenAppendedToAfterARestart()
    {
        var lengths = new List<long>();
        for (var restart = 0; restart < 2; restart++)
        {
            await using (var engine = restart == 0 ? await TestEngine.WithQueueAsync(options: Options()) : new BatchEngine(Options()))
            {
                await engine.SubmitJobAsync(TestEngine.Job());
                await engine.RunUntilIdleAsync();
            }

            lengths.Add(new FileInfo(JournalPath(Dir)).Length);
            Assert.Equal("BCJRNL04"u8.ToArray(), File.ReadAllBytes(Path.Combine(Dir, "snapshot.bcj"))[..8]); // the new directory's empty snapshot
        }

        Assert.True(lengths[1] > lengths[0], "the second start appended to the first's journal");
        var bytes = File.ReadAllBytes(JournalPath(Dir));
        Assert.Equal("BCJRNL04"u8.ToArray(), bytes[..8]);
        Assert.Equal(4, JournalFile.Version);
        Assert.Equal(4, JournalFile.VersionOf(bytes));
    }

    /// <summary>The writer appends only to a file of the version it writes: records of another version after its header would be misread.</summary>
    [Fact]
    public void Writer_RefusesToAppendToAnOlderVersionsFile()
    {
        Directory.CreateDirectory(Dir);
        var path = JournalPath(Dir);
        var buffer = new ArrayBufferWriter<byte>();
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "RegisterJobDefinition", TestEngine.Definition("def")));
        byte[] v3 = [.. "BCJRNL03"u8.ToArray(), .. buffer.WrittenSpan.ToArray()];
        File.WriteAllBytes(path, v3);

        var e = Assert.Throws<InvalidOperationException>(() => new JournalWriter(path, new JournalOptions()));
        Assert.Contains("format version is 3", e.Message, StringComparison.Ordinal);
        Assert.Equal(v3, File.ReadAllBytes(path));
    }

    /// <summary>
    /// A journal written before jobQueueType existed may move a queue from EC2 to Fargate compute environments with
    /// UpdateJobQueue: it replays, and the recovered queue is ECS_FARGATE, so later updates within Fargate are accepted.
    /// </summary>
    [Fact]
    public async Task OlderJournal_QueueMovedToFargate_RecoversAsEcsFargate()
    {
        Directory.CreateDirectory(Dir);
        var buffer = new ArrayBufferWriter<byte>();
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "CreateComputeEnvironment", new CreateComputeEnvironmentRequest { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 2, MemoryMiB = 8192 }] }));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "CreateComputeEnvironment", new CreateComputeEnvironmentRequest { ComputeEnvironmentName = "fg", Type = CEType.MANAGED, ComputeResources = new() { Type = CRType.FARGATE, MaxvCpus = 4 } }));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "CreateJobQueue", new CreateJobQueueRequest { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] }));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "UpdateJobQueue", new UpdateJobQueueRequest { JobQueue = "q", ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "fg" }] }));
        await File.WriteAllBytesAsync(JournalPath(Dir), [.. "BCJRNL03"u8.ToArray(), .. buffer.WrittenSpan.ToArray()], TestContext.Current.CancellationToken);

        await using var engine = new BatchEngine(Options());
        var queue = Assert.Single((await engine.DescribeJobQueuesAsync(new() { JobQueues = ["q"] })).JobQueues);
        Assert.Equal(JobQueueType.ECS_FARGATE, queue.JobQueueType);
        Assert.EndsWith("/fg", Assert.Single(queue.ComputeEnvironmentOrder).ComputeEnvironment, StringComparison.Ordinal);
        await engine.UpdateJobQueueAsync(new() { JobQueue = "q", ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "fg" }] });
        await Assert.ThrowsAsync<BatchClientException>(() => engine.UpdateJobQueueAsync(new() { JobQueue = "q", ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] }));
    }

    /// <summary>
    /// A journal written before tags starting aws: were refused replays with them (the rule is not applied to replayed
    /// records), and UntagResource still removes such a key.
    /// </summary>
    [Fact]
    public async Task OlderJournal_TagsWithTheReservedAwsPrefix_Replay()
    {
        Directory.CreateDirectory(Dir);
        var tags = new Dictionary<string, string> { ["aws:team"] = "a" };
        var buffer = new ArrayBufferWriter<byte>();
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "CreateComputeEnvironment", new CreateComputeEnvironmentRequest { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 2, MemoryMiB = 8192 }], Tags = tags }));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "CreateJobQueue", new CreateJobQueueRequest { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] }));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "TagResource", new BatchCore.Dispatch.EngineCore.TagRecord("arn:aws:batch:local:000000000000:job-queue/q", new Dictionary<string, string> { ["AWS:x"] = "aws:y" }, null)));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "RegisterJobDefinition", TestEngine.Definition("def") with { Tags = tags }));
        await File.WriteAllBytesAsync(JournalPath(Dir), [.. "BCJRNL03"u8.ToArray(), .. buffer.WrittenSpan.ToArray()], TestContext.Current.CancellationToken);

        await using var engine = new BatchEngine(Options());
        var ce = Assert.Single((await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments);
        Assert.Equal("a", ce.Tags["aws:team"]);
        var queueArn = Assert.Single((await engine.DescribeJobQueuesAsync()).JobQueues).JobQueueArn;
        Assert.Equal("aws:y", (await engine.ListTagsForResourceAsync(queueArn))["AWS:x"]);
        Assert.Equal("a", Assert.Single((await engine.DescribeJobDefinitionsAsync()).JobDefinitions).Tags["aws:team"]);
        await engine.UntagResourceAsync(queueArn, ["AWS:x"]);
        Assert.Empty(await engine.ListTagsForResourceAsync(queueArn));
    }

    /// <summary>
    /// A state directory written by an engine of another region and account replays its ARNs (they name that engine's
    /// resources, which are this one's now), from the journal and then from the snapshot; a definition that names a
    /// consumable resource by such an ARN still runs jobs, while a new request with such an ARN names nothing.
    /// </summary>
    [Fact]
    public async Task ArnsWrittenByAnEngineOfAnotherRegion_Replay()
    {
        const string Old = "arn:aws:batch:eu-west-1:111111111111:";
        string first;
        await using (var engine = new BatchEngine(Options() with { Region = "eu-west-1", AccountId = "111111111111" }))
        {
            await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 2, MemoryMiB = 8192 }] });
            await engine.CreateSchedulingPolicyAsync(new() { Name = "p" });
            await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = Old + "compute-environment/ce" }], SchedulingPolicyArn = Old + "scheduling-policy/p" });
            await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "lic", TotalQuantity = 2 });
            await engine.UpdateConsumableResourceAsync(new() { ConsumableResource = Old + "consumable-resource/lic", Operation = "ADD", Quantity = 1 });
            await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def") with { ConsumableResourceProperties = new() { ConsumableResourceList = [new() { ConsumableResource = Old + "consumable-resource/lic", Quantity = 1 }] } });
            await engine.TagResourceAsync(Old + "job-queue/q", new Dictionary<string, string> { ["k"] = "v" });
            first = (await engine.SubmitJobAsync(TestEngine.Job(queue: Old + "job-queue/q", def: Old + "job-definition/def:1", share: "a"))).JobId;
            await engine.TagResourceAsync(Old + "job/" + first, new Dictionary<string, string> { ["j"] = "1" });
            await engine.RunUntilIdleAsync();
        }

        for (var restart = 0; restart < 2; restart++) // the journal, then the snapshot the first restart wrote
        {
            await using var engine = new BatchEngine(Options());
            var queue = Assert.Single((await engine.DescribeJobQueuesAsync()).JobQueues);
            Assert.Equal("arn:aws:batch:local:000000000000:compute-environment/ce", Assert.Single(queue.ComputeEnvironmentOrder).ComputeEnvironment);
            Assert.Equal("arn:aws:batch:local:000000000000:scheduling-policy/p", queue.SchedulingPolicyArn);
            Assert.Equal("v", (await engine.ListTagsForResourceAsync(queue.JobQueueArn))["k"]);
            Assert.Equal(3, (await engine.DescribeConsumableResourceAsync("lic")).TotalQuantity);
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(first));
            Assert.Equal("1", (await engine.ListTagsForResourceAsync("arn:aws:batch:local:000000000000:job/" + first))["j"]);

            var next = await engine.SubmitJobAsync(TestEngine.Job(share: "a"));
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
            Assert.Equal(1, (await engine.DescribeConsumableResourceAsync("lic")).InUseQuantity); // the definition's old ARN names lic
            await engine.RunUntilIdleAsync();
            Assert.Equal(JobStatus.SUCCEEDED, await engine.StatusAsync(next.JobId));
            await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(TestEngine.Job(queue: Old + "job-queue/q", share: "a")));
        }
    }

    /// <summary>
    /// A DeregisterJobDefinition record written before deregistrations carried their time (its body the bare
    /// jobDefinition) replays; its 180 days run from the first start that read it, which rewrites it with that time, so
    /// later starts do not restart them.
    /// </summary>
    [Fact]
    public async Task DeregistrationWithoutItsTime_IsRead_AndTimedOnce()
    {
        Directory.CreateDirectory(Dir);
        var buffer = new ArrayBufferWriter<byte>();
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "RegisterJobDefinition", TestEngine.Definition("def")));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "RegisterJobDefinition", TestEngine.Definition("def")));
        Frame(buffer, (ref MessagePackWriter w) => Resource(ref w, "DeregisterJobDefinition", "def:1"));
        await File.WriteAllBytesAsync(JournalPath(Dir), [.. "BCJRNL03"u8.ToArray(), .. buffer.WrittenSpan.ToArray()], TestContext.Current.CancellationToken);
        var firstStart = BatchEngineDefaults.VirtualStart;

        foreach (var (days, revisions) in new[] { (0, 2), (179, 2), (181, 1) })
        {
            await using var engine = new BatchEngine(Options(firstStart + TimeSpan.FromDays(days)));
            var found = (await engine.DescribeJobDefinitionsAsync(new DescribeJobDefinitionsRequest { JobDefinitionName = "def" })).JobDefinitions;
            Assert.Equal(revisions, found.Count);
            Assert.Equal(2, found[^1].Revision);
        }
    }

    [Theory]
    [InlineData("BCJRNL05", 5)]
    [InlineData("BCJRNL09", 9)]
    public void NewerFormat_IsRefused_NamingTheFileAndTheVersion(string magic, int version)
    {
        Directory.CreateDirectory(Dir);
        File.WriteAllBytes(JournalPath(Dir), System.Text.Encoding.ASCII.GetBytes(magic));
        var e = Assert.Throws<JournalCorruptException>(() => new BatchEngine(Options()));
        Assert.Equal(JournalPath(Dir), e.Path);
        Assert.Contains($"format version {version} is not supported: this engine reads versions 1 to 4 (a newer engine wrote it?)", e.Message, StringComparison.Ordinal);
        Assert.Contains(JournalPath(Dir), e.Message, StringComparison.Ordinal);
        Assert.Equal(System.Text.Encoding.ASCII.GetBytes(magic), File.ReadAllBytes(JournalPath(Dir))); // left as it is
    }

    private delegate void Write(ref MessagePackWriter w);

    private static void Frame(ArrayBufferWriter<byte> output, Write write)
    {
        var payload = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(payload);
        write(ref w);
        w.Flush();
        JournalFile.WriteFrame(output, payload.WrittenSpan);
    }

    private static void Resource<T>(ref MessagePackWriter w, string op, T request)
    {
        w.WriteArrayHeader(3);
        w.Write((byte)1);
        w.Write(op);
        w.Write(JsonSerializer.SerializeToUtf8Bytes(request, JournalCodec.Json));
    }
}
