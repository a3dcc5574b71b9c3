using System.Text;
using BatchCore.Logs;

namespace BatchCore.Hosts.InProcess;

/// <summary>A <see cref="TextWriter"/> that turns lines into log events of one stream.</summary>
internal sealed class JobLogWriter(LogStore store, TimeProvider time, string stream) : TextWriter
{
    private readonly Lock _gate = new();
    private readonly StringBuilder _line = new();

    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value)
    {
        lock (_gate)
        {
            AppendLocked(value);
        }
    }

    public override void Write(char[] buffer, int index, int count) => Write(buffer.AsSpan(index, count));

    public override void Write(ReadOnlySpan<char> buffer)
    {
        lock (_gate)
        {
            foreach (var c in buffer)
            {
                AppendLocked(c);
            }
        }
    }

    public override void Write(string? value) => Write(value.AsSpan());

    public override void WriteLine(string? value)
    {
        lock (_gate)
        {
            if (_line.Length == 0 && value is not null && value.AsSpan().IndexOfAny('\r', '\n') < 0)
            {
                // The common case: one whole line, no copy.
                store.Append(stream, time.GetUtcNow().ToUnixTimeMilliseconds(), value);
                return;
            }

            foreach (var c in value.AsSpan())
            {
                AppendLocked(c);
            }

            EmitLocked();
        }
    }

    public override void Flush()
    {
        lock (_gate)
        {
            if (_line.Length > 0)
            {
                EmitLocked();
            }
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

    private void AppendLocked(char c)
    {
        if (c == '\n')
        {
            EmitLocked();
        }
        else if (c != '\r')
        {
            _line.Append(c);
        }
    }

    private void EmitLocked()
    {
        store.Append(stream, time.GetUtcNow().ToUnixTimeMilliseconds(), _line.ToString());
        _line.Clear();
    }
}
