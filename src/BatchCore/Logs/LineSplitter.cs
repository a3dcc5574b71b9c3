using System.Diagnostics;
using System.Text;

namespace BatchCore.Logs;

/// <summary>
/// Turns a job's output bytes (UTF-8) into log events (every driver's stdout, stderr or output file): whole lines as they
/// complete (a trailing '\r' dropped), the last partial line on <see cref="Flush"/>. A line longer than
/// <see cref="LogStore.MaxEventBytes"/> UTF-8 bytes becomes several events of at most that many bytes, cut between
/// characters, nothing lost — as Docker's awslogs driver cuts it for CloudWatch — so what is pending stays bounded however
/// much a job writes without a newline. Allocates its buffers on the first byte, so a silent job costs nothing. Text
/// written as characters (the in-process driver's <c>Log</c> writer) goes through the same rule with
/// <see cref="AppendText"/>. Not thread-safe: a writer shared between threads locks around it.
/// </summary>
internal sealed class LineSplitter
{
    private readonly Action<string> _appendLine;
    private readonly int _maxEventBytes;
    private Decoder? _decoder;
    private StringBuilder? _line;
    private int _lineBytes; // UTF-8 bytes in _line
    private char[]? _chars;
    private char _pendingHigh; // a high surrogate that ended a char write, waiting for its low half (never cut from it)

    /// <param name="appendLine">Receives each event.</param>
    /// <param name="maxEventBytes">The most UTF-8 bytes of one event (tests use small ones).</param>
    public LineSplitter(Action<string> appendLine, int maxEventBytes = LogStore.MaxEventBytes)
    {
        Debug.Assert(maxEventBytes >= 4, "an event must hold any one character (up to 4 UTF-8 bytes)");
        _appendLine = appendLine;
        _maxEventBytes = maxEventBytes;
    }

    public void Append(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return;
        }

        _decoder ??= Encoding.UTF8.GetDecoder();
        _line ??= new StringBuilder();
        var needed = _decoder.GetCharCount(bytes, flush: false);
        if (_chars is null || needed > _chars.Length)
        {
            _chars = new char[Math.Max(needed, 1024)];
        }

        // The decoder keeps a character's bytes until all have come, so a surrogate pair is never cut between reads.
        var count = _decoder.GetChars(bytes, _chars, flush: false);
        AppendDecoded(_chars.AsSpan(0, count));
    }

    /// <summary>
    /// Adds text already decoded, under the same rules as bytes. A surrogate pair may arrive cut between calls (a
    /// <see cref="TextWriter"/> is written a char at a time): a final high surrogate waits for the next call.
    /// </summary>
    public void AppendText(ReadOnlySpan<char> chars)
    {
        if (chars.IsEmpty)
        {
            return;
        }

        _line ??= new StringBuilder();
        if (_pendingHigh != '\0')
        {
            Span<char> pair = [_pendingHigh, chars[0]];
            _pendingHigh = '\0';
            if (char.IsLowSurrogate(chars[0]))
            {
                AppendDecoded(pair);
                chars = chars[1..];
            }
            else
            {
                AppendDecoded(pair[..1]); // a lone high surrogate: content, as it came
            }
        }

        if (!chars.IsEmpty && char.IsHighSurrogate(chars[^1]))
        {
            _pendingHigh = chars[^1];
            chars = chars[..^1];
        }

        AppendDecoded(chars);
    }

    /// <summary>
    /// Adds one whole line (<paramref name="line"/> and a newline). A line within the cap that holds no '\r' or '\n',
    /// written when nothing is pending (the common case), is handed on as it is, without a copy.
    /// </summary>
    public void AppendLine(string line)
    {
        if (_pendingHigh == '\0' && _line is null or { Length: 0 } && line.AsSpan().IndexOfAny('\r', '\n') < 0
            && (line.Length <= _maxEventBytes / 3 || Encoding.UTF8.GetByteCount(line) <= _maxEventBytes))
        {
            _appendLine(line);
            return;
        }

        AppendText(line);
        AppendText("\n");
    }

    /// <summary>
    /// Hands on one event's message as it is (newlines kept: a logger's entry with its exception is one event) when it
    /// is at most <paramref name="maxEventBytes"/> UTF-8 bytes, else in consecutive pieces of at most that, cut between
    /// characters.
    /// </summary>
    public static void AppendCapped<TState>(string message, TState state, Action<TState, string> append, int maxEventBytes = LogStore.MaxEventBytes)
    {
        Debug.Assert(maxEventBytes >= 4, "an event must hold any one character (up to 4 UTF-8 bytes)");
        if (message.Length <= maxEventBytes / 3 || Encoding.UTF8.GetByteCount(message) <= maxEventBytes)
        {
            append(state, message);
            return;
        }

        var rest = message.AsSpan();
        while (!rest.IsEmpty)
        {
            var fit = Fit(rest, maxEventBytes, out _);
            append(state, rest[..fit].ToString());
            rest = rest[fit..];
        }
    }

    /// <summary>Emits the last line when it did not end with a newline.</summary>
    public void Flush()
    {
        if (_pendingHigh != '\0')
        {
            ReadOnlySpan<char> high = [_pendingHigh];
            _pendingHigh = '\0';
            AppendDecoded(high);
        }

        if (_line is { Length: > 0 })
        {
            Emit();
        }
    }

    private void AppendDecoded(ReadOnlySpan<char> span)
    {
        while (span.IndexOf('\n') is var newline and >= 0)
        {
            AppendPending(span[..newline]);
            Emit();
            span = span[(newline + 1)..];
        }

        AppendPending(span);
    }

    /// <summary>Adds characters of the current line, emitting an event each time the line reaches the cap.</summary>
    private void AppendPending(ReadOnlySpan<char> chars)
    {
        var line = _line!;
        while (!chars.IsEmpty)
        {
            if (_lineBytes > _maxEventBytes)
            {
                // A '\r' waited beyond the cap for what follows (a '\n' would have made it a line end, dropped): it is
                // content, and starts the next event.
                Debug.Assert(line[^1] == '\r', "only a trailing '\\r' may exceed the cap");
                line.Length--;
                _lineBytes--;
                EmitChunk();
                line.Append('\r');
                _lineBytes = 1;
            }

            var fit = Fit(chars, _maxEventBytes - _lineBytes, out var fitBytes);
            if (fit == chars.Length || (fit == chars.Length - 1 && chars[^1] == '\r'))
            {
                // All of it fits, or all but a final '\r', which is kept until it is known whether a '\n' follows
                // (possibly in the next read): "\r\n" cut by the cap must not leave an empty event behind.
                line.Append(chars);
                _lineBytes += fit == chars.Length ? fitBytes : fitBytes + 1;
                return;
            }

            line.Append(chars[..fit]);
            _lineBytes += fitBytes;
            EmitChunk();
            chars = chars[fit..];
        }
    }

    /// <summary>How many of <paramref name="chars"/> fit in <paramref name="room"/> UTF-8 bytes (a surrogate pair is
    /// never cut), and their byte count.</summary>
    private static int Fit(ReadOnlySpan<char> chars, int room, out int bytes)
    {
        bytes = Encoding.UTF8.GetByteCount(chars); // vectorized: the common case, it all fits, looks at no character alone
        if (bytes <= room)
        {
            return chars.Length;
        }

        var i = 0;
        bytes = 0;
        while (i < chars.Length)
        {
            var c = chars[i];
            int n, width = 1;
            if (c < 0x80)
            {
                n = 1;
            }
            else if (c < 0x800)
            {
                n = 2;
            }
            else if (char.IsHighSurrogate(c) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
            {
                n = 4;
                width = 2;
            }
            else
            {
                n = 3; // a lone surrogate is encoded as U+FFFD, 3 bytes too
            }

            if (bytes + n > room)
            {
                break;
            }

            bytes += n;
            i += width;
        }

        return i;
    }

    /// <summary>The line ended: emits it without a trailing '\r'.</summary>
    private void Emit()
    {
        var line = _line!;
        if (line.Length > 0 && line[^1] == '\r')
        {
            line.Length--;
        }

        _appendLine(line.ToString());
        line.Clear();
        _lineBytes = 0;
    }

    /// <summary>The line goes on but reached the cap: emits what it has so far, as it is.</summary>
    private void EmitChunk()
    {
        _appendLine(_line!.ToString());
        _line.Clear();
        _lineBytes = 0;
    }
}
