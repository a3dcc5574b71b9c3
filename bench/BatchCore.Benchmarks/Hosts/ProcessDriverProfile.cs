using System.Diagnostics;
using System.Globalization;
using BatchCore.Hosts;
using BatchCore.Hosts.Process;
using BatchCore.Logs;
using CliWrap;

namespace BatchCore.Benchmarks.Hosts;

/// <summary>
/// <c>process-profile [attempts] [concurrency] [rounds]</c>: where the process driver's time goes, without BenchmarkDotNet's
/// overhead. Runs the same trivial <c>true</c> attempts (one at a time by default) through CliWrap, the driver without
/// limits and the driver with limits, alternating rounds so that load from other processes hits all three alike, and
/// prints wall time, this process's CPU time and its children's CPU time per attempt.
/// </summary>
internal static class ProcessDriverProfile
{
    private static readonly string[] TrueCommand = ["true"];

    public static async Task<int> RunAsync(string[] args)
    {
        var attempts = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100;
        var concurrency = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1;
        var rounds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3;
        await using var plain = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = new InMemoryLogStore(), EnableLimits = false });
        await using var limited = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = new InMemoryLogStore() });
        var totals = new double[3, 3];
        for (var round = 0; round <= rounds; round++)
        {
            for (var kind = 0; kind < 3; kind++)
            {
                var (wall, self, children) = await MeasureAsync(async () =>
                {
                    if (kind == 0)
                    {
                        var workers = new Task[concurrency];
                        for (var w = 0; w < concurrency; w++)
                        {
                            var share = (attempts / concurrency) + (w < attempts % concurrency ? 1 : 0);
                            workers[w] = Task.Run(async () =>
                            {
                                for (var i = 0; i < share; i++)
                                {
                                    await Cli.Wrap("true").WithValidation(CommandResultValidation.None).ExecuteAsync();
                                }
                            });
                        }

                        await Task.WhenAll(workers);
                    }
                    else
                    {
                        await DriverLoad.RunAsync(kind == 1 ? plain : limited, attempts, concurrency, () => DriverLoad.Launch(TrueCommand));
                    }
                });
                if (round > 0)
                {
                    totals[kind, 0] += wall;
                    totals[kind, 1] += self;
                    totals[kind, 2] += children;
                }
            }
        }

        string[] names = ["CliWrap directly", "driver, no limits", "driver, limits"];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{attempts} attempts × {rounds} rounds each (after a warm-up round), {concurrency} at a time; ms per attempt"));
        Console.WriteLine("| | wall | CPU (this process) | CPU (children) | wall / CliWrap |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        for (var kind = 0; kind < 3; kind++)
        {
            var n = attempts * (double)rounds;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {names[kind]} | {totals[kind, 0] / n:F2} | {totals[kind, 1] / n:F2} | {totals[kind, 2] / n:F2} | {totals[kind, 0] / totals[0, 0]:F2} |"));
        }

        return 0;
    }

    private static async Task<(double Wall, double Self, double Children)> MeasureAsync(Func<Task> body)
    {
        var (self0, children0) = CpuTimes();
        var clock = Stopwatch.StartNew();
        await body();
        var wall = clock.Elapsed.TotalMilliseconds;
        var (self1, children1) = CpuTimes();
        return (wall, self1 - self0, children1 - children0);
    }

    /// <summary>utime+stime and cutime+cstime from /proc/self/stat, in ms.</summary>
    private static (double Self, double Children) CpuTimes()
    {
        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        double Ticks(int i) => double.Parse(fields[i - 3], CultureInfo.InvariantCulture) * 10; // field i (1-based), 100 Hz
        return (Ticks(14) + Ticks(15), Ticks(16) + Ticks(17));
    }
}
