using BatchCore.Benchmarks.Quality;
using BatchCore.Benchmarks.Simulation;
using BenchmarkDotNet.Running;

namespace BatchCore.Benchmarks;

public static class Program
{
    /// <summary>
    /// <c>quality [--quick]</c> runs the placement-quality report; <c>peers-profile [rounds]</c> times the in-process array
    /// job against a simulated host; <c>memory-report [jobs]</c> the dispatch memory and time breakdown; <c>dispatch-profile [hosts,...] [rounds]</c> the
    /// dispatch benchmark's rounds one by one; <c>peer-rounds [rounds] [pause-ms]</c> the in-process array's;
    /// <c>simulate-report</c> the simulator targets; <c>process-profile [attempts] [concurrency] [rounds]</c> the process driver's time per attempt;
    /// <c>recovery-report [jobs] [runs]</c> engine recovery from a journal and a snapshot; <c>quick</c> a smoke run of every
    /// benchmark and report (CI); anything else goes to BenchmarkDotNet.
    /// </summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "quick")
        {
            return QuickRun.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "quality")
        {
            return PlacementQualityReport.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "peers-profile")
        {
            return Peers.PeerProfile.RunAsync(args[1..]).GetAwaiter().GetResult();
        }

        if (args.Length > 0 && args[0] == "memory-report")
        {
            return Dispatch.MemoryReport.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "peer-rounds")
        {
            return Peers.PeerRounds.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "dispatch-profile")
        {
            return Dispatch.DispatchProfile.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "process-profile")
        {
            return Hosts.ProcessDriverProfile.RunAsync(args[1..]).GetAwaiter().GetResult();
        }

        if (args.Length > 0 && args[0] == "recovery-report")
        {
            return Journal.RecoveryReport.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "simulate-report")
        {
            return SimulationReportRunner.Run(args[1..]);
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
