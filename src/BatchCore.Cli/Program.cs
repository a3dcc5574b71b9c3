using System.CommandLine;
using System.CommandLine.Help;
using BatchCore.Cli.Commands;

namespace BatchCore.Cli;

/// <summary>
/// <c>batchcore</c>: validate, run, advise on, read the logs of and bin-pack AWS Batch specs on this machine.
/// Exit codes: 0 success (every job SUCCEEDED), 1 a job FAILED, 2 invalid input, 130 interrupted.
/// </summary>
internal static class Program
{
    /// <summary>The command users type (the tool's ToolCommandName), shown in help and in messages.</summary>
    public const string CommandName = "batchcore";

    public static async Task<int> Main(string[] args)
    {
        // Not a RootCommand: its name is the entry assembly's (BatchCore.Cli), fixed at construction, and help's usage
        // lines would read `BatchCore.Cli validate <spec>`. The command users type is the tool command name. (Only a RootCommand
        // takes directives: dotnet-suggest's [suggest] goes with it.)
        var root = new Command(CommandName, "BatchCore: AWS Batch's jobs, queues and compute environments on this machine.")
        {
            new HelpOption(),
            new VersionOption(),
            ValidateCommand.Create(),
            RunCommand.Create(),
            AdviseCommand.Create(),
            LogsCommand.Create(),
            PackCommand.Create(),
            SimulateCommand.Create(),
        };

        if (Console.IsOutputRedirected)
        {
            // Spectre.Console assumes 80 columns without a terminal; job ids alone take 36.
            Spectre.Console.AnsiConsole.Profile.Width = 160;
        }

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors)
            {
                await Console.Error.WriteLineAsync("error: " + e.Message);
            }

            await Console.Error.WriteLineAsync($"Run '{CommandName} --help' for usage.");
            return ExitCodes.InvalidInput;
        }

        // Ctrl+C is handled by `run` itself (graceful stop), not by System.CommandLine's termination timeout.
        return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
    }
}

/// <summary>The CLI's exit codes.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int JobFailed = 1;
    public const int InvalidInput = 2;
    public const int Interrupted = 130;
}
