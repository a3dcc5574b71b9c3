using System.Globalization;
using System.Text.Json;
using BatchCore.Cli.Spec;
using BatchCore.Model;
using Spectre.Console;

namespace BatchCore.Cli.Commands;

/// <summary>The final state of a run's jobs: as DescribeJobs JSON (<c>{"jobs": [...]}</c>) or as a table.</summary>
internal static class JobReport
{
    /// <summary>The file in the state directory that holds the final job details.</summary>
    public const string StateFileName = "jobs.json";

    private const int ChildRowsShown = 20;

    /// <summary>The shape of <c>run --output json</c> and of <c>jobs.json</c>.</summary>
    public sealed record JobsDocument(IReadOnlyList<JobDetail> Jobs);

    /// <summary>Every submitted job, each array parent followed by its children (<c>&lt;parentId&gt;:&lt;i&gt;</c>).</summary>
    public static async Task<List<JobDetail>> CollectAsync(BatchEngine engine, List<SubmittedJob> jobs, CancellationToken ct)
    {
        var result = new List<JobDetail>();
        foreach (var chunk in jobs.Chunk(100))
        {
            var byId = (await engine.DescribeJobsAsync(chunk.Select(j => j.JobId).ToList(), ct)).ToDictionary(d => d.JobId);
            foreach (var job in chunk)
            {
                if (!byId.TryGetValue(job.JobId, out var d))
                {
                    continue;
                }

                result.Add(d);
                if (d.ArrayProperties?.Size is { } size and > 0)
                {
                    var ids = Enumerable.Range(0, size).Select(i => d.JobId + ":" + i.ToString(CultureInfo.InvariantCulture)).ToList();
                    foreach (var part in ids.Chunk(100))
                    {
                        result.AddRange(await engine.DescribeJobsAsync(part, ct));
                    }
                }
            }
        }

        return result;
    }

    public static string ToJson(IReadOnlyList<JobDetail> details) => JsonSerializer.Serialize(new JobsDocument(details), CliJson.Write);

    public static JobsDocument? Read(string file) => JsonSerializer.Deserialize<JobsDocument>(File.ReadAllText(file), CliJson.Read);

    public static Table ToTable(IReadOnlyList<JobDetail> details)
    {
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("Job").AddColumn("Job ID").AddColumn("Status").AddColumn(new TableColumn("Attempts").RightAligned())
            .AddColumn(new TableColumn("Exit").RightAligned()).AddColumn(new TableColumn("Duration").RightAligned()).AddColumn("Reason");
        var children = 0;
        foreach (var d in details)
        {
            var isChild = d.ArrayProperties?.Index is not null;
            if (isChild && ++children > ChildRowsShown)
            {
                if (children == ChildRowsShown + 1)
                {
                    table.AddRow("  …", "", "more children in --output json", "", "", "", "");
                }

                continue;
            }

            if (!isChild)
            {
                children = 0;
            }

            var name = isChild ? "  [" + d.ArrayProperties!.Index!.Value.ToString(CultureInfo.InvariantCulture) + "]" : d.JobName;
            var status = d.ArrayProperties?.StatusSummary is { } summary && d.ArrayProperties.Size is > 0
                ? d.Status + " (" + string.Join(", ", summary.Where(kv => kv.Value > 0).Select(kv => kv.Value.ToString(CultureInfo.InvariantCulture) + " " + kv.Key)) + ")"
                : d.Status;
            var color = RunCommand.StatusColors.FirstOrDefault(c => c.Status == d.Status).Color;
            var last = d.Attempts.Count > 0 ? d.Attempts[^1] : null;
            var duration = d.StartedAt is { } s && d.StoppedAt is { } e ? TimeSpan.FromMilliseconds(e - s).TotalSeconds.ToString("F1", CultureInfo.InvariantCulture) + "s" : "";
            // A succeeded job's reason ("Essential container in task exited") says nothing; a failed one's says why.
            // The container's reason says what the generic one hides (CannotStartContainerError: executable file not found).
            var reason = d.Status != JobStatus.FAILED ? ""
                : d.StatusReason is StatusReasons.Essential && last?.Container?.Reason is { } why ? d.StatusReason + ": " + why
                : d.StatusReason ?? last?.Container?.Reason ?? "";
            var id = isChild ? ":" + d.ArrayProperties!.Index!.Value.ToString(CultureInfo.InvariantCulture) : d.JobId;
            table.AddRow(
                Markup.Escape(name),
                Markup.Escape(id),
                $"[{color.ToMarkup()}]{Markup.Escape(status)}[/]",
                d.Attempts.Count.ToString(CultureInfo.InvariantCulture),
                last?.Container?.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "",
                duration,
                Markup.Escape(reason));
        }

        return table;
    }
}
