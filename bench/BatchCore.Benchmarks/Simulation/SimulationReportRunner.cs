using System.Diagnostics;
using System.Globalization;
using BatchCore.Placement.Packing.Instances;
using BatchCore.Simulation;

namespace BatchCore.Benchmarks.Simulation;

/// <summary>
/// <c>simulate-report [kth] [synthetic] [--jobs N] [--max N] [--time-scale X] [--scale-down-minutes M] [--no-timeouts] [--out DIR]</c>:
/// replays the KTH SP2 log (requested times as job timeouts unless <c>--no-timeouts</c>) on each profile and a
/// synthetic workload, timing each replay, and checks the targets (KTH &lt; 5 s per profile, 1,000,000 jobs &lt; 60 s,
/// EC2 cost on KTH within 1.3× of the lower bound).
/// </summary>
public static class SimulationReportRunner
{
    private static double s_timeScale = 1;
    private static double s_scaleDownMinutes = 20;
    private static bool s_noTimeouts;

    public static int Run(string[] args)
    {
        var all = args.Length == 0 || args.All(a => a.StartsWith("--", StringComparison.Ordinal) || int.TryParse(a, out _));
        var jobs = 1_000_000;
        int? max = null;
        string? outDir = null;
        for (var i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--jobs")
            {
                jobs = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            }

            if (args[i] == "--max")
            {
                max = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            }

            if (args[i] == "--time-scale")
            {
                s_timeScale = double.Parse(args[i + 1], CultureInfo.InvariantCulture);
            }

            if (args[i] == "--scale-down-minutes")
            {
                s_scaleDownMinutes = double.Parse(args[i + 1], CultureInfo.InvariantCulture);
            }

            if (args[i] == "--out")
            {
                outDir = args[i + 1];
            }
        }

        s_noTimeouts = args.Contains("--no-timeouts");
        var ok = true;
        if (all || args.Contains("kth"))
        {
            ok &= Kth(outDir, max);
        }

        if (all || args.Contains("synthetic"))
        {
            ok &= Synthetic(jobs, outDir);
        }

        return ok ? 0 : 1;
    }

    private static bool Kth(string? outDir, int? max)
    {
        var data = PackingDataDirectory.Find();
        var path = data is null ? null : Path.Combine(data, "traces", "KTH-SP2-1996-2.1-cln.swf.gz");
        if (path is null || !File.Exists(path))
        {
            Console.WriteLine("KTH log not found (set BATCHCORE_DATA): skipped");
            return true;
        }

        var workload = SwfWorkload.Read(path, new SwfMapping { RequestedTimeAsTimeout = !s_noTimeouts });
        if (max is { } m)
        {
            workload = workload.Take(m);
        }

        Console.WriteLine($"KTH: {workload.Jobs.Count} jobs, {workload.SkippedCount} skipped");
        var ok = true;
        var reports = new List<ProfileReport>();
        foreach (var profile in SimulationProfile.BuiltInNames)
        {
            var sw = Stopwatch.StartNew();
            var report = Simulator.RunAsync(new SimulationOptions
            {
                Workload = workload,
                Profiles = [profile],
                Seed = 1,
                TimeScale = s_timeScale,
                IncludeCostBreakdown = true,
                Engine = new BatchEngineOptions { Provisioning = new() { DefaultScaleDownDelay = TimeSpan.FromMinutes(s_scaleDownMinutes) } },
            }).GetAwaiter().GetResult();
            sw.Stop();
            var p = report.Profiles[0];
            reports.Add(p);
            var pass = sw.Elapsed.TotalSeconds < 5;
            ok &= pass;
            Console.WriteLine($"  {profile,-8} wall {sw.Elapsed.TotalSeconds,6:F2} s (target < 5 s: {(pass ? "met" : "MISSED")})  jobs {p.Jobs} unrunnable {p.Unrunnable}  cost ${p.CostUsd:F2} bound ${p.CostLowerBoundUsd:F2} ratio {p.CostRatio:F3}  wait p50 {p.Wait.P50:F0}s p95 {p.Wait.P95:F0}s  util {p.Utilization:P1}  peak hosts {p.PeakHosts}");
            if (profile == "ec2")
            {
                var costOk = p.CostRatio <= 1.3;
                ok &= costOk;
                Console.WriteLine($"  ec2 cost ratio {p.CostRatio:F3} (target <= 1.3: {(costOk ? "met" : "MISSED")})");
            }
        }

        var all = new SimulationReport { Profiles = reports, Workload = path, Seed = 1 };
        Console.WriteLine(all.ToTable());
        if (outDir is not null)
        {
            Directory.CreateDirectory(outDir);
            File.WriteAllText(Path.Combine(outDir, "kth-report.json"), all.ToJson());
        }

        return ok;
    }

    private static bool Synthetic(int jobs, string? outDir)
    {
        // A steady stream of 40 jobs/s, ~5 minutes each (1–8 vCPU, mostly 1–2): about 12,000 jobs × ~2.4 vCPU running
        // at once, on small instances (c6i.large..2xlarge, maxvCpus 40,000): thousands of hosts, up to 10,000.
        var workload = WorkloadGenerator.Steady(jobs, jobsPerSecond: 40, meanRuntimeSeconds: 300, seed: 7);
        var profile = new SimulationProfile("ec2-small", SimulationProfile.Ec2(40_000).ComputeEnvironment with
        {
            ComputeEnvironmentName = "ec2-small",
            ComputeResources = SimulationProfile.Ec2(40_000).ComputeEnvironment.ComputeResources! with { InstanceTypes = ["c6i.large", "c6i.xlarge", "c6i.2xlarge"] },
        });
        var sw = Stopwatch.StartNew();
        var report = Simulator.RunAsync(new SimulationOptions { Workload = workload, CustomProfiles = [profile], Seed = 1 }).GetAwaiter().GetResult();
        sw.Stop();
        var p = report.Profiles[0];
        // The target is for 1,000,000 jobs; a smaller run (the quick mode) only has to complete.
        var pass = sw.Elapsed.TotalSeconds < 60 || jobs < 1_000_000;
        Console.WriteLine($"synthetic {jobs} jobs on ec2-small: wall {sw.Elapsed.TotalSeconds:F2} s (target < 60 s: {(pass ? "met" : "MISSED")})  jobs {p.Jobs}  peak hosts {p.PeakHosts}  cost ratio {p.CostRatio:F3}  wait p50 {p.Wait.P50:F0}s p99 {p.Wait.P99:F0}s  {p.DispatchedPerWallSecond:N0} jobs/wall s");
        Console.WriteLine(report.ToTable());
        if (outDir is not null)
        {
            Directory.CreateDirectory(outDir);
            File.WriteAllText(Path.Combine(outDir, "synthetic-report.json"), report.ToJson(includeSeries: false));
        }

        return pass;
    }
}
