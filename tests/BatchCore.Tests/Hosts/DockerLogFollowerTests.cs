using System.Buffers.Binary;
using System.Text;
using BatchCore.Hosts.Docker;

namespace BatchCore.Tests.Hosts;

/// <summary>
/// <see cref="DockerLogFollower"/>: Docker's frames into lines, and a resumed follow (since = whole seconds, inclusive)
/// that neither loses nor repeats a message.
/// </summary>
public sealed class DockerLogFollowerTests
{
    private const long Second = 1_700_000_000;

    [Fact]
    public void Frames_CutAnywhereBetweenReads_BecomeTheirLines_WithoutTheStamps()
    {
        var (follower, lines) = New();
        var bytes = Frames((1, Second, 100, "one\n"), (2, Second, 200, "two\n"), (3, Second, 300, "daemon error\n"), (1, Second + 1, 0, "thr"), (1, Second + 1, 1, "ee\n"));

        follower.BeginStream();
        foreach (var b in bytes)
        {
            follower.Append([b]); // a byte at a time: headers and stamps cut everywhere
        }

        Assert.Equal(["one", "two", "three"], lines);
        Assert.Equal("1700000001", follower.Since);
    }

    [Fact]
    public void Resume_SkipsWhatTheReplayRepeats_EvenWhenStampsAreStoredOutOfOrder()
    {
        var (follower, lines) = New();
        Assert.Null(follower.Since); // nothing delivered: the first follow is from the start
        follower.BeginStream();
        // stderr stamped before the stdout line stored ahead of it (each stream is stamped before it is stored)
        follower.Append(Frames((1, Second, 900, "a\n"), (2, Second, 800, "b\n"), (1, Second, 900, "c\n")));
        follower.Append(Frames((1, Second, 950, "cut off"))[..20]); // the drop cuts a frame

        // The replay since 1700000000: every stored message stamped in that second or later, in the stored order.
        follower.BeginStream();
        follower.Append(Frames((1, Second, 900, "a\n"), (2, Second, 800, "b\n"), (1, Second, 900, "c\n"), (1, Second, 950, "cut off\n"), (2, Second, 100, "late\n")));
        follower.Flush();

        Assert.Equal(["a", "b", "c", "cut off", "late"], lines);
    }

    /// <summary>
    /// A frame was held whole however long its header said it was: a corrupt header could make the follower allocate
    /// gigabytes. One longer than 1 MiB is held only for its stamp and passed on in pieces as it comes: its lines come
    /// out whole (the splitter cuts only lines above its own cap), the frames after it are read as before, and what is
    /// held stays at most 1 MiB.
    /// </summary>
    [Fact]
    public void FrameLongerThanTheCap_IsPassedOnInPieces_WithoutHoldingIt()
    {
        var (follower, lines) = New();
        var text = new StringBuilder();
        var expected = new List<string>();
        for (var i = 0; text.Length < 3 * DockerLogFollower.MaxHeldFrameBytes; i++)
        {
            var line = "line " + i + " " + new string((char)('a' + (i % 26)), i % 200);
            expected.Add(line);
            text.Append(line).Append('\n');
        }

        var bytes = Frames((1, Second, 100, text.ToString()), (2, Second, 200, "after\n"), (1, Second + 1, 0, "small\n"));
        follower.BeginStream();
        for (var i = 0; i < 200; i++)
        {
            follower.Append(bytes.AsSpan(i, 1)); // the header and the stamp cut a byte at a time
        }

        for (var at = 200; at < bytes.Length; at += 16 * 1024)
        {
            follower.Append(bytes.AsSpan(at, Math.Min(16 * 1024, bytes.Length - at)));
        }

        Assert.Equal([.. expected, "after", "small"], lines);
        Assert.Equal("1700000001", follower.Since);
        Assert.InRange(follower.HeldCapacity, 1, DockerLogFollower.MaxHeldFrameBytes);
    }

    /// <summary>
    /// A header that says 4 GiB (corrupt): nothing near that is held; what follows is that message's content, passed on
    /// as lines, until 4 GiB have come.
    /// </summary>
    [Fact]
    public void CorruptHeaderOfGigabytes_HoldsNoMoreThanTheCap()
    {
        var (follower, lines) = New();
        var header = new byte[8];
        header[0] = 1;
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), uint.MaxValue);
        follower.BeginStream();
        follower.Append(header);
        follower.Append(Encoding.ASCII.GetBytes("not a stamp\n"));
        follower.Append(new byte[2 * DockerLogFollower.MaxHeldFrameBytes]);
        follower.Append(Encoding.ASCII.GetBytes("\nstill\n"));

        Assert.InRange(follower.HeldCapacity, 1, DockerLogFollower.StampPrefixBytes);
        Assert.Equal("not a stamp", lines[0]);
        Assert.Equal("still", lines[^1]);
    }

    /// <summary>
    /// A longer-than-the-cap message counts as delivered from its start: the replay after a drop skips it, whole or cut
    /// (what was passed on of a cut one is not repeated; its rest is lost), and delivers what follows it.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Resume_SkipsALongerMessageAlreadyPassedOn(bool cutInside)
    {
        var (follower, lines) = New();
        var big = new string('x', DockerLogFollower.MaxHeldFrameBytes + 10) + "\n";
        var bigFrame = Frames((1, Second, 100, big));
        follower.BeginStream();
        follower.Append(Frames((1, Second, 50, "a\n")));
        follower.Append(cutInside ? bigFrame[..(bigFrame.Length / 2)] : bigFrame);

        follower.BeginStream();
        follower.Append(Frames((1, Second, 50, "a\n")));
        follower.Append(bigFrame);
        follower.Append(Frames((2, Second, 200, "b\n")));
        follower.Flush();

        Assert.Equal("a", lines[0]);
        Assert.Equal("b", lines[^1]);
        var passedOn = string.Concat(lines.Skip(1).Take(lines.Count - 2));
        Assert.Equal(cutInside ? (bigFrame.Length / 2) - 8 - 31 : big.Length - 1, passedOn.Length); // header 8, stamp and space 31
        Assert.All(passedOn, c => Assert.Equal('x', c));
    }

    [Theory]
    [InlineData("2023-11-14T22:13:20.000000000Z x", 1_700_000_000, 31)]
    [InlineData("2023-11-14T22:13:20Z x", 1_700_000_000, 21)]
    [InlineData("2023-11-15T00:13:20.5+02:00 x", 1_700_000_000, 28)]
    public void TryReadStamp_ReadsTheSecondAndWhereTheTextStarts(string message, long second, int textStart)
    {
        Assert.True(DockerLogFollower.TryReadStamp(Encoding.ASCII.GetBytes(message), out var read, out var start));
        Assert.Equal(second, read);
        Assert.Equal(textStart, start);
    }

    [Theory]
    [InlineData("no stamp here at all")]
    [InlineData("2023-13-14T22:13:20Z x")]
    [InlineData("2023-11-14T22:13:20.123")]
    public void TryReadStamp_RefusesWhatIsNoStamp(string message) =>
        Assert.False(DockerLogFollower.TryReadStamp(Encoding.ASCII.GetBytes(message), out _, out _));

    private static (DockerLogFollower, List<string>) New()
    {
        var lines = new List<string>();
        return (new DockerLogFollower(lines.Add), lines);
    }

    /// <summary>Frames as the daemon sends them: header, then the stamp (RFC3339NanoFixed) and the message.</summary>
    private static byte[] Frames(params (byte Stream, long Second, int Millis, string Text)[] messages)
    {
        var bytes = new List<byte>();
        foreach (var (stream, second, millis, text) in messages)
        {
            var payload = Encoding.UTF8.GetBytes(FakeDockerDaemon.Stamp((second * 1_000_000_000) + (millis * 1_000_000L)) + " " + text);
            var header = new byte[8];
            header[0] = stream;
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), (uint)payload.Length);
            bytes.AddRange(header);
            bytes.AddRange(payload);
        }

        return [.. bytes];
    }
}
