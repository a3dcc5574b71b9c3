using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using BatchCore.Logs;

namespace BatchCore.Cli.Logs;

/// <summary>
/// Log streams as files in a directory, so <c>batchcore logs</c> can read them after the run: one file per stream
/// (the stream name escaped into a safe file name), one line per event, <c>timestampMs&lt;TAB&gt;message</c>.
/// </summary>
internal sealed class FileLogStore : LogStore
{
    private const string Extension = ".log";
    private readonly string _directory;
    private readonly ConcurrentDictionary<string, object> _locks = new(StringComparer.Ordinal);

    public FileLogStore(string directory)
    {
        _directory = directory;
        Directory.CreateDirectory(directory);
    }

    /// <summary>The file of a stream: every character outside [A-Za-z0-9._-] percent-encoded, so names never collide.</summary>
    public string FileOf(string logStreamName)
    {
        var sb = new StringBuilder(logStreamName.Length + 8);
        foreach (var b in Encoding.UTF8.GetBytes(logStreamName))
        {
            var c = (char)b;
            if (char.IsAsciiLetterOrDigit(c) || c is '-' or '_' || (c == '.' && sb.Length > 0))
            {
                sb.Append(c);
            }
            else
            {
                sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return Path.Combine(_directory, sb.Append(Extension).ToString());
    }

    public override void Append(string logStreamName, long timestampMs, string message)
    {
        var line = string.Create(CultureInfo.InvariantCulture, $"{timestampMs}\t{message.Replace('\n', ' ').Replace('\r', ' ')}\n");
        var gate = _locks.GetOrAdd(logStreamName, static _ => new object());
        lock (gate)
        {
            File.AppendAllText(FileOf(logStreamName), line);
        }
    }

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

        var file = FileOf(logStreamName);
        if (!File.Exists(file))
        {
            return new GetLogEventsResponse([], nextToken);
        }

        string[] lines;
        var gate = _locks.GetOrAdd(logStreamName, static _ => new object());
        lock (gate)
        {
            lines = File.ReadAllLines(file);
        }

        var events = new List<OutputLogEvent>();
        for (var i = start; i < lines.Length && events.Count < limit; i++)
        {
            var tab = lines[i].IndexOf('\t', StringComparison.Ordinal);
            var ts = tab > 0 && long.TryParse(lines[i].AsSpan(0, tab), NumberStyles.Integer, CultureInfo.InvariantCulture, out var t) ? t : 0;
            events.Add(new OutputLogEvent(ts, tab >= 0 ? lines[i][(tab + 1)..] : lines[i]));
        }

        return new GetLogEventsResponse(events, (start + events.Count).ToString(CultureInfo.InvariantCulture));
    }

    public override bool StreamExists(string logStreamName) => File.Exists(FileOf(logStreamName));
}
