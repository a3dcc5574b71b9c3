using System.Globalization;

namespace BatchCore.Hosts.Process;

/// <summary>Reads <c>/proc/&lt;pid&gt;/stat</c>: whether a pid is still the process we started (pids are reused).</summary>
internal static class ProcStat
{
    /// <summary>
    /// The process's start time (field 22, clock ticks since boot), or -1 when there is no such live process (gone, or a
    /// zombie: it has exited and only waits to be reaped, unless <paramref name="includeZombie"/>). A pid with another
    /// start time is another process.
    /// </summary>
    public static long StartTime(int pid, bool includeZombie = false)
    {
        string stat;
        try
        {
            stat = File.ReadAllText(string.Create(CultureInfo.InvariantCulture, $"/proc/{pid}/stat"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return -1;
        }

        // "pid (comm) state ppid ..." — comm may hold spaces and parentheses: fields restart after the last ')'.
        var close = stat.LastIndexOf(')');
        if (close < 0)
        {
            return -1;
        }

        var field = 2; // the ')' ends field 2
        var rest = stat.AsSpan(close + 1);
        foreach (var range in rest.Split(' '))
        {
            var token = rest[range];
            if (token.IsEmpty)
            {
                continue;
            }

            field++;
            if (field == 3 && !includeZombie && (token[0] == 'Z' || token[0] == 'X'))
            {
                return -1;
            }

            if (field == 22)
            {
                return long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) ? ticks : -1;
            }
        }

        return -1;
    }
}
