using System.Diagnostics;
using System.Globalization;

namespace BatchCore.Benchmarks.Dispatch;

/// <summary>
/// <c>memory-report [jobs]</c>: retained engine memory per job with 1,000,000 jobs queued (RUNNABLE), running, and
/// ended (kept for the retention), and a
/// Stopwatch breakdown of where dispatch time goes (submit+spawn+enqueue vs. placement) at several fleet sizes.
/// GC.GetTotalMemory(forceFullCollection) before and after, divided by the job count.
/// </summary>
internal static class MemoryReport
{
    public static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "variants")
        {
            return Variants();
        }

        var jobs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1_000_000;
        Console.WriteLine($"jobs: {jobs:N0}; {Environment.ProcessorCount} cores; .NET {Environment.Version}; server GC {System.Runtime.GCSettings.IsServerGC}");
        Measure("queued (RUNNABLE, no host fits)", () => DispatchSetup.Ec2(1, jobs, capacity: false), jobs);
        Measure("running (placed on 1,000 hosts)", () => DispatchSetup.Ec2(1_000, jobs), jobs);
        Measure("ended (SUCCEEDED array children, kept for the retention)", () => DispatchSetup.Ec2(1_000, jobs), jobs, runSeconds: 1);
        // The same arrays with an object per child (virtual children off): what arrays that can differ per child keep.
        var perChild = new BatchEngineOptions { VirtualArrayChildren = false };
        Measure("queued, object per child", () => DispatchSetup.Ec2(1, jobs, capacity: false, options: perChild), jobs);
        Measure("running, object per child", () => DispatchSetup.Ec2(1_000, jobs, options: perChild), jobs);
        Measure("ended, object per child", () => DispatchSetup.Ec2(1_000, jobs, options: perChild), jobs, runSeconds: 1);

        Console.WriteLine();
        // The breakdown uses 100,000 jobs, or fewer when fewer were asked for (the quick run).
        var breakdown = Math.Min(100_000, jobs);
        Console.WriteLine($"time breakdown, {breakdown:N0} jobs (ms; best of 3):");
        Console.WriteLine("| hosts | queued: submit+spawn+enqueue | placed: + placement | placement only | placements/s |");
        Console.WriteLine("|---:|---:|---:|---:|---:|");
        foreach (var hosts in new[] { 100, 1_000, 10_000, 100_000 })
        {
            var queued = Best(() => DispatchSetup.Ec2(hosts, breakdown, capacity: false), breakdown);
            var placed = Best(() => DispatchSetup.Ec2(hosts, breakdown), breakdown);
            Console.WriteLine($"| {hosts:N0} | {queued:F0} | {placed:F0} | {placed - queued:F0} | {breakdown / (placed / 1000):N0} |");
        }

        return 0;
    }

    /// <summary>Placement time (100,000 jobs, best of 3) with batch placement on/off and per strategy: where the time goes.</summary>
    private static int Variants()
    {
        Console.WriteLine("| hosts | variant | placed ms | placements/s |");
        Console.WriteLine("|---:|---|---:|---:|");
        foreach (var hosts in new[] { 1_000, 10_000, 100_000 })
        {
            foreach (var (name, o) in new (string, BatchEngineOptions)[]
            {
                ("default (BestFit, batch 32)", new BatchEngineOptions()),
                ("BestFit, batch off", new BatchEngineOptions { BatchPlacementThreshold = 0 }),
                ("FirstFit, batch off", new BatchEngineOptions { BatchPlacementThreshold = 0, PlacementStrategy = Placement.PlacementStrategy.FirstFit }),
            })
            {
                var ms = Best(() => DispatchSetup.Ec2(hosts, 100_000, options: o), 100_000);
                Console.WriteLine($"| {hosts:N0} | {name} | {ms:F0} | {100_000 / (ms / 1000):N0} |");
            }
        }

        return 0;
    }

    /// <param name="runSeconds">Simulated run time; when given, virtual time runs until every job has ended.</param>
    private static void Measure(string what, Func<BatchEngine> create, int jobs, double? runSeconds = null)
    {
        var engine = create();
        DispatchSetup.SettleAsync(engine).GetAwaiter().GetResult();
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var sw = Stopwatch.StartNew();
        var parents = DispatchSetup.SubmitArraysAsync(engine, jobs, runSeconds ?? 1_000_000).GetAwaiter().GetResult();
        var placed = DispatchSetup.SettleAsync(engine).GetAwaiter().GetResult();
        if (runSeconds is not null)
        {
            engine.RunUntilIdleAsync().GetAwaiter().GetResult();
            var ended = engine.Statistics.Succeeded - parents; // the array parents succeed too
            if (ended != jobs)
            {
                throw new InvalidOperationException($"{ended} of {jobs} jobs succeeded");
            }
        }

        sw.Stop();
        var after = GC.GetTotalMemory(forceFullCollection: true);
        Console.WriteLine($"{what}: {jobs:N0} jobs, {placed:N0} placed in {sw.Elapsed.TotalMilliseconds:F0} ms; retained {(after - before) / 1048576.0:F1} MiB = {(double)(after - before) / jobs:F0} bytes/job");
        GC.KeepAlive(engine);
        engine.StopAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
    }

    private static double Best(Func<BatchEngine> create, int jobs)
    {
        var best = double.MaxValue;
        for (var i = 0; i < 3; i++)
        {
            var engine = create();
            DispatchSetup.SettleAsync(engine).GetAwaiter().GetResult();
            GC.Collect();
            var sw = Stopwatch.StartNew();
            DispatchSetup.SubmitArraysAsync(engine, jobs).GetAwaiter().GetResult();
            DispatchSetup.SettleAsync(engine).GetAwaiter().GetResult();
            best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
            engine.StopAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        }

        return best;
    }
}
