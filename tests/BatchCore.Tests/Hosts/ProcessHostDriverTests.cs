using System.Globalization;
using System.Reflection;
using BatchCore.Hosts;
using BatchCore.Hosts.Process;
using BatchCore.Logs;

namespace BatchCore.Tests.Hosts;

/// <summary>The host-driver contract for <see cref="ProcessHostDriver"/>, plus its own rules.</summary>
public class ProcessHostDriverTests : HostDriverContractTests
{
    private static readonly Lazy<string> DummyDll = new(FindDummy);
    private ProcessHostDriver? _created;

    protected override HostDriver CreateDriver(LogStore logs) => _created = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = logs });

    private ProcessHostDriver ProcessDriver => (ProcessHostDriver)Driver;

    protected override string? UnavailableReason => OperatingSystem.IsLinux() ? null : "the process driver tests need Linux";

    protected override string? LimitsUnavailableReason => ProcessDriver.LimitsUnavailableReason;

    protected override IReadOnlyList<string> Command(DummyJob job, params string[] args)
    {
        var verb = job switch
        {
            DummyJob.Sleep => "sleep",
            DummyJob.Exit => "exit",
            DummyJob.Env => "env",
            DummyJob.Echo => "echo",
            DummyJob.Alloc => "alloc",
            DummyJob.Spin => "spin",
            DummyJob.IgnoreSigterm => "ignore-sigterm",
            DummyJob.Stderr => "stderr",
            _ => throw new ArgumentOutOfRangeException(nameof(job)),
        };

        // The GC would otherwise honour the cgroup limit and throw OutOfMemoryException instead of being OOM-killed.
        string[] prefix = job == DummyJob.Alloc
            ? ["env", "DOTNET_GCHeapHardLimit=0x100000000", "dotnet", DummyDll.Value, verb]
            : ["dotnet", DummyDll.Value, verb];
        return [.. prefix, .. args];
    }

    protected override async Task AssertNothingLeftAsync(AttemptLaunch launch)
    {
        // Attempt cgroups are pooled slots ("<pid>-<driver#>-s<n>" under <own cgroup>/batchcore), so they outlive the
        // attempt; the attempt's processes are checked by marker above. What must never stay in a slot is a thread of
        // the driver's own process: the starting thread joins a slot for the fork and must take every thread back.
        // Tests run in parallel, so another test's starting thread may be in its slot for the moment of a fork: a
        // thread counts as left behind only if it is still there after a while.
        var own = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        List<string> stuck = [];
        for (var round = 0; round < 50; round++)
        {
            stuck = [.. DriverCgroups(ProcessHostDriverDefaults.CgroupParent).Where(slot => ReadProcs(slot).Contains(own))];
            if (stuck.Count == 0)
            {
                return;
            }

            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        Assert.Fail("a thread of the test process stayed in attempt cgroup(s): " + string.Join(", ", stuck));
    }

    private static string[] ReadProcs(string slot)
    {
        try
        {
            return File.ReadAllLines(Path.Combine(slot, "cgroup.procs"));
        }
        catch (IOException)
        {
            return []; // removed meanwhile
        }
    }

    /// <summary>This process's attempt cgroups under <paramref name="parent"/> in the memory, cpu and pids hierarchies.</summary>
    private static List<string> DriverCgroups(string parent)
    {
        var found = new List<string>();
        foreach (var dir in ParentDirs(parent))
        {
            if (Directory.Exists(dir))
            {
                found.AddRange(Directory.EnumerateDirectories(dir, Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "-*"));
            }
        }

        return found;
    }

    private static IEnumerable<string> ParentDirs(string parent)
    {
        foreach (var controller in new[] { "memory", "cpu", "pids" })
        {
            if (OwnCgroup(controller) is { } own)
            {
                yield return Path.Combine("/sys/fs/cgroup", controller, own.TrimStart('/'), parent);
            }
        }
    }

    private static string? OwnCgroup(string controller)
    {
        if (!File.Exists("/proc/self/cgroup"))
        {
            return null;
        }

        foreach (var line in File.ReadAllLines("/proc/self/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts.Length == 3 && parts[1].Split(',').Contains(controller))
            {
                return parts[2];
            }
        }

        return null;
    }

    private static string FindDummy()
    {
        var configuration = typeof(ProcessHostDriverTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "BatchCore.Tests.Dummy", "bin", configuration, "net10.0", "BatchCore.Tests.Dummy.dll");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("BatchCore.Tests.Dummy.dll not found above " + AppContext.BaseDirectory + "; build the solution");
    }

    /// <summary>A log store that throws loses the job's lines, not its attempt: the exit is reported, and said once.</summary>
    [Fact]
    public async Task FailingLogStore_TheAttemptStillEndsWithItsExitCode()
    {
        RequireDriver();
        var diagnostics = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var driver = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = new ThrowingLogStore(), Diagnostic = diagnostics.Enqueue });
        var launch = MakeLaunch(Command(DummyJob.Echo, "one", "two", "three"));

        driver.Launch(launch, Events);
        var exit = await Events.WaitExitedAsync(launch.Token);

        Assert.Equal(0, exit.ExitCode);
        Assert.Contains("the log store failed (IOException: disk full)", Assert.Single(diagnostics), StringComparison.Ordinal);
    }

    /// <summary>
    /// Without cgroups a process the job starts in a session of its own escapes the kill of the job's process group and
    /// holds stdout open for as long as it runs: the attempt still ends with its main process, with that exit code.
    /// </summary>
    [Fact]
    public async Task NoCgroup_ChildInASessionOfItsOwnHoldsStdout_TheAttemptEndsWithTheMainProcessAndItsExitCode()
    {
        RequireSetsid();
        await using var driver = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = Logs, CgroupRoot = "/nonexistent-cgroup-root" });
        var escaped = Path.Combine(Path.GetTempPath(), "bc-escaped-" + Guid.NewGuid().ToString("N"));
        var launch = MakeLaunch(["/bin/sh", "-c", EscapeThen(escaped, "echo main-done")]);
        try
        {
            driver.Launch(launch, Events);
            var exit = await Events.WaitExitedAsync(launch.Token); // hang guard: without a bound the escaped child kept it

            Assert.Equal(0, exit.ExitCode);
            Assert.False(exit.HostFailure);
            Assert.Contains("main-done", LogLines(launch));
        }
        finally
        {
            KillAll(launch);
            File.Delete(escaped);
        }
    }

    /// <summary>A job that starts a child in a session of its own holding its stdout, waits until the child is out of
    /// its process group (else the kill of that group may still catch it), then runs <paramref name="then"/>.</summary>
    private static string EscapeThen(string flag, string then) =>
        $"setsid /bin/sh -c 'touch \"$0\"; sleep 600' '{flag}' & while [ ! -e '{flag}' ]; do sleep 0.01; done; {then}";

    /// <summary>Terminating such an attempt once its main process exited stops reading its output at once (here the
    /// drain timeout is an hour).</summary>
    [Fact]
    public async Task NoCgroup_TerminateAfterTheMainProcessExited_EndsTheAttemptWithItsExitCode()
    {
        RequireSetsid();
        await using var driver = new ProcessHostDriver(new ProcessHostDriverOptions
        {
            LogStore = Logs, CgroupRoot = "/nonexistent-cgroup-root", OutputDrainTimeout = TimeSpan.FromHours(1),
        });
        var go = Path.Combine(Path.GetTempPath(), "bc-go-" + Guid.NewGuid().ToString("N"));
        var escaped = Path.Combine(Path.GetTempPath(), "bc-escaped-" + Guid.NewGuid().ToString("N")); // apart from go: the main process is found by go in its command line
        var launch = MakeLaunch(["/bin/sh", "-c", EscapeThen(escaped, $"echo main-done; while [ ! -e '{go}' ]; do sleep 0.05; done")]);
        try
        {
            driver.Launch(launch, Events);
            await WaitForLogLineAsync(launch, "main-done");
            var main = ProcessesWithCommandLine(go); // the job's shell (and a survivable launch's wrapper)
            Assert.NotEmpty(main);
            await File.WriteAllTextAsync(go, "", TestContext.Current.CancellationToken);
            using (var guard = new CancellationTokenSource(AttemptEventRecorder.HangGuard))
            {
                while (main.Any(pid => Directory.Exists("/proc/" + pid.ToString(CultureInfo.InvariantCulture))))
                {
                    await Task.Delay(20, guard.Token); // until exited and reaped
                }
            }

            driver.Terminate(launch.Token, TimeSpan.Zero);
            var exit = await Events.WaitExitedAsync(launch.Token);

            Assert.Equal(0, exit.ExitCode);
        }
        finally
        {
            KillAll(launch);
            File.Delete(go);
            File.Delete(escaped);
        }
    }

    private void RequireSetsid()
    {
        RequireDriver();
        if (!File.Exists("/usr/bin/setsid"))
        {
            Assert.Skip("needs /usr/bin/setsid (util-linux)");
        }
    }

    /// <summary>SIGKILLs every process of the attempt, escaped ones included (found by the launch's marker variable).</summary>
    private static void KillAll(AttemptLaunch launch)
    {
        var marker = MarkerVariable + "=" + launch.Environment[MarkerVariable];
        for (var round = 0; round < 100 && ProcessesWithEnvironment(marker) is { Count: > 0 } left; round++)
        {
            foreach (var pid in left)
            {
                _ = NativeMethods.Kill(pid, NativeMethods.SIGKILL);
            }

            Thread.Sleep(10);
        }
    }

    /// <summary>Pids of live processes one of whose arguments contains <paramref name="text"/>.</summary>
    private static List<int> ProcessesWithCommandLine(string text)
    {
        var found = new List<int>();
        var needle = System.Text.Encoding.UTF8.GetBytes(text);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                if (File.ReadAllBytes(Path.Combine(dir, "cmdline")).AsSpan().IndexOf(needle) >= 0)
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // gone
            }
        }

        return found;
    }

    /// <summary>1 MB without a newline: events of at most <see cref="LogStore.MaxEventBytes"/>, every byte kept.</summary>
    [Fact]
    public async Task LongLineWithoutNewline_BecomesEventsWithinTheCap_NothingLost()
    {
        RequireDriver();
        var launch = MakeLaunch(["/bin/sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' a"]);

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        var lines = LogLines(launch).Where(l => !l.StartsWith("batchcore: ", StringComparison.Ordinal)).ToArray(); // not "running without limits"
        Assert.All(lines, l => Assert.True(System.Text.Encoding.UTF8.GetByteCount(l) <= LogStore.MaxEventBytes, $"an event of {l.Length} characters"));
        Assert.Equal(4, lines.Length); // 3 × 262,118 + 213,646
        Assert.Equal(1_000_000, lines.Sum(l => l.Length));
        Assert.All(lines, l => Assert.DoesNotContain(l, c => c != 'a'));
    }

    private sealed class ThrowingLogStore : LogStore
    {
        public override void Append(string logStreamName, long timestampMs, string message) => throw new IOException("disk full");

        public override GetLogEventsResponse GetLogEvents(string logStreamName, string? nextToken = null, int limit = 10_000) => throw new NotSupportedException();

        public override bool StreamExists(string logStreamName) => false;
    }

    [Fact]
    public async Task Environment_InheritsOnlyPathAndHome()
    {
        RequireDriver();
        var secret = "BATCHCORE_TEST_SECRET_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(secret, "leaked");
        try
        {
            await using var driver = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = Logs });
            var launch = MakeLaunch(Command(DummyJob.Env, secret, "PATH", "HOME"));
            driver.Launch(launch, Events);
            var exit = await Events.WaitExitedAsync(launch.Token);

            Assert.Equal(0, exit.ExitCode);
            var lines = LogLines(launch);
            Assert.Contains(secret + " is unset", lines);
            Assert.Contains(lines, l => l.StartsWith("PATH=", StringComparison.Ordinal));
        }
        finally
        {
            Environment.SetEnvironmentVariable(secret, null);
        }
    }

    /// <summary>
    /// containerProperties.user: the job runs as that user (setpriv), with its passwd home, in a working directory it
    /// owns; as a uid:gid pair too, and through the survivable wrapper (a journaled engine's launches).
    /// </summary>
    [Theory]
    [InlineData("nobody", false)]
    [InlineData("4321:4322", false)]
    [InlineData("nobody", true)]
    public async Task User_TheJobRunsAsThatUser(string user, bool survivable)
    {
        RequireDriver();
        if (NativeMethods.GetEuid() != 0)
        {
            Assert.Skip("switching users needs root");
        }

        var expected = ProcessUser.Resolve(user, out _)!.Value;
        var launch = MakeLaunch(["sh", "-c", "id -u; id -g; echo \"$HOME\"; touch mine && echo wrote"]) with
        {
            Container = new BatchCore.Model.ContainerProperties { User = user },
            Reattachable = survivable,
        };

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        var lines = LogLines(launch);
        Assert.Equal(expected.Uid.ToString(CultureInfo.InvariantCulture), lines[0]);
        Assert.Equal(expected.Gid.ToString(CultureInfo.InvariantCulture), lines[1]);
        Assert.Equal(expected.Home ?? "/", lines[2]); // Docker: / for a uid without a passwd entry
        Assert.Equal("wrote", lines[3]);
    }

    [Fact]
    public async Task User_Ignored_WhenTheOptionsSaySo()
    {
        RequireDriver();
        await using var driver = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = Logs, IgnoreContainerUser = true });
        var launch = MakeLaunch(["sh", "-c", "id -u"]) with { Container = new BatchCore.Model.ContainerProperties { User = "no-such-user-bc" } };
        driver.Launch(launch, Events);
        var exit = await Events.WaitExitedAsync(launch.Token);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal([NativeMethods.GetEuid().ToString(CultureInfo.InvariantCulture)], LogLines(launch));
    }

    /// <summary>
    /// Something planted where an attempt's own working directory goes (a symbolic link to another directory): the
    /// attempt does not start, and the link's target is not handed to the job's user.
    /// </summary>
    [Fact]
    public async Task WorkingDirectory_PlantedLink_IsRefused_AndItsTargetKeepsItsOwner()
    {
        RequireDriver();
        if (NativeMethods.GetEuid() != 0)
        {
            Assert.Skip("switching users needs root");
        }

        var root = Directory.CreateTempSubdirectory("batchcore-workroot-").FullName;
        var target = Directory.CreateTempSubdirectory("batchcore-target-").FullName;
        try
        {
            await using var driver = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = Logs, WorkRoot = root });
            var instance = (string)typeof(ProcessHostDriver).GetField("_instanceId", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(driver)!;
            var launch = MakeLaunch(["true"]) with { Container = new BatchCore.Model.ContainerProperties { User = "nobody" } };
            Directory.CreateSymbolicLink(Path.Combine(root, instance + "-" + launch.Token.Value.ToString(CultureInfo.InvariantCulture)), target);
            driver.Launch(launch, Events);
            var exit = await Events.WaitExitedAsync(launch.Token);

            Assert.Null(exit.ExitCode);
            Assert.StartsWith("CannotCreateContainerError: working directory", exit.Reason, StringComparison.Ordinal);
            Assert.Equal("0", OwnerOf(target));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
            Directory.Delete(target, recursive: true);
        }
    }

    private static string OwnerOf(string path)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%u", path]) { RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        var owner = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return owner;
    }

    [Fact]
    public async Task User_Unknown_CannotStart()
    {
        RequireDriver();
        var launch = MakeLaunch(["true"]) with { Container = new BatchCore.Model.ContainerProperties { User = "no-such-user-bc" } };

        var exit = await RunAsync(launch);

        Assert.Null(exit.ExitCode);
        Assert.Equal("CannotStartContainerError: unable to find user no-such-user-bc: no matching entries in passwd file", exit.Reason);
    }

    [Fact]
    public async Task WorkingDirectory_Temporary_IsCreatedAndRemoved()
    {
        RequireDriver();
        var root = Directory.CreateTempSubdirectory("batchcore-workroot-").FullName;
        try
        {
            await using var driver = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = Logs, WorkRoot = root });
            var launch = MakeLaunch(["sh", "-c", "pwd; touch left-behind"]);
            driver.Launch(launch, Events);
            var exit = await Events.WaitExitedAsync(launch.Token);

            Assert.Equal(0, exit.ExitCode);
            Assert.StartsWith(root + "/", LogLines(launch)[0], StringComparison.Ordinal);

            // Removed after the exit is reported (off the critical path), at the latest when the driver is disposed.
            await driver.DisposeAsync();
            Assert.Empty(Directory.EnumerateFileSystemEntries(root));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task WorkingDirectory_Given_IsUsedAndKept()
    {
        RequireDriver();
        var dir = Path.Combine(Directory.CreateTempSubdirectory("batchcore-wd-").FullName, "job");
        try
        {
            var launch = MakeLaunch(["sh", "-c", "pwd"]) with { WorkingDirectory = dir };

            var exit = await RunAsync(launch);

            Assert.Equal(0, exit.ExitCode);
            Assert.Equal([dir], LogLines(launch));
            Assert.True(Directory.Exists(dir));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(dir)!, recursive: true);
        }
    }

    [Fact]
    public async Task BackgroundChildren_AreKilledWhenTheMainProcessExits()
    {
        RequireDriver();
        var launch = MakeLaunch(["sh", "-c", "sleep 300 & echo started-child"]);

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(["started-child"], LogLines(launch));
    }

    [Fact]
    public async Task Terminate_ReachesTheWholeProcessTree()
    {
        RequireDriver();
        var launch = MakeLaunch(["sh", "-c", "sleep 300 & sleep 300 & echo ready; wait"]);
        Driver.Launch(launch, Events);
        await WaitForLogLineAsync(launch, "ready");

        Driver.Terminate(launch.Token, TimeSpan.FromSeconds(10));
        var exit = await Events.WaitExitedAsync(launch.Token);

        Assert.Equal(143, exit.ExitCode);
        await AssertCleanAsync(launch);
    }

    [Fact]
    public async Task LimitsDisabled_TerminateStillReachesTheWholeProcessTree()
    {
        RequireDriver();
        await using var driver = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = Logs, EnableLimits = false });
        var tree = MakeLaunch(["sh", "-c", "sleep 300 & sleep 300 & echo ready; wait"]);
        var leftovers = MakeLaunch(["sh", "-c", "sleep 300 & echo started-child"]);
        driver.Launch(tree, Events);
        driver.Launch(leftovers, Events);
        await WaitForLogLineAsync(tree, "ready");

        driver.Terminate(tree.Token, TimeSpan.FromSeconds(10));

        Assert.Equal(143, (await Events.WaitExitedAsync(tree.Token)).ExitCode);
        Assert.Equal(0, (await Events.WaitExitedAsync(leftovers.Token)).ExitCode);
        await AssertCleanAsync(tree);
        await AssertCleanAsync(leftovers);
    }

    [Fact]
    public async Task LimitsDisabled_RunsAndSaysSoInTheLog()
    {
        RequireDriver();
        var diagnostics = new List<string>();
        await using var driver = new ProcessHostDriver(new ProcessHostDriverOptions
        {
            LogStore = Logs,
            EnableLimits = false,
            Diagnostic = diagnostics.Add,
        });
        var launch = MakeLaunch(["sh", "-c", "echo hi"]);
        driver.Launch(launch, Events);
        var exit = await Events.WaitExitedAsync(launch.Token);

        Assert.Equal(0, exit.ExitCode);
        Assert.NotNull(driver.LimitsUnavailableReason);
        Assert.Null(driver.CgroupVersion);
        Assert.Single(diagnostics);
        Assert.Equal(2, LogLines(launch).Length);
        Assert.StartsWith("batchcore: running without resource limits", LogLines(launch)[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Limits_AreAvailableOnThisMachine_WhenRunningAsRootOnLinux()
    {
        // Documents the environment: as root on Linux with cgroup v1 (or usable v2), limits must work.
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            Assert.Skip("needs root on Linux");
        }

        Assert.Null(ProcessDriver.LimitsUnavailableReason);
        Assert.NotNull(ProcessDriver.CgroupVersion);
    }

    [Fact]
    public void Options_Invalid_ThrowsBatchClientExceptionNamingEveryProblem()
    {
        var e = Assert.Throws<BatchClientException>(() => new ProcessHostDriver(new ProcessHostDriverOptions
        {
            LogStore = Logs,
            PidsMax = 0,
            WorkRoot = "relative",
            CgroupParent = "../escape",
        }));

        Assert.Equal(3, e.Problems.Count);
        Assert.Contains(e.Problems, p => p.StartsWith("PidsMax", StringComparison.Ordinal));
        Assert.Contains(e.Problems, p => p.StartsWith("WorkRoot", StringComparison.Ordinal));
        Assert.Contains(e.Problems, p => p.StartsWith("CgroupParent", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DisposeAsync_KillsEverythingStillRunning()
    {
        RequireDriver();
        var driver = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = Logs });
        var launch = MakeLaunch(Command(DummyJob.Sleep, "300"));
        driver.Launch(launch, Events);
        await Events.WaitStartedAsync(launch.Token);

        await driver.DisposeAsync();

        Assert.Equal(1, Events.ExitedCount(launch.Token));
        await AssertCleanAsync(launch);
        Assert.Throws<ObjectDisposedException>(() => driver.Launch(MakeLaunch(Command(DummyJob.Exit, "0")), Events));
    }

    /// <summary>Waits (a hang guard, not a timing assertion) until every attempt's cleanup is done.</summary>
    private static async Task WaitForCleanupAsync(ProcessHostDriver driver)
    {
        for (var i = 0; driver.TrackedAttempts > 0; i++)
        {
            Assert.True(i < 30_000, "attempts still being cleaned up after a minute");
            await Task.Delay(2, TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task PooledCgroup_IsReusedWithTheNextAttemptsLimitsAndAFreshOomCount()
    {
        RequireLimits();
        var parent = "batchcore-pool-" + Guid.NewGuid().ToString("N")[..8];
        var driver = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = Logs, CgroupParent = parent });
        try
        {
            var oom = MakeLaunch(Command(DummyJob.Alloc, "1024"), memoryMiB: 128);
            driver.Launch(oom, Events);
            var oomExit = await Events.WaitExitedAsync(oom.Token);
            await WaitForCleanupAsync(driver); // the exit is reported first, then the slot goes back to the pool

            var failing = MakeLaunch(Command(DummyJob.Exit, "3"));
            driver.Launch(failing, Events);
            var failingExit = await Events.WaitExitedAsync(failing.Token);
            await WaitForCleanupAsync(driver);

            var big = MakeLaunch(Command(DummyJob.Alloc, "200"), memoryMiB: 512);
            driver.Launch(big, Events);
            await WaitForLogLineAsync(big, "allocated");
            driver.Terminate(big.Token, TimeSpan.Zero);
            var bigExit = await Events.WaitExitedAsync(big.Token);

            Assert.Equal(137, oomExit.ExitCode);
            Assert.Equal(AttemptExit.OutOfMemoryReason, oomExit.Reason);
            Assert.Equal(3, failingExit.ExitCode);
            Assert.Null(failingExit.Reason); // the slot's earlier OOM kill is not this attempt's
            Assert.NotEqual(AttemptExit.OutOfMemoryReason, bigExit.Reason); // 128 MiB from the OOM attempt is gone
            Assert.Equal(3, DriverCgroups(parent).Count); // one slot (memory, cpu, pids) served all three in turn
            foreach (var slot in DriverCgroups(parent))
            {
                Assert.Empty(File.ReadAllLines(Path.Combine(slot, "cgroup.procs")));
            }
        }
        finally
        {
            await driver.DisposeAsync();
        }

        Assert.DoesNotContain(ParentDirs(parent), Directory.Exists); // pooled slots and parents removed on dispose
    }

    [Fact]
    public async Task LimitsDisabled_PooledTrackingCgroupIsRemovedOnDispose()
    {
        RequireLimits(); // cgroups writable here
        var parent = "batchcore-track-" + Guid.NewGuid().ToString("N")[..8];
        var driver = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = Logs, CgroupParent = parent, EnableLimits = false });
        try
        {
            var launch = MakeLaunch(["sh", "-c", "sleep 300 & echo started-child"]);
            driver.Launch(launch, Events);
            var exit = await Events.WaitExitedAsync(launch.Token);

            Assert.Equal(0, exit.ExitCode);
            await AssertCleanAsync(launch);
            Assert.Single(DriverCgroups(parent)); // pids only: tracking, no limits
            Assert.Equal("max", File.ReadAllText(Path.Combine(DriverCgroups(parent)[0], "pids.max")).Trim());
        }
        finally
        {
            await driver.DisposeAsync();
        }

        Assert.DoesNotContain(ParentDirs(parent), Directory.Exists);
    }

    [Fact]
    public async Task StaleSlotsOfADeadEngine_AreSweptWhenADriverStarts_BusyOnesAreKept()
    {
        RequireLimits();
        var parent = "batchcore-sweep-" + Guid.NewGuid().ToString("N")[..8];
        var deadPid = Enumerable.Range(4_000_000, 1000).First(p => !Directory.Exists("/proc/" + p.ToString(CultureInfo.InvariantCulture)));
        var stale = deadPid.ToString(CultureInfo.InvariantCulture) + "-1-s1";
        var busy = deadPid.ToString(CultureInfo.InvariantCulture) + "-1-s2";
        var parents = ParentDirs(parent).ToList();
        using var sleeper = System.Diagnostics.Process.Start("sleep", "300");
        try
        {
            foreach (var dir in parents)
            {
                Directory.CreateDirectory(Path.Combine(dir, stale));
                Directory.CreateDirectory(Path.Combine(dir, busy));
            }

            // The busy slot holds a live process, as an attempt a restarted engine may re-attach would.
            File.WriteAllText(Path.Combine(parents[^1], busy, "cgroup.procs"), sleeper.Id.ToString(CultureInfo.InvariantCulture));

            await using (new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = Logs, CgroupParent = parent }))
            {
                Assert.All(parents, dir => Assert.False(Directory.Exists(Path.Combine(dir, stale)), "stale slot swept: " + dir));
                Assert.True(Directory.Exists(Path.Combine(parents[^1], busy)));
            }
        }
        finally
        {
            sleeper.Kill();
            await sleeper.WaitForExitAsync(TestContext.Current.CancellationToken);
            foreach (var dir in parents)
            {
                for (var i = 0; i < 50 && Directory.Exists(Path.Combine(dir, busy)); i++)
                {
                    try
                    {
                        Directory.Delete(Path.Combine(dir, busy));
                    }
                    catch (IOException)
                    {
                        await Task.Delay(20, TestContext.Current.CancellationToken); // the killed process is still listed
                    }
                }

                try
                {
                    Directory.Delete(dir);
                }
                catch (IOException)
                {
                }
            }
        }
    }
}
