using System.Buffers;
using System.Buffers.Binary;

namespace BatchCore.Journal;

/// <summary>
/// The on-disk framing, version 4: a file starts with the 8-byte magic <c>BCJRNL04</c> (versions 1 to 3, <c>BCJRNL01</c>
/// to <c>BCJRNL03</c>, are still read: their records have the older layouts, which the decoder tells apart; they are never
/// appended to, so a file's records are all of its header's version or older); then records, each
/// <c>[u32 little-endian payload length][u32 CRC-32 of the payload][payload]</c>, payload a MessagePack array.
/// A torn final record (crash mid-write) is detected and cut off; a bad record followed by more data is corruption
/// and stops recovery with the file and the offset — data is never skipped silently.
/// </summary>
internal static class JournalFile
{
    public static ReadOnlySpan<byte> Magic => "BCJRNL04"u8;

    /// <summary>
    /// The format written; formats from <see cref="OldestReadable"/> up to it are read. Bumped whenever a record says
    /// something an older engine would misread (it then refuses the file by its header instead of failing on a record).
    /// </summary>
    public const int Version = 4;
    public const int OldestReadable = 1;
    public const int HeaderSize = 8;

    /// <summary>The format version of a header, or -1 when it is not a BatchCore journal at all.</summary>
    public static int VersionOf(ReadOnlySpan<byte> header) =>
        header.Length >= HeaderSize && header[..6].SequenceEqual("BCJRNL"u8) && char.IsAsciiDigit((char)header[6]) && char.IsAsciiDigit((char)header[7])
            ? ((header[6] - '0') * 10) + (header[7] - '0')
            : -1;

    public static void WriteFrame(IBufferWriter<byte> output, ReadOnlySpan<byte> payload)
    {
        var span = output.GetSpan(8 + payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], Crc32.Compute(payload));
        payload.CopyTo(span[8..]);
        output.Advance(8 + payload.Length);
    }

    /// <summary>Reads every whole record; truncates a torn tail; throws on corruption in the middle.</summary>
    public static List<ReadOnlyMemory<byte>> ReadAll(string path, bool truncateTornTail)
    {
        var records = new List<ReadOnlyMemory<byte>>();
        using var reader = new JournalReader(path, truncateTornTail);
        while (reader.TryRead(out var payload))
        {
            records.Add(payload.ToArray());
        }

        return records;
    }
}

/// <summary>
/// Reads a journal or snapshot file record by record through one reused buffer (recovery never holds the whole file):
/// checks each record's checksum; a torn final record (too short, or a bad checksum on the very last record) is cut off
/// when asked (the file is truncated once reading ends); a bad record followed by more data throws
/// <see cref="JournalCorruptException"/> with the file and the byte offset.
/// </summary>
internal sealed class JournalReader : IDisposable
{
    private readonly string _path;
    private readonly bool _truncateTornTail;
    private readonly FileStream? _file;
    private readonly long _length;
    private byte[] _buffer = new byte[1 << 20];
    private int _start;
    private int _end;
    private long _bufferOffset; // file offset of _buffer[0]
    private long _truncateAt = -1;
    private bool _done;

    public JournalReader(string path, bool truncateTornTail)
    {
        _path = path;
        _truncateTornTail = truncateTornTail;
        if (!File.Exists(path))
        {
            _done = true;
            return;
        }

        _file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
        _length = _file.Length;
        if (_length < JournalFile.HeaderSize)
        {
            // A crash while creating the file: nothing was ever acknowledged from it.
            _truncateAt = 0;
            Finish();
            return;
        }

        Fill(JournalFile.HeaderSize);
        Version = JournalFile.VersionOf(_buffer.AsSpan(0, JournalFile.HeaderSize));
        if (Version < 0)
        {
            throw new JournalCorruptException(path, 0, "not a BatchCore journal (bad magic)");
        }

        if (Version is < JournalFile.OldestReadable or > JournalFile.Version)
        {
            throw new JournalCorruptException(path, 0, $"on-disk format version {Version} is not supported: this engine reads versions {JournalFile.OldestReadable} to {JournalFile.Version} (a newer engine wrote it?)");
        }

        _start = JournalFile.HeaderSize;
    }

    /// <summary>The file's format version (0: no file, or an empty one).</summary>
    public int Version { get; }

    /// <summary>Byte offset in the file of the record <see cref="TryRead"/> returned last.</summary>
    public long Offset { get; private set; }

    /// <summary>The next record's payload, valid until the next call; false at the end (after cutting a torn tail).</summary>
    public bool TryRead(out ReadOnlyMemory<byte> payload)
    {
        payload = default;
        if (_done)
        {
            return false;
        }

        var offset = _bufferOffset + _start;
        var remaining = _length - offset;
        if (remaining == 0)
        {
            Finish();
            return false;
        }

        if (remaining < 8)
        {
            _truncateAt = offset; // torn: not even a whole header
            Finish();
            return false;
        }

        Fill(8);
        var len = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(_start));
        var crc = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(_start + 4));
        if (len == 0)
        {
            // No record is empty: this is the zero-filled space the writer preallocates, the end of the log. Only zeros
            // may follow; anything else is data after a hole, which is not skipped silently.
            if (crc != 0 || !RestIsZero(offset + 8))
            {
                throw new JournalCorruptException(_path, offset, "an empty record header followed by data");
            }

            _truncateAt = offset;
            Finish();
            return false;
        }

        if (len > remaining - 8)
        {
            _truncateAt = offset; // torn: the last record was cut short
            Finish();
            return false;
        }

        Fill(8 + (int)len);
        var body = new ReadOnlyMemory<byte>(_buffer, _start + 8, (int)len);
        if (Crc32.Compute(body.Span) != crc)
        {
            if (offset + 8 + len == _length || RestIsZero(offset + 8 + len))
            {
                _truncateAt = offset; // torn: the last record's bytes never all reached the disk (zeros may follow)
                Finish();
                return false;
            }

            throw new JournalCorruptException(_path, offset, "checksum mismatch in a record followed by more records");
        }

        Offset = offset;
        _start += 8 + (int)len;
        payload = body;
        return true;
    }

    /// <summary>Whether the file holds only zero bytes from <paramref name="from"/> to its end (the preallocated tail).</summary>
    private bool RestIsZero(long from)
    {
        var chunk = new byte[64 * 1024];
        for (var at = from; at < _length;)
        {
            var n = RandomAccess.Read(_file!.SafeFileHandle, chunk, at);
            if (n == 0)
            {
                break;
            }

            if (chunk.AsSpan(0, n).ContainsAnyExcept((byte)0))
            {
                return false;
            }

            at += n;
        }

        return true;
    }

    /// <summary>Makes at least <paramref name="count"/> bytes from <c>_start</c> available (the caller knows the file has them).</summary>
    private void Fill(int count)
    {
        if (_end - _start >= count)
        {
            return;
        }

        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _bufferOffset += _start;
            _end -= _start;
            _start = 0;
        }

        if (count > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(count, _buffer.Length * 2));
        }

        while (_end < count)
        {
            var n = _file!.Read(_buffer, _end, _buffer.Length - _end);
            if (n == 0)
            {
                throw new JournalCorruptException(_path, _bufferOffset + _end, "the file ended while it was read (changed by another process?)");
            }

            _end += n;
        }
    }

    private void Finish()
    {
        _done = true;
        _file?.Dispose();
        if (_truncateAt >= 0 && _truncateTornTail)
        {
            using var fs = new FileStream(_path, FileMode.Open, FileAccess.Write);
            fs.SetLength(_truncateAt);
            fs.Flush(flushToDisk: true);
        }
    }

    public void Dispose()
    {
        if (!_done)
        {
            _done = true;
            _file?.Dispose();
        }
    }
}

/// <summary>A journal or snapshot file is damaged in a way recovery must not paper over.</summary>
public sealed class JournalCorruptException : Exception
{
    public JournalCorruptException(string path, long offset, string problem)
        : base($"{path}: corrupt record at offset {offset}: {problem}")
    {
        Path = path;
        Offset = offset;
    }

    public JournalCorruptException() { }

    public JournalCorruptException(string message) : base(message) { }

    public JournalCorruptException(string message, Exception inner) : base(message, inner) { }

    public string? Path { get; }
    public long Offset { get; }
}
