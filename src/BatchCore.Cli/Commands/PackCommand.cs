using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BatchCore.Cli.Spec;
using BatchCore.Placement.Packing;
using Spectre.Console;

namespace BatchCore.Cli.Commands;

/// <summary>
/// <c>batchcore pack --jobs jobs.csv --host 4,16384</c>: places jobs onto as few identical hosts as possible with the
/// engine's own placement code (<see cref="VectorPacker"/>), and says how far that is from the lower bound.
/// </summary>
internal static class PackCommand
{
    public sealed record Placement(int Job, int Host);

    public sealed record PackDocument(int Hosts, int LowerBound, int Jobs, string Strategy, bool TimedOut, IReadOnlyList<Placement> Placements);

    private static readonly Dictionary<string, PackingStrategy> Strategies = new(StringComparer.Ordinal)
    {
        ["optimized"] = PackingStrategy.Optimized,
        ["best-fit"] = PackingStrategy.BestFit,
        ["first-fit"] = PackingStrategy.FirstFit,
        ["spread"] = PackingStrategy.Spread,
        ["first-fit-decreasing"] = PackingStrategy.FirstFitDecreasing,
        ["best-fit-decreasing"] = PackingStrategy.BestFitDecreasing,
    };

    public static Command Create()
    {
        var jobs = new Option<FileInfo>("--jobs") { Description = "CSV with the header vcpus,memoryMiB[,gpus]; fractional vCPUs allowed.", Required = true };
        var host = new Option<string>("--host") { Description = "The host shape: <vcpus>,<memoryMiB>[,<gpus>], taken exactly as given.", Required = true };
        var strategy = new Option<string>("--strategy") { Description = "optimized (the default: the engine's own placement code), best-fit, first-fit, spread, first-fit-decreasing or best-fit-decreasing.", DefaultValueFactory = _ => "optimized" };
        strategy.AcceptOnlyFromAmong([.. Strategies.Keys]);
        var budget = new Option<int?>("--time-budget-ms") { Description = "Time budget of the optimized strategy's improvement phase; the default is 50 ms per 1,000 jobs, at least 5 ms." };
        var output = CommonOptions.Output("json", "table");
        var command = new Command("pack", "Place jobs onto as few identical hosts as possible (vector bin packing over vCPU, memory and GPUs).")
        {
            jobs, host, strategy, budget, output,
        };
        command.SetAction(parse =>
        {
            if (!TryParseHost(parse.GetRequiredValue(host), out var capacity, out var error)
                || !TryReadJobs(parse.GetRequiredValue(jobs), capacity, out var demands, out var dims, out error))
            {
                Console.Error.WriteLine("error: " + error);
                return ExitCodes.InvalidInput;
            }

            if (parse.GetValue(budget) is { } ms && ms < 0)
            {
                Console.Error.WriteLine($"error: --time-budget-ms must be at least 0, was {ms}");
                return ExitCodes.InvalidInput;
            }

            var problem = new PackingProblem(capacity.AsSpan(0, dims), demands.ToArray());
            var name = parse.GetValue(strategy) ?? "optimized";
            var options = parse.GetValue(budget) is { } b ? new PackingOptions { TimeBudget = TimeSpan.FromMilliseconds(b) } : null;
            var result = VectorPacker.Pack(problem, Strategies[name], options);
            var placements = result.BinOfItem.Select((h, i) => new Placement(i, h)).ToList();
            var doc = new PackDocument(result.BinCount, result.LowerBoundL2, problem.ItemCount, name, result.TimedOut, placements);
            if (parse.GetValue(output) == "json")
            {
                Console.WriteLine(JsonSerializer.Serialize(doc, CliJson.Write));
                return ExitCodes.Success;
            }

            AnsiConsole.MarkupLine($"[bold]{doc.Hosts}[/] hosts for {doc.Jobs} jobs (lower bound {doc.LowerBound}, strategy {name})");
            var table = new Table().Border(TableBorder.Rounded);
            table.AddColumn(new TableColumn("Host").RightAligned()).AddColumn(new TableColumn("Jobs").RightAligned())
                .AddColumn(new TableColumn("vCPU used").RightAligned()).AddColumn(new TableColumn("Memory used").RightAligned()).AddColumn("Job indexes");
            for (var h = 0; h < result.BinCount; h++)
            {
                var items = placements.Where(p => p.Host == h).Select(p => p.Job).ToList();
                var cpu = items.Sum(i => problem.Demand(i)[0]);
                var mem = items.Sum(i => problem.Demand(i)[1]);
                table.AddRow(
                    h.ToString(CultureInfo.InvariantCulture),
                    items.Count.ToString(CultureInfo.InvariantCulture),
                    string.Create(CultureInfo.InvariantCulture, $"{cpu / 1000.0:0.###}/{capacity[0] / 1000.0:0.###} ({100.0 * cpu / capacity[0]:F0}%)"),
                    string.Create(CultureInfo.InvariantCulture, $"{mem}/{capacity[1]} ({100.0 * mem / capacity[1]:F0}%)"),
                    string.Join(" ", items));
            }

            AnsiConsole.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Host shape: vCPUs (as milli-vCPUs), memory MiB, optional GPUs.</summary>
    internal static bool TryParseHost(string text, out long[] capacity, out string error)
    {
        capacity = [0, 0, 0];
        error = "";
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length is < 2 or > 3
            || !TryVcpus(parts[0], out capacity[0]) || capacity[0] <= 0
            || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out capacity[1]) || capacity[1] <= 0
            || (parts.Length == 3 && !long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out capacity[2])))
        {
            error = $"--host must be <vcpus>,<memoryMiB>[,<gpus>] with positive vCPUs and memory, was '{text}'";
            return false;
        }

        return true;
    }

    /// <summary>Reads the CSV; GPUs are a third dimension only when the host or a job has any.</summary>
    internal static bool TryReadJobs(FileInfo file, long[] capacity, out List<long> demands, out int dims, out string error)
    {
        demands = [];
        dims = 2;
        error = "";
        string[] lines;
        try
        {
            lines = File.ReadAllLines(file.FullName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"{file.Name}: cannot be read: {e.Message}";
            return false;
        }

        var header = -1;
        string[] columns = [];
        var rows = new List<(int Line, long Cpu, long Mem, long Gpu)>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            var n = i + 1;
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var cells = line.Split(',', StringSplitOptions.TrimEntries);
            if (header < 0)
            {
                header = n;
                columns = cells;
                var ok = cells.Length is 2 or 3 && cells[0].Equals("vcpus", StringComparison.OrdinalIgnoreCase)
                    && cells[1].Equals("memoryMiB", StringComparison.OrdinalIgnoreCase)
                    && (cells.Length == 2 || cells[2].Equals("gpus", StringComparison.OrdinalIgnoreCase));
                if (!ok)
                {
                    error = $"{file.Name} line {n}: the header must be vcpus,memoryMiB[,gpus], was '{line}'";
                    return false;
                }

                continue;
            }

            long gpu = 0;
            if (cells.Length != columns.Length
                || !TryVcpus(cells[0], out var cpu)
                || !long.TryParse(cells[1], NumberStyles.None, CultureInfo.InvariantCulture, out var mem)
                || (cells.Length == 3 && !long.TryParse(cells[2], NumberStyles.None, CultureInfo.InvariantCulture, out gpu)))
            {
                error = $"{file.Name} line {n}: expected {columns.Length} non-negative numbers ({string.Join(",", columns)}), was '{line}'";
                return false;
            }

            var hostGpus = capacity[2];
            if (cpu > capacity[0] || mem > capacity[1] || gpu > hostGpus)
            {
                error = string.Create(CultureInfo.InvariantCulture,
                    $"{file.Name} line {n}: the job ({cpu / 1000.0} vCPUs, {mem} MiB, {gpu} GPUs) is larger than the host ({capacity[0] / 1000.0} vCPUs, {capacity[1]} MiB, {hostGpus} GPUs)");
                return false;
            }

            rows.Add((n, cpu, mem, gpu));
        }

        if (header < 0)
        {
            error = $"{file.Name}: empty; expected the header vcpus,memoryMiB[,gpus]";
            return false;
        }

        dims = capacity[2] > 0 ? 3 : 2;
        foreach (var (_, cpu, mem, gpu) in rows)
        {
            demands.Add(cpu);
            demands.Add(mem);
            if (dims == 3)
            {
                demands.Add(gpu);
            }
        }

        return true;
    }

    private static bool TryVcpus(string s, out long milli)
    {
        milli = 0;
        if (!double.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v) || v < 0 || v > 1e9)
        {
            return false;
        }

        milli = (long)Math.Round(v * 1000);
        return true;
    }
}
