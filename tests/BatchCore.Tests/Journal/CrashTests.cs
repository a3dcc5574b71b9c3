using System.Diagnostics;
using BatchCore.Journal;
using BatchCore.Model;

namespace BatchCore.Tests.Journal;

/// <summary>
/// A child process runs the engine with a journal and submits jobs in a tight loop, printing each acknowledged job
/// id; it is killed with SIGKILL at random moments (seeded), restarted on the same directory, and at the end every
/// acknowledged job must be there, exactly once, in a valid state.
/// </summary>
public sealed class CrashTests() : StateDirectoryTest("bc-crash-")
{
    [Fact]
    public async Task SigkillAtRandomMoments_LosesNoAcknowledgedJob()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("the crash test kills a child process with SIGKILL (Linux)");
        }

        var child = FindChild();
        var random = new Random(20261124);
        var acknowledged = new List<string>();
        for (var round = 0; round < 20; round++)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add(child);
            psi.ArgumentList.Add(Dir);
            using var process = Process.Start(psi)!;
            var acks = new List<string>();
            var firstAck = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var reader = Task.Run(async () =>
            {
                while (await process.StandardOutput.ReadLineAsync() is { } line)
                {
                    if (line.StartsWith("ack ", StringComparison.Ordinal))
                    {
                        lock (acks)
                        {
                            acks.Add(line[4..]);
                        }

                        firstAck.TrySetResult();
                    }
                }
            }, TestContext.Current.CancellationToken);
            _ = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);

            // Kill at a random moment after the child is submitting (a hang guard, not a timing assertion).
            await firstAck.Task.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
            await Task.Delay(random.Next(0, 300), TestContext.Current.CancellationToken);
            process.Kill(entireProcessTree: true); // SIGKILL
            await process.WaitForExitAsync(TestContext.Current.CancellationToken);
            await reader;
            lock (acks)
            {
                Assert.NotEmpty(acks);
                acknowledged.AddRange(acks);
            }
        }

        await using var engine = new BatchEngine(new BatchEngineOptions
        {
            Journal = new JournalOptions { Durability = Durability.Journal, StateDirectory = Dir },
        });
        Assert.Equal(acknowledged.Count, acknowledged.Distinct().Count());
        var all = new Dictionary<string, JobDetail>();
        foreach (var chunk in acknowledged.Chunk(100))
        {
            foreach (var j in await engine.DescribeJobsAsync(chunk))
            {
                Assert.True(all.TryAdd(j.JobId, j), $"job {j.JobId} appears twice");
            }
        }

        var missing = acknowledged.Where(id => !all.ContainsKey(id)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} acknowledged jobs lost, e.g. {string.Join(", ", missing.Take(3))}");
        Assert.All(all.Values, j => Assert.Contains(j.Status, JobStatus.All));
        Assert.All(all.Values, j => Assert.True(j.Attempts.Count <= 3, $"{j.JobId} has {j.Attempts.Count} attempts"));
        var listed = await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", Filters = [new() { Name = "JOB_NAME", Values = ["*"] }], MaxResults = 100 });
        Assert.NotEmpty(listed.JobSummaryList);
    }

    private static string FindChild()
    {
        var configuration = AppContext.BaseDirectory.Contains("Release", StringComparison.Ordinal) ? "Release" : "Debug";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "BatchCore.Tests.CrashChild", "bin", configuration, "net10.0", "BatchCore.Tests.CrashChild.dll");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("BatchCore.Tests.CrashChild.dll not found above " + AppContext.BaseDirectory + "; build the solution");
    }
}
