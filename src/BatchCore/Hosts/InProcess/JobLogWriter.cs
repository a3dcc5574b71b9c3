using System.Text;
using BatchCore.Logs;

namespace BatchCore.Hosts.InProcess;

/// <summary>
/// A <see cref="TextWriter"/> that turns lines into log events of one stream, under the rules of every driver's output
/// (<see cref="LineSplitter"/>): a trailing '\r' dropped, a line longer than <see cref="LogStore.MaxEventBytes"/> UTF-8
/// bytes cut into several events between characters, so a handler writing without newlines holds a bounded buffer.
/// </summary>
internal sealed class JobLogWriter : TextWriter
{
    private readonly Lock _gate = new();
    private readonly LineSplitter _lines;

    public JobLogWriter(LogStore store, TimeProvider time, string stream, int maxEventBytes = LogStore.MaxEventBytes) =>
        _lines = new LineSplitter(line => store.Append(stream, time.GetUtcNow().ToUnixTimeMilliseconds(), line), maxEventBytes);

    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value)
    {
        lock (_gate)
        {
            _lines.AppendText([value]);
        }
    }

    public override void Write(char[] buffer, int index, int count) => Write(buffer.AsSpan(index, count));

    public override void Write(ReadOnlySpan<char> buffer)
    {
        lock (_gate)
        {
            _lines.AppendText(buffer);
        }
    }

    public override void Write(string? value) => Write(value.AsSpan());

    public override void WriteLine(string? value)
    {
        lock (_gate)
        {
            _lines.AppendLine(value ?? "");
        }
    }

    public override void Flush()
    {
        lock (_gate)
        {
            _lines.Flush();
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Flush();
        }

        base.Dispose(disposing);
    }
}
