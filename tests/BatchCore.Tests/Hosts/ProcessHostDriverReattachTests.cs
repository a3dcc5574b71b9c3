using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BatchCore.Hosts;
using BatchCore.Hosts.Process;
using BatchCore.Logs;

namespace BatchCore.Tests.Hosts;

/// <summary>
/// The whole process-driver contract again with survivable launches (what the engine asks for when it journals):
/// output through a file, exit code through the wrapper.
/// </summary>
public sealed class SurvivableProcessHostDriverTests : ProcessHostDriverTests
{
    // The run directories are in the shared default WorkRoot, named after the job ids (job-<token>): scoped like an
    // engine's, so another test process on the machine launching the same ids never takes these for its leftovers.
    private static readonly string EngineId = Guid.NewGuid().ToString("N")[..16];

    protected override AttemptLaunch MakeLaunch(IReadOnlyList<string> command, IReadOnlyDictionary<string, string>? environment = null,
        double vcpus = 1, int memoryMiB = 512) => base.MakeLaunch(command, environment, vcpus, memoryMiB) with { Reattachable = true, EngineId = EngineId };
}

/// <summary><see cref="ProcessHostDriver.TryReattach"/>: by pid and start time, exit code from the wrapper's file.</summary>
public sealed class ProcessHostDriverReattachTests : IAsyncDisposable
{
    private static long s_token = 1_000_000;
    private readonly InMemoryLogStore _logs = new();
    private readonly AttemptEventRecorder _events = new();
    private readonly string _root = Directory.CreateTempSubdirectory("bc-reattach-").FullName;
    private readonly List<ProcessHostDriver> _drivers = [];

    public async ValueTask DisposeAsync()
    {
        foreach (var d in _drivers)
        {
            await d.DisposeAsync();
        }

        Directory.Delete(_root, recursive: true);
    }

    private ProcessHostDriver NewDriver()
    {
        var d = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = _logs, WorkRoot = _root });
        _drivers.Add(d);
        return d;
    }

    private static AttemptToken NextToken() => new(Interlocked.Increment(ref s_token));

    private static AttemptLaunch Launch(AttemptToken token, params string[] command) => new()
    {
        Token = token,
        JobId = "job-" + token.Value.ToString(CultureInfo.InvariantCulture),
        Attempt = 1,
        JobDefinitionName = "d",
        LogStreamName = "d/default/" + token.Value.ToString(CultureInfo.InvariantCulture),
        Command = command,
        Environment = new Dictionary<string, string>(),
        Vcpus = 0.5,
        MemoryMiB = 256,
        HostName = "h",
        Reattachable = true,
    };

    private static AttemptReattach Reattach(AttemptToken token, string? handle) => new()
    {
        Token = token,
        JobId = "job-" + token.Value.ToString(CultureInfo.InvariantCulture),
        Attempt = 1,
        LogStreamName = "re/" + token.Value.ToString(CultureInfo.InvariantCulture),
        HostName = "h",
        Handle = handle,
    };

    private static void RequireLinux()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("re-attaching reads /proc (Linux)");
        }
    }

    private string[] Lines(string stream) => [.. _logs.GetLogEvents(stream).Events.Select(e => e.Message)];

    [Fact]
    public async Task SurvivableLaunch_ReportsAHandleWithPidAndStartTime()
    {
        RequireLinux();
        var driver = NewDriver();
        var token = NextToken();
        var go = Path.Combine(Path.GetTempPath(), "bc-go-" + Guid.NewGuid().ToString("N"));
        driver.Launch(Launch(token, "sh", "-c", $"echo out; while [ ! -e '{go}' ]; do sleep 0.05; done; exit 4"), _events);
        await _events.WaitStartedAsync(token);
        using (var handle = JsonDocument.Parse(_events.Handle(token)!))
        {
            var pid = handle.RootElement.GetProperty("Pid").GetInt32();
            Assert.True(pid > 0);
            Assert.Equal(ReadStartTime(pid), handle.RootElement.GetProperty("StartTime").GetInt64());
        }

        await File.WriteAllTextAsync(go, "", TestContext.Current.CancellationToken);
        var exit = await _events.WaitExitedAsync(token);
        File.Delete(go);

        Assert.Equal(4, exit.ExitCode);
        Assert.Equal(["out"], Lines("d/default/" + token.Value));
        await driver.DisposeAsync(); // directories go after the exit is reported, at the latest on dispose
        Assert.Empty(Directory.EnumerateFileSystemEntries(_root)); // run directory and working directory removed
    }

    [Fact]
    public async Task Reattach_LiveAttempt_FollowsItToItsExitCodeAndLog()
    {
        RequireLinux();
        var go = Path.Combine(_root, "go");
        using var wrapper = StartWrapper($"echo before; while [ ! -e '{go}' ]; do sleep 0.05; done; echo after; exit 3", out var handle);

        // This driver is not the process's parent (as after an engine restart): it must use pid, start time and files.
        var driver = NewDriver();
        var token = NextToken();
        Assert.True(driver.TryReattach(Reattach(token, handle), _events));
        await _events.WaitStartedAsync(token);
        await File.WriteAllTextAsync(go, "", TestContext.Current.CancellationToken);
        var exit = await _events.WaitExitedAsync(token);

        Assert.Equal(3, exit.ExitCode);
        Assert.False(exit.HostFailure);
        Assert.Equal(["before", "after"], Lines("re/" + token.Value));
        await wrapper.WaitForExitAsync(TestContext.Current.CancellationToken);
    }

    /// <summary>A log store that throws loses the re-attached job's lines, not the job: it still runs to its exit code.</summary>
    [Fact]
    public async Task Reattach_FailingLogStore_TheAttemptStillEndsWithItsExitCode()
    {
        RequireLinux();
        var go = Path.Combine(_root, "go");
        using var wrapper = StartWrapper($"echo before; while [ ! -e '{go}' ]; do sleep 0.05; done; echo after; exit 3", out var handle);
        var diagnostics = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var driver = new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = new ThrowingLogStore(), WorkRoot = _root, Diagnostic = diagnostics.Enqueue });
        _drivers.Add(driver);
        var token = NextToken();

        Assert.True(driver.TryReattach(Reattach(token, handle), _events));
        await _events.WaitStartedAsync(token);
        await File.WriteAllTextAsync(go, "", TestContext.Current.CancellationToken);
        var exit = await _events.WaitExitedAsync(token);

        Assert.Equal(3, exit.ExitCode);
        Assert.False(exit.HostFailure);
        Assert.Contains("the log store failed (InvalidOperationException: store closed)", Assert.Single(diagnostics), StringComparison.Ordinal);
        await wrapper.WaitForExitAsync(TestContext.Current.CancellationToken);
    }

    private sealed class ThrowingLogStore : LogStore
    {
        public override void Append(string logStreamName, long timestampMs, string message) => throw new InvalidOperationException("store closed");

        public override GetLogEventsResponse GetLogEvents(string logStreamName, string? nextToken = null, int limit = 10_000) => throw new NotSupportedException();

        public override bool StreamExists(string logStreamName) => false;
    }

    [Fact]
    public async Task Terminate_ReattachedAttempt_StopsTheJob()
    {
        RequireLinux();
        using var wrapper = StartWrapper("echo ready; sleep 600", out var handle);
        var driver = NewDriver();
        var token = NextToken();
        Assert.True(driver.TryReattach(Reattach(token, handle), _events));
        await _events.WaitStartedAsync(token);
        for (var i = 0; i < 600 && !Lines("re/" + token.Value).Contains("ready"); i++)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken); // hang guard: the job is up (its trap is set)
        }

        driver.Terminate(token, TimeSpan.FromSeconds(30));
        var exit = await _events.WaitExitedAsync(token);

        Assert.Equal(143, exit.ExitCode); // SIGTERM reached the job through its process group; the wrapper recorded 128 + 15
        await wrapper.WaitForExitAsync(TestContext.Current.CancellationToken);
    }

    /// <summary>
    /// A released attempt (the engine's start failed after re-attaching) is neither signalled nor cleaned up, even when
    /// the driver is disposed next, and reports nothing: the next driver takes it back to its exit.
    /// </summary>
    [Fact]
    public async Task ReleaseReattached_LeavesTheAttemptAsItIs_ForTheNextDriver()
    {
        RequireLinux();
        var go = Path.Combine(_root, "go");
        using var wrapper = StartWrapper($"echo before; while [ ! -e '{go}' ]; do sleep 0.05; done; echo after; exit 3", out var handle);
        var failed = NewDriver();
        var released = NextToken();
        Assert.True(failed.TryReattach(Reattach(released, handle), _events));
        await _events.WaitStartedAsync(released);

        await failed.ReleaseReattachedAsync();
        await failed.DisposeAsync();

        Assert.Equal(0, failed.TrackedAttempts);
        Assert.False(wrapper.HasExited);
        using (var h = JsonDocument.Parse(handle))
        {
            Assert.True(Directory.Exists(h.RootElement.GetProperty("RunDirectory").GetString()));
        }

        var next = NewDriver();
        var token = NextToken();
        Assert.True(next.TryReattach(Reattach(token, handle), _events));
        await File.WriteAllTextAsync(go, "", TestContext.Current.CancellationToken);
        Assert.Equal(3, (await _events.WaitExitedAsync(token)).ExitCode);
        Assert.Equal(0, _events.ExitedCount(released));
        Assert.Equal(["before", "after"], Lines("re/" + token.Value));
        await wrapper.WaitForExitAsync(TestContext.Current.CancellationToken);
    }

    /// <summary>
    /// A survivable attempt as a crashed engine leaves it, without that engine: the driver's file protocol (output file,
    /// exit-code file written by a wrapper that traps SIGTERM) in a session of its own, and its handle.
    /// </summary>
    private Process StartWrapper(string job, out string handle)
    {
        var run = Directory.CreateDirectory(Path.Combine(_root, "run-" + Guid.NewGuid().ToString("N"))).FullName;
        var psi = new ProcessStartInfo("setsid") { UseShellExecute = false };
        foreach (var a in new[] { "sh", "-c", "trap : TERM; exec >\"$1\" 2>&1 </dev/null; sh -c \"$3\"; echo $? > \"$2\"", "sh", Path.Combine(run, "output"), Path.Combine(run, "exit-code"), job })
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi)!;
        long start = -1;
        for (var i = 0; i < 100 && start <= 0; i++)
        {
            start = ReadStartTime(p.Id);
        }

        handle = JsonSerializer.Serialize(new { Pid = p.Id, StartTime = start, RunDirectory = run, Cgroup = (string[]?)null, ProcessGroup = true, OwnedWorkDirectory = (string?)null });
        return p;
    }

    private static long ReadStartTime(int pid)
    {
        var stat = File.ReadAllText("/proc/" + pid.ToString(CultureInfo.InvariantCulture) + "/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[19], CultureInfo.InvariantCulture); // field 22
    }

    [Fact]
    public async Task SurvivableLaunch_WritesItsHandleBeforeTheForkAndTheWrapperItsPid()
    {
        RequireLinux();
        var driver = NewDriver();
        var token = NextToken();
        var go = Path.Combine(_root, "go-" + token.Value.ToString(CultureInfo.InvariantCulture));
        driver.Launch(Launch(token, "sh", "-c", $"while [ ! -e '{go}' ]; do sleep 0.05; done"), _events);
        await _events.WaitStartedAsync(token);
        var run = Path.Combine(_root, "job-" + token.Value.ToString(CultureInfo.InvariantCulture) + "-1.run");
        using (var handle = JsonDocument.Parse(_events.Handle(token)!))
        using (var written = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(run, "handle"), TestContext.Current.CancellationToken)))
        {
            Assert.Equal(run, written.RootElement.GetProperty("RunDirectory").GetString());
            Assert.Equal(0, written.RootElement.GetProperty("Pid").GetInt32());
            var pid = handle.RootElement.GetProperty("Pid").GetInt32();
            var pidFile = Path.Combine(run, "pid");
            for (var i = 0; i < 500 && !(File.Exists(pidFile) && new FileInfo(pidFile).Length > 0); i++)
            {
                await Task.Delay(10, TestContext.Current.CancellationToken); // the wrapper writes it first thing, after the fork
            }

            Assert.Equal(pid.ToString(CultureInfo.InvariantCulture), (await File.ReadAllTextAsync(pidFile, TestContext.Current.CancellationToken)).Trim());
        }

        await File.WriteAllTextAsync(go, "", TestContext.Current.CancellationToken);
        Assert.Equal(0, (await _events.WaitExitedAsync(token)).ExitCode);
    }

    [Fact]
    public async Task Reattach_WithoutHandle_FindsTheLiveAttemptByItsRunDirectory()
    {
        RequireLinux();
        var token = NextToken();
        var go = Path.Combine(_root, "go");
        using var wrapper = StartWrapperInRunDirectory(token, $"echo before; while [ ! -e '{go}' ]; do sleep 0.05; done; exit 3");
        var driver = NewDriver();
        var reattached = NextToken();

        // The crashed engine's record said STARTING, without a handle.
        Assert.True(driver.TryReattach(Reattach(token, null) with { Token = reattached }, _events));
        await _events.WaitStartedAsync(reattached);
        using (var handle = JsonDocument.Parse(_events.Handle(reattached)!))
        {
            Assert.Equal(wrapper.Id, handle.RootElement.GetProperty("Pid").GetInt32()); // reported, so the engine journals it
        }

        await File.WriteAllTextAsync(go, "", TestContext.Current.CancellationToken);
        var exit = await _events.WaitExitedAsync(reattached);

        Assert.Equal(3, exit.ExitCode);
        Assert.Equal(["before"], Lines("re/" + token.Value));
        await wrapper.WaitForExitAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Reattach_WithoutHandle_EndedWhileDown_ReportsItsExitCode()
    {
        RequireLinux();
        var token = NextToken();
        using (var wrapper = StartWrapperInRunDirectory(token, "exit 5"))
        {
            await wrapper.WaitForExitAsync(TestContext.Current.CancellationToken);
        }

        var driver = NewDriver();
        Assert.True(driver.TryReattach(Reattach(token, null), _events));
        var exit = await _events.WaitExitedAsync(token);

        Assert.Equal(5, exit.ExitCode);
        Assert.Equal(0, _events.StartedCount(token));
        Assert.False(Directory.Exists(RunDirectory(token)));
    }

    [Fact]
    public void Reattach_WithoutHandle_NeverForked_IsNotTakenBackAndItsFilesAreRemoved()
    {
        RequireLinux();
        var token = NextToken();
        var run = Directory.CreateDirectory(RunDirectory(token)).FullName;
        File.WriteAllText(Path.Combine(run, "handle"), PartialHandle(run)); // written, then the engine died before the fork

        Assert.False(NewDriver().TryReattach(Reattach(token, null), _events));
        Assert.False(Directory.Exists(run));
        Assert.False(NewDriver().TryReattach(Reattach(NextToken(), null), _events)); // no run directory at all
    }

    [Fact]
    public async Task Reattach_WithoutHandle_PidFileNamingAnotherProcess_IsNotTakenBackNorSignalled()
    {
        RequireLinux();
        using var other = Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;
        try
        {
            var token = NextToken();
            var run = Directory.CreateDirectory(RunDirectory(token)).FullName;
            File.WriteAllText(Path.Combine(run, "handle"), PartialHandle(run));
            File.WriteAllText(Path.Combine(run, "pid"), other.Id.ToString(CultureInfo.InvariantCulture)); // the wrapper died, its pid was reused

            Assert.False(NewDriver().TryReattach(Reattach(token, null), _events));
            Assert.False(other.HasExited);
        }
        finally
        {
            other.Kill();
            await other.WaitForExitAsync(TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task Launch_OverALeftoverOfTheSameAttempt_KillsItBeforeTheJobRunsAgain()
    {
        RequireLinux();
        var token = NextToken();
        using var leftover = StartWrapperInRunDirectory(token, "sleep 600"); // a dead engine's launch no record names

        var driver = NewDriver();
        driver.Launch(Launch(token, "sh", "-c", "echo again"), _events);
        var exit = await _events.WaitExitedAsync(token);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(["again"], Lines("d/default/" + token.Value));
        await leftover.WaitForExitAsync(TestContext.Current.CancellationToken); // killed, not left running beside it
        Assert.Equal(137, leftover.ExitCode);
    }

    [Fact]
    public async Task Launch_SameJobAndAttemptTwiceAtOnce_EachGetsItsOwnRunDirectory()
    {
        RequireLinux();
        var driver = NewDriver();
        var first = NextToken();
        var second = NextToken();
        var go = Path.Combine(_root, "go-both");
        var job = new[] { "sh", "-c", $"while [ ! -e '{go}' ]; do sleep 0.05; done; echo done" };
        driver.Launch(Launch(first, job), _events);
        await _events.WaitStartedAsync(first);
        driver.Launch(Launch(second, job) with { JobId = "job-" + first.Value.ToString(CultureInfo.InvariantCulture) }, _events);
        await _events.WaitStartedAsync(second);
        await File.WriteAllTextAsync(go, "", TestContext.Current.CancellationToken);

        Assert.Equal(0, (await _events.WaitExitedAsync(first)).ExitCode);
        Assert.Equal(0, (await _events.WaitExitedAsync(second)).ExitCode);
        Assert.Equal(["done"], Lines("d/default/" + first.Value));
        Assert.Equal(["done"], Lines("d/default/" + second.Value));
    }

    /// <summary>
    /// Two engines (two state directories) on one machine with a job of the same id and attempt: the second launch, and
    /// the second engine's restart looking for its attempt without a handle, leave the first engine's attempt alone.
    /// </summary>
    [Fact]
    public async Task SameJobAndAttemptOnTwoEngines_NeitherTakesTheOthersAttemptForALeftover()
    {
        RequireLinux();
        var a = NewDriver();
        var b = NewDriver();
        var tokenA = NextToken();
        var tokenB = NextToken();
        var jobId = "job-" + tokenA.Value.ToString(CultureInfo.InvariantCulture);
        var go = Path.Combine(_root, "go-a");
        a.Launch(Launch(tokenA, "sh", "-c", $"while [ ! -e '{go}' ]; do sleep 0.05; done; echo a") with { EngineId = "aaaaaaaaaaaaaaaa" }, _events);
        await _events.WaitStartedAsync(tokenA);

        Assert.False(b.TryReattach(Reattach(NextToken(), null) with { JobId = jobId, EngineId = "bbbbbbbbbbbbbbbb" }, _events));
        b.Launch(Launch(tokenB, "sh", "-c", "echo b") with { JobId = jobId, EngineId = "bbbbbbbbbbbbbbbb" }, _events);
        Assert.Equal(0, (await _events.WaitExitedAsync(tokenB)).ExitCode);
        Assert.Equal(0, _events.ExitedCount(tokenA));

        await File.WriteAllTextAsync(go, "", TestContext.Current.CancellationToken);
        var exitA = await _events.WaitExitedAsync(tokenA);

        Assert.Equal(0, exitA.ExitCode);
        Assert.Equal(["a"], Lines("d/default/" + tokenA.Value));
        Assert.Equal(["b"], Lines("d/default/" + tokenB.Value));
    }

    [Fact]
    public async Task RunDirectory_IsNamedAfterTheEngineJobAndAttempt()
    {
        RequireLinux();
        var driver = NewDriver();
        var token = NextToken();
        var go = Path.Combine(_root, "go-named");
        driver.Launch(Launch(token, "sh", "-c", $"while [ ! -e '{go}' ]; do sleep 0.05; done") with { EngineId = "0123456789abcdef" }, _events);
        await _events.WaitStartedAsync(token);

        using (var handle = JsonDocument.Parse(_events.Handle(token)!))
        {
            Assert.Equal(Path.Combine(_root, "0123456789abcdef@job-" + token.Value.ToString(CultureInfo.InvariantCulture) + "-1.run"), handle.RootElement.GetProperty("RunDirectory").GetString());
        }

        await File.WriteAllTextAsync(go, "", TestContext.Current.CancellationToken);
        Assert.Equal(0, (await _events.WaitExitedAsync(token)).ExitCode);
    }

    private string RunDirectory(AttemptToken token) => Path.Combine(_root, "job-" + token.Value.ToString(CultureInfo.InvariantCulture) + "-1.run");

    private static string PartialHandle(string run) =>
        JsonSerializer.Serialize(new { Pid = 0, StartTime = 0, RunDirectory = run, Cgroup = (string[]?)null, ProcessGroup = true, OwnedWorkDirectory = (string?)null });

    /// <summary>
    /// What a driver leaves when its engine dies right after the fork: the run directory named after the job and attempt,
    /// the handle it wrote before the fork, and a wrapper that records its own pid there.
    /// </summary>
    private Process StartWrapperInRunDirectory(AttemptToken token, string job)
    {
        var run = Directory.CreateDirectory(RunDirectory(token)).FullName;
        File.WriteAllText(Path.Combine(run, "handle"), PartialHandle(run));
        var psi = new ProcessStartInfo("setsid") { UseShellExecute = false };
        foreach (var a in new[] { "sh", "-c", "trap : TERM; echo $$ > \"${2%/*}/pid\"; exec >\"$1\" 2>&1 </dev/null; sh -c \"$3\"; echo $? > \"$2\"", "sh", Path.Combine(run, "output"), Path.Combine(run, "exit-code"), job })
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi)!;
        for (var i = 0; i < 200 && !File.Exists(Path.Combine(run, "pid")); i++)
        {
            Thread.Sleep(10); // hang guard: the wrapper records its pid first thing
        }

        return p;
    }

    [Fact]
    public async Task Reattach_EndedWhileDown_ReportsTheRecordedExitCode()
    {
        RequireLinux();
        var driver = NewDriver();
        var (handle, exitFile) = ForgedHandle(pid: DeadPid(), startTime: 1);
        await File.WriteAllTextAsync(exitFile, "9\n", TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(Path.Combine(Path.GetDirectoryName(exitFile)!, "output"), "line 1\nline 2", TestContext.Current.CancellationToken);
        var token = NextToken();

        Assert.True(driver.TryReattach(Reattach(token, handle), _events));
        var exit = await _events.WaitExitedAsync(token);

        Assert.Equal(9, exit.ExitCode);
        Assert.Equal(0, _events.StartedCount(token));
        Assert.Equal(["line 1", "line 2"], Lines("re/" + token.Value));
        Assert.False(Directory.Exists(Path.GetDirectoryName(exitFile)));
    }

    [Fact]
    public void Reattach_GoneWithoutExitCode_IsNotTakenBackAndItsFilesAreRemoved()
    {
        RequireLinux();
        var driver = NewDriver();
        var (handle, exitFile) = ForgedHandle(pid: DeadPid(), startTime: 1);

        Assert.False(driver.TryReattach(Reattach(NextToken(), handle), _events));
        Assert.False(Directory.Exists(Path.GetDirectoryName(exitFile)));
    }

    [Fact]
    public async Task Reattach_PidReusedByAnotherProcess_IsNotTakenBackNorSignalled()
    {
        RequireLinux();
        using var other = Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;
        try
        {
            var driver = NewDriver();
            var (handle, _) = ForgedHandle(pid: other.Id, startTime: 12345); // same pid, another start time

            Assert.False(driver.TryReattach(Reattach(NextToken(), handle), _events));
            Assert.False(other.HasExited);
        }
        finally
        {
            other.Kill();
            await other.WaitForExitAsync(TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task Reattach_PidReusedWithRecordedExitCode_ReportsTheRecordedExitAndLeavesTheOtherProcessAlone()
    {
        RequireLinux();
        using var other = Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;
        try
        {
            var driver = NewDriver();
            var (handle, exitFile) = ForgedHandle(pid: other.Id, startTime: 12345);
            await File.WriteAllTextAsync(exitFile, "0", TestContext.Current.CancellationToken);
            var token = NextToken();

            Assert.True(driver.TryReattach(Reattach(token, handle), _events));
            driver.Terminate(token, TimeSpan.Zero); // must not reach the unrelated process
            var exit = await _events.WaitExitedAsync(token);

            Assert.Equal(0, exit.ExitCode);
            Assert.False(other.HasExited);
        }
        finally
        {
            other.Kill();
            await other.WaitForExitAsync(TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public void Reattach_WithoutOrWithAMalformedHandle_IsNotTakenBack()
    {
        var driver = NewDriver();
        Assert.False(driver.TryReattach(Reattach(NextToken(), null), _events));
        Assert.False(driver.TryReattach(Reattach(NextToken(), "not json"), _events));
    }

    private (string Handle, string ExitFile) ForgedHandle(int pid, long startTime)
    {
        var run = Directory.CreateDirectory(Path.Combine(_root, "forged-" + Guid.NewGuid().ToString("N"))).FullName;
        var handle = JsonSerializer.Serialize(new { Pid = pid, StartTime = startTime, RunDirectory = run, Cgroup = (string[]?)null, ProcessGroup = false, OwnedWorkDirectory = (string?)null });
        return (handle, Path.Combine(run, "exit-code"));
    }

    /// <summary>A pid with no process: a child that has exited and been reaped.</summary>
    private static int DeadPid()
    {
        using var p = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        p.WaitForExit();
        return p.Id;
    }
}
