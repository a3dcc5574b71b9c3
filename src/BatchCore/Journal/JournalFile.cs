using System.Buffers;
using System.Buffers.Binary;

namespace BatchCore.Journal;

/// <summary>
/// The on-disk framing, version 2: a file starts with the 8-byte magic <c>BCJRNL02</c> (version 1, <c>BCJRNL01</c>, is
/// still read: its state records lack the attempt location); then records, each
/// <c>[u32 little-endian payload length][u32 CRC-32 of the payload][payload]</c>, payload a MessagePack array.
/// A torn final record (crash mid-write) is detected and cut off; a bad record followed by more data is corruption
/// and stops recovery with the file and the offset — data is never skipped silently.
/// </summary>
internal static class JournalFile
{
    public static ReadOnlySpan<byte> Magic => "BCJRNL02"u8;

    /// <summary>Format 1: state records without the attempt location. Read, never written.</summary>
    public static ReadOnlySpan<byte> MagicV1 => "BCJRNL01"u8;
    public const int HeaderSize = 8;

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

        if (!bytes.AsSpan(0, HeaderSize).SequenceEqual(Magic) && !bytes.AsSpan(0, HeaderSize).SequenceEqual(MagicV1))
        {
            throw new JournalCorruptException(path, 0, "not a BatchCore journal (bad magic or unsupported format version)");
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
