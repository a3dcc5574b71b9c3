using System.Diagnostics;
using System.Globalization;
using BatchCore.Journal;
using BatchCore.Model;

namespace BatchCore.Benchmarks.Journal;

/// <summary>
/// <c>recovery-report [jobs] [runs]</c>: how long an engine takes to start on a state directory holding
/// <c>jobs</c> journaled jobs (target: 1,000,000 in under 5 s). A report rather than a BenchmarkDotNet class: building
/// the directory means a million durable submissions and half a million runs (about a minute), and one recovery takes
/// seconds, so BenchmarkDotNet's per-iteration setup would multiply that for no better number; each run here starts from
/// a fresh copy of the same bytes. Two cases: replaying the journal (the engine died with everything in it: the worst
/// case, compaction never ran; a journal that replays cleanly is then kept and appended to, nothing is rewritten) and
/// loading the snapshot that compaction writes (made once by a start with <c>CompactAfterBytes</c> 0, timed separately).
/// The time is the whole <see cref="BatchEngine"/> constructor: read, checksum, decode, replay, and whatever recovery
/// writes before it returns; the process CPU time is printed too, as the machine is often shared.
/// </summary>
internal static class RecoveryReport
{
    public static int Run(string[] args)
    {
        var jobs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1_000_000;
        var runs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3;
        var root = Path.Combine(Path.GetTempPath(), "bc-recovery-" + Guid.NewGuid().ToString("N"));
        try
        {
            Console.WriteLine($"jobs: {jobs:N0}; {Environment.ProcessorCount} cores; .NET {Environment.Version}; server GC {System.Runtime.GCSettings.IsServerGC}");
            var source = Path.Combine(root, "source");
            var build = Stopwatch.StartNew();
            Build(source, jobs).GetAwaiter().GetResult();
            Console.WriteLine($"built in {build.Elapsed.TotalSeconds:F1} s: journal {Size(source, "journal.bcj")}, snapshot {Size(source, "snapshot.bcj")}");

            Console.WriteLine("| case | run | recovery s (wall) | CPU s (all threads) | jobs/s (wall) | snapshot / journal after |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            string? recovered = null;
            for (var i = 1; i <= runs; i++)
            {
                recovered = Measure("journal replay", i, source, Path.Combine(root, "j" + i), jobs);
            }

            // A journal that replays cleanly is kept and appended to, so compact once (CompactAfterBytes 0 at start) to get
            // the snapshot that a long-running engine's compaction leaves.
            var compacted = Path.Combine(root, "compacted");
            Copy(recovered!, compacted);
            var compact = Stopwatch.StartNew();
            new BatchEngine(Options(compacted) with { Journal = Options(compacted).Journal with { CompactAfterBytes = 0 } }).StopAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
            Console.WriteLine($"(compaction at start: {compact.Elapsed.TotalSeconds:F2} s including the replay; snapshot {Size(compacted, "snapshot.bcj")}, journal {Size(compacted, "journal.bcj")})");
            for (var i = 1; i <= runs; i++)
            {
                Measure("snapshot load", i, compacted, Path.Combine(root, "s" + i), jobs);
            }

            return 0;
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    private static string Measure(string name, int run, string from, string to, int jobs)
    {
        Copy(from, to);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        var engine = new BatchEngine(Options(to));
        var seconds = sw.Elapsed.TotalSeconds;
        var cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
        var recovered = engine.Recovery?.Jobs ?? 0;
        engine.StopAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        if (recovered < jobs)
        {
            throw new InvalidOperationException($"recovered {recovered} jobs, expected {jobs}");
        }

        Console.WriteLine($"| {name} | {run} | {seconds:F2} | {cpuSeconds:F2} | {jobs / seconds:N0} | {Size(to, "snapshot.bcj")} / {Size(to, "journal.bcj")} |");
        return to;
    }

    private static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from))
        {
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        }
    }

    private static string Size(string dir, string file)
    {
        var path = Path.Combine(dir, file);
        return File.Exists(path) ? $"{new FileInfo(path).Length / (1024.0 * 1024):F0} MiB" : "-";
    }

    private static BatchEngineOptions Options(string dir) => new()
    {
        // Compaction never runs while building: recovery replays the whole journal.
        Journal = new JournalOptions { Durability = Durability.Journal, StateDirectory = dir, CompactAfterBytes = long.MaxValue },
        Quotas = new BatchQuotas { MaxSubmittedJobs = int.MaxValue },
    };

    /// <summary>Half the jobs run to SUCCEEDED on simulated hosts (submit, RUNNABLE, STARTING, RUNNING, SUCCEEDED records);
    /// half stay RUNNABLE (no host fits them). The engine then stops, leaving everything in the journal.</summary>
    private static async Task Build(string dir, int jobs)
    {
        var engine = new BatchEngine(Options(dir));
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.UNMANAGED,
            Hosts = [.. Enumerable.Range(0, 16).Select(i => new HostSpec { HostName = "h" + i, Vcpus = 64, MemoryMiB = 262_144 })],
        });
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        foreach (var (name, vcpus) in new[] { ("runs", "1"), ("waits", "128") })
        {
            await engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
            {
                JobDefinitionName = name,
                Type = "container",
                ContainerProperties = new ContainerProperties { Image = "x", ResourceRequirements = [new("VCPU", vcpus), new("MEMORY", "512")] },
            });
        }

        const int submitters = 64;
        var per = jobs / submitters;
        var tasks = new Task[submitters];
        for (var s = 0; s < submitters; s++)
        {
            var first = s * per;
            var count = s == submitters - 1 ? jobs - first : per;
            tasks[s] = Task.Run(async () =>
            {
                for (var i = 0; i < count; i++)
                {
                    await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = (first + i) % 2 == 0 ? "runs" : "waits" });
                }
            });
        }

        await Task.WhenAll(tasks);
        int active;
        for (var i = 0; i < 600; i++)
        {
            active = (await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", JobStatus = JobStatus.RUNNING, MaxResults = 1 })).JobSummaryList.Count
                + (await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", JobStatus = JobStatus.STARTING, MaxResults = 1 })).JobSummaryList.Count;
            if (active == 0)
            {
                break;
            }

            await Task.Delay(100);
        }

        await engine.StopAsync(TimeSpan.FromSeconds(30));
    }
}
