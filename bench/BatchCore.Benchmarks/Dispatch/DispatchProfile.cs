using System.Diagnostics;
using System.Globalization;

namespace BatchCore.Benchmarks.Dispatch;

/// <summary>
/// <c>dispatch-profile [hosts,...] [rounds] [late] [alloc]</c>: runs <see cref="DispatchBenchmarks"/> the way BenchmarkDotNet's
/// monitoring job does (setup, full collection, one timed invocation, cleanup, full collection) in this process, and
/// prints every round with its collections and page faults: for profiling (perf, env knobs), not for results.
/// <c>late</c> frees the previous round's engine only after the next one is set up, right before the collection that
/// precedes the timed invocation: the heap then still has the memory the previous round faulted in (see
/// docs/benchmarks.md, "page faults").
/// </summary>
internal static class DispatchProfile
{
    public static int Run(string[] args)
    {
        var hosts = args.Length > 0 ? args[0].Split(',').Select(h => int.Parse(h, CultureInfo.InvariantCulture)).ToArray() : [100, 100_000];
        var rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 12;
        var late = args.Length > 2 && args[2] == "late";
        using var sampler = args.Contains("alloc") ? new AllocationSampler() : null;
        foreach (var h in hosts)
        {
            var bench = new DispatchBenchmarks { Hosts = h };
            DispatchBenchmarks? previous = null;
            for (var r = 0; r < rounds; r++)
            {
                if (late)
                {
                    bench = new DispatchBenchmarks { Hosts = h };
                }

                bench.SetupEngine();
                previous?.Cleanup();
                previous = null;
                Collect();
                var faults = ProcessCounters.MinorFaults();
                var (g0, g1, g2) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
                var pause = GC.GetTotalPauseDuration();
                var allocated = GC.GetTotalAllocatedBytes(precise: true);
                sampler?.Start();
                var sw = Stopwatch.StartNew();
                bench.Ec2().GetAwaiter().GetResult();
                var elapsed = sw.Elapsed;
                sampler?.Stop();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"hosts={h,-7} round {r,2}: {elapsed.TotalNanoseconds / DispatchBenchmarks.Jobs,7:N0} ns/job  gc={GC.CollectionCount(0) - g0}/{GC.CollectionCount(1) - g1}/{GC.CollectionCount(2) - g2} pause={(GC.GetTotalPauseDuration() - pause).TotalMilliseconds:N1} ms  faults={ProcessCounters.MinorFaults() - faults}  allocated={(GC.GetTotalAllocatedBytes(precise: true) - allocated) / DispatchBenchmarks.Jobs} B/job"));
                if (late)
                {
                    previous = bench;
                }
                else
                {
                    bench.Cleanup();
                    Collect();
                }
            }

            previous?.Cleanup();
        }

        if (sampler is not null)
        {
            foreach (var (type, bytes, share) in sampler.Report().Take(25))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{share,6:P1} {bytes,14:N0} B  {type}"));
            }
        }

        return 0;
    }

    private static void Collect()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }
}
