using System.Text;
using BatchCore.Hosts.Process;

namespace BatchCore.Tests.Hosts;

/// <summary>How a job's output bytes become log lines, and how cgroup pid lists are read.</summary>
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

    [Fact]
    public void NextNumber_ReadsEveryPidOfAList_SkippingWhatIsNotOne()
    {
        var text = "12\n\nx\n345\n0\n7"u8;
        var position = 0;
        var found = new List<int>();
        while (CgroupLayout.NextNumber(text, ref position, out var pid))
        {
            found.Add(pid);
        }

        Assert.Equal([12, 345, 7], found);
    }

    [Fact]
    public void ReadSmallFile_ReadsFilesLargerThanItsFirstBuffer()
    {
        var path = Path.GetTempFileName();
        try
        {
            var content = string.Join('\n', Enumerable.Range(1, 2000));
            File.WriteAllText(path, content);
            var length = CgroupLayout.ReadSmallFile(path, out var buffer);
            try
            {
                Assert.Equal(content, Encoding.ASCII.GetString(buffer, 0, length));
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}
