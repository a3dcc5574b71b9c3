using System.Text;
using BatchCore.Hosts.Process;

namespace BatchCore.Tests.Hosts;

/// <summary>How cgroup pid lists and small cgroup files are read.</summary>
public sealed class CgroupFileTests
{
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
