using System.Globalization;
using System.Text;
using BatchCore.Model;
using BatchCore.Placement;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace BatchCore.Tests.Properties;

/// <summary>A job of a virtual-children scenario: an array when <see cref="ArraySize"/> ≥ 2.</summary>
public sealed record VirtualJobCase(int ArraySize, double Vcpus, int MemoryMiB, int RunSeconds, int FailingAttempts, int? TimeoutSeconds)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"job(array={ArraySize} {Vcpus}v/{MemoryMiB}M run={RunSeconds}s fails={FailingAttempts} timeout={TimeoutSeconds})");
}

/// <summary>
/// S: submit the next job; A: advance <see cref="A"/> seconds; D: describe child <see cref="B"/> of job <see cref="A"/>;
/// C / T: cancel / terminate job <see cref="A"/>; L: list the queue's RUNNING jobs; W: add a state watcher.
/// </summary>
public sealed record VirtualOpCase(char Kind, int A, int B)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Kind}{A}/{B}");
}

public sealed record VirtualScenario(HostCase[] Hosts, VirtualJobCase[] Jobs, VirtualOpCase[] Ops, PlacementStrategy Strategy, int? MaxRunning, bool Backfill)
{
    public override string ToString() =>
        $"hosts [{string.Join(", ", Hosts.Select(h => h.ToString()))}]\n jobs [{string.Join(",\n  ", Jobs.Select(j => j.ToString()))}]\n ops [{string.Join(" ", Ops.Select(o => o.ToString()))}]\n strategy={Strategy} maxRunning={MaxRunning} backfill={Backfill}";
}

public static class VirtualScenarioGenerators
{
    private static Gen<VirtualJobCase> Job(bool plain) =>
        from size in plain ? Gen.Choose(2, 40) : Gen.Frequency((3, Gen.Choose(2, 40)), (1, Gen.Constant(0)))
        from v in Gen.Elements(1.0, 1.0, 2.0)
        from m in Gen.Elements(512, 1024, 2048)
        from run in Gen.Choose(1, 30)
        from fails in plain ? Gen.Constant(0) : Gen.Frequency((4, Gen.Constant(0)), (1, Gen.Choose(1, 2)))
        from timeout in plain ? Gen.Constant<int?>(null) : Gen.Frequency((5, Gen.Constant<int?>(null)), (1, Gen.Choose(2, 20).Select(t => (int?)t)))
        select new VirtualJobCase(size, v, m, run, fails, timeout);

    private static Gen<VirtualOpCase> Op => Gen.Frequency(
        (5, Gen.Constant(new VirtualOpCase('S', 0, 0))),
        (5, Gen.Choose(1, 15).Select(s => new VirtualOpCase('A', s, 0))),
        (2, from j in Gen.Choose(0, 9) from c in Gen.Choose(0, 39) select new VirtualOpCase('D', j, c)),
        (1, Gen.Choose(0, 9).Select(j => new VirtualOpCase('C', j, 0))),
        (1, Gen.Choose(0, 9).Select(j => new VirtualOpCase('T', j, 0))),
        (1, Gen.Constant(new VirtualOpCase('L', 0, 0))),
        (1, Gen.Constant(new VirtualOpCase('W', 0, 0))));

    public static Arbitrary<VirtualScenario> Scenarios() => Arb.From(
        from hn in Gen.Choose(1, 4)
        from hosts in (from v in Gen.Elements(2.0, 4.0, 8.0) from m in Gen.Elements(4096, 8192) select new HostCase(v, m, false)).ArrayOf(hn)
        from first in Job(plain: true)
        from jn in Gen.Choose(0, 5)
        from rest in Job(plain: false).ArrayOf(jn)
        from opCount in Gen.Choose(1, 30)
        from ops in Op.ArrayOf(opCount)
        from strategy in Gen.Elements(PlacementStrategy.FirstFit, PlacementStrategy.Spread, PlacementStrategy.BestFit)
        from maxRunning in Gen.Frequency((3, Gen.Constant<int?>(null)), (1, Gen.Choose(1, 12).Select(c => (int?)c)))
        from backfill in Gen.Elements(false, true)
        select new VirtualScenario(hosts, [first, .. rest], [new VirtualOpCase('S', 0, 0), .. ops], strategy, maxRunning, backfill));
}

/// <summary>
/// Virtual array children (src/BatchCore/Dispatch/EngineCore.Cohorts.cs) are an optimisation, not a behaviour: the same
/// calls give the same answers with them and without them (every array child an object from the start).
/// </summary>
public class VirtualChildrenProperties
{
    /// <summary>
    /// Random hosts, arrays (plain ones and ones that cannot be virtual: failing attempts, timeouts), single jobs, a
    /// queue cap, and in between clock advances, describes of one child, cancels, terminates, listings and a watcher:
    /// every answer along the way (parents' status summaries at every advance, each describe and listing) and every
    /// job's and child's final description are the same on both paths, hosts included, for every strategy (filling the
    /// host the strategy picks is what one-at-a-time placement does with identical jobs; 6,000 cases run while this was
    /// written). Batch placement is off: its window plan picks its own, equally valid, hosts.
    /// </summary>
    [Property(Arbitrary = [typeof(VirtualScenarioGenerators)], MaxTest = 300)]
    public void Virtual_and_per_child_paths_answer_the_same(VirtualScenario s)
    {
        var (virtualTrace, used) = RunAsync(s, virtualChildren: true).GetAwaiter().GetResult();
        var (objectTrace, _) = RunAsync(s, virtualChildren: false).GetAwaiter().GetResult();
        Assert.True(used, $"the first (plain) array was not kept virtual; {s}");
        for (var i = 0; i < Math.Min(virtualTrace.Count, objectTrace.Count); i++)
        {
            if (virtualTrace[i] != objectTrace[i])
            {
                // The first job that reads differently, not the whole answer.
                var v = virtualTrace[i].Split(" | ");
                var o = objectTrace[i].Split(" | ");
                var k = 0;
                while (k < Math.Min(v.Length, o.Length) - 1 && v[k] == o[k])
                {
                    k++;
                }

                Assert.Fail($"answer {i} differs:\n virtual:   {v[k]}\n per-child: {o[k]}\n{s}");
            }
        }

        Assert.Equal(objectTrace.Count, virtualTrace.Count);
    }

    internal static async Task<(List<string> Trace, bool UsedVirtual)> RunAsync(VirtualScenario s, bool virtualChildren)
    {
        await using var engine = TestEngine.Create(new BatchEngineOptions
        {
            // No batch placement: its window plan may pick other (equally valid) hosts than one at a time, and an array's
            // virtual children are placed one host at a time.
            PlacementStrategy = s.Strategy, BatchPlacementThreshold = 0, VirtualArrayChildren = virtualChildren,
        });
        await QueueOrderProperties.CreateCeAsync(engine, "ce", s.Hosts);
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
            Extensions = new JobQueueExtensions { MaxRunningJobs = s.MaxRunning, Backfill = s.Backfill },
        });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        var ids = new List<string>();
        var trace = new List<string>();
        var used = false;
        var next = 0;

        string Name(string id) => NameIn(ids, id);

        async Task Submit()
        {
            var j = s.Jobs[next++];
            var r = TestEngine.Job("j", runSeconds: j.RunSeconds, exitCode: j.FailingAttempts > 0 ? 3 : 0, failingAttempts: j.FailingAttempts > 0 ? j.FailingAttempts : null,
                arraySize: j.ArraySize >= 2 ? j.ArraySize : null, vcpus: j.Vcpus, memory: j.MemoryMiB) with
            {
                RetryStrategy = new RetryStrategy { Attempts = 2 },
                Timeout = j.TimeoutSeconds is { } t ? new JobTimeout { AttemptDurationSeconds = t } : null,
            };
            ids.Add((await engine.SubmitJobAsync(r)).JobId);
            used |= await engine.Run(c => { c.Settle(); return c.VirtualArraysSpawned > 0; }, CancellationToken.None);
        }

        async Task<string> DescribeAll(IEnumerable<string> which)
        {
            var sb = new StringBuilder();
            foreach (var chunk in which.Chunk(100))
            {
                foreach (var d in await engine.DescribeJobsAsync(chunk))
                {
                    sb.Append(Project(d, Name)).Append(" | ");
                }
            }

            return sb.ToString();
        }

        foreach (var op in s.Ops)
        {
            switch (op.Kind)
            {
                case 'S' when next < s.Jobs.Length:
                    await Submit();
                    break;
                case 'A':
                    await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(op.A));
                    trace.Add("advance: " + await DescribeAll(ids)); // parents: their status summaries, no child looked at
                    break;
                case 'D' when ids.Count > 0:
                    {
                        var k = op.A % ids.Count;
                        var size = s.Jobs[k].ArraySize;
                        if (size >= 2)
                        {
                            trace.Add("describe: " + await DescribeAll([ids[k] + ":" + (op.B % size).ToString(CultureInfo.InvariantCulture)]));
                        }

                        break;
                    }

                case 'C' when ids.Count > 0:
                    await engine.CancelJobAsync(ids[op.A % ids.Count], "cancelled by the test");
                    break;
                case 'T' when ids.Count > 0:
                    await engine.TerminateJobAsync(ids[op.A % ids.Count], "terminated by the test");
                    break;
                case 'L':
                    {
                        var listed = await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", JobStatus = JobStatus.RUNNING, MaxResults = 1000 });
                        trace.Add("list: " + string.Join(",", listed.JobSummaryList.Select(j => Name(j.JobId)).Order(StringComparer.Ordinal)));
                        break;
                    }

                case 'W':
                    await engine.Run(c => c.AddWatcher(1 << 16), CancellationToken.None);
                    break;
                default:
                    break;
            }
        }

        while (next < s.Jobs.Length)
        {
            await Submit();
        }

        await engine.RunUntilIdleAsync();
        var all = new List<string>();
        for (var k = 0; k < ids.Count; k++)
        {
            all.Add(ids[k]);
            for (var c = 0; c < s.Jobs[k].ArraySize; c++)
            {
                all.Add(ids[k] + ":" + c.ToString(CultureInfo.InvariantCulture));
            }
        }

        trace.Add("final: " + await DescribeAll(all));
        var stats = engine.Statistics;
        trace.Add(string.Create(CultureInfo.InvariantCulture,
            $"statistics: submitted={stats.Submitted} started={stats.Started} succeeded={stats.Succeeded} failed={stats.Failed} placements={stats.Placements}"));
        return (trace, used);
    }

    /// <summary>A job's or child's id as its submission position among <paramref name="tops"/> (<c>#k</c>, <c>#k:i</c>).</summary>
    internal static string NameIn(List<string> tops, string id)
    {
        var colon = id.IndexOf(':', StringComparison.Ordinal);
        var top = tops.IndexOf(colon < 0 ? id : id[..colon]);
        return "#" + top.ToString(CultureInfo.InvariantCulture) + (colon < 0 ? "" : id[colon..]);
    }

    /// <summary>What a user reads of a job, ids replaced by submission positions (the two runs draw different ids).</summary>
    internal static string Project(JobDetail d, Func<string, string> name)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{name(d.JobId)} {d.Status} '{d.StatusReason}' created={d.CreatedAt} started={d.StartedAt} stopped={d.StoppedAt} cancelled={d.IsCancelled} terminated={d.IsTerminated}");
        if (d.ArrayProperties is { } a)
        {
            sb.Append(CultureInfo.InvariantCulture, $" size={a.Size} index={a.Index} updated={a.StatusSummaryLastUpdatedAt}");
            if (a.StatusSummary is { } summary)
            {
                sb.Append(" summary=").Append(string.Join(",", summary.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + ":" + p.Value.ToString(CultureInfo.InvariantCulture))));
            }
        }

        foreach (var at in d.Attempts)
        {
            sb.Append(CultureInfo.InvariantCulture, $" [{(at.Container?.ContainerInstanceArn is null ? "-" : EngineProbe.HostOf(at))} exit={at.Container?.ExitCode} '{at.Container?.Reason}' {at.StartedAt}-{at.StoppedAt} '{at.StatusReason}']");
        }

        return sb.ToString();
    }
}
