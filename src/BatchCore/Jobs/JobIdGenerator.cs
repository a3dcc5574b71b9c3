namespace BatchCore.Jobs;

/// <summary>
/// Job ids: random version-4 UUIDs from a seeded xoshiro256** generator (seeded through SplitMix64), so a seed gives the
/// same ids on every run and machine. <see cref="System.Random"/> with a seed runs .NET's legacy algorithm, whose
/// <c>NextBytes</c> draws one sample per byte: the ids cost ~6 % of the loop's time on N × SubmitJob; this is two 64-bit
/// steps per id. Loop-only (not thread-safe).
/// </summary>
internal struct JobIdGenerator
{
    private ulong _s0, _s1, _s2, _s3;

    public JobIdGenerator(long seed)
    {
        var x = unchecked((ulong)seed);
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
    }

    /// <summary>A new random UUID (version 4, RFC 4122 variant) in its 36-character form.</summary>
    public string Next()
    {
        Span<byte> b = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, NextUInt64());
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b[8..], NextUInt64());
        b[7] = (byte)((b[7] & 0x0F) | 0x40); // version 4
        b[8] = (byte)((b[8] & 0x3F) | 0x80); // RFC 4122 variant
        return new Guid(b).ToString();
    }

    private ulong NextUInt64()
    {
        var result = BitRotate(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitRotate(_s3, 45);
        return result;
    }

    private static ulong BitRotate(ulong x, int k) => (x << k) | (x >> (64 - k));

    private static ulong SplitMix(ref ulong x)
    {
        var z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
