using BatchCore.Benchmarks.Quality;
using BatchCore.Benchmarks.Simulation;
using BenchmarkDotNet.Running;

namespace BatchCore.Benchmarks;

public static class Program
{
    /// <summary><c>quality [--quick]</c> runs the placement-quality report; <c>simulate-report</c> the simulator targets; anything else goes to BenchmarkDotNet.</summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "quality")
        {
            return PlacementQualityReport.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "simulate-report")
        {
            return SimulationReportRunner.Run(args[1..]);
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
