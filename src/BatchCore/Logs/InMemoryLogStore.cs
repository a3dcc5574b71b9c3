using System.Collections.Concurrent;
using System.Globalization;

namespace BatchCore.Logs;

/// <summary>Keeps log streams in memory. The default store of an engine without a state directory.</summary>
public sealed class InMemoryLogStore : LogStore
{
    private readonly ConcurrentDictionary<string, List<OutputLogEvent>> _streams = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public override void Append(string logStreamName, long timestampMs, string message)
    {
        var list = _streams.GetOrAdd(logStreamName, static _ => new List<OutputLogEvent>());
        lock (list)
        {
            list.Add(new OutputLogEvent(timestampMs, message));
        }
    }

    /// <inheritdoc />
    public override GetLogEventsResponse GetLogEvents(string logStreamName, string? nextToken = null, int limit = 10_000)
    {
        if (limit is < 1 or > 10_000)
        {
            throw new BatchClientException($"limit must be between 1 and 10000, was {limit}");
        }

        var start = 0;
        if (nextToken is not null && !int.TryParse(nextToken, NumberStyles.None, CultureInfo.InvariantCulture, out start))
        {
            throw new BatchClientException($"nextToken is not a token returned by GetLogEvents: '{nextToken}'");
        }

        if (!_streams.TryGetValue(logStreamName, out var list))
        {
            return new GetLogEventsResponse([], nextToken);
        }

        lock (list)
        {
            var count = Math.Max(0, Math.Min(limit, list.Count - start));
            var page = list.GetRange(Math.Min(start, list.Count), count);
            return new GetLogEventsResponse(page, (start + count).ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <inheritdoc />
    public override bool StreamExists(string logStreamName) => _streams.ContainsKey(logStreamName);
}
