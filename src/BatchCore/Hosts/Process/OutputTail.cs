using System.Buffers;
using BatchCore.Logs;

namespace BatchCore.Hosts.Process;

/// <summary>
/// Follows a survivable attempt's output file (the job writes to a file, not to a pipe to the engine, so that it
/// survives the engine) into the attempt's log stream: whole lines as they appear, the last partial line at the end.
/// </summary>
internal sealed class OutputTail(string path, Action<string> appendLine)
{
    private readonly LineSplitter _lines = new(appendLine);
    private long _offset;

    /// <summary>How often a running attempt's file is read.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Reads what was appended since the last call; emits complete lines (and, when <paramref name="final"/>, the rest).</summary>
    public void Read(bool final)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
            file.Seek(_offset, SeekOrigin.Begin);
            int n;
            while ((n = file.Read(buffer, 0, buffer.Length)) > 0)
            {
                _offset += n;
                _lines.Append(buffer.AsSpan(0, n));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // not created yet (the wrapper opens it), or already removed
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        if (final)
        {
            _lines.Flush();
        }
    }
}
