using BatchCore.Model;
using FsCheck.Xunit;

namespace BatchCore.Tests.Properties;

/// <summary>
/// <see cref="BatchEngineOptions.TerminalJobRetention"/> (10 minutes here) over random runs: jobs and arrays of random
/// lengths, some depending on earlier jobs, between random advances of the clock.
/// </summary>
public class RetentionProperties
{
    private static readonly TimeSpan Retention = TimeSpan.FromMinutes(10);

    /// <summary>
    /// At every step: a job is forgotten only after it ended at least the retention ago, never comes back, and never
    /// before a retained job that depends on it; dependsOn on a forgotten job is refused; the job counters are untouched.
    /// Once the clock runs on past the retention and another job ends, every earlier job is forgotten.
    /// </summary>
    [Property(MaxTest = 60)]
    public void Ended_jobs_are_forgotten_after_the_retention_and_never_before_their_dependents(int[] steps) =>
        RunAsync(steps ?? []).GetAwaiter().GetResult();

    private static async Task RunAsync(int[] steps)
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 2, vcpus: 2, options: new BatchEngineOptions { TerminalJobRetention = Retention });
        var ids = new List<string>();
        var forgotten = new HashSet<string>(StringComparer.Ordinal);
        var stoppedAt = new Dictionary<string, long>(StringComparer.Ordinal);
        var dependsOn = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in steps)
        {
            var code = raw & int.MaxValue;
            switch (code % 4)
            {
                case 0:
                case 1:
                    var depends = ids.Count > 0 && code / 4 % 3 == 0 ? ids[code / 12 % ids.Count] : null;
                    var request = TestEngine.Job("j", runSeconds: 30 * (1 + (code / 8 % 40)), arraySize: code % 4 == 1 ? 2 : null,
                        dependsOn: depends is null ? null : [new JobDependency { JobId = depends }]);
                    if (depends is not null && forgotten.Contains(depends))
                    {
                        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.SubmitJobAsync(request));
                        Assert.Contains("dependsOn[0].jobId", e.Message);
                        break;
                    }

                    var id = (await engine.SubmitJobAsync(request)).JobId;
                    ids.Add(id);
                    if (depends is not null)
                    {
                        dependsOn[id] = depends;
                    }

                    break;
                default:
                    await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(code / 4 % 20));
                    break;
            }

            await CheckAsync(engine, ids, forgotten, stoppedAt, dependsOn);
        }

        await engine.RunUntilIdleAsync();
        await engine.AdvanceTimeAsync(Retention + TimeSpan.FromMinutes(1));
        var trigger = (await engine.SubmitJobAsync(TestEngine.Job("trigger"))).JobId;
        await engine.RunUntilIdleAsync();
        await CheckAsync(engine, ids, forgotten, stoppedAt, dependsOn);
        Assert.Equal(ids.Count, forgotten.Count);
        Assert.Single(await engine.DescribeJobsAsync([trigger]));
    }

    /// <param name="stoppedAt">Per job, when it ended, or (not ended yet) the last check that saw it running or waiting.</param>
    private static async Task CheckAsync(BatchEngine engine, List<string> ids, HashSet<string> forgotten, Dictionary<string, long> stoppedAt,
        Dictionary<string, string> dependsOn)
    {
        var now = engine.UtcNow.ToUnixTimeMilliseconds();
        var retained = new Dictionary<string, JobDetail>(StringComparer.Ordinal);
        foreach (var chunk in ids.Chunk(100))
        {
            foreach (var d in await engine.DescribeJobsAsync(chunk))
            {
                retained[d.JobId] = d;
            }
        }

        foreach (var id in ids)
        {
            if (retained.TryGetValue(id, out var d))
            {
                Assert.DoesNotContain(id, forgotten); // never comes back
                // ended: when; not yet: it can end no earlier than now
                stoppedAt[id] = d.StoppedAt is { } s && (d.Status == JobStatus.SUCCEEDED || d.Status == JobStatus.FAILED) ? s : now;

                if (dependsOn.TryGetValue(id, out var dep))
                {
                    Assert.True(retained.ContainsKey(dep), $"{dep} was forgotten while {id}, which depends on it, is kept");
                }
            }
            else if (forgotten.Add(id))
            {
                var s = stoppedAt[id]; // every id was retained at the check right after its submission
                Assert.True(now - s >= Retention.TotalMilliseconds, $"{id} ended at or after {s}, forgotten by {now}: before the retention");
            }
        }
    }
}
