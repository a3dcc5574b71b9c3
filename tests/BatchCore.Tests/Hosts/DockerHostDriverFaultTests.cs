using System.Globalization;
using BatchCore.Hosts;
using BatchCore.Hosts.Docker;
using BatchCore.Logs;

namespace BatchCore.Tests.Hosts;

/// <summary>
/// The docker driver against a daemon that fails, hangs or drops requests (<see cref="FakeDockerDaemon"/>, no dockerd
/// needed): the exit is still reported once, Terminate still ends the attempt, and no container is left behind.
/// Waits are hang guards, never timed assertions.
/// </summary>
public sealed class DockerHostDriverFaultTests : IAsyncLifetime
{
    private const string Image = "batchcore-test/fake:1";
    private static long s_nextToken = 1_000_000;

    private readonly FakeDockerDaemon _daemon = new();
    private readonly AttemptEventRecorder _events = new();
    private readonly InMemoryLogStore _logs = new();
    private DockerHostDriver? _driver;

    public static TheoryData<string> Failures => ["hang", "error", "drop"];

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_driver is not null)
            {
                await _driver.DisposeAsync().AsTask().WaitAsync(AttemptEventRecorder.HangGuard);
            }
        }
        finally
        {
            await _daemon.DisposeAsync(); // also when the driver hung: the socket and its directory never stay behind
        }
    }

    [Fact]
    public async Task Exit_IsReported_WhileRemovingTheContainerHangs()
    {
        _daemon.Intercept = r => r.Method == "DELETE" ? new FakeDockerReply.Hang() : null;
        var driver = Driver();
        var launch = MakeLaunch();
        driver.Launch(launch, _events);
        await _events.WaitStartedAsync(launch.Token);
        var id = _events.Handle(launch.Token)!;

        _daemon.Exit(id, 3);
        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Equal(3, exit.ExitCode);
        await _daemon.WaitForRequestAsync(r => r.Is("DELETE", "/containers/" + id)).WaitAsync(AttemptEventRecorder.HangGuard);
        _driver = null;
        await driver.DisposeAsync().AsTask().WaitAsync(AttemptEventRecorder.HangGuard); // a removal still hanging: no throw
        Assert.Equal(1, _events.ExitedCount(launch.Token));
    }

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task FailedRemoval_IsTriedAgain_UntilTheContainerIsGone(string failure)
    {
        var deletes = 0;
        _daemon.Intercept = r => r.Method == "DELETE" && Interlocked.Increment(ref deletes) == 1 ? Reply(failure) : null;
        var launch = MakeLaunch();
        Driver().Launch(launch, _events);
        await _events.WaitStartedAsync(launch.Token);
        var id = _events.Handle(launch.Token)!;

        _daemon.Exit(id, 0);
        var exit = await _events.WaitExitedAsync(launch.Token);
        await _daemon.WaitRemovedAsync(id).WaitAsync(AttemptEventRecorder.HangGuard);

        Assert.Equal(0, exit.ExitCode);
        Assert.Empty(_daemon.ContainerIds);
    }

    [Fact]
    public async Task Reattach_ExitIsReported_WhileRemovingTheContainerHangs()
    {
        _daemon.Intercept = r => r.Method == "DELETE" ? new FakeDockerReply.Hang() : null;
        var token = NextToken();
        var id = _daemon.AddContainer(new Dictionary<string, string>
        {
            [DockerHostDriver.AttemptLabel] = "1",
            [DockerHostDriver.JobIdLabel] = "job-reattached",
            [DockerHostDriver.JobAttemptLabel] = "1",
        }, running: true);
        var driver = Driver();

        var taken = driver.TryReattach(new AttemptReattach
        {
            Token = token, JobId = "job-reattached", Attempt = 1, LogStreamName = "fake/default/reattached", HostName = "local", Handle = id,
        }, _events);
        Assert.True(taken);
        await _events.WaitStartedAsync(token);
        _daemon.Exit(id, 4);
        var exit = await _events.WaitExitedAsync(token);

        Assert.Equal(4, exit.ExitCode);
    }

    [Theory]
    [InlineData("inspect")]
    [InlineData("pull")]
    [InlineData("pull-stream")]
    public async Task Terminate_WhileTheImageIsInspectedOrPulled_EndsTheAttemptUnstarted(string stage)
    {
        _daemon.MissingImages[Image] = 0;
        _daemon.Intercept = r => stage switch
        {
            "inspect" when r.Is("GET", "/images/") => new FakeDockerReply.Hang(),
            "pull" when r.Is("POST", "/images/create") => new FakeDockerReply.Hang(),
            "pull-stream" when r.Is("POST", "/images/create") => new FakeDockerReply.HangMidStream("{\"status\":\"Pulling fs layer\"}\n"),
            _ => null,
        };
        var driver = Driver(o => o with { ImagePullTimeout = TimeSpan.FromHours(1) });
        var launch = MakeLaunch();
        driver.Launch(launch, _events);
        await _daemon.WaitForRequestAsync(r => stage == "inspect" ? r.Is("GET", "/images/") : r.Is("POST", "/images/create"))
            .WaitAsync(AttemptEventRecorder.HangGuard);

        driver.Terminate(launch.Token, TimeSpan.Zero);
        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Equal(new AttemptExit(null, DockerHostDriver.TerminatedBeforeStartReason), exit);
        Assert.Equal(0, _events.StartedCount(launch.Token));
        Assert.DoesNotContain(_daemon.Requests, r => r.Is("POST", "/containers/create"));
    }

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task FailedStop_IsTriedAgain_UntilTheContainerStops(string failure)
    {
        var stops = 0;
        _daemon.Intercept = r => r.Is("POST", "/containers/") && r.Path.EndsWith("/stop", StringComparison.Ordinal)
            && Interlocked.Increment(ref stops) == 1 ? Reply(failure) : null;
        var driver = Driver();
        var launch = MakeLaunch();
        driver.Launch(launch, _events);
        await _events.WaitStartedAsync(launch.Token);

        driver.Terminate(launch.Token, TimeSpan.Zero);
        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Equal(143, exit.ExitCode);
        Assert.True(Volatile.Read(ref stops) >= 2, "the failed stop was tried again");
    }

    [Fact]
    public async Task StopsThatKeepFailing_EndInAKill()
    {
        _daemon.Intercept = r => r.Is("POST", "/containers/") && r.Path.EndsWith("/stop", StringComparison.Ordinal)
            ? new FakeDockerReply.Respond(500, "{\"message\":\"cannot stop container: permission denied\"}")
            : null;
        var driver = Driver();
        var launch = MakeLaunch();
        driver.Launch(launch, _events);
        await _events.WaitStartedAsync(launch.Token);

        driver.Terminate(launch.Token, TimeSpan.Zero);
        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Equal(137, exit.ExitCode);
        Assert.Contains(_daemon.Requests, r => r.Is("POST", "/containers/") && r.Path.EndsWith("/kill", StringComparison.Ordinal));
    }

    [Fact]
    public async Task CreateWithoutAnAnswer_FailsTheAttempt_AndRemovesTheContainerTheDaemonCreated()
    {
        _daemon.Intercept = r => r.Is("POST", "/containers/create") ? new FakeDockerReply.ActThenDrop() : null;
        var launch = MakeLaunch();
        Driver().Launch(launch, _events);

        var exit = await _events.WaitExitedAsync(launch.Token);
        var id = await _daemon.WaitCreatedAsync().WaitAsync(AttemptEventRecorder.HangGuard);
        await _daemon.WaitRemovedAsync(id).WaitAsync(AttemptEventRecorder.HangGuard);

        Assert.Null(exit.ExitCode);
        Assert.StartsWith("CannotCreateContainerError:", exit.Reason, StringComparison.Ordinal);
        Assert.Equal(0, _events.StartedCount(launch.Token));
        Assert.Empty(_daemon.ContainerIds);
    }

    [Fact]
    public async Task Terminate_WhileCreateHangs_EndsTheAttemptUnstarted_AndRemovesTheContainer()
    {
        _daemon.Intercept = r => r.Is("POST", "/containers/create") ? new FakeDockerReply.ActThenHang() : null;
        var driver = Driver();
        var launch = MakeLaunch();
        driver.Launch(launch, _events);
        var id = await _daemon.WaitCreatedAsync().WaitAsync(AttemptEventRecorder.HangGuard);

        driver.Terminate(launch.Token, TimeSpan.Zero);
        var exit = await _events.WaitExitedAsync(launch.Token);
        await _daemon.WaitRemovedAsync(id).WaitAsync(AttemptEventRecorder.HangGuard);

        Assert.Equal(new AttemptExit(null, DockerHostDriver.TerminatedBeforeStartReason), exit);
        Assert.Empty(_daemon.ContainerIds);
    }

    [Fact]
    public async Task StartWithoutAnAnswer_FailsTheAttemptToStart_AndRemovesTheContainer()
    {
        // The daemon starts the container but never confirms it.
        _daemon.Intercept = r => IsStart(r) ? new FakeDockerReply.ActThenHang() : null;
        var launch = MakeLaunch();
        Driver(o => o with { StartRequestTimeout = TimeSpan.FromMilliseconds(200) }).Launch(launch, _events);

        var exit = await _events.WaitExitedAsync(launch.Token);
        var id = await _daemon.WaitCreatedAsync().WaitAsync(AttemptEventRecorder.HangGuard);
        await _daemon.WaitRemovedAsync(id).WaitAsync(AttemptEventRecorder.HangGuard);

        Assert.Null(exit.ExitCode);
        Assert.True(exit.HostFailure);
        Assert.StartsWith("CannotStartContainerError: the Docker daemon did not answer the start", exit.Reason, StringComparison.Ordinal);
        Assert.Equal(0, _events.StartedCount(launch.Token));
        Assert.Empty(_daemon.ContainerIds);
    }

    [Fact]
    public async Task Terminate_WhileTheStartHangs_EndsTheAttemptUnstarted_AndRemovesTheContainer()
    {
        _daemon.Intercept = r => IsStart(r) ? new FakeDockerReply.Hang() : null;
        var driver = Driver(o => o with { StartRequestTimeout = TimeSpan.FromHours(1) });
        var launch = MakeLaunch();
        driver.Launch(launch, _events);
        await _daemon.WaitForRequestAsync(IsStart).WaitAsync(AttemptEventRecorder.HangGuard);
        var id = await _daemon.WaitCreatedAsync().WaitAsync(AttemptEventRecorder.HangGuard);

        driver.Terminate(launch.Token, TimeSpan.Zero);
        var exit = await _events.WaitExitedAsync(launch.Token);
        await _daemon.WaitRemovedAsync(id).WaitAsync(AttemptEventRecorder.HangGuard);

        Assert.Equal(new AttemptExit(null, DockerHostDriver.TerminatedBeforeStartReason), exit);
        Assert.Equal(0, _events.StartedCount(launch.Token));
        Assert.Empty(_daemon.ContainerIds);
    }

    [Theory]
    [InlineData("error")]
    [InlineData("drop")]
    public async Task FailedWait_ContainerStillRunning_IsWaitedForAgain_AndItsExitReported(string failure)
    {
        var waits = 0;
        _daemon.Intercept = r => IsWait(r) && Interlocked.Increment(ref waits) == 1 ? Reply(failure) : null;
        var launch = MakeLaunch();
        Driver().Launch(launch, _events);
        await _events.WaitStartedAsync(launch.Token);
        var id = _events.Handle(launch.Token)!;
        await _daemon.WaitForRequestAsync(IsInspect).WaitAsync(AttemptEventRecorder.HangGuard);
        var again = await WaitForRequestCountAsync(IsWait, 2);

        _daemon.Exit(id, 5);
        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Equal(new AttemptExit(5), exit);
        Assert.Equal(id, FakeDockerDaemon.ContainerIdOf(again));
        await _daemon.WaitRemovedAsync(id).WaitAsync(AttemptEventRecorder.HangGuard);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task DaemonRestart_TheLogFollowResumes_NeitherLosingNorRepeatingALine(bool exitsWhileDown)
    {
        var launch = MakeLaunch();
        Driver().Launch(launch, _events);
        await _events.WaitStartedAsync(launch.Token);
        var id = _events.Handle(launch.Token)!;
        var second = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);
        _daemon.Log(id, "one\n", second.AddMilliseconds(100));
        _daemon.Log(id, "two\n", second.AddMilliseconds(500), stderr: true);
        _daemon.Log(id, "three\n", second.AddMilliseconds(500)); // stamped as the one before it
        await WaitForLinesAsync(launch, 3);

        // The daemon restarts: the exit wait and the log follow are cut off. The job writes on meanwhile, in the same
        // second (since, whole seconds, replays the lines above) and with the same stamp as the last line delivered.
        _daemon.DropConnections();
        _daemon.Log(id, "four\n", second.AddMilliseconds(500));
        _daemon.Log(id, "five\n", second.AddMilliseconds(900), stderr: true);
        _daemon.Log(id, "six\n", second.AddSeconds(1));
        if (!exitsWhileDown)
        {
            await WaitForRequestCountAsync(IsLogs, 2);
            await WaitForLinesAsync(launch, 6);
            _daemon.Log(id, "seven\n", second.AddSeconds(2)); // followed as it comes
            await WaitForLinesAsync(launch, 7);
        }

        _daemon.Exit(id, 3);
        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Equal(new AttemptExit(3), exit);
        Assert.Equal(exitsWhileDown ? ["one", "two", "three", "four", "five", "six"] : ["one", "two", "three", "four", "five", "six", "seven"], Lines(launch));
        var resumed = _daemon.Requests.Where(IsLogs).Skip(1).First();
        Assert.Contains("since=1700000000", resumed.Query, StringComparison.Ordinal);
        Assert.Matches("timestamps=(1|true|True)(&|$)", resumed.Query);
    }

    [Fact]
    public async Task LogFollow_EndsWithTheContainer_WithoutASecondFollow()
    {
        var launch = MakeLaunch();
        Driver().Launch(launch, _events);
        await _events.WaitStartedAsync(launch.Token);
        var id = _events.Handle(launch.Token)!;
        _daemon.Log(id, "out\n", DateTimeOffset.FromUnixTimeSeconds(1_700_000_000));
        _daemon.Log(id, "err, no newline", DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), stderr: true);

        _daemon.Exit(id, 0);
        await _events.WaitExitedAsync(launch.Token);

        Assert.Equal(["out", "err, no newline"], Lines(launch));
        Assert.Single(_daemon.Requests, IsLogs);
    }

    [Fact]
    public async Task FailedWait_ContainerExitedMeanwhile_ReportsItsExitCode()
    {
        var waits = 0;
        _daemon.Intercept = r =>
        {
            if (!IsWait(r) || Interlocked.Increment(ref waits) != 1)
            {
                return null;
            }

            _daemon.Exit(FakeDockerDaemon.ContainerIdOf(r), 7); // the daemon restarts: the job ended meanwhile
            return new FakeDockerReply.Drop();
        };
        var launch = MakeLaunch();
        Driver().Launch(launch, _events);

        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Equal(new AttemptExit(7), exit);
        Assert.Equal(1, _events.StartedCount(launch.Token));
    }

    [Fact]
    public async Task FailedWait_ContainerGone_FailsTheAttemptAsAHostFailure_WithTheReason()
    {
        _daemon.Intercept = r =>
        {
            if (!IsWait(r))
            {
                return null;
            }

            _daemon.Remove(FakeDockerDaemon.ContainerIdOf(r)); // docker rm -f from outside
            return new FakeDockerReply.Drop();
        };
        var launch = MakeLaunch();
        Driver().Launch(launch, _events);

        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Null(exit.ExitCode);
        Assert.True(exit.HostFailure);
        Assert.StartsWith("CannotInspectContainerError: container ", exit.Reason, StringComparison.Ordinal);
        Assert.Contains(" is gone ", exit.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FailedWait_DaemonNotAnswering_GivesTheAttemptUpAfterTheBoundedTries()
    {
        _daemon.Intercept = r => IsWait(r) || IsInspect(r) ? new FakeDockerReply.Respond(500, "{\"message\":\"daemon busy\"}") : null;
        var launch = MakeLaunch();
        Driver(o => o with { LostWaitTries = 3 }).Launch(launch, _events);

        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Null(exit.ExitCode);
        Assert.True(exit.HostFailure);
        Assert.Equal("CannotInspectContainerError: lost the wait for container " + _events.Handle(launch.Token)
            + " and could not inspect it 3 times in a row: daemon busy", exit.Reason);
        Assert.Equal(3, _daemon.Requests.Count(IsWait));
    }

    [Fact]
    public async Task InspectAfterTheExitFails_TheExitCodeIsStillReported()
    {
        _daemon.Intercept = r => IsInspect(r) ? new FakeDockerReply.Respond(500, "{\"message\":\"daemon busy\"}") : null;
        var launch = MakeLaunch();
        Driver().Launch(launch, _events);
        await _events.WaitStartedAsync(launch.Token);

        _daemon.Exit(_events.Handle(launch.Token)!, 3);
        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Equal(new AttemptExit(3), exit);
    }

    [Fact]
    public async Task Launch_LabelsTheContainerWithTheEngineId_AndATagCannotFakeIt()
    {
        var driver = Driver();
        var journaled = MakeLaunch() with { EngineId = EngineA };
        var plain = MakeLaunch() with { Tags = new Dictionary<string, string> { [DockerHostDriver.EngineIdLabel] = EngineB } };
        driver.Launch(journaled, _events);
        driver.Launch(plain, _events);
        await _events.WaitStartedAsync(journaled.Token);
        await _events.WaitStartedAsync(plain.Token);

        Assert.Equal(EngineA, _daemon.LabelsOf(_events.Handle(journaled.Token)!)![DockerHostDriver.EngineIdLabel]);
        Assert.False(_daemon.LabelsOf(_events.Handle(plain.Token)!)!.ContainsKey(DockerHostDriver.EngineIdLabel));
    }

    [Theory]
    [InlineData(true, "hang")]
    [InlineData(false, "hang")]
    [InlineData(true, "error")]
    public async Task Reattach_ThatGivesUp_RemovesTheContainer_SoThatNothingRunsOnUnobserved(bool byHandle, string failure)
    {
        var id = _daemon.AddContainer(Labels(NextToken(), "job-slow", EngineA), running: true);
        var other = _daemon.AddContainer(Labels(NextToken(), "job-other", EngineA), running: true);
        var looks = 0;
        // The daemon does not answer (or fails) the re-attach's look for the container: the inspect by its id, or the list by its labels.
        _daemon.Intercept = r => (byHandle ? IsInspect(r) : r.Is("GET", "/containers/json")) && Interlocked.Increment(ref looks) == 1
            ? Reply(failure)
            : null;
        var driver = Driver(o => o with { ReattachTimeout = TimeSpan.FromMilliseconds(200) });
        var token = NextToken();

        var taken = driver.TryReattach(Reattach(token, "job-slow", byHandle ? id : null), _events);
        await _daemon.WaitRemovedAsync(id).WaitAsync(AttemptEventRecorder.HangGuard);

        Assert.False(taken);
        Assert.Equal([other], _daemon.ContainerIds); // only the attempt's own container
        Assert.Equal(0, _events.StartedCount(token));
        Assert.Equal(0, _events.ExitedCount(token));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Reattach_NeverTakesAnotherEnginesContainer_OfAJobOfTheSameId(bool byHandle)
    {
        var theirs = _daemon.AddContainer(Labels(NextToken(), "job-shared", EngineB), running: true);
        var ours = _daemon.AddContainer(Labels(NextToken(), "job-ours", EngineA), running: true);
        var driver = Driver();

        var takenTheirs = driver.TryReattach(Reattach(NextToken(), "job-shared", byHandle ? theirs : null), _events);
        var oursToken = NextToken();
        var takenOurs = driver.TryReattach(Reattach(oursToken, "job-ours", byHandle ? ours : null), _events);
        await _events.WaitStartedAsync(oursToken);

        Assert.False(takenTheirs);
        Assert.True(takenOurs);
        Assert.Contains(theirs, _daemon.ContainerIds);
        Assert.DoesNotContain(_daemon.Requests, r => r.Path.StartsWith("/containers/" + theirs + "/", StringComparison.Ordinal) && r.Path != "/containers/" + theirs + "/json");
    }

    [Fact]
    public async Task Launch_RemovesLeftoversOfTheSameJobAndAttempt_OfItsOwnEngineOnly()
    {
        var theirs = _daemon.AddContainer(Labels(NextToken(), "job-again", EngineB), running: true);
        var leftover = _daemon.AddContainer(Labels(NextToken(), "job-again", EngineA), running: true);
        var launch = MakeLaunch() with { JobId = "job-again", Reattachable = true, EngineId = EngineA };

        Driver().Launch(launch, _events);
        await _events.WaitStartedAsync(launch.Token);
        await _daemon.WaitRemovedAsync(leftover).WaitAsync(AttemptEventRecorder.HangGuard);

        Assert.Contains(theirs, _daemon.ContainerIds);
    }

    [Fact]
    public async Task FirstLaunch_SweepsItsEnginesLeftovers_AndNothingAnAttemptFollowsOrAnotherEngineOwns()
    {
        // Leftovers of engine A that no attempt follows: exited, running, never started.
        var exited = _daemon.AddContainer(Labels(NextToken(), "job-left-1", EngineA), running: false, exitCode: 0);
        var running = _daemon.AddContainer(Labels(NextToken(), "job-left-2", EngineA), running: true);
        var created = _daemon.AddContainer(Labels(NextToken(), "job-left-3", EngineA), running: false);
        // Followed: re-attached by this driver, and by another driver of the same engine on the same daemon (a second host).
        var reattached = _daemon.AddContainer(Labels(NextToken(), "job-back-1", EngineA), running: true);
        var otherHosts = _daemon.AddContainer(Labels(NextToken(), "job-back-2", EngineA), running: true);
        // Not engine A's: another engine's, BatchCore's without an engine id, and one without BatchCore's labels.
        var theirs = _daemon.AddContainer(Labels(NextToken(), "job-theirs", EngineB), running: true);
        var noEngine = _daemon.AddContainer(Labels(NextToken(), "job-no-engine", null), running: false, exitCode: 1);
        var foreign = _daemon.AddContainer(new Dictionary<string, string> { ["app"] = "web" }, running: true);
        var swept = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var driver = Driver(o => o with { Swept = n => swept.TrySetResult(n) });
        await using var other = new DockerHostDriver(Options());
        var back = NextToken();
        var otherBack = NextToken();
        Assert.True(driver.TryReattach(Reattach(back, "job-back-1", reattached), _events));
        Assert.True(other.TryReattach(Reattach(otherBack, "job-back-2", otherHosts), _events));
        await _events.WaitStartedAsync(back);
        await _events.WaitStartedAsync(otherBack);

        var launch = MakeLaunch() with { Reattachable = true, EngineId = EngineA };
        driver.Launch(launch, _events);
        var removed = await swept.Task.WaitAsync(AttemptEventRecorder.HangGuard);
        await _events.WaitStartedAsync(launch.Token);

        Assert.Equal(3, removed);
        Assert.DoesNotContain(exited, _daemon.ContainerIds);
        Assert.DoesNotContain(running, _daemon.ContainerIds);
        Assert.DoesNotContain(created, _daemon.ContainerIds);
        Assert.Equal(
            new[] { reattached, otherHosts, theirs, noEngine, foreign, _events.Handle(launch.Token)! }.Order(),
            _daemon.ContainerIds.Order());
        Assert.Equal(0, _events.ExitedCount(back));
        Assert.Equal(0, _events.ExitedCount(otherBack));
        Assert.Equal(0, _events.ExitedCount(launch.Token));
    }

    [Fact]
    public async Task Reattaching_DoesNotSweep_OnlyALaunchDoes()
    {
        // Re-attach is not settled while the engine recovers: a container another host's driver is about to take back
        // must not be swept by one that re-attached first.
        var later = _daemon.AddContainer(Labels(NextToken(), "job-later", EngineA), running: true);
        var mine = _daemon.AddContainer(Labels(NextToken(), "job-mine", EngineA), running: true);
        var sweeps = 0;
        var driver = Driver(o => o with { Swept = _ => Interlocked.Increment(ref sweeps) });
        var token = NextToken();

        Assert.True(driver.TryReattach(Reattach(token, "job-mine", mine), _events));
        await _events.WaitStartedAsync(token);
        _daemon.Exit(mine, 0);
        await _events.WaitExitedAsync(token);
        await _daemon.WaitRemovedAsync(mine).WaitAsync(AttemptEventRecorder.HangGuard);
        _driver = null;
        await driver.DisposeAsync().AsTask().WaitAsync(AttemptEventRecorder.HangGuard); // awaits any sweep under way

        Assert.Equal(0, Volatile.Read(ref sweeps));
        Assert.Contains(later, _daemon.ContainerIds);
        Assert.DoesNotContain(_daemon.Requests, r => r.Is("GET", "/containers/json") && r.Query.Contains("engine-id", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(null)]
    [InlineData(EngineA)]
    public async Task RemovalThatGaveUp_IsSweptLater(string? engineId)
    {
        var deletes = 0;
        _daemon.Intercept = r => r.Method == "DELETE" && Interlocked.Increment(ref deletes) <= 2
            ? new FakeDockerReply.Respond(500, "{\"message\":\"device or resource busy\"}")
            : null;
        var launch = MakeLaunch() with { EngineId = engineId };
        Driver(o => o with { RemoveTries = 2, SweepInterval = TimeSpan.FromMilliseconds(100) }).Launch(launch, _events);
        await _events.WaitStartedAsync(launch.Token);
        var id = _events.Handle(launch.Token)!;

        _daemon.Exit(id, 0);
        var exit = await _events.WaitExitedAsync(launch.Token);
        await _daemon.WaitRemovedAsync(id).WaitAsync(AttemptEventRecorder.HangGuard);

        Assert.Equal(new AttemptExit(0), exit);
        Assert.True(Volatile.Read(ref deletes) >= 3, "removed by the sweep after the removal gave up");
        Assert.Empty(_daemon.ContainerIds);
    }

    [Fact]
    public async Task SweepThatCouldNotRemoveALeftover_TriesAgain()
    {
        var leftover = _daemon.AddContainer(Labels(NextToken(), "job-left", EngineA), running: true);
        var deletes = 0;
        _daemon.Intercept = r => r.Is("DELETE", "/containers/" + leftover) && Interlocked.Increment(ref deletes) == 1
            ? new FakeDockerReply.Drop()
            : null;
        var driver = Driver(o => o with { SweepInterval = TimeSpan.FromMilliseconds(100) });

        driver.Launch(MakeLaunch() with { EngineId = EngineA }, _events);
        await _daemon.WaitRemovedAsync(leftover).WaitAsync(AttemptEventRecorder.HangGuard);

        Assert.Equal(2, Volatile.Read(ref deletes));
    }

    private const string EngineA = "aaaaaaaaaaaaaaaa";
    private const string EngineB = "bbbbbbbbbbbbbbbb";

    /// <summary>The labels a launch of attempt 1 of <paramref name="jobId"/> by the engine <paramref name="engineId"/> gave its container.</summary>
    private static Dictionary<string, string> Labels(AttemptToken token, string jobId, string? engineId)
    {
        var labels = new Dictionary<string, string>
        {
            [DockerHostDriver.AttemptLabel] = token.Value.ToString(CultureInfo.InvariantCulture),
            [DockerHostDriver.JobIdLabel] = jobId,
            [DockerHostDriver.JobAttemptLabel] = "1",
        };
        if (engineId is not null)
        {
            labels[DockerHostDriver.EngineIdLabel] = engineId;
        }

        return labels;
    }

    private static AttemptReattach Reattach(AttemptToken token, string jobId, string? handle) => new()
    {
        Token = token, JobId = jobId, Attempt = 1, LogStreamName = "fake/default/" + jobId, HostName = "local", Handle = handle, EngineId = EngineA,
    };

    private async Task<FakeDockerRequest> WaitForRequestCountAsync(Func<FakeDockerRequest, bool> match, int count)
    {
        var seen = 0;
        return await _daemon.WaitForRequestAsync(r => match(r) && ++seen == count).WaitAsync(AttemptEventRecorder.HangGuard);
    }

    private static bool IsLogs(FakeDockerRequest r) => r.Is("GET", "/containers/") && r.Path.EndsWith("/logs", StringComparison.Ordinal);

    private List<string> Lines(AttemptLaunch launch) => [.. _logs.GetLogEvents(launch.LogStreamName).Events.Select(e => e.Message)];

    /// <summary>Waits (hang guard) until the attempt's log stream has <paramref name="count"/> lines.</summary>
    private async Task WaitForLinesAsync(AttemptLaunch launch, int count)
    {
        var deadline = DateTime.UtcNow + AttemptEventRecorder.HangGuard;
        while (!_logs.StreamExists(launch.LogStreamName) || Lines(launch).Count < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{count} lines not logged (hang guard): {string.Join('|', _logs.StreamExists(launch.LogStreamName) ? Lines(launch) : [])}");
            await Task.Delay(10);
        }
    }

    private static bool IsWait(FakeDockerRequest r) => r.Is("POST", "/containers/") && r.Path.EndsWith("/wait", StringComparison.Ordinal);

    private static bool IsInspect(FakeDockerRequest r) =>
        r.Is("GET", "/containers/") && r.Path != "/containers/json" && r.Path.EndsWith("/json", StringComparison.Ordinal);

    private static bool IsStart(FakeDockerRequest r) => r.Is("POST", "/containers/") && r.Path.EndsWith("/start", StringComparison.Ordinal);

    private static FakeDockerReply Reply(string failure) => failure switch
    {
        "hang" => new FakeDockerReply.Hang(),
        "error" => new FakeDockerReply.Respond(500, "{\"message\":\"daemon busy\"}"),
        "drop" => new FakeDockerReply.Drop(),
        _ => throw new ArgumentOutOfRangeException(nameof(failure)),
    };

    /// <summary>The driver on the fake daemon, with short request bounds and retry waits so that a hung request is given up soon.</summary>
    private DockerHostDriver Driver(Func<DockerHostDriverOptions, DockerHostDriverOptions>? configure = null)
    {
        var options = Options();
        _driver = new DockerHostDriver(configure is null ? options : configure(options));
        return _driver;
    }

    private DockerHostDriverOptions Options() => new()
    {
        LogStore = _logs,
        Endpoint = _daemon.Endpoint,
        RemoveRequestTimeout = TimeSpan.FromSeconds(2),
        StopRequestMargin = TimeSpan.FromSeconds(2),
        RetryDelay = TimeSpan.FromMilliseconds(50),
    };

    private static AttemptToken NextToken() => new(Interlocked.Increment(ref s_nextToken));

    private static AttemptLaunch MakeLaunch()
    {
        var token = NextToken();
        var n = token.Value.ToString(CultureInfo.InvariantCulture);
        return new AttemptLaunch
        {
            Token = token,
            JobId = "job-" + n,
            Attempt = 1,
            JobDefinitionName = "fake",
            LogStreamName = "fake/default/" + n,
            Image = Image,
            Command = ["true"],
            Environment = new Dictionary<string, string>(),
            Vcpus = 1,
            MemoryMiB = 64,
            HostName = "local",
        };
    }
}
