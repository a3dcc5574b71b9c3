using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace BatchCore.Benchmarks.Dispatch;

/// <summary>
/// Samples the runtime's GCAllocationTick events (one per ~100 KB allocated) by type: where a benchmark's bytes go,
/// without a profiler. Approximate by construction (the type of the allocation that crossed each 100 KB mark).
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private readonly ConcurrentDictionary<string, long> _bytes = new();
    private volatile bool _on;

    public void Start() => _on = true;

    public void Stop() => _on = false;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (!_on || e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.PayloadNames is null)
        {
            return;
        }

        var type = e.Payload![e.PayloadNames.IndexOf("TypeName")] as string ?? "?";
        var amount = Convert.ToInt64(e.Payload[e.PayloadNames.IndexOf("AllocationAmount64")], System.Globalization.CultureInfo.InvariantCulture);
        _bytes.AddOrUpdate(type, amount, (_, v) => v + amount);
    }

    /// <summary>Bytes per type, largest first, as (type, bytes, share).</summary>
    public IEnumerable<(string Type, long Bytes, double Share)> Report()
    {
        var total = (double)Math.Max(1, _bytes.Values.Sum());
        return _bytes.OrderByDescending(kv => kv.Value).Select(kv => (kv.Key, kv.Value, kv.Value / total));
    }
}
