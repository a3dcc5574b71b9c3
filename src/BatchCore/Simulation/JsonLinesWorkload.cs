using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchCore.Simulation;

/// <summary>
/// Reads JSON lines, one job per line:
/// <c>{"submitTime": 0, "vcpus": 2, "memoryMiB": 4096, "gpus": 0, "runtimeSeconds": 600, "jobQueue": "q", "shareIdentifier": "a", "timeoutSeconds": 900}</c>.
/// <c>submitTime</c> (seconds, ≥ 0), <c>vcpus</c> (&gt; 0) and <c>runtimeSeconds</c> (≥ 0) are required;
/// <c>memoryMiB</c> (a whole number ≥ 4, AWS's minimum; default 1,024 × vCPUs, at least 4), <c>gpus</c> (≥ 0),
/// <c>jobQueue</c>, <c>shareIdentifier</c> (non-empty strings) and <c>timeoutSeconds</c> (≥ 60) are optional; null is
/// the same as leaving a field out. Field names are exact, as JSON's and AWS's are (a name differing only in case is an
/// error naming the expected one). Lines with run time 0 are skipped like SWF's.
/// Anything else — a field that is not one of these, a value of the wrong kind or out of range — is an error naming the
/// line and the field: <c>workload line 3: memoryMiB must be at least 4 (AWS's minimum MEMORY), was 2</c>.
/// </summary>
public static class JsonLinesWorkload
{
    private static readonly string[] Fields = ["submitTime", "vcpus", "memoryMiB", "gpus", "runtimeSeconds", "jobQueue", "shareIdentifier", "timeoutSeconds"];

    /// <summary>Reads a <c>.jsonl</c> (or <c>.jsonl.gz</c>) file.</summary>
    public static Workload Read(string path)
    {
        using var stream = Workload.OpenMaybeGzip(path);
        using var reader = new StreamReader(stream);
        return Parse(reader) with { Source = path };
    }

    /// <summary>Parses JSON-lines text; a malformed line throws <see cref="BatchClientException"/> naming the line and the field.</summary>
    public static Workload Parse(TextReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var jobs = new List<WorkloadJob>();
        var skipped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var values = new JsonElement?[Fields.Length];
        string? line;
        var number = 0;
        while ((line = reader.ReadLine()) is not null)
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var job = ParseLine(line, number, values);
            if (job.RuntimeSeconds == 0)
            {
                skipped[SwfWorkload.SkipNoRunTime] = skipped.GetValueOrDefault(SwfWorkload.SkipNoRunTime) + 1;
                continue;
            }

            jobs.Add(job);
        }

        return new Workload { Jobs = Workload.Sorted(jobs), Skipped = skipped, Source = "jsonl" };
    }

    private static WorkloadJob ParseLine(string line, int number, JsonElement?[] values)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw Problem(number, "not JSON: " + e.Message);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Problem(number, "must be a JSON object, was " + Describe(root));
            }

            Array.Clear(values);
            foreach (var p in root.EnumerateObject())
            {
                var i = FieldIndex(p.Name, StringComparison.Ordinal);
                if (i < 0)
                {
                    var near = FieldIndex(p.Name, StringComparison.OrdinalIgnoreCase);
                    throw Problem(number, near >= 0
                        ? $"{p.Name} is not a field of a workload line: field names are case-sensitive, expected {Fields[near]}"
                        : $"{p.Name} is not a field of a workload line ({string.Join(", ", Fields)})");
                }

                if (values[i] is not null)
                {
                    throw Problem(number, $"{Fields[i]} is given more than once");
                }

                values[i] = p.Value.ValueKind == JsonValueKind.Null ? null : p.Value;
            }

            var submit = Number(0, required: true)!.Value;
            AtLeast(0, submit, 0);
            var vcpus = Number(1, required: true)!.Value;
            if (vcpus <= 0)
            {
                throw Problem(number, $"vcpus must be greater than 0, was {Format(vcpus)}");
            }

            var memory = Whole(2);
            if (memory is < 4)
            {
                throw Problem(number, $"memoryMiB must be at least 4 (AWS's minimum MEMORY), was {memory}");
            }

            var gpus = Whole(3);
            AtLeast(3, gpus, 0);
            var runtime = Number(4, required: true)!.Value;
            AtLeast(4, runtime, 0);
            var queue = Text(5);
            var share = Text(6);
            if (share is { Length: > 255 })
            {
                throw Problem(number, $"shareIdentifier must be at most 255 characters, was {share.Length}");
            }

            var timeout = Whole(7);
            if (timeout is < 60)
            {
                throw Problem(number, $"timeoutSeconds must be at least 60 (AWS's minimum attemptDurationSeconds), was {timeout}");
            }

            var defaultMemory = (int)Math.Min(int.MaxValue, Math.Max(4, Math.Ceiling(vcpus * 1024)));
            return new WorkloadJob(submit, vcpus, memory ?? defaultMemory, gpus ?? 0, runtime, queue, share, timeout);
        }

        double? Number(int i, bool required = false)
        {
            if (values[i] is not { } v)
            {
                return required ? throw Problem(number, Fields[i] + " is required") : null;
            }

            if (v.ValueKind != JsonValueKind.Number)
            {
                throw Problem(number, $"{Fields[i]} must be a number, was {Describe(v)}");
            }

            return v.TryGetDouble(out var d) && double.IsFinite(d) ? d : throw Problem(number, $"{Fields[i]} must be a finite number, was {Describe(v)}");
        }

        int? Whole(int i)
        {
            if (Number(i) is not { } d)
            {
                return null;
            }

            if (values[i]!.Value.TryGetInt32(out var n))
            {
                return n;
            }

            throw Problem(number, d == Math.Floor(d)
                ? $"{Fields[i]} must be a whole number of at most {int.MaxValue}, was {Describe(values[i]!.Value)}"
                : $"{Fields[i]} must be a whole number, was {Describe(values[i]!.Value)}");
        }

        string? Text(int i)
        {
            if (values[i] is not { } v)
            {
                return null;
            }

            if (v.ValueKind != JsonValueKind.String)
            {
                throw Problem(number, $"{Fields[i]} must be a string, was {Describe(v)}");
            }

            var s = v.GetString()!;
            return s.Length > 0 ? s : throw Problem(number, Fields[i] + " must not be empty");
        }

        void AtLeast(int i, double? value, double min)
        {
            if (value < min)
            {
                throw Problem(number, $"{Fields[i]} must be at least {Format(min)}, was {Format(value.Value)}");
            }
        }
    }

    private static int FieldIndex(string name, StringComparison comparison)
    {
        for (var i = 0; i < Fields.Length; i++)
        {
            if (Fields[i].Equals(name, comparison))
            {
                return i;
            }
        }

        return -1;
    }

    private static BatchClientException Problem(int line, string what) =>
        new(string.Create(CultureInfo.InvariantCulture, $"workload line {line}: {what}"));

    private static string Format(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A value as the line wrote it (<c>"abc"</c>, <c>1.5</c>, <c>[1, 2]</c>), cut to 40 characters.</summary>
    private static string Describe(JsonElement v)
    {
        const int Longest = 40;
        var text = v.GetRawText();
        return text.Length <= Longest ? text : string.Concat(text.AsSpan(0, Longest), "…");
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
