using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace BatchCore.Tests.Dummy;

/// <summary>
/// The job the host-driver tests run: each subcommand does one observable thing.
/// <code>
/// sleep &lt;seconds&gt;            sleep, exit 0
/// exit &lt;code&gt;                exit with that code
/// env &lt;NAME&gt;...              print NAME=value (or NAME is unset) per name
/// echo &lt;args&gt;...             print each argument on its own line, verbatim
/// alloc &lt;MiB&gt;                allocate and touch that much memory, print "allocated", then hold it
/// spin &lt;seconds&gt;             burn one CPU; print cpu-permille=&lt;CPU time / wall time × 1000&gt;
/// ignore-sigterm &lt;seconds&gt;   print "ready", ignore SIGTERM, sleep
/// stderr &lt;text&gt;              print text to stderr
/// </code>
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: dummy <sleep|exit|env|echo|alloc|spin|ignore-sigterm|stderr> args...");
            return 2;
        }

        var rest = args.AsSpan(1);
        switch (args[0])
        {
            case "sleep":
                Thread.Sleep(Seconds(rest));
                return 0;
            case "exit":
                return int.Parse(rest[0], CultureInfo.InvariantCulture);
            case "env":
                foreach (var name in rest)
                {
                    var value = Environment.GetEnvironmentVariable(name);
                    Console.WriteLine(value is null ? name + " is unset" : name + "=" + value);
                }

                return 0;
            case "echo":
                foreach (var arg in rest)
                {
                    Console.WriteLine(arg);
                }

                return 0;
            case "alloc":
                return Alloc(int.Parse(rest[0], CultureInfo.InvariantCulture));
            case "spin":
                return Spin(Seconds(rest));
            case "ignore-sigterm":
                using (PosixSignalRegistration.Create(PosixSignal.SIGTERM, static c => c.Cancel = true))
                {
                    Console.WriteLine("ready");
                    Thread.Sleep(Seconds(rest));
                }

                return 0;
            case "stderr":
                Console.Error.WriteLine(string.Join(' ', rest.ToArray()));
                return 0;
            default:
                Console.Error.WriteLine("unknown subcommand " + args[0]);
                return 2;
        }
    }

    private static TimeSpan Seconds(ReadOnlySpan<string> rest) =>
        TimeSpan.FromSeconds(double.Parse(rest[0], CultureInfo.InvariantCulture));

    private static int Alloc(int mib)
    {
        var chunks = new List<byte[]>(mib);
        for (var i = 0; i < mib; i++)
        {
            var chunk = GC.AllocateUninitializedArray<byte>(1024 * 1024);
            for (var j = 0; j < chunk.Length; j += 4096)
            {
                chunk[j] = 1; // touch every page so it is really resident
            }

            chunks.Add(chunk);
        }

        Console.WriteLine("allocated");
        Thread.Sleep(Timeout.Infinite);
        GC.KeepAlive(chunks);
        return 0;
    }

    private static int Spin(TimeSpan duration)
    {
        var process = Process.GetCurrentProcess();
        var cpu0 = process.TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        var x = 0UL;
        while (wall.Elapsed < duration)
        {
            for (var i = 0; i < 100_000; i++)
            {
                x = unchecked((x * 6364136223846793005UL) + 1442695040888963407UL);
            }
        }

        process.Refresh();
        var cpu = process.TotalProcessorTime - cpu0;
        var permille = (long)(cpu.TotalMilliseconds * 1000 / wall.Elapsed.TotalMilliseconds);
        Console.WriteLine("cpu-permille=" + permille.ToString(CultureInfo.InvariantCulture) + " x=" + (x & 1).ToString(CultureInfo.InvariantCulture));
        return 0;
    }
}
