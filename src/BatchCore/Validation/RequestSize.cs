using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using BatchCore.Model;

namespace BatchCore.Validation;

/// <summary>
/// AWS's payload limits (reference §2.7): a SubmitJob request of at most 30 KiB and a job definition of at most 24 KiB,
/// measured as the request's JSON (camelCase, nulls left out, as the SDKs send it). A job definition is serialized to
/// measure it; a SubmitJob request — the hot request — only when a cheap upper bound of its size (every string at the
/// worst JSON escaping, plus a generous allowance per field) does not already show it is small.
/// </summary>
internal static class RequestSize
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static void CheckSubmit(SubmitJobRequest r, int limit, Problems p)
    {
        if (UpperBound(r) <= limit)
        {
            return;
        }

        Check(JsonSerializer.SerializeToUtf8Bytes(r, Json).Length, limit, p, "SubmitJob request");
    }

    public static void CheckDefinition(RegisterJobDefinitionRequest r, int limit, Problems p) =>
        Check(JsonSerializer.SerializeToUtf8Bytes(r, Json).Length, limit, p, "job definition");

    private static void Check(int bytes, int limit, Problems p, string what)
    {
        if (bytes > limit)
        {
            p.Add(string.Create(CultureInfo.InvariantCulture,
                $"the {what} must be at most {limit} bytes as JSON (AWS Batch's limit, BatchQuotas), was {bytes}"));
        }
    }

    /// <summary>6 bytes per character (<c>\uXXXX</c>), 64 per string and 2,048 for the scalars: never below the JSON's size.</summary>
    internal static long UpperBound(SubmitJobRequest r)
    {
        long chars = 0;
        long strings = 0;
        void Add(string? s)
        {
            if (s is not null)
            {
                chars += s.Length;
                strings++;
            }
        }

        void AddMap(IReadOnlyDictionary<string, string>? map)
        {
            if (map is not { Count: > 0 })
            {
                return; // no enumerator for the common request without parameters or tags
            }

            foreach (var (k, v) in map)
            {
                Add(k);
                Add(v);
            }
        }

        Add(r.JobName);
        Add(r.JobQueue);
        Add(r.JobDefinition);
        Add(r.ShareIdentifier);
        AddMap(r.Parameters);
        AddMap(r.Tags);
        foreach (var d in r.DependsOn ?? [])
        {
            Add(d?.JobId);
            Add(d?.Type);
            Add(d?.Extensions?.Condition);
        }

        if (r.ContainerOverrides is { } co)
        {
            Add(co.InstanceType);
            foreach (var c in co.Command ?? [])
            {
                Add(c);
            }

            foreach (var e in co.Environment ?? [])
            {
                Add(e?.Name);
                Add(e?.Value);
            }

            foreach (var q in co.ResourceRequirements ?? [])
            {
                Add(q?.Type);
                Add(q?.Value);
            }
        }

        foreach (var e in r.RetryStrategy?.EvaluateOnExit ?? [])
        {
            Add(e?.OnStatusReason);
            Add(e?.OnReason);
            Add(e?.OnExitCode);
            Add(e?.Action);
        }

        foreach (var c in r.ConsumableResourcePropertiesOverride?.ConsumableResourceList ?? [])
        {
            Add(c?.ConsumableResource);
        }

        return (chars * 6) + (strings * 64) + 2048;
    }
}
