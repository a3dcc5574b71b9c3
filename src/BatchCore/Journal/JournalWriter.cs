using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;

namespace BatchCore.Journal;

/// <summary>Told when the records written before it are durable (or can never be).</summary>
internal interface IJournalAck
{
    /// <summary>Called once: <paramref name="error"/> is null when the records are durable.</summary>
    void Acknowledge(Exception? error);
}

/// <summary>
/// Appends framed records for the scheduling loop (its only writer) and group-commits them: many records, one write and
/// one fsync per batch, so durability costs little throughput.
/// <para>
/// Pipelined (the live journal): <see cref="Commit"/> hands the loop's batch to a flusher task and returns at once, so
/// the loop keeps executing requests while the previous batch is being fsynced; batches that queue up meanwhile share
/// the next fsync. Acknowledgements run on the flusher after the fsync. The hand-off is a channel, not a lock.
/// Synchronous (snapshots): <see cref="Commit"/> writes and fsyncs on the caller's thread.
/// </para>
/// </summary>
internal sealed class JournalWriter : IDisposable
{
    private readonly FileStream _file;
    private readonly ArrayBufferWriter<byte> _payload = new(256);
    private ArrayBufferWriter<byte> _pending = new(64 * 1024);
    private readonly JournalOptions _options;
    private readonly Channel<Batch>? _batches;
    private readonly ConcurrentQueue<Batch> _free = new();
    private readonly Thread? _flusher;
    private long _lastFsync = Stopwatch.GetTimestamp();
    private long _handed;
    /// <summary>Pipelined: where the flusher writes next (the log's end on disk).</summary>
    private long _fileEnd;
    /// <summary>Pipelined: the file's length; zeros from <see cref="_fileEnd"/> to here.</summary>
    private long _allocated;
    private long _preallocate;
    private bool _unsynced;
    private volatile Exception? _fault;
    private bool _disposed;

    public JournalWriter(string path, JournalOptions options, bool pipelined = false)
    {
        _options = options;
        var exists = File.Exists(path) && new FileInfo(path).Length >= JournalFile.HeaderSize;
        if (exists)
        {
            // Records of this version after an older header would be misread by an engine of that version (or refused
            // as undecodable, not as a newer format): an older file is rewritten as a snapshot, never appended to.
            Span<byte> header = stackalloc byte[JournalFile.HeaderSize];
            using (var read = File.OpenHandle(path))
            {
                RandomAccess.Read(read, header, 0);
            }

            if (!header.SequenceEqual(JournalFile.Magic))
            {
                throw new InvalidOperationException($"{path}: not appended to, its format version is {JournalFile.VersionOf(header)}, this engine writes version {JournalFile.Version}");
            }
        }

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

        // The log ends at the file's end: recovery cut off any zeros a crash left behind before the journal is reopened.
        _file.Seek(0, SeekOrigin.End);
        _handed = _file.Length;
        if (pipelined)
        {
            _fileEnd = _allocated = _handed;
            _preallocate = options.PreallocateBytes;
            // The flusher has its own thread and the loop wakes it directly (synchronous continuation of its wait): a
            // thread-pool flusher would queue behind the submitters' continuations, and the fsync would start late.
            _batches = Channel.CreateUnbounded<Batch>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true, AllowSynchronousContinuations = true });
            _flusher = new Thread(FlushLoop) { IsBackground = true, Name = "BatchCore journal flusher" };
            _flusher.UnsafeStart(); // no ExecutionContext: nothing of the engine creator's flows into it
        }
    }

    /// <summary>Bytes in the file once everything handed over is written (the loop's view; no file access).</summary>
    public long Length => _handed + _pending.WrittenCount;

    /// <summary>A scratch buffer for one record's payload; call <see cref="EndRecord"/> after encoding into it.</summary>
    public IBufferWriter<byte> BeginRecord()
    {
        _payload.ResetWrittenCount();
        return _payload;
    }

    public void EndRecord() => JournalFile.WriteFrame(_pending, _payload.WrittenSpan);

    public bool HasPending => _pending.WrittenCount > 0;

    /// <summary>Synchronous writers (snapshots): writes what is pending once it passes <paramref name="bytes"/>, without an
    /// fsync (the final <see cref="Commit"/> makes it durable), so that a big snapshot needs no buffer of its size.</summary>
    public void WriteIfOver(int bytes)
    {
        Debug.Assert(_batches is null, "only the snapshot writer writes on the caller's thread");
        if (_pending.WrittenCount >= bytes)
        {
            _file.Write(_pending.WrittenSpan);
            _unsynced = true;
            _pending.ResetWrittenCount();
        }
    }

    /// <summary>
    /// Makes what is pending durable per the fsync policy, then acknowledges <paramref name="acks"/> (which the writer
    /// copies; the caller may reuse the list). Pipelined writers return before the fsync.
    /// </summary>
    public void Commit(List<IJournalAck>? acks = null)
    {
        if (_batches is null)
        {
            WriteAndSync(_pending, force: false);
            _pending.ResetWrittenCount();
            AckAll(acks, null);
            return;
        }

        if (_fault is { } fault)
        {
            _pending.ResetWrittenCount();
            AckAll(acks, fault);
            return;
        }

        if (_pending.WrittenCount == 0 && (acks is null || acks.Count == 0))
        {
            return;
        }

        if (!_free.TryDequeue(out var batch))
        {
            batch = new Batch();
        }

        var full = _pending;
        _pending = batch.Buffer ?? new ArrayBufferWriter<byte>(4096);
        batch.Buffer = full;
        _handed += full.WrittenCount;
        if (acks is not null)
        {
            batch.Acks.AddRange(acks);
        }

        _batches.Writer.TryWrite(batch); // unbounded: never fails while open
    }

    private void FlushLoop()
    {
        var reader = _batches!.Reader;
        var taken = new List<Batch>();
        while (WaitForBatches(reader))
        {
            // Group commit across batches: everything that queued up during the last fsync shares the next one.
            while (reader.TryRead(out var b))
            {
                taken.Add(b);
            }

            Exception? error = _fault;
            if (error is null)
            {
                try
                {
                    foreach (var b in taken)
                    {
                        Append(b.Buffer!.WrittenSpan);
                    }

                    Sync(force: false);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // The disk refused (or a bug): nothing from now on is acknowledged as durable, and this thread must not
                    // die (an exception would end the host process). Every request from now on fails with this error.
                    _fault = error = new IOException("The journal could not be written; submissions are not durable: " + e.Message, e);
                }
            }

            foreach (var b in taken)
            {
                AckAll(b.Acks, error);
                b.Acks.Clear();
                b.Buffer!.ResetWrittenCount();
                _free.Enqueue(b);
            }

            taken.Clear();
        }
    }

    /// <summary>
    /// Pipelined: writes at the log's end (positioned writes: the file's length runs ahead of it), first extending the
    /// zero-filled region when the records would not fit in it.
    /// </summary>
    private void Append(ReadOnlySpan<byte> records)
    {
        if (records.IsEmpty)
        {
            return;
        }

        var end = _fileEnd + records.Length;
        if (end > _allocated && _preallocate > 0)
        {
            Preallocate(end);
        }

        RandomAccess.Write(_file.SafeFileHandle, records, _fileEnd);
        _fileEnd = end;
        _allocated = Math.Max(_allocated, end);
        _unsynced = true;
    }

    /// <summary>Zero-fills the file up to at least <paramref name="needed"/> plus <see cref="JournalOptions.PreallocateBytes"/>.</summary>
    private void Preallocate(long needed)
    {
        var target = needed + _preallocate;
        var zeros = ZeroBlock;
        try
        {
            while (_allocated < target)
            {
                var n = (int)Math.Min(zeros.Length, target - _allocated);
                RandomAccess.Write(_file.SafeFileHandle, zeros.AsSpan(0, n), _allocated);
                _allocated += n;
            }
        }
        catch (IOException)
        {
            // A full disk: stop preallocating and let the records themselves find out whether they fit.
            _preallocate = 0;
        }
    }

    /// <summary>Zeros for <see cref="Preallocate"/>, never written to.</summary>
    private static byte[] ZeroBlock => field ??= new byte[256 * 1024];

    /// <summary>Blocks the flusher's thread until a batch is queued (true) or the writer is completed (false).</summary>
    private static bool WaitForBatches(ChannelReader<Batch> reader)
    {
        var wait = reader.WaitToReadAsync();
        return wait.IsCompleted ? wait.Result : wait.AsTask().GetAwaiter().GetResult();
    }

    private void WriteAndSync(ArrayBufferWriter<byte> buffer, bool force)
    {
        if (_batches is not null)
        {
            Append(buffer.WrittenSpan);
            Sync(force);
            return;
        }

        if (buffer.WrittenCount > 0)
        {
            _file.Write(buffer.WrittenSpan);
            _unsynced = true;
        }

        Sync(force);
    }

    private void Sync(bool force)
    {
        if (!_unsynced)
        {
            return;
        }

        if (force || _options.FsyncPolicy == FsyncPolicy.EveryCommit || Stopwatch.GetElapsedTime(_lastFsync) >= _options.FsyncInterval)
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

    private static void AckAll(List<IJournalAck>? acks, Exception? error)
    {
        if (acks is null)
        {
            return;
        }

        foreach (var a in acks)
        {
            a.Acknowledge(error);
        }
    }

    /// <summary>Writes everything still pending, waits for the flusher, fsyncs and closes the file.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_batches is not null)
        {
            Commit();
            _batches.Writer.TryComplete();
            _flusher!.Join();
        }

        try
        {
            if (_fault is null)
            {
                WriteAndSync(_pending, force: true);
                if (_batches is not null && _allocated > _fileEnd)
                {
                    // A clean stop leaves no zeros behind: the file is exactly its records.
                    _file.SetLength(_fileEnd);
                    _file.Flush(flushToDisk: true);
                }
            }
        }
        finally
        {
            _file.Dispose();
        }
    }

    private sealed class Batch
    {
        public ArrayBufferWriter<byte>? Buffer;
        public readonly List<IJournalAck> Acks = [];
    }
}
