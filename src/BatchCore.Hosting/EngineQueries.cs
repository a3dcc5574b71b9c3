using BatchCore.Model;

namespace BatchCore.Hosting;

/// <summary>What the hosting layer asks the engine across pages.</summary>
internal static class EngineQueries
{
    /// <summary>Every job queue, following DescribeJobQueues' pages.</summary>
    public static async Task<List<JobQueueDetail>> AllJobQueuesAsync(BatchEngine engine, CancellationToken ct)
    {
        var all = new List<JobQueueDetail>();
        string? token = null;
        do
        {
            var page = await engine.DescribeJobQueuesAsync(new DescribeJobQueuesRequest { NextToken = token }, ct).ConfigureAwait(false);
            all.AddRange(page.JobQueues);
            token = page.NextToken;
        }
        while (token is not null);
        return all;
    }
}
