using System.Buffers;
using System.Buffers.Binary;

namespace BatchCore.Journal;

/// <summary>
/// The on-disk framing, version 3: a file starts with the 8-byte magic <c>BCJRNL03</c> (versions 1 and 2, <c>BCJRNL01</c>
/// and <c>BCJRNL02</c>, are still read: their records have the older layouts, which the decoder tells apart); then records, each
/// <c>[u32 little-endian payload length][u32 CRC-32 of the payload][payload]</c>, payload a MessagePack array.
/// A torn final record (crash mid-write) is detected and cut off; a bad record followed by more data is corruption
/// and stops recovery with the file and the offset — data is never skipped silently.
/// </summary>
internal static class JournalFile
{
    public static ReadOnlySpan<byte> Magic => "BCJRNL03"u8;

    /// <summary>The format written; formats from <see cref="OldestReadable"/> up to it are read.</summary>
    public const int Version = 3;
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
    public static List<ReadOnlyMemory<byte>> ReadAll(string path, bool truncateTornTail) => ReadAll(path, truncateTornTail, out _);

    /// <summary>As <see cref="ReadAll(string, bool)"/>; <paramref name="version"/> is the file's format (0: no file, or an empty one).</summary>
    public static List<ReadOnlyMemory<byte>> ReadAll(string path, bool truncateTornTail, out int version)
    {
        var records = new List<ReadOnlyMemory<byte>>();
        version = 0;
        if (!File.Exists(path))
        {
            return records;
        }

        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < HeaderSize)
        {
            // A crash while creating the file: nothing was ever acknowledged from it.
            if (truncateTornTail)
            {
                File.WriteAllBytes(path, []);
            }

            return records;
        }

        version = VersionOf(bytes);
        if (version < 0)
        {
            throw new JournalCorruptException(path, 0, "not a BatchCore journal (bad magic)");
        }

        if (version is < OldestReadable or > Version)
        {
            throw new JournalCorruptException(path, 0, $"on-disk format version {version} is not supported: this engine reads versions {OldestReadable} to {Version} (a newer engine wrote it?)");
        }

        long offset = HeaderSize;
        while (offset < bytes.Length)
        {
            var remaining = bytes.Length - offset;
            if (remaining < 8)
            {
                Truncate(path, offset, truncateTornTail);
                break;
            }

            var len = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)offset));
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)offset + 4));
            if (len > remaining - 8)
            {
                Truncate(path, offset, truncateTornTail); // torn: the last record was cut short
                break;
            }

            var payload = new ReadOnlyMemory<byte>(bytes, (int)offset + 8, (int)len);
            if (Crc32.Compute(payload.Span) != crc)
            {
                if (offset + 8 + len == bytes.Length)
                {
                    Truncate(path, offset, truncateTornTail); // torn: the last record's bytes never all reached the disk
                    break;
                }

                throw new JournalCorruptException(path, offset, "checksum mismatch in a record followed by more records");
            }

            records.Add(payload);
            offset += 8 + len;
        }

        return records;
    }

    private static void Truncate(string path, long offset, bool apply)
    {
        if (!apply)
        {
            return;
        }

        using var fs = new FileStream(path, FileMode.Open, FileAccess.Write);
        fs.SetLength(offset);
        fs.Flush(flushToDisk: true);
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
