using System.Buffers;
using System.Diagnostics;

namespace BatchCore.Journal;

/// <summary>
/// Appends framed records for the scheduling loop (its only writer) and group-commits them: many records, one
/// write and one fsync per loop batch, so durability costs little throughput.
/// </summary>
internal sealed class JournalWriter : IDisposable
{
    private readonly FileStream _file;
    private readonly ArrayBufferWriter<byte> _payload = new(256);
    private readonly ArrayBufferWriter<byte> _pending = new(64 * 1024);
    private readonly JournalOptions _options;
    private long _lastFsync = Stopwatch.GetTimestamp();
    private bool _unsynced;

    public JournalWriter(string path, JournalOptions options)
    {
        _options = options;
        var exists = File.Exists(path) && new FileInfo(path).Length >= JournalFile.HeaderSize;
        var fso = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.Write, Share = FileShare.Read };
        if (!OperatingSystem.IsWindows())
        {
            fso.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // readable by the owner only
        }

        _file = new FileStream(path, fso);
        if (!exists)
        {
            _file.SetLength(0);
            _file.Write(JournalFile.Magic);
            _file.Flush(flushToDisk: true);
        }

        _file.Seek(0, SeekOrigin.End);
    }

    public long Length => _file.Length + _pending.WrittenCount;

    /// <summary>A scratch buffer for one record's payload; call <see cref="EndRecord"/> after encoding into it.</summary>
    public IBufferWriter<byte> BeginRecord()
    {
        _payload.ResetWrittenCount();
        return _payload;
    }

    public void EndRecord() => JournalFile.WriteFrame(_pending, _payload.WrittenSpan);

    public bool HasPending => _pending.WrittenCount > 0;

    /// <summary>Writes what is pending and makes it durable per the fsync policy.</summary>
    public void Commit()
    {
        if (_pending.WrittenCount > 0)
        {
            _file.Write(_pending.WrittenSpan);
            _pending.ResetWrittenCount();
            _unsynced = true;
        }

        if (!_unsynced)
        {
            return;
        }

        if (_options.FsyncPolicy == FsyncPolicy.EveryCommit || Stopwatch.GetElapsedTime(_lastFsync) >= _options.FsyncInterval)
        {
            _file.Flush(flushToDisk: true);
            _lastFsync = Stopwatch.GetTimestamp();
            _unsynced = false;
        }
        else
        {
            _file.Flush(flushToDisk: false);
        }
    }

    public void Dispose()
    {
        Commit();
        _file.Flush(flushToDisk: true);
        _file.Dispose();
    }
}
