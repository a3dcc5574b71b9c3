using System.Globalization;

namespace BatchCore.Benchmarks;

/// <summary>Counters of this process the profiling runners print per round.</summary>
internal static class ProcessCounters
{
    /// <summary>Minor page faults of this process so far (Linux /proc/self/stat field 10), or 0 elsewhere.</summary>
    public static long MinorFaults()
    {
        try
        {
            var stat = File.ReadAllText("/proc/self/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[7], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
