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
    public void NoOutput_NoLines()
    {
        var lines = new List<string>();
        var splitter = new LineSplitter(lines.Add);
        splitter.Append([]);
        splitter.Flush();
        Assert.Empty(lines);
    }
}
