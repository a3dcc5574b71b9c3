using System.Diagnostics;
using System.Globalization;
using System.Text;
using BatchCore.Placement.Packing;
using BatchCore.Placement.Packing.Instances;

namespace BatchCore.Benchmarks.Quality;

/// <summary>
/// Solution-quality report (not a timing benchmark): every strategy on the Falkenauer u/t and Panigrahy sets, mean bins
/// relative to the optimum (or the lower bound where the optimum is unknown) and relative to the best published
/// heuristic. <c>dotnet run -c Release --project bench/BatchCore.Benchmarks -- quality [--quick] [--iterations N] [--time-ms T]</c>.
/// </summary>
public static class PlacementQualityReport
{
    private static readonly PackingStrategy[] Strategies =
    [
        PackingStrategy.FirstFit, PackingStrategy.FirstFitDecreasing, PackingStrategy.BestFit,
        PackingStrategy.Spread, PackingStrategy.Optimized,
    ];

    /// <summary>Runs the report and writes markdown to standard output; returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var quick = Array.IndexOf(args, "--quick") >= 0;
        var verbose = Array.IndexOf(args, "--verbose") >= 0;
        var gi = Array.IndexOf(args, "--group");
        var onlyGroup = gi >= 0 && gi + 1 < args.Length ? args[gi + 1] : null;
        var options = PackingOptions.Default;
        var it = Array.IndexOf(args, "--iterations");
        if (it >= 0 && it + 1 < args.Length)
        {
            options = options with { MaxIterations = long.Parse(args[it + 1], CultureInfo.InvariantCulture), TimeBudget = Timeout.InfiniteTimeSpan };
        }

        var tm = Array.IndexOf(args, "--time-ms");
        if (tm >= 0 && tm + 1 < args.Length)
        {
            options = options with { TimeBudget = TimeSpan.FromMilliseconds(double.Parse(args[tm + 1], CultureInfo.InvariantCulture)) };
        }

        var data = PackingDataDirectory.Find();
        if (data is null)
        {
            Console.Error.WriteLine($"Benchmark data not found: set {PackingDataDirectory.EnvironmentVariable} or place shared/data next to the repository.");
            return 2;
        }

        var sets = new List<(string Family, List<PackingInstance> Instances)>
        {
            ("Falkenauer u", BenchmarkInstances.Falkenauer(data, "falkenauer_u")),
            ("Falkenauer t", BenchmarkInstances.Falkenauer(data, "falkenauer_t")),
            ("Panigrahy", BenchmarkInstances.Panigrahy(data)),
        };

        var wall = new double[Strategies.Length];
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Options: time budget {(options.TimeBudget is { } t ? (t == Timeout.InfiniteTimeSpan ? "none" : $"{t.TotalMilliseconds} ms") : "default (50 ms per 1,000 items, min 5 ms)")}, max iterations {options.MaxIterations}, seed {options.Seed}{(quick ? ", --quick (3 instances per group)" : "")}.");
        sb.AppendLine();
        sb.AppendLine("| set | group | inst | ref | FF | FFD | BF | Spread | **Optimized** | best published | Optimized / best published | Optimized = ref |");
        sb.AppendLine("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        var invalid = 0;
        foreach (var (family, all) in sets)
        {
            var groups = new List<string>();
            foreach (var inst in all)
            {
                if (!groups.Contains(inst.Family))
                {
                    groups.Add(inst.Family);
                }
            }

            groups.Sort(static (a, b) => GroupKey(a).CompareTo(GroupKey(b)));
            var familyRatio = new double[Strategies.Length];
            var familyCount = 0;
            var familyOurs = 0L;
            var familyBest = 0L;
            foreach (var group in groups)
            {
                if (onlyGroup is not null && group != onlyGroup)
                {
                    continue;
                }

                var members = all.FindAll(i => i.Family == group);
                if (quick)
                {
                    members = members.GetRange(0, Math.Min(3, members.Count));
                }

                var ratio = new double[Strategies.Length];
                var optCount = 0;
                var atRef = 0;
                long sumOurs = 0, sumBest = 0;
                double bestRatio = 0;
                var hasBest = false;
                foreach (var inst in members)
                {
                    var reference = inst.Optimum ?? inst.LowerBound ?? 0;
                    if (inst.Optimum is not null)
                    {
                        optCount++;
                    }

                    for (var s = 0; s < Strategies.Length; s++)
                    {
                        var sw = Stopwatch.StartNew();
                        var result = VectorPacker.Pack(inst.Problem, Strategies[s], options);
                        wall[s] += sw.Elapsed.TotalSeconds;
                        if (PackingValidation.Check(inst.Problem, result) is { } error)
                        {
                            invalid++;
                            Console.Error.WriteLine($"INVALID {inst.Name} {Strategies[s]}: {error}");
                        }

                        reference = Math.Max(reference, result.LowerBoundL2);
                        ratio[s] += (double)result.BinCount / reference;
                        if (Strategies[s] == PackingStrategy.Optimized)
                        {
                            if (verbose)
                            {
                                Console.Error.WriteLine($"{inst.Name}: {result.BinCount} bins, ref {reference}, best published {inst.BestHeuristic}, {result.Iterations} iterations, {sw.Elapsed.TotalMilliseconds:F1} ms");
                            }

                            atRef += result.BinCount == reference ? 1 : 0;
                            if (inst.BestHeuristic is { } best)
                            {
                                hasBest = true;
                                sumOurs += result.BinCount;
                                sumBest += best;
                                bestRatio += (double)best / reference;
                            }
                        }
                    }
                }

                var c = members.Count;
                var refText = optCount == c ? "OPT" : optCount == 0 ? "LB" : $"OPT ({optCount}), else LB";
                sb.Append(CultureInfo.InvariantCulture, $"| {family} | {group} | {c} | {refText} |");
                for (var s = 0; s < Strategies.Length; s++)
                {
                    var mean = ratio[s] / c;
                    sb.Append(Strategies[s] == PackingStrategy.Optimized ? string.Create(CultureInfo.InvariantCulture, $" **{mean:F4}** |") : string.Create(CultureInfo.InvariantCulture, $" {mean:F4} |"));
                    familyRatio[s] += ratio[s];
                }

                sb.Append(hasBest
                    ? string.Create(CultureInfo.InvariantCulture, $" {bestRatio / c:F4} | {(double)sumOurs / sumBest:F4} |")
                    : " – | – |");
                sb.AppendLine(CultureInfo.InvariantCulture, $" {atRef}/{c} |");
                familyCount += c;
                familyOurs += sumOurs;
                familyBest += sumBest;
            }

            sb.Append(CultureInfo.InvariantCulture, $"| **{family}** | all | {familyCount} | |");
            for (var s = 0; s < Strategies.Length; s++)
            {
                sb.Append(CultureInfo.InvariantCulture, $" {familyRatio[s] / familyCount:F4} |");
            }

            sb.AppendLine(familyBest > 0
                ? string.Create(CultureInfo.InvariantCulture, $" | {(double)familyOurs / familyBest:F4} | |")
                : " – | – | |");
        }

        sb.AppendLine();
        sb.AppendLine("Wall time per strategy over all instances (single thread):");
        sb.AppendLine();
        sb.AppendLine("| strategy | seconds |");
        sb.AppendLine("|---|---:|");
        for (var s = 0; s < Strategies.Length; s++)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {Strategies[s]} | {wall[s]:F2} |");
        }

        Console.Write(sb.ToString());
        if (invalid > 0)
        {
            Console.Error.WriteLine($"{invalid} invalid packings");
            return 1;
        }

        return 0;
    }

    // u120 < u250 < ... and class2 < class10: by letter, then by number.
    private static (string, int) GroupKey(string group)
    {
        var digits = 0;
        while (digits < group.Length && !char.IsDigit(group[digits]))
        {
            digits++;
        }

        return (group[..digits], digits < group.Length ? int.Parse(group[digits..], CultureInfo.InvariantCulture) : 0);
    }
}
