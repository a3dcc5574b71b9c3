using System.Diagnostics;
using System.Globalization;

namespace BatchCore.Benchmarks.Peers;

/// <summary>
/// <c>peer-rounds [rounds] [pause-ms] [submits] [alloc]</c>: the 10,000-vCPU in-process array of <see cref="PeerThroughputBenchmarks"/>
/// (or, with <c>submits</c>, its N × SubmitJob case)
/// run the way BenchmarkDotNet runs it (global setup once; per round a full collection and one timed invocation, back
/// to back), printing per round the wall time, the process's CPU time, methods the JIT compiled meanwhile and minor page
/// faults. <c>pause-ms</c> idles that long before each round. For diagnosing the spread of the peers benchmark (see
/// docs/benchmarks.md), not for results. <c>alloc</c> samples the timed rounds' allocations by type.
/// </summary>
internal static class PeerRounds
{
    public static int Run(string[] args)
    {
        var rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 60;
        var pauseMs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 0;
        var submits = args.Length > 2 && args[2] == "submits";
        using var sampler = args.Contains("alloc") ? new Dispatch.AllocationSampler() : null;
        var bench = new PeerThroughputBenchmarks();
        bench.SetupWide().GetAwaiter().GetResult();
        var times = new List<double>(rounds);
        using var process = Process.GetCurrentProcess();
        for (var r = 0; r < rounds; r++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            if (pauseMs > 0)
            {
                Thread.Sleep(pauseMs);
            }

            process.Refresh();
            var cpu = process.TotalProcessorTime;
            var jitted = System.Runtime.JitInfo.GetCompiledMethodCount();
            var faults = ProcessCounters.MinorFaults();
            var (g0, g1, g2) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
            var pause = GC.GetTotalPauseDuration();
            sampler?.Start();
            var sw = Stopwatch.StartNew();
            (submits ? bench.BatchCoreSubmitsWide() : bench.BatchCoreArrayWide()).GetAwaiter().GetResult();
            var ms = sw.Elapsed.TotalMilliseconds;
            sampler?.Stop();
            times.Add(ms);
            process.Refresh();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"round {r,3}: {ms,6:F1} ms  cpu {(process.TotalProcessorTime - cpu).TotalMilliseconds,5:F0} ms  jitted {System.Runtime.JitInfo.GetCompiledMethodCount() - jitted,4}  faults {ProcessCounters.MinorFaults() - faults,5}  gc {GC.CollectionCount(0) - g0}/{GC.CollectionCount(1) - g1}/{GC.CollectionCount(2) - g2} pause {(GC.GetTotalPauseDuration() - pause).TotalMilliseconds,5:F1} ms"));
        }

        var last = times.Skip(rounds / 3).Order().ToList();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"last {last.Count} rounds: median {last[last.Count / 2]:F1} ms, min {last[0]:F1}, max {last[^1]:F1}, mean {last.Average():F1}"));
        bench.CleanupWide().GetAwaiter().GetResult();
        foreach (var (type, bytes, share) in sampler?.Report().Take(25) ?? [])
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{share,6:P1} {bytes,14:N0} B  {type}"));
        }

        return 0;
    }
}
