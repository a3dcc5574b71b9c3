using System.Diagnostics;
using BatchCore.Hosts;
using BatchCore.Hosts.Docker;
using BatchCore.Hosts.Process;
using BatchCore.Journal;
using BatchCore.Logs;
using BatchCore.Model;
using BatchCore.Tests.Hosts;

namespace BatchCore.Tests.Journal;

/// <summary>
/// The real crash: a child process runs an engine with a journal and one job on a real host; the test kills the engine
/// (SIGKILL, the engine only — not its job) while the job runs, restarts an engine on the same directory, and checks
/// what became of the attempt. Waits are hang guards, never timed assertions.
/// </summary>
public sealed class ReattachTests : StateDirectoryTest
{
    private readonly string _go;

    public ReattachTests()
        : base("bc-reattach-")
    {
        Directory.CreateDirectory(Dir);
        _go = Path.Combine(Dir, "go");
    }

    /// <summary>Where the engines keep their journal.</summary>
    internal string StateDirectory => Path.Combine(Dir, "state");

    private string[] Job => ["sh", "-c", $"echo before; echo $PPID $$ > '{Dir}/pids'; while [ ! -e '{_go}' ]; do sleep 0.05; done; echo after"];

    [Fact]
    public async Task ProcessAttempt_EngineKilledWhileItRuns_IsReattachedAndSucceedsWithItsLog()
    {
        RequireLinux();
        var jobId = await CrashedChildAsync("process", "-", "local", Job);

        await using var engine = new BatchEngine(EngineOptions(StateDirectory, "-"));
        Assert.Equal(1, engine.Recovery!.Reattached);
        Assert.Equal(0, engine.Recovery.InterruptedAttempts);
        Assert.Equal(JobStatus.RUNNING, (await engine.DescribeJobsAsync([jobId]))[0].Status);
        await File.WriteAllTextAsync(_go, "", TestContext.Current.CancellationToken);
        var job = await WaitDoneAsync(engine, jobId);

        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        var attempt = Assert.Single(job.Attempts);
        Assert.Equal(0, attempt.Container!.ExitCode);
        var lines = engine.Logs.GetLogEvents(attempt.Container.LogStreamName!).Events.Select(e => e.Message).ToList();
        Assert.Equal(["before", "after"], lines);
    }

    [Fact]
    public async Task ProcessAttempt_KilledWhileTheEngineWasDown_FailsAsHostFailureAndIsRetried()
    {
        RequireLinux();
        var jobId = await CrashedChildAsync("process", "-", "local", Job);
        foreach (var pid in (await File.ReadAllTextAsync(Path.Combine(Dir, "pids"), TestContext.Current.CancellationToken)).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            _ = NativeMethods.Kill(int.Parse(pid, System.Globalization.CultureInfo.InvariantCulture), NativeMethods.SIGKILL); // wrapper and job: no exit code is recorded
        }

        await File.WriteAllTextAsync(_go, "", TestContext.Current.CancellationToken); // the retry runs to the end
        await WaitGoneAsync(File.ReadAllText(Path.Combine(Dir, "pids")));

        await using var engine = new BatchEngine(EngineOptions(StateDirectory, "-"));
        Assert.Equal(0, engine.Recovery!.Reattached);
        Assert.Equal(1, engine.Recovery.InterruptedAttempts);
        Assert.Equal(1, engine.Recovery.Retried);
        var job = await WaitDoneAsync(engine, jobId);

        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        Assert.Equal(2, job.Attempts.Count);
        Assert.Equal(StatusReasons.EngineRestarted, job.Attempts[0].StatusReason);
        Assert.Equal(0, job.Attempts[1].Container!.ExitCode);
    }

    /// <summary>
    /// A start that fails after its drivers re-attached attempts (here its snapshot cannot be written: a directory holds
    /// the temporary file's path; on a real machine a full disk) leaves those attempts running, as the crash left them,
    /// and follows them no more; the start after the fix takes them back, and nothing of the work is lost.
    /// </summary>
    [Fact]
    public async Task ProcessAttempt_StartThatFailsAfterReattaching_LeavesItRunning_ForTheNextStart()
    {
        RequireLinux();
        var jobId = await CrashedChildAsync("process", "-", "local", Job);
        var drivers = new List<ProcessHostDriver>();
        var options = EngineOptions(StateDirectory, "-");
        var create = options.DriverFactories!["process"];
        var failing = options with
        {
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>(StringComparer.Ordinal)
            {
                ["process"] = spec => { var d = (ProcessHostDriver)create(spec); drivers.Add(d); return d; },
            },
        };
        var pending = Path.Combine(StateDirectory, "snapshot.bcj.tmp");
        Directory.CreateDirectory(pending);

        var e = Assert.ThrowsAny<Exception>(() => new BatchEngine(failing));
        Assert.True(e is IOException or UnauthorizedAccessException, e.ToString());
        Assert.All(drivers, d => Assert.Equal(0, d.TrackedAttempts)); // released: nothing of the failed start follows it
        Directory.Delete(pending);
        var pids = await File.ReadAllTextAsync(Path.Combine(Dir, "pids"), TestContext.Current.CancellationToken);
        Assert.All(pids.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), pid => Assert.True(IsRunning(pid), "process " + pid + " was stopped"));

        await using var engine = new BatchEngine(EngineOptions(StateDirectory, "-"));
        Assert.Equal(1, engine.Recovery!.Reattached);
        Assert.Equal(0, engine.Recovery.InterruptedAttempts);
        await File.WriteAllTextAsync(_go, "", TestContext.Current.CancellationToken);
        var job = await WaitDoneAsync(engine, jobId);

        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        var attempt = Assert.Single(job.Attempts);
        Assert.Equal(["before", "after"], engine.Logs.GetLogEvents(attempt.Container!.LogStreamName!).Events.Select(l => l.Message).ToList());
    }

    private static bool IsRunning(string pid) =>
        Directory.Exists("/proc/" + pid) && !File.ReadAllText("/proc/" + pid + "/stat").Contains(") Z", StringComparison.Ordinal);

    private static async Task WaitGoneAsync(string pids)
    {
        foreach (var pid in pids.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            for (var i = 0; i < 600 && Directory.Exists("/proc/" + pid) && !File.ReadAllText("/proc/" + pid + "/stat").Contains(") Z", StringComparison.Ordinal); i++)
            {
                await Task.Delay(50);
            }
        }
    }

    private static void RequireLinux()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("re-attaching to processes reads /proc (Linux)");
        }
    }

    /// <summary>Runs the child until its job is RUNNING, then kills the child only (SIGKILL). Returns the job id.</summary>
    internal async Task<string> CrashedChildAsync(string kind, string endpoint, string image, string[] command)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { FindChild(), "reattach", StateDirectory, kind, endpoint, image }.Concat(command))
        {
            psi.ArgumentList.Add(a);
        }

        using var child = Process.Start(psi)!;
        var stderr = child.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        string? jobId = null;
        var read = Task.Run(async () =>
        {
            while (await child.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("running ", StringComparison.Ordinal))
                {
                    return line[8..];
                }
            }

            return null;
        }, TestContext.Current.CancellationToken);
        try
        {
            jobId = await read.WaitAsync(TimeSpan.FromSeconds(120), TestContext.Current.CancellationToken); // hang guard
        }
        finally
        {
            child.Kill(entireProcessTree: false); // SIGKILL to the engine only: its job keeps running
            await child.WaitForExitAsync(TestContext.Current.CancellationToken);
        }

        Assert.True(jobId is not null, "the child never reported its job RUNNING: " + await stderr);
        return jobId;
    }

    internal static BatchEngineOptions EngineOptions(string dir, string dockerEndpoint)
    {
        var logs = new InMemoryLogStore();
        return new BatchEngineOptions
        {
            LogStore = logs,
            Journal = new JournalOptions { Durability = Durability.Journal, StateDirectory = dir },
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>(StringComparer.Ordinal)
            {
                ["process"] = _ => new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = logs }),
                ["docker"] = _ => new DockerHostDriver(new DockerHostDriverOptions { LogStore = logs, Endpoint = dockerEndpoint, PullMissingImages = false }),
            },
        };
    }

    internal static async Task<JobDetail> WaitDoneAsync(BatchEngine engine, string jobId)
    {
        for (var i = 0; i < 1200; i++)
        {
            var job = (await engine.DescribeJobsAsync([jobId]))[0];
            if (job.Status is JobStatus.SUCCEEDED or JobStatus.FAILED)
            {
                return job;
            }

            await Task.Delay(50);
        }

        throw new Xunit.Sdk.XunitException($"job {jobId} did not end within a minute (hang guard)");
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

/// <summary>The same crash with a Docker container: found again by its id (and labels) on the fixture's daemon.</summary>
public sealed class DockerReattachTests(DockerFixture docker) : IClassFixture<DockerFixture>, IDisposable
{
    private readonly ReattachTests _crash = new();

    public void Dispose() => _crash.Dispose();

    [Fact]
    public async Task DockerAttempt_EngineKilledWhileItRuns_IsReattachedAndSucceedsWithItsLog()
    {
        if (docker.UnavailableReason is { } why)
        {
            Assert.Skip(why);
        }

        {
            // The container cannot see the test's files: it runs a few seconds; the outcome is the same whether the
            // restarted engine finds it running or already exited.
            var jobId = await _crash.CrashedChildAsync("docker", docker.Endpoint, DockerFixture.TestImage, ["sh", "-c", "echo before; sleep 3; echo after"]);
            Assert.Single(await docker.ListAttemptContainersAsync()); // not removed while no engine runs

            await using (var engine = new BatchEngine(ReattachTests.EngineOptions(_crash.StateDirectory, docker.Endpoint)))
            {
                Assert.Equal(1, engine.Recovery!.Reattached);
                var job = await ReattachTests.WaitDoneAsync(engine, jobId);

                Assert.Equal(JobStatus.SUCCEEDED, job.Status);
                var attempt = Assert.Single(job.Attempts);
                Assert.Equal(0, attempt.Container!.ExitCode);
                Assert.Equal(["before", "after"], engine.Logs.GetLogEvents(attempt.Container.LogStreamName!).Events.Select(e => e.Message).ToList());
            }

            Assert.Empty(await docker.ListAttemptContainersAsync());
        }
    }

    /// <summary>A start that fails after re-attaching the container leaves it (neither stopped nor removed) for the next start.</summary>
    [Fact]
    public async Task DockerAttempt_StartThatFailsAfterReattaching_LeavesItForTheNextStart()
    {
        if (docker.UnavailableReason is { } why)
        {
            Assert.Skip(why);
        }

        // Long enough to outlast the failed start: a container that ends during it is reported to that engine and removed
        // (the window docs/on-disk-format.md names), and would be retried instead of taken back.
        var jobId = await _crash.CrashedChildAsync("docker", docker.Endpoint, DockerFixture.TestImage, ["sh", "-c", "echo before; sleep 12; echo after"]);
        var pending = Path.Combine(_crash.StateDirectory, "snapshot.bcj.tmp");
        Directory.CreateDirectory(pending); // the failed start's snapshot cannot be written
        var e = Assert.ThrowsAny<Exception>(() => new BatchEngine(ReattachTests.EngineOptions(_crash.StateDirectory, docker.Endpoint)));
        Assert.True(e is IOException or UnauthorizedAccessException, e.ToString());
        Assert.Single(await docker.ListAttemptContainersAsync()); // not removed
        Directory.Delete(pending);

        await using (var engine = new BatchEngine(ReattachTests.EngineOptions(_crash.StateDirectory, docker.Endpoint)))
        {
            Assert.Equal(1, engine.Recovery!.Reattached);
            var job = await ReattachTests.WaitDoneAsync(engine, jobId);

            Assert.Equal(JobStatus.SUCCEEDED, job.Status);
            Assert.Equal(0, Assert.Single(job.Attempts).Container!.ExitCode); // ran to its end: not stopped by the failed start
        }

        Assert.Empty(await docker.ListAttemptContainersAsync());
    }
}
