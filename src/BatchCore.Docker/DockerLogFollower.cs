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
/// <para>
/// A frame's length comes from the stream and is not trusted with memory: a message of at most
/// <see cref="MaxHeldFrameBytes"/> (1 MiB; the daemon cuts messages at 16 KiB for its own drivers) is held whole, a
/// longer one (another logging driver's, or a corrupt header's up to 4 GiB) only for its stamp: its first
/// <see cref="StampPrefixBytes"/> bytes decide it as a message's stamp does, the rest goes on to the line splitter as
/// it comes (which cuts lines at <see cref="LogStore.MaxEventBytes"/>), so nothing is lost and what is held stays
/// bounded. Such a message counts as delivered from its start: one a drop cuts off is delivered up to the cut (its last
/// line ends there), and the replay, which skips it, does not repeat its beginning (the rest of it is lost).
/// </para>
/// Not thread-safe: one follow at a time.
/// </summary>
internal sealed class DockerLogFollower(Action<string> appendLine)
{
    private const int HeaderLength = 8;
    private const byte StdoutStream = 1;
    private const byte StderrStream = 2;

    /// <summary>The longest message held whole (1 MiB); a longer one is passed on as it comes.</summary>
    internal const int MaxHeldFrameBytes = 1 << 20;

    /// <summary>What is held of a longer message: its stamp (RFC 3339 with nanoseconds and a zone, a space: at most 36 bytes).</summary>
    internal const int StampPrefixBytes = 64;

    // "2006-01-02T15:04:05": what every stamp starts with; the fraction and the zone follow.
    private const int StampSecondsLength = 19;

    private readonly LineSplitter _stdout = new(appendLine);
    private readonly LineSplitter _stderr = new(appendLine);
    private readonly byte[] _header = new byte[HeaderLength];
    private int _headerFill;
    private byte[] _frame = [];
    private Phase _phase;
    private int _held; // bytes of the frame under way that are held (all of it, or its stamp)
    private int _frameFill;
    private long _passOn; // bytes of the frame under way after those held, still to come
    private LineSplitter? _passTo; // where they go: null when the message is skipped

    // The latest second (UNIX) a delivered message was stamped in, and how many delivered messages were stamped in it.
    private long _lastSecond = -1;
    private int _deliveredInLastSecond;

    // Messages of the stream under way that were delivered by an earlier one.
    private int _toSkip;

    private enum Phase
    {
        /// <summary>Reading a frame's header.</summary>
        Header,

        /// <summary>Reading what is held of a frame (<see cref="_held"/> bytes).</summary>
        Held,

        /// <summary>Passing the rest of a longer frame on as it comes (<see cref="_passOn"/> bytes).</summary>
        PassOn,
    }

    /// <summary>The <c>since</c> of the next stream: null (from the start) before any message was delivered.</summary>
    public string? Since => _lastSecond < 0 ? null : _lastSecond.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The bytes held for frames: at most <see cref="MaxHeldFrameBytes"/>, whatever a header says.</summary>
    internal int HeldCapacity => _frame.Length;

    /// <summary>A new stream begins (with <see cref="Since"/>): a frame the last one cut off is dropped, and the replayed messages are skipped.</summary>
    public void BeginStream()
    {
        if (_phase == Phase.PassOn)
        {
            _passTo?.Flush(); // a longer message cut off while passed on: its last line ends at the cut
        }

        _headerFill = 0;
        _phase = Phase.Header;
        _frameFill = 0;
        _passOn = 0;
        _passTo = null;
        _toSkip = _lastSecond < 0 ? 0 : _deliveredInLastSecond;
    }

    /// <summary>Adds bytes of the stream under way.</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        while (true)
        {
            switch (_phase)
            {
                case Phase.Header:
                {
                    if (bytes.IsEmpty)
                    {
                        return;
                    }

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
                    _held = length <= MaxHeldFrameBytes ? (int)length : StampPrefixBytes;
                    _passOn = length - _held;
                    _frameFill = 0;
                    if (_frame.Length < _held)
                    {
                        _frame = new byte[Math.Max(_held, Math.Min(2 * _frame.Length, MaxHeldFrameBytes))];
                    }

                    _phase = Phase.Held;
                    break;
                }

                case Phase.Held:
                {
                    var copy = Math.Min(_held - _frameFill, bytes.Length);
                    bytes[..copy].CopyTo(_frame.AsSpan(_frameFill));
                    _frameFill += copy;
                    bytes = bytes[copy..];
                    if (_frameFill < _held)
                    {
                        return;
                    }

                    _passTo = Deliver(_header[0], _frame.AsSpan(0, _frameFill));
                    _phase = _passOn > 0 ? Phase.PassOn : Phase.Header;
                    break;
                }

                default:
                {
                    if (bytes.IsEmpty)
                    {
                        return;
                    }

                    var take = (int)Math.Min(_passOn, bytes.Length);
                    _passTo?.Append(bytes[..take]);
                    _passOn -= take;
                    bytes = bytes[take..];
                    if (_passOn == 0)
                    {
                        _passTo = null;
                        _phase = Phase.Header;
                    }

                    break;
                }
            }
        }
    }

    /// <summary>The last lines, when they did not end with a newline.</summary>
    public void Flush()
    {
        _stdout.Flush();
        _stderr.Flush();
    }

    /// <summary>A message, or what is held of a longer one: the splitter the rest of it goes to (null: none, skipped).</summary>
    private LineSplitter? Deliver(byte stream, ReadOnlySpan<byte> message)
    {
        if (stream is not (StdoutStream or StderrStream))
        {
            return null; // stdin, or the daemon's own error text (stream 3): not a stored message, nothing to replay
        }

        if (_toSkip > 0)
        {
            _toSkip--;
            return null; // delivered by an earlier stream
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

        var splitter = stream == StderrStream ? _stderr : _stdout;
        splitter.Append(message);
        return splitter;
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
