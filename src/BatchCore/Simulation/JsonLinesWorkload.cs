using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchCore.Simulation;

/// <summary>
/// Reads JSON lines, one job per line:
/// <c>{"submitTime": 0, "vcpus": 2, "memoryMiB": 4096, "gpus": 0, "runtimeSeconds": 600, "jobQueue": "q", "shareIdentifier": "a"}</c>.
/// <c>submitTime</c> and <c>runtimeSeconds</c> are seconds; <c>gpus</c>, <c>jobQueue</c> and <c>shareIdentifier</c> are
/// optional; <c>memoryMiB</c> defaults to 1,024 × vCPUs. Lines with run time ≤ 0 are skipped like SWF's.
/// </summary>
public static class JsonLinesWorkload
{
    private static readonly JsonSerializerOptions Options = new() { PropertyNameCaseInsensitive = true };

    /// <summary>Reads a <c>.jsonl</c> (or <c>.jsonl.gz</c>) file.</summary>
    public static Workload Read(string path)
    {
        using var stream = Workload.OpenMaybeGzip(path);
        using var reader = new StreamReader(stream);
        return Parse(reader) with { Source = path };
    }

    /// <summary>Parses JSON-lines text; a malformed line throws <see cref="BatchClientException"/> naming the line.</summary>
    public static Workload Parse(TextReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var jobs = new List<WorkloadJob>();
        var skipped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        string? line;
        var number = 0;
        while ((line = reader.ReadLine()) is not null)
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            Line? l;
            try
            {
                l = JsonSerializer.Deserialize<Line>(line, Options);
            }
            catch (JsonException e)
            {
                throw new BatchClientException($"workload line {number}: {e.Message}");
            }

            if (l is null || l.Vcpus is not { } v || v <= 0)
            {
                throw new BatchClientException($"workload line {number}: vcpus is required and must be positive");
            }

            if (l.RuntimeSeconds is not { } rt || rt <= 0)
            {
                skipped[SwfWorkload.SkipNoRunTime] = skipped.GetValueOrDefault(SwfWorkload.SkipNoRunTime) + 1;
                continue;
            }

            if (l.TimeoutSeconds is < 60)
            {
                throw new BatchClientException($"workload line {number}: timeoutSeconds must be at least 60 (AWS attemptDurationSeconds), was {l.TimeoutSeconds}");
            }

            var memory = l.MemoryMiB ?? (int)Math.Ceiling(v * 1024);
            jobs.Add(new WorkloadJob(Math.Max(0, l.SubmitTime ?? 0), v, Math.Max(1, memory), Math.Max(0, l.Gpus ?? 0), rt, l.JobQueue, l.ShareIdentifier, l.TimeoutSeconds));
        }

        return new Workload { Jobs = Workload.Sorted(jobs), Skipped = skipped, Source = "jsonl" };
    }

    /// <summary>Writes jobs as JSON lines (the format <see cref="Parse"/> reads).</summary>
    public static void Write(TextWriter writer, IEnumerable<WorkloadJob> jobs)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(jobs);
        foreach (var j in jobs)
        {
            writer.WriteLine(JsonSerializer.Serialize(new Line
            {
                SubmitTime = j.SubmitTimeSeconds,
                Vcpus = j.Vcpus,
                MemoryMiB = j.MemoryMiB,
                Gpus = j.Gpus,
                RuntimeSeconds = j.RuntimeSeconds,
                JobQueue = j.JobQueue,
                ShareIdentifier = j.ShareIdentifier,
                TimeoutSeconds = j.TimeoutSeconds,
            }, WriteOptions));
        }
    }

    private static readonly JsonSerializerOptions WriteOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private sealed class Line
    {
        public double? SubmitTime { get; set; }
        public double? Vcpus { get; set; }
        public int? MemoryMiB { get; set; }
        public int? Gpus { get; set; }
        public double? RuntimeSeconds { get; set; }
        public string? JobQueue { get; set; }
        public string? ShareIdentifier { get; set; }
        public int? TimeoutSeconds { get; set; }
    }
}
