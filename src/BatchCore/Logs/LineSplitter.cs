using System.Text;

namespace BatchCore.Logs;

/// <summary>
/// Turns a job's output bytes (UTF-8) into log lines (every driver's stdout, stderr or output file): whole lines as they complete (a trailing '\r' dropped), the last
/// partial line on <see cref="Flush"/>. Allocates its buffers on the first byte, so a silent job costs nothing.
/// </summary>
internal sealed class LineSplitter(Action<string> appendLine)
{
    private Decoder? _decoder;
    private StringBuilder? _line;
    private char[]? _chars;

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

        var count = _decoder.GetChars(bytes, _chars, flush: false);
        var span = _chars.AsSpan(0, count);
        while (span.IndexOf('\n') is var newline and >= 0)
        {
            _line.Append(span[..newline]);
            Emit();
            span = span[(newline + 1)..];
        }

        _line.Append(span);
    }

    /// <summary>Emits the last line when it did not end with a newline.</summary>
    public void Flush()
    {
        if (_line is { Length: > 0 })
        {
            Emit();
        }
    }

    private void Emit()
    {
        var line = _line!;
        if (line.Length > 0 && line[^1] == '\r')
        {
            line.Length--;
        }

        appendLine(line.ToString());
        line.Clear();
    }
}
