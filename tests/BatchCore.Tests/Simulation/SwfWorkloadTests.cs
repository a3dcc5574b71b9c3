using BatchCore.Placement.Packing.Instances;
using BatchCore.Simulation;

namespace BatchCore.Tests.Simulation;

public class SwfWorkloadTests
{
    private const string Sample = """
        ; Version: 2.2
        ; MaxProcs: 100
            1   0   10   3600   4  -1  -1   4  7200   -1  1 1 1 -1 -1 -1 -1 -1
            2  30   10    600   8  -1  -1  -1  7200   -1  1 1 1 -1 -1 -1 -1 -1
            3  30    0      0   2  -1  -1   2   100   -1  5 1 1 -1 -1 -1 -1 -1
            4  40    0     -1   2  -1  -1   2   100   -1  0 1 1 -1 -1 -1 -1 -1
            5  50    0    120   2  -1  -1   2   100  2048000  5 1 1 -1 -1 -1 -1 -1
            6  20    0    100   3  -1  1024  -1   100   -1  1 1 1 -1 -1 -1 -1 -1
            7 bad
        """;

    [Fact]
    public void Parse_MapsFieldsAndSkipsPerTheDocumentedRules()
    {
        var w = SwfWorkload.Parse(new StringReader(Sample));

        Assert.Equal(4, w.Jobs.Count);
        // Ordered by submit time: 0, 20, 30, 50.
        Assert.Equal([0.0, 20, 30, 50], w.Jobs.Select(j => j.SubmitTimeSeconds));
        var first = w.Jobs[0];
        Assert.Equal(4, first.Vcpus);                 // requested processors (field 8)
        Assert.Equal(4 * 1024, first.MemoryMiB);      // unknown memory: 1,024 MiB per vCPU
        Assert.Equal(3600, first.RuntimeSeconds);     // field 4
        Assert.Equal(8, w.Jobs[2].Vcpus);             // requested unknown: allocated processors (field 5)
        Assert.Equal(3, w.Jobs[1].Vcpus);
        Assert.Equal(4, w.Jobs[1].MemoryMiB);         // used memory 1,024 KB per processor × 3 = 3 MiB, raised to AWS's minimum of 4
        Assert.Equal(2 * 2000, w.Jobs[3].MemoryMiB);  // requested memory 2,048,000 KB per processor × 2 ÷ 1024; cancelled but ran: kept
        Assert.Equal(1, w.Skipped[SwfWorkload.SkipCancelled]);
        Assert.Equal(1, w.Skipped[SwfWorkload.SkipNoRunTime]);
        Assert.Equal(1, w.Skipped[SwfWorkload.SkipMalformed]);
    }

    [Fact]
    public void Parse_SubmitsTheRequestedTimeAsTheTimeout_AtLeastAMinute()
    {
        var w = SwfWorkload.Parse(new StringReader(Sample));

        Assert.Equal([7200, 100, 7200, 100], w.Jobs.Select(j => j.TimeoutSeconds));
        var short1 = SwfWorkload.Parse(new StringReader("1 0 0 30 1 -1 -1 1 20 -1 1 1 1 -1 -1 -1 -1 -1"));
        Assert.Equal(60, Assert.Single(short1.Jobs).TimeoutSeconds); // AWS's minimum attemptDurationSeconds
        var unknown = SwfWorkload.Parse(new StringReader("1 0 0 30 1 -1 -1 1 -1 -1 1 1 1 -1 -1 -1 -1 -1"));
        Assert.Null(Assert.Single(unknown.Jobs).TimeoutSeconds);
        var off = SwfWorkload.Parse(new StringReader(Sample), new SwfMapping { RequestedTimeAsTimeout = false });
        Assert.All(off.Jobs, j => Assert.Null(j.TimeoutSeconds));
    }

    /// <summary>SWF logs give memory in KB per processor: a few KB round up to AWS's minimum of 4 MiB, not below it.</summary>
    [Fact]
    public void Parse_MemoryBelowFourMiB_IsRaisedToFour()
    {
        var w = SwfWorkload.Parse(new StringReader("1 0 0 30 1 -1 100 1 60 -1 1 1 1 -1 -1 -1 -1 -1"));

        Assert.Equal(4, Assert.Single(w.Jobs).MemoryMiB);
    }

    [Fact]
    public void Read_TheKthLog()
    {
        var path = KthPath();
        var w = SwfWorkload.Read(path);

        Assert.Equal(27_992, w.Jobs.Count + w.SkippedCount);
        Assert.Equal(27_992, w.Jobs.Count);
        Assert.Equal(100, w.Jobs.Max(j => j.Vcpus));
        Assert.True(w.Jobs.Zip(w.Jobs.Skip(1)).All(p => p.First.SubmitTimeSeconds <= p.Second.SubmitTimeSeconds));
    }

    [Fact]
    public void JsonLines_RoundTrip()
    {
        var jobs = WorkloadGenerator.Bursts(2, 3, 60, 100, seed: 4).Jobs.Select((j, i) => j with { JobQueue = i % 2 == 0 ? "a" : "b", ShareIdentifier = "s" }).ToList();
        var text = new StringWriter();
        JsonLinesWorkload.Write(text, jobs);

        var back = JsonLinesWorkload.Parse(new StringReader(text.ToString()));
        Assert.Equal(jobs, back.Jobs);
    }

    [Fact]
    public void JsonLines_ReadsTheDocumentedFields()
    {
        var w = JsonLinesWorkload.Parse(new StringReader("""
            {"submitTime": 5, "vcpus": 2, "memoryMiB": 4096, "gpus": 1, "runtimeSeconds": 600, "jobQueue": "gpu", "shareIdentifier": "team-a"}
            {"submitTime": 1, "vcpus": 1, "runtimeSeconds": 60}
            {"submitTime": 2, "vcpus": 1, "runtimeSeconds": 0}
            """));

        Assert.Equal([new WorkloadJob(1, 1, 1024, 0, 60), new WorkloadJob(5, 2, 4096, 1, 600, "gpu", "team-a")], w.Jobs);
        Assert.Equal(1, w.SkippedCount);
        Assert.Throws<BatchClientException>(() => JsonLinesWorkload.Parse(new StringReader("{\"submitTime\": 1}")));
    }

    [Fact]
    public void JsonLines_ReadsTimeoutSeconds_AtLeastAMinute()
    {
        var w = JsonLinesWorkload.Parse(new StringReader("""
            {"submitTime": 1, "vcpus": 1, "runtimeSeconds": 60, "timeoutSeconds": 600}
            """));

        Assert.Equal(600, Assert.Single(w.Jobs).TimeoutSeconds);
        var e = Assert.Throws<BatchClientException>(() => JsonLinesWorkload.Parse(new StringReader("{\"submitTime\": 0, \"vcpus\": 1, \"runtimeSeconds\": 60, \"timeoutSeconds\": 30}")));
        Assert.Contains("timeoutSeconds", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generators_AreSeeded()
    {
        Assert.Equal(WorkloadGenerator.Steady(500, 5, 60, seed: 9).Jobs, WorkloadGenerator.Steady(500, 5, 60, seed: 9).Jobs);
        Assert.NotEqual(WorkloadGenerator.Steady(500, 5, 60, seed: 9).Jobs, WorkloadGenerator.Steady(500, 5, 60, seed: 10).Jobs);
        Assert.Equal(40, WorkloadGenerator.Bursts(4, 10, 60, 100, seed: 1).Jobs.Count);
    }

    internal static string KthPath()
    {
        var data = PackingDataDirectory.Find();
        var path = data is null ? null : Path.Combine(data, "traces", "KTH-SP2-1996-2.1-cln.swf.gz");
        if (path is null || !File.Exists(path))
        {
            Assert.Skip("the KTH SP2 log is not here (shared/data/traces; set BATCHCORE_DATA)");
        }

        return path;
    }
}
