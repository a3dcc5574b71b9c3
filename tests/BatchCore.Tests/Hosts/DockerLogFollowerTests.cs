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
