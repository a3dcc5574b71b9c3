using System.Diagnostics;
using System.Reflection;
using BatchCore.Benchmarks.Quality;
using BatchCore.Benchmarks.Simulation;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Parameters;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace BatchCore.Benchmarks;

/// <summary>
/// <c>quick</c>: a smoke run of every benchmark so none silently rots (CI runs it after the tests). Every class with a
/// <c>[Benchmark]</c> method, found by reflection, runs once per method — one cold invocation, in process, with the first
/// value of each <c>[Params]</c> — followed by the report modes on small inputs. Exits non-zero when any benchmark or
/// report fails. A class that needs an external service (docker, slurm) declares
/// <c>public static string? QuickSkipReason</c>; when it returns a reason the class is skipped with that reason.
/// The environment variable <see cref="EnvironmentVariable"/> is set to 1 so a benchmark may shrink its own sizes.
/// </summary>
public static class QuickRun
{
    /// <summary>Set to 1 while the quick run executes.</summary>
    public const string EnvironmentVariable = "BATCHCORE_BENCH_QUICK";

    /// <summary>Runs the quick mode; <c>--filter substring</c> keeps only benchmark classes whose name contains it.</summary>
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        Environment.SetEnvironmentVariable(EnvironmentVariable, "1");
        var fi = Array.IndexOf(args, "--filter");
        var filter = fi >= 0 && fi + 1 < args.Length ? args[fi + 1] : null;
        var reportsOnly = Array.IndexOf(args, "--reports-only") >= 0;
        var benchmarksOnly = Array.IndexOf(args, "--benchmarks-only") >= 0;
        var failures = new List<string>();
        var total = Stopwatch.StartNew();

        if (!reportsOnly)
        {
            RunBenchmarks(filter, failures);
        }

        if (!benchmarksOnly && filter is null)
        {
            // The report modes, on small inputs.
            if (BatchCore.Placement.Packing.Instances.PackingDataDirectory.Find() is null)
            {
                // The instances live beside the repository (../shared/data), not in it: a clean clone has none.
                Console.WriteLine($"quick: report quality --quick skipped: benchmark data not found (set {BatchCore.Placement.Packing.Instances.PackingDataDirectory.EnvironmentVariable} or provide ../shared/data)");
            }
            else
            {
                Report("quality --quick", () => PlacementQualityReport.Run(["--quick"]), failures);
            }

            Report("simulate-report synthetic --jobs 5000", () => SimulationReportRunner.Run(["synthetic", "--jobs", "5000"]), failures);
            Report("memory-report 5000", () => Dispatch.MemoryReport.Run(["5000"]), failures);
            Report("dispatch-profile 100 1 late", () => Dispatch.DispatchProfile.Run(["100", "1", "late"]), failures);
            Report("peer-rounds 2", () => Peers.PeerRounds.Run(["2"]), failures);
            Report("recovery-report 5000 1", () => Journal.RecoveryReport.Run(["5000", "1"]), failures);
        }

        Console.WriteLine();
        Console.WriteLine($"quick: {failures.Count} failed, {total.Elapsed.TotalSeconds:F0} s");
        foreach (var f in failures)
        {
            Console.WriteLine($"quick: FAILED {f}");
        }

        return failures.Count == 0 ? 0 : 1;
    }

    /// <summary>Every type in this assembly with at least one <c>[Benchmark]</c> method, by name.</summary>
    internal static List<Type> BenchmarkTypes() =>
        [.. typeof(QuickRun).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false, IsPublic: true }
                && t.GetMethods(BindingFlags.Public | BindingFlags.Instance).Any(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null))
            .OrderBy(t => t.FullName, StringComparer.Ordinal)];

    /// <summary>The quick job: in process (no project generation), one cold invocation, no warm-up, no pilot.</summary>
    internal static Job QuickJob { get; } = new Job("Quick")
        .WithStrategy(RunStrategy.ColdStart)
        .WithLaunchCount(1)
        .WithWarmupCount(0)
        .WithIterationCount(1)
        .WithInvocationCount(1)
        .WithUnrollFactor(1)
        .WithToolchain(InProcessEmitToolchain.Instance)
        .Freeze();

    /// <summary>
    /// The benchmark cases of <paramref name="type"/> for the quick run: each method once, with the first declared value
    /// of every parameter, on <see cref="QuickJob"/> (the class's own job attributes are replaced).
    /// </summary>
    internal static BenchmarkRunInfo QuickCases(Type type, IConfig config)
    {
        var info = BenchmarkConverter.TypeToBenchmarks(type, config);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var cases = new List<BenchmarkCase>();
        foreach (var c in info.BenchmarksCases)
        {
            if (!IsFirstValueOfEveryParameter(c.Parameters))
            {
                continue;
            }

            var key = c.Descriptor.WorkloadMethod.Name + "|" + c.Parameters.DisplayInfo;
            if (seen.Add(key))
            {
                cases.Add(BenchmarkCase.Create(c.Descriptor, QuickJob, c.Parameters, c.Config));
            }
        }

        return new BenchmarkRunInfo([.. cases], type, info.Config);
    }

    private static bool IsFirstValueOfEveryParameter(ParameterInstances parameters)
    {
        foreach (var p in parameters.Items)
        {
            var first = p.Definition.Values.Length > 0 ? p.Definition.Values[0] : null;
            if (!Equals(p.Value, first))
            {
                return false;
            }
        }

        return true;
    }

    private static void RunBenchmarks(string? filter, List<string> failures)
    {
        var config = ManualConfig.CreateMinimumViable()
            .WithOptions(ConfigOptions.DisableLogFile | ConfigOptions.JoinSummary | ConfigOptions.DisableOptimizationsValidator)
            .WithArtifactsPath(Path.Combine(Path.GetTempPath(), "batchcore-bench-quick"));
        foreach (var type in BenchmarkTypes())
        {
            if (filter is not null && !type.Name.Contains(filter, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (SkipReason(type) is { } reason)
            {
                Console.WriteLine($"quick: {type.Name} skipped: {reason}");
                continue;
            }

            var sw = Stopwatch.StartNew();
            BenchmarkRunInfo info;
            try
            {
                info = QuickCases(type, config);
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException or TargetInvocationException)
            {
                failures.Add($"{type.Name}: {e.Message}");
                continue;
            }

            var summary = BenchmarkRunner.Run(info);
            var failed = summary.HasCriticalValidationErrors
                ? summary.ValidationErrors.Count(e => e.IsCritical)
                : summary.Reports.Count(r => !r.Success);
            if (summary.Reports.Length == 0 && !summary.HasCriticalValidationErrors)
            {
                failed = 1; // nothing ran: a class whose cases all vanished is rot too
            }

            Console.WriteLine($"quick: {type.Name}: {info.BenchmarksCases.Length} cases, {failed} failed, {sw.Elapsed.TotalSeconds:F1} s");
            if (failed > 0)
            {
                failures.Add($"{type.Name}: {failed} of {info.BenchmarksCases.Length} cases failed"
                    + string.Concat(summary.ValidationErrors.Select(e => "; " + e.Message)));
            }
        }
    }

    private static string? SkipReason(Type type)
    {
        var property = type.GetProperty("QuickSkipReason", BindingFlags.Public | BindingFlags.Static);
        return property?.PropertyType == typeof(string) ? (string?)property.GetValue(null) : null;
    }

    private static void Report(string name, Func<int> run, List<string> failures)
    {
        var sw = Stopwatch.StartNew();
        int code;
        try
        {
            code = run();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Console.Error.WriteLine(e);
            code = -1;
        }

        Console.WriteLine($"quick: report {name}: exit {code}, {sw.Elapsed.TotalSeconds:F1} s");
        if (code != 0)
        {
            failures.Add($"report {name}: exit code {code}");
        }
    }
}
