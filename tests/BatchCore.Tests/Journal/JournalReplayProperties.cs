using BatchCore.Journal;
using BatchCore.Model;
using FsCheck;
using FsCheck.Fluent;

namespace BatchCore.Tests.Journal;

/// <summary>For any sequence of operations, replaying the journal yields the live state.</summary>
public sealed class JournalReplayProperties
{
    /// <summary>An operation: kind (S submit, P plain submit, A array, D dependent, C cancel, T terminate, W wait), a number.</summary>
    public sealed record Op(char Kind, int Value)
    {
        public override string ToString() => $"{Kind}{Value}";
    }

    public static class Generators
    {
        public static Arbitrary<Op[]> Ops() =>
            Gen.Frequency(
                (4, Gen.Choose(0, 60).Select(v => new Op('S', v))),
                (2, Gen.Choose(0, 3).Select(v => new Op('P', v))),
                (1, Gen.Choose(2, 4).Select(v => new Op('A', v))),
                (2, Gen.Choose(0, 100).Select(v => new Op('D', v))),
                (1, Gen.Choose(0, 100).Select(v => new Op('C', v))),
                (1, Gen.Choose(0, 100).Select(v => new Op('T', v))),
                (2, Gen.Choose(1, 40).Select(v => new Op('W', v))))
            .ArrayOf()
            .Select(a => a.Take(25).ToArray())
            .ToArbitrary();
    }

    [FsCheck.Xunit.Property(Arbitrary = [typeof(Generators)], MaxTest = 40)]
    public void ReplayingTheJournal_YieldsTheLiveState(Op[] ops)
    {
        var dir = Path.Combine(Path.GetTempPath(), "bc-replay-" + Guid.NewGuid().ToString("N"));
        try
        {
            RunAsync(ops, dir).GetAwaiter().GetResult();
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    private static BatchEngineOptions Options(string dir, DateTimeOffset start) => new()
    {
        VirtualTime = true,
        VirtualStart = start,
        AllowShortTimeouts = true,
        BatchPlacementThreshold = 0,
        Journal = new JournalOptions { Durability = Durability.Journal, StateDirectory = dir },
    };

    private static async Task RunAsync(Op[] ops, string dir)
    {
        var ids = new List<string>();
        Dictionary<string, JobDetail> live;
        Dictionary<string, (string Status, long? At)> liveScheduledAt;
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options(dir, BatchEngineDefaults.VirtualStart)))
        {
            await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 2, MemoryMiB = 8192 }] });
            await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
            await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def", retry: new RetryStrategy { Attempts = 2 }));
            var n = 0;
            foreach (var op in ops)
            {
                switch (op.Kind)
                {
                    case 'S':
                        ids.Add((await engine.SubmitJobAsync(TestEngine.Job($"j{n++}", runSeconds: op.Value, exitCode: op.Value % 5 == 0 ? 1 : 0, failingAttempts: 1))).JobId);
                        break;
                    case 'P':
                        // A request that overrides nothing: journaled as the job's fields (format 3), an array when v > 1.
                        var plain = (await engine.SubmitJobAsync(new SubmitJobRequest { JobName = $"p{n++}", JobQueue = "q", JobDefinition = "def", ArrayProperties = op.Value > 1 ? new() { Size = op.Value } : null })).JobId;
                        ids.Add(plain);
                        ids.AddRange(Enumerable.Range(0, op.Value > 1 ? op.Value : 0).Select(i => $"{plain}:{i}"));
                        break;
                    case 'A':
                        var a = (await engine.SubmitJobAsync(TestEngine.Job($"a{n++}", arraySize: op.Value, runSeconds: 7))).JobId;
                        ids.Add(a);
                        ids.AddRange(Enumerable.Range(0, op.Value).Select(i => $"{a}:{i}"));
                        break;
                    case 'D' when ids.Count > 0:
                        var dep = ids[op.Value % ids.Count];
                        ids.Add((await engine.SubmitJobAsync(TestEngine.Job($"d{n++}", runSeconds: 3, dependsOn: [new() { JobId = dep, Extensions = op.Value % 2 == 0 ? new() { Condition = "ANY" } : null }]))).JobId);
                        break;
                    case 'C' when ids.Count > 0:
                        await engine.CancelJobAsync(ids[op.Value % ids.Count], "cancel");
                        break;
                    case 'T' when ids.Count > 0:
                        await engine.TerminateJobAsync(ids[op.Value % ids.Count], "terminate");
                        break;
                    case 'W':
                        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(op.Value));
                        break;
                    default:
                        break;
                }
            }

            live = (await Describe(engine, ids)).ToDictionary(j => j.JobId);
            liveScheduledAt = await ScheduledAt(engine, ids);
            stoppedAt = engine.UtcNow;
        }

        await using (var engine = new BatchEngine(Options(dir, stoppedAt)))
        {
            var recovered = (await Describe(engine, ids)).ToDictionary(j => j.JobId);
            var recoveredScheduledAt = await ScheduledAt(engine, ids);
            JobDetail after(string id) => recovered[id];
            Assert.Equal(live.Keys.Order(), recovered.Keys.Order());
            var cutShort = live.Values.Any(j => j.Status is JobStatus.STARTING or JobStatus.RUNNING);
            foreach (var (id, before) in live)
            {
                if (before.Status is JobStatus.PENDING or JobStatus.RUNNABLE && after(id).Status != before.Status && cutShort)
                {
                    continue; // capacity or a dependency the stop cut short has moved on since (placed, ended, retried)
                }

                var afterJob = recovered[id];
                if (before.Status is JobStatus.STARTING or JobStatus.RUNNING)
                {
                    // The attempt the stop cut short ends as a host failure: retried (RUNNABLE) or FAILED.
                    // (retried at once: the recovered engine may already have placed and started it again)
                    Assert.Contains(afterJob.Status, new[] { JobStatus.RUNNABLE, JobStatus.STARTING, JobStatus.RUNNING, JobStatus.FAILED });
                    Assert.Equal(before.Attempts.Count + 1, afterJob.Attempts.Count);
                    Assert.Equal(StatusReasons.EngineRestarted, afterJob.Attempts[^1].StatusReason);
                    if (afterJob.Status == JobStatus.FAILED)
                    {
                        Assert.Equal((JobStatus.FAILED, liveScheduledAt[id].At), recoveredScheduledAt[id]); // the cut-short attempt's placement
                    }

                    continue;
                }

                if (before.ArrayProperties?.StatusSummary is not null && (before.Status == JobStatus.PENDING))
                {
                    Assert.Contains(afterJob.Status, new[] { JobStatus.PENDING, JobStatus.FAILED, JobStatus.SUCCEEDED });
                    continue; // its running children were cut short, so its summary moves on
                }

                Assert.True(before.Status == afterJob.Status, $"{id}: {before.Status} live, {afterJob.Status} after replay");
                if (before.Status != JobStatus.RUNNABLE)
                {
                    // A RUNNABLE job's capacity diagnosis is recomputed by the next cycle, not journaled.
                    Assert.Equal(before.StatusReason, afterJob.StatusReason);
                }

                Assert.Equal(before.IsCancelled, afterJob.IsCancelled);
                Assert.Equal(before.IsTerminated, afterJob.IsTerminated);
                Assert.Equal(before.CreatedAt, afterJob.CreatedAt);
                Assert.Equal(before.StoppedAt, afterJob.StoppedAt);
                if (recoveredScheduledAt.TryGetValue(id, out var listed) && listed.Status == afterJob.Status)
                {
                    // (ListJobs came after DescribeJobs: the recovered engine may have placed a waiting job in between)
                    Assert.True(liveScheduledAt[id].At == listed.At, $"{id} ({before.Status}): scheduledAt {liveScheduledAt[id].At} live, {listed.At} after replay");
                }

                Assert.Equal(before.Attempts.Select(x => (x.Container?.ExitCode, x.StatusReason, x.StartedAt, x.StoppedAt, x.Container?.LogStreamName, x.Container?.TaskArn)),
                    afterJob.Attempts.Select(x => (x.Container?.ExitCode, x.StatusReason, x.StartedAt, x.StoppedAt, x.Container?.LogStreamName, x.Container?.TaskArn)));
            }

            // The recovered engine goes on: everything that can finish does.
            await engine.RunUntilIdleAsync();
        }
    }

    /// <summary>ListJobs' status and scheduledAt of every job of queue <c>q</c> and of the array children among <paramref name="ids"/>.</summary>
    private static async Task<Dictionary<string, (string Status, long? At)>> ScheduledAt(BatchEngine engine, List<string> ids)
    {
        var all = (await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", Filters = [new KeyValuesPair { Name = "JOB_NAME", Values = ["*"] }] })).JobSummaryList.ToList();
        foreach (var array in ids.Where(id => id.Contains(':', StringComparison.Ordinal)).Select(id => id[..id.IndexOf(':', StringComparison.Ordinal)]).Distinct())
        {
            foreach (var status in JobStatus.All)
            {
                all.AddRange((await engine.ListJobsAsync(new ListJobsRequest { ArrayJobId = array, JobStatus = status })).JobSummaryList);
            }
        }

        var byId = new Dictionary<string, (string Status, long? At)>(StringComparer.Ordinal);
        foreach (var s in all)
        {
            byId[s.JobId] = (s.Status, s.ScheduledAt); // a child that moved on between two calls: listed twice, the later wins
        }

        return byId;
    }

    private static async Task<List<JobDetail>> Describe(BatchEngine engine, List<string> ids)
    {
        var all = new List<JobDetail>();
        foreach (var chunk in ids.Distinct().Chunk(100))
        {
            all.AddRange(await engine.DescribeJobsAsync(chunk));
        }

        return all;
    }
}
