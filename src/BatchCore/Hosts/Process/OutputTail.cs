using System.Text;

namespace BatchCore.Hosts.Process;

/// <summary>
/// Follows a survivable attempt's output file (the job writes to a file, not to a pipe to the engine, so that it
/// survives the engine) into the attempt's log stream: whole lines as they appear, the last partial line at the end.
/// </summary>
internal sealed class OutputTail(string path, Action<string> appendLine)
{
    private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
    private readonly StringBuilder _line = new();
    private readonly byte[] _bytes = new byte[16 * 1024];
    private char[] _chars = new char[16 * 1024];
    private long _offset;

    /// <summary>How often a running attempt's file is read.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Reads what was appended since the last call; emits complete lines (and, when <paramref name="final"/>, the rest).</summary>
    public void Read(bool final)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
            file.Seek(_offset, SeekOrigin.Begin);
            int n;
            while ((n = file.Read(_bytes, 0, _bytes.Length)) > 0)
            {
                _offset += n;
                Append(_bytes.AsSpan(0, n));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // not created yet (the wrapper opens it), or already removed
        }

        if (final && _line.Length > 0)
        {
            Emit();
        }
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        var needed = _decoder.GetCharCount(bytes, flush: false);
        if (needed > _chars.Length)
        {
            _chars = new char[needed];
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

    private void Emit()
    {
        if (_line.Length > 0 && _line[^1] == '\r')
        {
            _line.Length--;
        }

        appendLine(_line.ToString());
        _line.Clear();
    }
}
