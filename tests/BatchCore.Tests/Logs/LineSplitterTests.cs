using System.Text;
using BatchCore.Logs;

namespace BatchCore.Tests.Logs;

/// <summary>How a job's output bytes become log lines.</summary>
public sealed class LineSplitterTests
{
    [Fact]
    public void Lines_SplitAcrossChunks_CrLfTrimmed_LastPartialLineOnFlush()
    {
        var lines = new List<string>();
        var splitter = new LineSplitter(lines.Add);
        var bytes = Encoding.UTF8.GetBytes("one\r\ntw€o\n\nthree");
        for (var i = 0; i < bytes.Length; i += 3)
        {
            splitter.Append(bytes.AsSpan(i, Math.Min(3, bytes.Length - i))); // splits the 3-byte '€' too
        }

        Assert.Equal(["one", "tw€o", ""], lines);
        splitter.Flush();
        Assert.Equal(["one", "tw€o", "", "three"], lines);
        splitter.Flush();
        Assert.Equal(4, lines.Count);
    }

    [Fact]
    public void LongLine_BecomesEventsOfAtMostTheCap_NothingLost()
    {
        var lines = new List<string>();
        var splitter = new LineSplitter(lines.Add, maxEventBytes: 8);
        splitter.Append("abcdefghijklmnopqrst"u8);

        Assert.Equal(["abcdefgh", "ijklmnop"], lines); // the rest waits for more of the line
        splitter.Append("uv\nw"u8);
        splitter.Flush();
        Assert.Equal(["abcdefgh", "ijklmnop", "qrstuv", "w"], lines);
    }

    [Fact]
    public void TheCapCountsUtf8Bytes_AndNeverCutsACharacter()
    {
        var lines = new List<string>();
        var splitter = new LineSplitter(lines.Add, maxEventBytes: 7);
        var text = "ééééé😀😀a€€";
        var bytes = Encoding.UTF8.GetBytes(text);
        foreach (var b in bytes)
        {
            splitter.Append([b]); // one byte at a time: characters arrive cut
        }

        splitter.Flush();
        Assert.Equal(["ééé", "éé", "😀", "😀a", "€€"], lines);
        Assert.All(lines, l => Assert.InRange(Encoding.UTF8.GetByteCount(l), 1, 7));
        Assert.Equal(text, string.Concat(lines));
    }

    [Fact]
    public void CrLfAtTheCap_EndsTheLineWithoutAnEmptyEvent_ALoneCrIsKept()
    {
        var lines = new List<string>();
        var splitter = new LineSplitter(lines.Add, maxEventBytes: 4);
        splitter.Append("abcd\r"u8); // the '\r' is beyond the cap: a line end or content, as what follows says
        splitter.Append("\nefgh\rx\nijkl\r"u8);
        splitter.Flush();

        Assert.Equal(["abcd", "efgh", "\rx", "ijkl"], lines);
    }

    /// <summary>Any output, cut into reads anywhere: every event within the cap, and the lines come back whole.</summary>
    [Fact]
    public void RandomOutput_EventsWithinTheCap_LinesPreserved()
    {
        var random = new Random(7);
        string[] alphabet = ["a", "b", "é", "€", "😀", "\n"];
        for (var round = 0; round < 300; round++)
        {
            var cap = random.Next(4, 20);
            var sb = new StringBuilder();
            for (var i = random.Next(0, 120); i > 0; i--)
            {
                sb.Append(alphabet[random.Next(alphabet.Length)]);
            }

            var text = sb.ToString();
            var bytes = Encoding.UTF8.GetBytes(text);
            var events = new List<string>();
            var splitter = new LineSplitter(events.Add, cap);
            for (var at = 0; at < bytes.Length;)
            {
                var n = Math.Min(random.Next(1, 12), bytes.Length - at);
                splitter.Append(bytes.AsSpan(at, n));
                at += n;
            }

            splitter.Flush();
            Assert.Equal(Expected(text, cap), events);
            Assert.All(events, e => Assert.True(Encoding.UTF8.GetByteCount(e) <= cap, $"'{e}' is over {cap} bytes"));
        }
    }

    /// <summary>The same rules for text written as characters, cut anywhere, surrogate pairs too.</summary>
    [Fact]
    public void RandomText_EventsWithinTheCap_LinesPreserved_PairsNeverCut()
    {
        var random = new Random(11);
        string[] alphabet = ["a", "b", "é", "€", "😀", "\n"];
        for (var round = 0; round < 300; round++)
        {
            var cap = random.Next(4, 20);
            var sb = new StringBuilder();
            for (var i = random.Next(0, 120); i > 0; i--)
            {
                sb.Append(alphabet[random.Next(alphabet.Length)]);
            }

            var text = sb.ToString();
            var events = new List<string>();
            var splitter = new LineSplitter(events.Add, cap);
            for (var at = 0; at < text.Length;)
            {
                var n = Math.Min(random.Next(1, 12), text.Length - at);
                splitter.AppendText(text.AsSpan(at, n));
                at += n;
            }

            splitter.Flush();
            Assert.Equal(Expected(text, cap), events);
            Assert.All(events, e => Assert.True(Encoding.UTF8.GetByteCount(e) <= cap, $"'{e}' is over {cap} bytes"));
        }
    }

    [Fact]
    public void AppendLine_WholeLinesWithinTheCap_PassedOnAsTheyAre_LongerOnesCut()
    {
        var lines = new List<string>();
        var splitter = new LineSplitter(lines.Add, maxEventBytes: 4);
        var line = "abcd";
        splitter.AppendLine(line);
        splitter.AppendText("x");
        splitter.AppendLine("y"); // ends the pending line
        splitter.AppendLine("abcdef\r");
        splitter.AppendLine("");

        Assert.Equal(["abcd", "xy", "abcd", "ef", ""], lines);
        Assert.Same(line, lines[0]);
    }

    [Fact]
    public void DefaultCap_IsCloudWatchsEventSizeInUtf8Bytes()
    {
        var lines = new List<string>();
        var splitter = new LineSplitter(lines.Add);
        var chunk = Encoding.UTF8.GetBytes(new string('€', 1000)); // 3 bytes each
        for (var i = 0; i < 1000; i++)
        {
            splitter.Append(chunk);
        }

        splitter.Flush();
        Assert.Equal(262_118, LogStore.MaxEventBytes);
        Assert.All(lines, l => Assert.True(Encoding.UTF8.GetByteCount(l) <= LogStore.MaxEventBytes));
        Assert.Equal(LogStore.MaxEventBytes / 3, lines[0].Length); // full events, no character cut
        Assert.Equal(1_000_000, lines.Sum(l => l.Length));
    }

    [Fact]
    public void NoOutput_NoLines()
    {
        var lines = new List<string>();
        var splitter = new LineSplitter(lines.Add);
        splitter.Append([]);
        splitter.Flush();
        Assert.Empty(lines);
    }

    // The model: each line (the last one only when not empty) cut greedily into pieces of at most cap bytes.
    private static List<string> Expected(string text, int cap)
    {
        var result = new List<string>();
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (i == lines.Length - 1 && line.Length == 0)
            {
                break;
            }

            var piece = new StringBuilder();
            var pieceBytes = 0;
            var any = false;
            foreach (var rune in line.EnumerateRunes())
            {
                if (pieceBytes + rune.Utf8SequenceLength > cap)
                {
                    result.Add(piece.ToString());
                    piece.Clear();
                    pieceBytes = 0;
                }

                piece.Append(rune.ToString());
                pieceBytes += rune.Utf8SequenceLength;
                any = true;
            }

            if (piece.Length > 0 || !any)
            {
                result.Add(piece.ToString());
            }
        }

        return result;
    }
}
