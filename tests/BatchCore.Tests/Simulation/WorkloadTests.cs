using BatchCore.Simulation;

namespace BatchCore.Tests.Simulation;

public class WorkloadTests
{
    /// <summary>The format comes from the file's extension, not from ".swf" anywhere in its path.</summary>
    [Theory]
    [InlineData("jobs.swf.jsonl")]
    [InlineData("from-swf/jobs.jsonl")]
    [InlineData("x.swf.d/jobs.jsonl")]
    public void Load_DecidesTheFormatByTheExtension(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), "batchcore-workload-" + Guid.NewGuid().ToString("N"));
        var path = Path.Combine(dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        try
        {
            File.WriteAllText(path, """{"submitTime": 0, "vcpus": 1, "runtimeSeconds": 60}""" + "\n");

            var w = Workload.Load(path);

            Assert.Single(w.Jobs);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A file none of whose records is SWF is not an empty workload: reading it fails, saying so.</summary>
    [Fact]
    public void Swf_WhereEveryRecordIsMalformed_IsAnError()
    {
        var e = Assert.Throws<BatchClientException>(() => SwfWorkload.Parse(new StringReader("""
            ; a header
            {"submitTime": 0, "vcpus": 1, "runtimeSeconds": 60}
            {"submitTime": 5, "vcpus": 1, "runtimeSeconds": 60}
            """)));

        Assert.Contains("none of its 2 records", e.Message, StringComparison.Ordinal);
        Assert.Contains("line 2", e.Message, StringComparison.Ordinal);
        Assert.Empty(SwfWorkload.Parse(new StringReader("; only a header\n")).Jobs); // no records at all: an empty workload
    }
}
