using System.Buffers.Binary;
using System.Diagnostics;
using BatchCore.Logs;

namespace BatchCore.Hosts.Docker;

/// <summary>
/// Turns a container's raw log streams (<c>GET /containers/{id}/logs?follow=1&amp;timestamps=1</c>, not demultiplexed by
/// the client) into the attempt's log lines, and resumes where a stream was cut off. Docker frames each log message
/// (an 8-byte header: the stream, three zero bytes, the big-endian length) and, with <c>timestamps</c>, starts it with
/// the time the daemon stamped it (RFC 3339 with nanoseconds, then a space): the stamp is taken off, stdout and stderr
/// go through a <see cref="LineSplitter"/> each, kept across streams (a line cut between two streams is one line).
/// <para>
/// Resuming, and why this way: the daemon drops a follow when it restarts (or the connection resets) while the
/// container runs on, and a new follow must neither lose what was written meanwhile nor repeat what was delivered.
/// The logs API's <c>since</c> is whole UNIX seconds (documented so; finer values are not relied on) and inclusive (the
/// daemon skips each message stamped before it, one by one, and replays the rest in the order it stored them). So a
/// new stream asks for <c>since</c> = the latest second a delivered message was stamped in, and skips as many messages
/// as were delivered stamped in that second: those are exactly the replay's first ones (what was delivered is a prefix
/// of the stored order, and no delivered message is stamped later than that second), and everything after them is new.
/// Comparing stamps instead would be wrong: stdout and stderr are stamped before they are stored, so two messages
/// can be stored out of stamp order. What this leaves: a message the logging driver cannot replay (a log file rotated
/// away meanwhile) is lost, as it would be for <c>docker logs</c>. A frame cut off by the drop is not delivered: the
/// replay brings it whole.
/// </para>
/// Not thread-safe: one follow at a time.
/// </summary>
internal sealed class DockerLogFollower(Action<string> appendLine)
{
    private const int HeaderLength = 8;
    private const byte StdoutStream = 1;
    private const byte StderrStream = 2;

    // "2006-01-02T15:04:05": what every stamp starts with; the fraction and the zone follow.
    private const int StampSecondsLength = 19;

    private readonly LineSplitter _stdout = new(appendLine);
    private readonly LineSplitter _stderr = new(appendLine);
    private readonly byte[] _header = new byte[HeaderLength];
    private int _headerFill;
    private byte[] _frame = [];
    private int _frameLength = -1; // -1: reading a header
    private int _frameFill;

    // The latest second (UNIX) a delivered message was stamped in, and how many delivered messages were stamped in it.
    private long _lastSecond = -1;
    private int _deliveredInLastSecond;

    // Messages of the stream under way that were delivered by an earlier one.
    private int _toSkip;

    /// <summary>The <c>since</c> of the next stream: null (from the start) before any message was delivered.</summary>
    public string? Since => _lastSecond < 0 ? null : _lastSecond.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A new stream begins (with <see cref="Since"/>): a frame the last one cut off is dropped, and the replayed messages are skipped.</summary>
    public void BeginStream()
    {
        _headerFill = 0;
        _frameLength = -1;
        _frameFill = 0;
        _toSkip = _lastSecond < 0 ? 0 : _deliveredInLastSecond;
    }

    /// <summary>Adds bytes of the stream under way.</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            if (_frameLength < 0)
            {
                var take = Math.Min(HeaderLength - _headerFill, bytes.Length);
                bytes[..take].CopyTo(_header.AsSpan(_headerFill));
                _headerFill += take;
                bytes = bytes[take..];
                if (_headerFill < HeaderLength)
                {
                    return;
                }

                _headerFill = 0;
                var length = BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(4));
                _frameLength = length > int.MaxValue ? int.MaxValue : (int)length;
                _frameFill = 0;
                if (_frame.Length < _frameLength)
                {
                    _frame = new byte[Math.Max(_frameLength, Math.Min(2 * _frame.Length, 1 << 20))];
                }
            }

            var copy = Math.Min(_frameLength - _frameFill, bytes.Length);
            bytes[..copy].CopyTo(_frame.AsSpan(_frameFill));
            _frameFill += copy;
            bytes = bytes[copy..];
            if (_frameFill == _frameLength)
            {
                var stream = _header[0];
                _frameLength = -1;
                Deliver(stream, _frame.AsSpan(0, _frameFill));
            }
        }
    }

    /// <summary>The last lines, when they did not end with a newline.</summary>
    public void Flush()
    {
        _stdout.Flush();
        _stderr.Flush();
    }

    private void Deliver(byte stream, ReadOnlySpan<byte> message)
    {
        if (stream is not (StdoutStream or StderrStream))
        {
            return; // stdin, or the daemon's own error text (stream 3): not a stored message, nothing to replay
        }

        if (_toSkip > 0)
        {
            _toSkip--;
            return; // delivered by an earlier stream
        }

        long second;
        if (TryReadStamp(message, out var unixSecond, out var textStart))
        {
            second = unixSecond;
            message = message[textStart..];
        }
        else
        {
            second = Math.Max(_lastSecond, 0); // not stamped (a daemon that ignored timestamps): counted with the latest
        }

        if (second > _lastSecond)
        {
            _lastSecond = second;
            _deliveredInLastSecond = 1;
        }
        else if (second == _lastSecond)
        {
            _deliveredInLastSecond++;
        }

        (stream == StderrStream ? _stderr : _stdout).Append(message);
    }

    /// <summary>
    /// Reads the stamp a message starts with (<c>2006-01-02T15:04:05.000000000Z </c>, or with an offset for Z): its UNIX
    /// second, and where the text starts (after the space).
    /// </summary>
    internal static bool TryReadStamp(ReadOnlySpan<byte> message, out long unixSecond, out int textStart)
    {
        unixSecond = 0;
        textStart = 0;
        if (message.Length <= StampSecondsLength || message[4] != '-' || message[7] != '-' || message[10] != 'T' || message[13] != ':' || message[16] != ':'
            || !TryDigits(message.Slice(0, 4), out var year) || !TryDigits(message.Slice(5, 2), out var month) || !TryDigits(message.Slice(8, 2), out var day)
            || !TryDigits(message.Slice(11, 2), out var hour) || !TryDigits(message.Slice(14, 2), out var minute) || !TryDigits(message.Slice(17, 2), out var second)
            || year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
        {
            return false;
        }

        var at = StampSecondsLength;
        if (message[at] == '.')
        {
            at++;
            while (at < message.Length && message[at] is >= (byte)'0' and <= (byte)'9')
            {
                at++;
            }
        }

        var offsetSeconds = 0;
        if (at < message.Length && message[at] == 'Z')
        {
            at++;
        }
        else if (at + 6 <= message.Length && message[at] is (byte)'+' or (byte)'-' && message[at + 3] == ':'
            && TryDigits(message.Slice(at + 1, 2), out var offsetHours) && TryDigits(message.Slice(at + 4, 2), out var offsetMinutes))
        {
            offsetSeconds = ((offsetHours * 60) + offsetMinutes) * 60 * (message[at] == '-' ? -1 : 1);
            at += 6;
        }
        else
        {
            return false;
        }

        if (at >= message.Length || message[at] != ' ')
        {
            return false;
        }

        var local = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc);
        unixSecond = ((local.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerSecond) - offsetSeconds;
        textStart = at + 1;
        return true;
    }

    private static bool TryDigits(ReadOnlySpan<byte> digits, out int value)
    {
        Debug.Assert(digits.Length <= 4, "a stamp's fields have at most 4 digits");
        value = 0;
        foreach (var d in digits)
        {
            if (d is < (byte)'0' or > (byte)'9')
            {
                return false;
            }

            value = (value * 10) + (d - '0');
        }

        return true;
    }
}
