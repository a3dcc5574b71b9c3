using System.CommandLine;
using BatchCore.Cli.Spec;

namespace BatchCore.Cli.Commands;

/// <summary><c>batchcore validate &lt;spec&gt;</c>: every problem of a spec, one line each, <c>&lt;path&gt;: &lt;message&gt;</c>.</summary>
internal static class ValidateCommand
{
    public static Command Create()
    {
        var spec = new Argument<FileInfo>("spec") { Description = "The spec file (JSON, or YAML with a .yaml/.yml extension)." };
        var shortTimeouts = CommonOptions.AllowShortTimeouts();
        var command = new Command("validate", "Check a spec against AWS Batch's rules without running anything; exit 2 and one line per problem when invalid.")
        {
            spec, shortTimeouts,
        };
        command.SetAction(async (parse, ct) =>
        {
            var file = parse.GetRequiredValue(spec);
            var doc = SpecDocument.Load(file.FullName);
            var problems = await Engines.ValidateAsync(doc, parse.GetValue(shortTimeouts), ct);
            if (problems.Count == 0)
            {
                Console.WriteLine($"{file.Name}: valid ({doc.ComputeEnvironments.Count} compute environments, {doc.JobQueues.Count} job queues, {doc.JobDefinitions.Count} job definitions, {doc.Jobs.Count} jobs)");
                return ExitCodes.Success;
            }

            foreach (var p in problems)
            {
                Console.WriteLine(p.ToString());
            }

            return ExitCodes.InvalidInput;
        });
        return command;
    }
}

/// <summary>Options several commands share.</summary>
internal static class CommonOptions
{
    public static Option<bool> AllowShortTimeouts() => new("--allow-short-timeouts")
    {
        Description = "Accept timeout.attemptDurationSeconds below AWS's 60 s minimum (at least 1 s).",
    };

    public static Option<string> Output(params string[] formats)
    {
        var o = new Option<string>("--output", "-o") { Description = "Output format: " + string.Join(" | ", formats) + ".", DefaultValueFactory = _ => formats[0] };
        o.AcceptOnlyFromAmong(formats);
        return o;
    }

    /// <summary>The state directory a run writes and <c>logs</c> reads.</summary>
    public const string DefaultStateDirectory = ".batchcore";

    public static Option<DirectoryInfo> State(string description, bool withDefault)
    {
        var o = new Option<DirectoryInfo>("--state") { Description = description };
        if (withDefault)
        {
            o.DefaultValueFactory = _ => new DirectoryInfo(DefaultStateDirectory);
        }

        return o;
    }
}
