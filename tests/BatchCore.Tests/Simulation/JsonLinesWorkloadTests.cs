using BatchCore.Simulation;

namespace BatchCore.Tests.Simulation;

public class JsonLinesWorkloadTests
{
    private static BatchClientException Rejected(string text) =>
        Assert.Throws<BatchClientException>(() => JsonLinesWorkload.Parse(new StringReader(text)));

    /// <summary>Every value out of range is an error naming the line, the field, the rule and the value: none is clamped or defaulted.</summary>
    [Theory]
    [InlineData("""{"submitTime": 0, "vcpus": 1, "memoryMiB": 2, "runtimeSeconds": 60}""", "workload line 1: memoryMiB must be at least 4 (AWS's minimum MEMORY), was 2")]
    [InlineData("""{"submitTime": 0, "vcpus": 1, "memoryMiB": -5, "runtimeSeconds": 60}""", "workload line 1: memoryMiB must be at least 4 (AWS's minimum MEMORY), was -5")]
    [InlineData("""{"submitTime": 0, "vcpus": 1, "gpus": -1, "runtimeSeconds": 60}""", "workload line 1: gpus must be at least 0, was -1")]
    [InlineData("""{"submitTime": -3, "vcpus": 1, "runtimeSeconds": 60}""", "workload line 1: submitTime must be at least 0, was -3")]
    [InlineData("""{"vcpus": 1, "runtimeSeconds": 60}""", "workload line 1: submitTime is required")]
    [InlineData("""{"submitTime": 0, "vcpus": 0, "runtimeSeconds": 60}""", "workload line 1: vcpus must be greater than 0, was 0")]
    [InlineData("""{"submitTime": 0, "runtimeSeconds": 60}""", "workload line 1: vcpus is required")]
    [InlineData("""{"submitTime": 0, "vcpus": 1}""", "workload line 1: runtimeSeconds is required")]
    [InlineData("""{"submitTime": 0, "vcpus": 1, "runtimeSeconds": -1}""", "workload line 1: runtimeSeconds must be at least 0, was -1")]
    [InlineData("""{"submitTime": 0, "vcpus": 1, "runtimeSeconds": 60, "timeoutSeconds": 30}""", "workload line 1: timeoutSeconds must be at least 60 (AWS's minimum attemptDurationSeconds), was 30")]
    [InlineData("""{"submitTime": 0, "vcpus": 1, "runtimeSeconds": 60, "jobQueue": ""}""", "workload line 1: jobQueue must not be empty")]
    public void OutOfRange_IsAnError_NamingLineFieldAndValue(string line, string message)
    {
        Assert.Equal(message, Rejected(line).Message);
    }

    /// <summary>A misspelt field is an error, not a line silently skipped as "run time unknown".</summary>
    [Fact]
    public void UnknownField_IsAnError_ListingTheKnownOnes()
    {
        var e = Rejected("""
            {"submitTime": 0, "vcpus": 1, "runtimeSeconds": 60}
            {"submitTime": 0, "vcpus": 1, "runtime": 60}
            """);

        Assert.StartsWith("workload line 2: runtime is not a field of a workload line (", e.Message, StringComparison.Ordinal);
        Assert.Contains("runtimeSeconds", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Names are exact: one differing only in case is an error naming the line, the name as written and the expected one.</summary>
    [Theory]
    [InlineData("RuntimeSeconds", "runtimeSeconds")]
    [InlineData("VCPUS", "vcpus")]
    [InlineData("memorymib", "memoryMiB")]
    [InlineData("TimeoutSeconds", "timeoutSeconds")]
    public void FieldNames_AreCaseSensitive_TheErrorNamesTheExpectedOne(string written, string expected)
    {
        var e = Rejected("{\"submitTime\": 0, \"vcpus\": 1, \"runtimeSeconds\": 60}\n{\"submitTime\": 0, \"vcpus\": 1, \"runtimeSeconds\": 60, \"" + written + "\": 600}");

        Assert.Equal($"workload line 2: {written} is not a field of a workload line: field names are case-sensitive, expected {expected}", e.Message);
    }

    /// <summary>A value of the wrong kind says what the field takes and what it was, not a .NET type name.</summary>
    [Theory]
    [InlineData("""{"submitTime": "abc", "vcpus": 1, "runtimeSeconds": 60}""", "workload line 1: submitTime must be a number, was \"abc\"")]
    [InlineData("""{"submitTime": 0, "vcpus": 1, "memoryMiB": 1.5, "runtimeSeconds": 60}""", "workload line 1: memoryMiB must be a whole number, was 1.5")]
    [InlineData("""{"submitTime": 0, "vcpus": 1, "runtimeSeconds": 60, "jobQueue": 3}""", "workload line 1: jobQueue must be a string, was 3")]
    [InlineData("""[1, 2]""", "workload line 1: must be a JSON object, was [1, 2]")]
    public void WrongKind_SaysWhatTheFieldTakes(string line, string message)
    {
        var e = Rejected(line);

        Assert.Equal(message, e.Message);
        Assert.DoesNotContain("System.", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MalformedJson_NamesTheLine()
    {
        Assert.StartsWith("workload line 2: not JSON: ", Rejected("{\"submitTime\": 0, \"vcpus\": 1, \"runtimeSeconds\": 60}\n{\"submitTime\": 0,").Message, StringComparison.Ordinal);
    }

    /// <summary>Run time 0 is a job that never ran: skipped and counted, as in SWF logs.</summary>
    [Fact]
    public void ZeroRunTime_IsSkipped()
    {
        var w = JsonLinesWorkload.Parse(new StringReader("""{"submitTime": 0, "vcpus": 1, "runtimeSeconds": 0}"""));

        Assert.Empty(w.Jobs);
        Assert.Equal(1, w.Skipped[SwfWorkload.SkipNoRunTime]);
    }

    /// <summary>The example workload the docs point at, and the CLI tests' workload, still load.</summary>
    [Theory]
    [InlineData("examples/workload.jsonl", 48)]
    [InlineData("tests/BatchCore.Cli.Tests/Specs/small.jsonl", 40)]
    public void TheRepositorysWorkloads_Load(string relative, int jobs)
    {
        var root = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..");

        var w = Workload.Load(Path.Combine(root, relative));

        Assert.Equal(jobs, w.Jobs.Count);
        Assert.Equal(0, w.SkippedCount);
    }
}
