using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BatchCore.Advice;
using BatchCore.Cli.Spec;
using Spectre.Console;

namespace BatchCore.Cli.Commands;

/// <summary><c>batchcore advise &lt;spec&gt;</c>: FARGATE or EC2 for each job definition, with every reason.</summary>
internal static class AdviseCommand
{
    public sealed record DefinitionAdvice(string JobDefinitionName, int ExpectedJobs, string Platform, IReadOnlyList<string> Reasons);

    public sealed record AdviceDocument(IReadOnlyList<DefinitionAdvice> JobDefinitions);

    public static Command Create()
    {
        var spec = new Argument<FileInfo>("spec") { Description = "The spec file (JSON, or YAML with a .yaml/.yml extension)." };
        var output = CommonOptions.Output("table", "json");
        var expected = new Option<int?>("--expected-jobs")
        {
            Description = "Jobs expected per definition; the default counts the spec's jobs (array children one by one).",
        };
        var shortTimeouts = CommonOptions.AllowShortTimeouts();
        var command = new Command("advise", "Advise FARGATE or EC2 for each job definition of a spec, with every reason that applies.")
        {
            spec, output, expected, shortTimeouts,
        };
        command.SetAction(async (parse, ct) =>
        {
            // The spec is validated as `validate` and `run` do: advice on a definition AWS would reject is no advice.
            var doc = SpecDocument.Load(parse.GetRequiredValue(spec).FullName);
            var problems = await Engines.ValidateAsync(doc, parse.GetValue(shortTimeouts), ct);
            if (problems.Count > 0)
            {
                foreach (var p in problems)
                {
                    await Console.Error.WriteLineAsync(p.ToString());
                }

                return ExitCodes.InvalidInput;
            }

            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var job in doc.Jobs)
            {
                if (job.Request?.JobDefinition is { } reference)
                {
                    var name = DefinitionName(reference);
                    counts[name] = counts.GetValueOrDefault(name) + (job.Request.ArrayProperties?.Size ?? 1);
                }
            }

            var advice = new List<DefinitionAdvice>();
            foreach (var d in doc.JobDefinitions)
            {
                if (d.Request is not { JobDefinitionName: { } name } r)
                {
                    continue;
                }

                var n = parse.GetValue(expected) ?? counts.GetValueOrDefault(name);
                var a = FargateAdvisor.Advise(r, Math.Max(0, n));
                advice.Add(new DefinitionAdvice(name, n, a.Platform, a.Reasons));
            }

            if (parse.GetValue(output) == "json")
            {
                Console.WriteLine(JsonSerializer.Serialize(new AdviceDocument(advice), CliJson.Write));
                return ExitCodes.Success;
            }

            var table = new Table().Border(TableBorder.Rounded);
            table.AddColumn("Job definition").AddColumn(new TableColumn("Jobs").RightAligned()).AddColumn("Platform").AddColumn("Why");
            foreach (var a in advice)
            {
                table.AddRow(
                    Markup.Escape(a.JobDefinitionName),
                    a.ExpectedJobs.ToString(CultureInfo.InvariantCulture),
                    a.Platform == "EC2" ? "[yellow]EC2[/]" : "[green]FARGATE[/]",
                    Markup.Escape(string.Join("\n", a.Reasons.Select(x => "• " + x))));
            }

            AnsiConsole.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary><c>name</c>, <c>name:3</c> or <c>arn:...:job-definition/name:3</c> → <c>name</c>.</summary>
    internal static string DefinitionName(string reference)
    {
        var slash = reference.LastIndexOf('/');
        var s = slash >= 0 ? reference[(slash + 1)..] : reference;
        var colon = s.IndexOf(':', StringComparison.Ordinal);
        return colon >= 0 ? s[..colon] : s;
    }
}
