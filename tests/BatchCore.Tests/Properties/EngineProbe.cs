using System.Threading.Channels;
using BatchCore.Model;

namespace BatchCore.Tests.Properties;

/// <summary>
/// Read-only access to an engine for the properties: every state change in order (a watcher on the loop), a barrier
/// that lets the loop finish the cycle a command started, and consistent reads of all jobs.
/// </summary>
internal sealed class EngineProbe
{
    private readonly ChannelReader<JobStateChange> _changes;

    private EngineProbe(BatchEngine engine, ChannelReader<JobStateChange> changes)
    {
        Engine = engine;
        _changes = changes;
    }

    public BatchEngine Engine { get; }

    /// <summary>Every change seen so far, in the loop's order.</summary>
    public List<JobStateChange> Changes { get; } = [];

    public static async Task<EngineProbe> AttachAsync(BatchEngine engine) =>
        new(engine, await engine.Run(c => c.AddWatcher(1 << 20), CancellationToken.None));

    /// <summary>
    /// Runs what the last command left to do (events, the scheduling cycle) on the loop, then collects the changes.
    /// Without it the loop's cycle after a command may run before or after the next read (a test race, not an engine one).
    /// </summary>
    public async Task<IReadOnlyList<JobStateChange>> SettleAsync()
    {
        await Engine.Run(c => { c.Settle(); return 0; }, CancellationToken.None);
        var start = Changes.Count;
        while (_changes.TryRead(out var change))
        {
            Changes.Add(change);
        }

        return Changes.GetRange(start, Changes.Count - start);
    }

    /// <summary>DescribeJobs for any number of ids (100 per call, AWS's limit).</summary>
    public async Task<Dictionary<string, JobDetail>> DescribeAllAsync(IEnumerable<string> ids)
    {
        var result = new Dictionary<string, JobDetail>(StringComparer.Ordinal);
        foreach (var chunk in ids.Distinct().Chunk(100))
        {
            foreach (var d in await Engine.DescribeJobsAsync(chunk))
            {
                result[d.JobId] = d;
            }
        }

        return result;
    }

    /// <summary>ListJobs of a queue for every status: job id → the statuses it was listed under.</summary>
    public async Task<Dictionary<string, List<string>>> ListByStatusAsync(string queue)
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var status in JobStatus.All)
        {
            string? token = null;
            do
            {
                var page = await Engine.ListJobsAsync(new ListJobsRequest { JobQueue = queue, JobStatus = status, NextToken = token });
                foreach (var s in page.JobSummaryList)
                {
                    if (!result.TryGetValue(s.JobId, out var list))
                    {
                        result[s.JobId] = list = [];
                    }

                    list.Add(status);
                }

                token = page.NextToken;
            }
            while (token is not null);
        }

        return result;
    }

    /// <summary>The host name in an attempt's containerInstanceArn (…:container-instance/ce/host).</summary>
    public static string HostOf(AttemptDetail attempt) => attempt.Container!.ContainerInstanceArn![(attempt.Container.ContainerInstanceArn!.LastIndexOf('/') + 1)..];

    /// <summary>The CE name in an attempt's containerInstanceArn.</summary>
    public static string CeOf(AttemptDetail attempt)
    {
        var arn = attempt.Container!.ContainerInstanceArn!;
        var end = arn.LastIndexOf('/');
        var start = arn.LastIndexOf('/', end - 1) + 1;
        return arn[start..end];
    }
}
