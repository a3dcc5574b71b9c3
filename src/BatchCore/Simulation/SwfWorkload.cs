using System.Globalization;

namespace BatchCore.Simulation;

/// <summary>How SWF records become requests. Defaults documented on each field.</summary>
public sealed record SwfMapping
{
    /// <summary>The default mapping.</summary>
    public static SwfMapping Default { get; } = new();

    /// <summary>Memory per vCPU when the log knows none (fields 10 and 7 are -1). The default is 1,024 MiB.</summary>
    public int DefaultMemoryPerVcpuMiB { get; init; } = 1024;

    /// <summary>Keep cancelled jobs (status 5) that ran (run time &gt; 0) for the time they ran. The default is true.</summary>
    public bool KeepCancelledThatRan { get; init; } = true;

    /// <summary>
    /// Submit the requested time (field 9) as the job's timeout (<c>attemptDurationSeconds</c>, at least 60 s): the
    /// limit the user declared to the original scheduler, which also stopped jobs at it. The default is true.
    /// </summary>
    public bool RequestedTimeAsTimeout { get; init; } = true;
}

/// <summary>
/// Reads the Parallel Workloads Archive's Standard Workload Format (18 whitespace-separated fields, -1 unknown,
/// header lines starting with <c>;</c>). Mapping:
/// <list type="bullet">
/// <item>submit time: field 2 (seconds from the log's start);</item>
/// <item>vCPUs: requested processors (field 8), else allocated processors (field 5);</item>
/// <item>memory MiB: requested memory KB per processor (field 10), else used memory KB per processor (field 7),
///   × processors ÷ 1024, rounded up, at least 4 (AWS's minimum MEMORY); when both are unknown,
///   <see cref="SwfMapping.DefaultMemoryPerVcpuMiB"/> × vCPUs;</item>
/// <item>run time: field 4; records with run time ≤ 0 (or unknown) are skipped — a cancelled job (status 5) that
///   never ran is one of those; cancelled jobs that ran are kept for the time they ran;</item>
/// <item>timeout: requested time (field 9) rounded up, at least 60 s (AWS's minimum), when known and
///   <see cref="SwfMapping.RequestedTimeAsTimeout"/>;</item>
/// <item>records with no processor count are skipped.</item>
/// </list>
/// A file with records none of which is SWF (18 numbers) is an error, not an empty workload: it is likely another format.
/// </summary>
public static class SwfWorkload
{
    /// <summary>Skip reason: run time ≤ 0 or unknown.</summary>
    public const string SkipNoRunTime = "run time <= 0 or unknown";

    /// <summary>Skip reason: a cancelled job that never ran.</summary>
    public const string SkipCancelled = "cancelled before it ran";

    /// <summary>Skip reason: no processor count.</summary>
    public const string SkipNoProcessors = "processors unknown";

    /// <summary>Skip reason: a line that is not 18 numeric fields.</summary>
    public const string SkipMalformed = "malformed record";

    /// <summary>Reads a <c>.swf</c> or <c>.swf.gz</c> file.</summary>
    public static Workload Read(string path, SwfMapping? mapping = null)
    {
        using var stream = Workload.OpenMaybeGzip(path);
        using var reader = new StreamReader(stream);
        return Parse(reader, mapping) with { Source = path };
    }

    /// <summary>Parses SWF text.</summary>
    /// <exception cref="BatchClientException">There are records and none of them is an SWF record.</exception>
    public static Workload Parse(TextReader reader, SwfMapping? mapping = null)
    {
        ArgumentNullException.ThrowIfNull(reader);
        mapping ??= SwfMapping.Default;
        var jobs = new List<WorkloadJob>();
        var skipped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        Span<double> f = stackalloc double[18];
        string? line;
        var number = 0;
        var records = 0;
        var firstMalformed = 0;
        while ((line = reader.ReadLine()) is not null)
        {
            number++;
            var span = line.AsSpan().Trim();
            if (span.IsEmpty || span[0] == ';')
            {
                continue;
            }

            records++;
            if (!TryFields(span, f))
            {
                Skip(SkipMalformed);
                firstMalformed = firstMalformed == 0 ? number : firstMalformed;
                continue;
            }

            var runtime = f[3];
            var status = (int)f[10];
            if (runtime <= 0)
            {
                Skip(status == 5 ? SkipCancelled : SkipNoRunTime);
                continue;
            }

            if (status == 5 && !mapping.KeepCancelledThatRan)
            {
                Skip(SkipCancelled);
                continue;
            }

            var procs = f[7] > 0 ? f[7] : f[4];
            if (procs <= 0)
            {
                Skip(SkipNoProcessors);
                continue;
            }

            var kbPerProc = f[9] > 0 ? f[9] : f[6];
            var memory = kbPerProc > 0
                ? (int)Math.Min(int.MaxValue, Math.Ceiling(kbPerProc * procs / 1024))
                : (int)Math.Min(int.MaxValue, (long)mapping.DefaultMemoryPerVcpuMiB * (long)Math.Ceiling(procs));
            int? timeout = mapping.RequestedTimeAsTimeout && f[8] > 0 ? (int)Math.Min(int.MaxValue, Math.Max(60, Math.Ceiling(f[8]))) : null;
            jobs.Add(new WorkloadJob(Math.Max(0, f[1]), Math.Ceiling(procs), Math.Max(4, memory), 0, runtime, TimeoutSeconds: timeout));
        }

        if (records > 0 && skipped.GetValueOrDefault(SkipMalformed) == records)
        {
            var which = records == 1
                ? string.Create(CultureInfo.InvariantCulture, $"its one record (line {firstMalformed}) is not")
                : string.Create(CultureInfo.InvariantCulture, $"none of its {records} records (the first at line {firstMalformed}) is");
            throw new BatchClientException($"workload: {which} an SWF record of 18 whitespace-separated numbers: is it another format? JSON-lines files end in .jsonl");
        }

        return new Workload { Jobs = Workload.Sorted(jobs), Skipped = skipped, Source = "swf" };

        void Skip(string reason) => skipped[reason] = skipped.GetValueOrDefault(reason) + 1;
    }

    private static bool TryFields(ReadOnlySpan<char> line, Span<double> fields)
    {
        var n = 0;
        foreach (var range in line.SplitAny(" \t"))
        {
            var token = line[range];
            if (token.IsEmpty)
            {
                continue;
            }

            if (n == fields.Length || !double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out fields[n]))
            {
                return false;
            }

            n++;
        }

        return n == fields.Length;
    }
}
