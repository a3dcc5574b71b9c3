using System.CommandLine;
using System.Globalization;
using BatchCore.Charts;
using BatchCore.Cli.Spec;
using BatchCore.Model;
using BatchCore.Simulation;
using Spectre.Console;

namespace BatchCore.Cli.Commands;

/// <summary>
/// <c>batchcore simulate --workload kth.swf.gz --profile all</c>: replays a workload in virtual time on the real engine
/// (same dispatcher, placement and provisioning) against EC2, Spot and Fargate capacity, and reports cost, waiting time
/// and makespan for each — a day of a cluster in seconds.
/// </summary>
internal static class SimulateCommand
{
    public static Command Create()
    {
        var workload = new Option<FileInfo>("--workload") { Description = "The workload: a Standard Workload Format log (.swf or .swf.gz) or JSON lines (.jsonl).", Required = true };
        var spec = new Option<FileInfo?>("--spec") { Description = "A spec whose MANAGED compute environments become the profiles (instead of the built-in ones)." };
        var profile = new Option<string>("--profile") { Description = "ec2 | spot | fargate | all (all runs ec2, spot and fargate).", DefaultValueFactory = _ => "all" };
        profile.AcceptOnlyFromAmong("ec2", "spot", "fargate", "all");
        var seed = new Option<int>("--seed") { Description = "Seed of every random choice (boot times, spot interruptions): the same seed gives the same report.", DefaultValueFactory = _ => 1 };
        var timeScale = new Option<double>("--time-scale") { Description = "Divide submit times by this factor (compress a slow log).", DefaultValueFactory = _ => 1.0 };
        var maxvCpus = new Option<int>("--max-vcpus") { Description = "maxvCpus of the built-in profiles.", DefaultValueFactory = _ => SimulationDefaults.MaxvCpus };
        var maxJobs = new Option<int?>("--max-jobs") { Description = "Replay only the first N jobs of the workload." };
        var output = CommonOptions.Output("table", "json");
        var charts = new Option<DirectoryInfo?>("--charts") { Description = "Write PNG charts (queue depth, vCPUs running jobs asked for and provisioned vCPUs over time; cost and wait per profile) into this directory." };
        var breakdown = new Option<bool>("--cost-breakdown") { Description = "Add where the cost goes per profile (idle, boot, unused vCPUs, size rounding, type premium) to the report." };
        var command = new Command("simulate", "Replay a workload in virtual time on EC2, Spot and Fargate profiles and compare cost, wait and makespan.")
        {
            workload, spec, profile, seed, timeScale, maxvCpus, maxJobs, output, charts, breakdown,
        };
        command.SetAction((parse, ct) => RunAsync(
            parse.GetRequiredValue(workload), parse.GetValue(spec), parse.GetValue(profile)!, parse.GetValue(seed), parse.GetValue(timeScale),
            parse.GetValue(maxvCpus), parse.GetValue(maxJobs), parse.GetValue(output) == "json", parse.GetValue(charts), parse.GetValue(breakdown), ct));
        return command;
    }

    private static async Task<int> RunAsync(FileInfo workload, FileInfo? specFile, string profile, int seed, double timeScale, int maxvCpus, int? maxJobs,
        bool json, DirectoryInfo? chartsDir, bool costBreakdown, CancellationToken ct)
    {
        if (!workload.Exists)
        {
            await Console.Error.WriteLineAsync($"error: --workload {workload.FullName} does not exist");
            return ExitCodes.InvalidInput;
        }

        if (timeScale <= 0 || double.IsNaN(timeScale))
        {
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"error: --time-scale must be greater than 0, was {timeScale}"));
            return ExitCodes.InvalidInput;
        }

        IReadOnlyList<SimulationProfile>? custom = null;
        if (specFile is not null)
        {
            var doc = SpecDocument.Load(specFile.FullName);
            if (doc.Problems.Count > 0)
            {
                // A missing file, a syntax error or a mistyped field, said as `validate` says it (not "no environment").
                foreach (var problem in doc.Problems)
                {
                    await Console.Error.WriteLineAsync("error: --spec " + problem);
                }

                return ExitCodes.InvalidInput;
            }

            custom = doc.ComputeEnvironments
                .Select(e => e.Request)
                .OfType<CreateComputeEnvironmentRequest>()
                .Where(r => r.Type == CEType.MANAGED)
                .Select(r => new SimulationProfile(r.ComputeEnvironmentName ?? "ce", r with { Provider = "simulated" }))
                .ToList();
            if (custom.Count == 0)
            {
                await Console.Error.WriteLineAsync($"error: --spec {specFile.Name} has no MANAGED compute environment to simulate");
                return ExitCodes.InvalidInput;
            }
        }

        var options = new SimulationOptions
        {
            WorkloadPath = workload.FullName,
            Profiles = [profile],
            CustomProfiles = custom,
            Seed = seed,
            TimeScale = timeScale,
            MaxvCpus = maxvCpus,
            MaxJobs = maxJobs,
            IncludeCostBreakdown = costBreakdown,
        };

        SimulationReport report;
        try
        {
            if (!json && !Console.IsOutputRedirected)
            {
                report = null!;
                await AnsiConsole.Progress().StartAsync(async ctx =>
                {
                    var task = ctx.AddTask("replaying " + workload.Name, maxValue: 1.0);
                    report = await Simulator.RunAsync(options, new Progress<double>(p => task.Value = p), ct);
                    task.Value = 1.0;
                });
            }
            else
            {
                report = await Simulator.RunAsync(options, null, ct);
            }
        }
        catch (BatchClientException e)
        {
            await Console.Error.WriteLineAsync("error: " + e.Message);
            return ExitCodes.InvalidInput;
        }
        catch (Exception e) when (e is InvalidDataException or FormatException)
        {
            await Console.Error.WriteLineAsync("error: " + e.Message);
            return ExitCodes.InvalidInput;
        }

        if (json)
        {
            Console.WriteLine(report.ToJson(includeSeries: false));
        }
        else
        {
            Console.WriteLine(report.ToTable());
        }

        if (chartsDir is not null)
        {
            try
            {
                foreach (var file in SimulationCharts.Write(report, chartsDir.FullName))
                {
                    await Console.Error.WriteLineAsync("chart: " + file);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"error: --charts {chartsDir.FullName}: the charts cannot be written there: {e.Message}");
                return ExitCodes.InvalidInput;
            }
        }

        return ExitCodes.Success;
    }
}
