namespace BatchCore.Journal;

/// <summary>CRC-32 (IEEE 802.3); guards each journal record. Vectorized (System.IO.Hashing): recovery checksums every byte.</summary>
internal static class Crc32
{
    public static uint Compute(ReadOnlySpan<byte> data) => System.IO.Hashing.Crc32.HashToUInt32(data);
}
