namespace BatchCore.Simulation;

/// <summary>One job of a workload: when it is submitted, what it asks for and how long it runs.</summary>
/// <param name="SubmitTimeSeconds">Seconds from the workload's start (before <see cref="SimulationOptions.TimeScale"/>).</param>
/// <param name="Vcpus">vCPUs requested.</param>
/// <param name="MemoryMiB">Memory requested, MiB.</param>
/// <param name="Gpus">GPUs requested.</param>
/// <param name="RuntimeSeconds">How long the job runs once RUNNING.</param>
/// <param name="JobQueue">The queue; null means the profile's single queue.</param>
/// <param name="ShareIdentifier">Fair-share identifier; a queue whose jobs carry one gets a fair-share policy.</param>
/// <param name="TimeoutSeconds">
/// The job's declared run-time limit, submitted as its AWS timeout (<c>attemptDurationSeconds</c>, at least 60): the
/// engine stops an attempt that runs longer, and drain-aware placement reads it. Null: none.
/// </param>
public sealed record WorkloadJob(
    double SubmitTimeSeconds,
    double Vcpus,
    int MemoryMiB,
    int Gpus,
    double RuntimeSeconds,
    string? JobQueue = null,
    string? ShareIdentifier = null,
    int? TimeoutSeconds = null);

/// <summary>A workload: its jobs in submit order and the records its reader skipped, with the reason for each kind.</summary>
public sealed record Workload
{
    /// <summary>The jobs, ordered by submit time (stable).</summary>
    public required IReadOnlyList<WorkloadJob> Jobs { get; init; }

    /// <summary>Records the reader skipped, by reason (e.g. "run time ≤ 0 or unknown").</summary>
    public IReadOnlyDictionary<string, int> Skipped { get; init; } = new Dictionary<string, int>();

    /// <summary>Where the workload came from (a path or a generator description).</summary>
    public string Source { get; init; } = "";

    /// <summary>The total number of skipped records.</summary>
    public int SkippedCount => Skipped.Values.Sum();

    /// <summary>The first <paramref name="count"/> jobs (tests and quick runs replay subsets).</summary>
    public Workload Take(int count) => this with { Jobs = Jobs.Take(count).ToList() };

    /// <summary>
    /// Reads a workload file: Standard Workload Format when its name ends in <c>.swf</c> or <c>.swf.gz</c>, JSON lines
    /// otherwise (<c>.jsonl</c>, <c>.jsonl.gz</c>, <c>.json</c>; <c>.gz</c> is decompressed). Only the extension
    /// decides: <c>runs.swf-export.jsonl</c> is JSON lines.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="format"><c>swf</c>, <c>jsonl</c> or null to decide by the file's extension.</param>
    /// <param name="swf">How SWF records map to requests; the default is <see cref="SwfMapping.Default"/>.</param>
    public static Workload Load(string path, string? format = null, SwfMapping? swf = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var kind = format ?? (path.EndsWith(".swf", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".swf.gz", StringComparison.OrdinalIgnoreCase) ? "swf" : "jsonl");
        return kind switch
        {
            "swf" => SwfWorkload.Read(path, swf),
            "jsonl" => JsonLinesWorkload.Read(path),
            _ => throw new BatchClientException($"workload format must be swf or jsonl, was {kind}"),
        };
    }

    internal static Stream OpenMaybeGzip(string path)
    {
        Stream s = File.OpenRead(path);
        return path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)
            ? new System.IO.Compression.GZipStream(s, System.IO.Compression.CompressionMode.Decompress)
            : s;
    }

    internal static IReadOnlyList<WorkloadJob> Sorted(List<WorkloadJob> jobs)
    {
        // Stable by submit time: List.Sort is not stable, so order by (time, index).
        var indexed = new (double T, int I)[jobs.Count];
        for (var i = 0; i < jobs.Count; i++)
        {
            indexed[i] = (jobs[i].SubmitTimeSeconds, i);
        }

        Array.Sort(indexed);
        var sorted = new WorkloadJob[jobs.Count];
        for (var i = 0; i < indexed.Length; i++)
        {
            sorted[i] = jobs[indexed[i].I];
        }

        return sorted;
    }
}
