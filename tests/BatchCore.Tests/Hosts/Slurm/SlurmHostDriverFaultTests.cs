using BatchCore.Hosts;
using BatchCore.Hosts.Slurm;
using BatchCore.Logs;

namespace BatchCore.Tests.Hosts.Slurm;

/// <summary>
/// <see cref="SlurmHostDriver"/> against a <see cref="FakeSlurm"/>: what a real cluster rarely shows on demand — a
/// controller that does not answer, an sbatch that fails or hangs after queueing the job, a scancel that fails, a log
/// store that throws, an engine that died while its Slurm jobs ran. Waits are hang guards, never timed assertions.
/// </summary>
public sealed class SlurmHostDriverFaultTests : IAsyncDisposable
{
    private readonly FakeSlurm _slurm = new();
    private readonly InMemoryLogStore _logs = new();
    private readonly AttemptEventRecorder _events = new();
    private readonly List<(FakeSlurmClient Client, SlurmHostDriver Driver)> _crashed = [];

    public async ValueTask DisposeAsync()
    {
        foreach (var (client, driver) in _crashed)
        {
            client.FailSqueue(false); // so that its attempt ends and disposal does not wait out its guard
            await driver.DisposeAsync();
        }

        _slurm.Dispose();
    }

    [Fact]
    public async Task Launch_RunsTheJob_ReportsItsOutputAndExit()
    {
        var client = _slurm.Client();
        await using var driver = new SlurmHostDriver(client.Options(_logs));
        var launch = Launch(1);

        driver.Launch(launch, _events);
        var job = await _slurm.WaitForJobAsync();
        _slurm.Run(job, "one\n");
        await _events.WaitStartedAsync(launch.Token);
        _slurm.Complete(job, 3, "two\n");
        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Equal(3, exit.ExitCode);
        Assert.Equal(["one", "two"], Lines(launch));
    }

    // ---- the log store ----------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task LogStoreThatThrows_LosesLines_NotTheAttempt(bool ioException)
    {
        var client = _slurm.Client();
        await using var driver = new SlurmHostDriver(client.Options(new ThrowingLogStore(ioException)));
        var launch = Launch(1);

        driver.Launch(launch, _events);
        var job = await _slurm.WaitForJobAsync();
        _slurm.Run(job, "one\n");
        await _events.WaitStartedAsync(launch.Token);
        _slurm.Complete(job, 0, "last line without a newline");
        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Equal(0, exit.ExitCode);

        // The driver goes on with its other attempts.
        var next = Launch(2, "job-2");
        driver.Launch(next, _events);
        var nextJob = await _slurm.WaitForJobAsync(2);
        _slurm.Run(nextJob, "x\n");
        _slurm.Complete(nextJob, 5);
        Assert.Equal(5, (await _events.WaitExitedAsync(next.Token)).ExitCode);
    }

    // ---- terminate ----------------------------------------------------------------------------------------------------

    [Fact]
    public async Task Terminate_RunningJob_AFailedScancelIsSentAgain()
    {
        var client = _slurm.Client();
        await using var driver = new SlurmHostDriver(client.Options(_logs));
        var launch = Launch(1);
        driver.Launch(launch, _events);
        var job = await _slurm.WaitForJobAsync();
        _slurm.Run(job);
        await _events.WaitStartedAsync(launch.Token);
        client.FailScancel(1);

        driver.Terminate(launch.Token, TimeSpan.FromHours(1)); // no SIGKILL deadline comes to the rescue
        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Equal(143, exit.ExitCode);
        Assert.Equal(2, client.Calls().Count(c => c == $"scancel --signal=TERM --full {job.Id}"));
        Assert.Equal("CANCELLED", _slurm.Job(job.Id).State);
    }

    [Fact]
    public async Task Terminate_PendingJob_AFailedScancelIsSentAgain()
    {
        var client = _slurm.Client();
        await using var driver = new SlurmHostDriver(client.Options(_logs));
        var launch = Launch(1);
        driver.Launch(launch, _events);
        var job = await _slurm.WaitForJobAsync();
        await FakeSlurm.WaitUntilAsync(() => driver.SlurmJobId(launch.Token) is not null, "sbatch answered");
        client.FailScancel(1);

        driver.Terminate(launch.Token, TimeSpan.FromSeconds(30));
        var exit = await _events.WaitExitedAsync(launch.Token);

        Assert.Null(exit.ExitCode);
        Assert.Equal(SlurmHostDriver.TerminatedBeforeStartReason, exit.Reason);
        Assert.Equal("CANCELLED", _slurm.Job(job.Id).State);
        Assert.Equal(0, _events.StartedCount(launch.Token));
    }

    // ---- submission -------------------------------------------------------------------------------------------------

    [Fact]
    public async Task EachAttempt_IsSubmittedUnderItsOwnIdentity()
    {
        var client = _slurm.Client();
        await using var driver = new SlurmHostDriver(client.Options(_logs));
        var first = Launch(1, "job-1", attempt: 1);
        var retry = Launch(2, "job-1", attempt: 2);

        driver.Launch(first, _events);
        driver.Launch(retry, _events);
        await _slurm.WaitForJobAsync(2);
        var jobs = _slurm.Jobs();

        Assert.NotEqual(jobs[0].Name, jobs[1].Name);
        Assert.NotEqual(jobs[0].Comment, jobs[1].Comment);
        Assert.All(jobs, j => Assert.Contains("job-1", j.Name, StringComparison.Ordinal));
        foreach (var job in jobs)
        {
            _slurm.Run(job);
            _slurm.Complete(job, 0);
        }

        await _events.WaitExitedAsync(first.Token);
        await _events.WaitExitedAsync(retry.Token);
    }

    [Fact]
    public async Task Sbatch_FailsAfterTheJobWasQueued_TheJobIsCancelled_AndNoOtherJob()
    {
        var client = _slurm.Client();
        // The same job's attempt submitted by another engine (same name, another identity): never touched.
        var other = _slurm.AddJob("bc-job-1-1", "batchcore attempt=0123456789ab/1 files=/elsewhere/batchcore-0123456789ab/1", "RUNNING");
        client.SbatchMode("fail");
        await using var driver = new SlurmHostDriver(client.Options(_logs));
        var launch = Launch(1);

        driver.Launch(launch, _events);
        var exit = await _events.WaitExitedAsync(launch.Token);
        var queued = Assert.Single(_slurm.Jobs(), j => j.Id != other);
        await _slurm.WaitForStateAsync(queued.Id, "CANCELLED");

        Assert.Null(exit.ExitCode);
        Assert.StartsWith("CannotStartContainerError: sbatch: ", exit.Reason, StringComparison.Ordinal);
        Assert.Equal("RUNNING", _slurm.Job(other).State);
    }

    [Fact]
    public async Task Sbatch_HangsAfterTheJobWasQueued_TimesOut_AndTheJobIsCancelled()
    {
        var client = _slurm.Client();
        client.SbatchMode("hang");
        await using var driver = new SlurmHostDriver(client.Options(_logs) with { CommandTimeout = TimeSpan.FromSeconds(2) });
        var launch = Launch(1);

        driver.Launch(launch, _events);
        var exit = await _events.WaitExitedAsync(launch.Token);
        var queued = Assert.Single(_slurm.Jobs());
        await _slurm.WaitForStateAsync(queued.Id, "CANCELLED");

        Assert.Null(exit.ExitCode);
        Assert.Contains("took longer than", exit.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dispose_WhileSbatchRuns_CancelsTheQueuedJob()
    {
        var client = _slurm.Client();
        client.SbatchMode("hang");
        var driver = new SlurmHostDriver(client.Options(_logs));
        var launch = Launch(1);
        driver.Launch(launch, _events);
        var queued = await _slurm.WaitForJobAsync();

        await driver.DisposeAsync();

        Assert.Equal("CANCELLED", _slurm.Job(queued.Id).State);
        var exit = await _events.WaitExitedAsync(launch.Token);
        Assert.Equal(SlurmHostDriver.TerminatedBeforeStartReason, exit.Reason);
    }

    // ---- re-attach --------------------------------------------------------------------------------------------------

    [Fact]
    public async Task TryReattach_RunningJobByItsHandle_FollowsItToItsExit()
    {
        var (launch, job, handle) = await CrashWhileRunningAsync("before\n");
        await using var driver = new SlurmHostDriver(_slurm.Client().Options(_logs));
        var token = new AttemptToken(100);

        Assert.True(driver.TryReattach(Reattach(token, launch, handle), _events));
        await _events.WaitStartedAsync(token);
        _slurm.Complete(job, 0, "after\n");
        var exit = await _events.WaitExitedAsync(token);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(["before", "after"], Lines(launch));
        Assert.Equal(1, _events.ExitedCount(token));
    }

    [Fact]
    public async Task TryReattach_TheJobEnds_ThePreviousDriversDirectoryIsRemoved_AfterItsOutputWasRead()
    {
        var (launch, job, handle) = await CrashWhileRunningAsync("before\n");
        var previous = Path.GetDirectoryName(job.ResultFile)!;
        await using var driver = new SlurmHostDriver(_slurm.Client().Options(_logs));
        var token = new AttemptToken(100);

        Assert.True(driver.TryReattach(Reattach(token, launch, handle), _events));
        await _events.WaitStartedAsync(token);
        _slurm.Complete(job, 0, "after\n");
        var exit = await _events.WaitExitedAsync(token);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(["before", "after"], Lines(launch));
        Assert.False(Directory.Exists(previous), "the directory of the driver that died is left in the shared directory");
        Assert.Single(Directory.GetDirectories(_slurm.SharedDirectory)); // this driver's own, until it is disposed
    }

    [Fact]
    public async Task TryReattach_TheJobEnds_ThePreviousDriversDirectoryStays_WhileAnotherAttemptsFilesAreInIt()
    {
        var (launch, job, handle) = await CrashWhileRunningAsync();
        var previous = Path.GetDirectoryName(job.ResultFile)!;
        var other = Path.Combine(previous, "2.env"); // another attempt of that driver: its job may still run
        await File.WriteAllTextAsync(other, "");
        await using var driver = new SlurmHostDriver(_slurm.Client().Options(_logs));
        var token = new AttemptToken(100);

        Assert.True(driver.TryReattach(Reattach(token, launch, handle), _events));
        _slurm.Complete(job, 0);
        await _events.WaitExitedAsync(token);

        Assert.False(File.Exists(job.ResultFile));
        Assert.True(File.Exists(other));
        Assert.True(File.Exists(Path.Combine(previous, "wrapper.sh")));
    }

    [Fact]
    public async Task TryReattach_PendingJobWithoutAHandle_IsFoundByItsIdentity()
    {
        var (launch, job) = await CrashWhilePendingAsync();
        await using var driver = new SlurmHostDriver(_slurm.Client().Options(_logs));
        var token = new AttemptToken(100);

        Assert.True(driver.TryReattach(Reattach(token, launch, handle: null), _events));
        _slurm.Run(job, "hello\n");
        await _events.WaitStartedAsync(token);
        _slurm.Complete(job, 7);
        var exit = await _events.WaitExitedAsync(token);

        Assert.Equal(7, exit.ExitCode);
        Assert.Equal(["hello"], Lines(launch));
        Assert.NotNull(_events.Handle(token)); // journaled with RUNNING: a second crash finds it by its handle
    }

    [Fact]
    public async Task TryReattach_JobEndedAndPurgedWhileTheEngineWasDown_ReportsItsRecordedExit()
    {
        var (launch, job, handle) = await CrashWhileRunningAsync("hi\n");
        _slurm.Complete(job, 4, "bye\n");
        _slurm.Forget(job.Id);
        await using var driver = new SlurmHostDriver(_slurm.Client().Options(_logs));
        var token = new AttemptToken(100);

        Assert.True(driver.TryReattach(Reattach(token, launch, handle), _events));
        var exit = await _events.WaitExitedAsync(token);

        Assert.Equal(4, exit.ExitCode);
        Assert.Equal(["hi", "bye"], Lines(launch));
    }

    [Fact]
    public async Task TryReattach_JobGoneWithoutAResult_ReturnsFalse()
    {
        var (launch, job, handle) = await CrashWhileRunningAsync();
        _slurm.Forget(job.Id);
        await using var driver = new SlurmHostDriver(_slurm.Client().Options(_logs));

        Assert.False(driver.TryReattach(Reattach(new AttemptToken(100), launch, handle), _events));
        Assert.False(Directory.Exists(Path.GetDirectoryName(job.ResultFile)), "the directory of the driver that died is left behind");
    }

    [Fact]
    public async Task TryReattach_ThenTerminateAtOnce_CancelsTheSlurmJob()
    {
        // What the engine does with an attempt whose host is gone: take it back only to stop it.
        var (launch, job, handle) = await CrashWhileRunningAsync();
        await using var driver = new SlurmHostDriver(_slurm.Client().Options(_logs));
        var token = new AttemptToken(100);

        Assert.True(driver.TryReattach(Reattach(token, launch, handle), _events));
        driver.Terminate(token, TimeSpan.Zero);
        var exit = await _events.WaitExitedAsync(token);

        Assert.Equal("CANCELLED", _slurm.Job(job.Id).State);
        Assert.NotNull(exit.ExitCode);
    }

    [Fact]
    public async Task TryReattach_WithoutAHandle_WhenSlurmDoesNotAnswer_ReturnsFalse_AndCancelsTheJobOnceItAnswers()
    {
        var (launch, job) = await CrashWhilePendingAsync();
        var client = _slurm.Client();
        client.FailSqueue(true);
        await using var driver = new SlurmHostDriver(client.Options(_logs));

        Assert.False(driver.TryReattach(Reattach(new AttemptToken(100), launch, handle: null), _events));
        client.FailSqueue(false);

        await _slurm.WaitForStateAsync(job.Id, "CANCELLED");
    }

    [Fact]
    public async Task TryReattach_ByItsHandle_WhenSlurmDoesNotAnswer_TracksItUntilItAnswers()
    {
        var (launch, job, handle) = await CrashWhileRunningAsync();
        var client = _slurm.Client();
        client.FailSqueue(true);
        await using var driver = new SlurmHostDriver(client.Options(_logs));
        var token = new AttemptToken(100);

        Assert.True(driver.TryReattach(Reattach(token, launch, handle), _events));
        _slurm.Complete(job, 0);
        client.FailSqueue(false);
        var exit = await _events.WaitExitedAsync(token);

        Assert.Equal(0, exit.ExitCode);
    }

    // ---- helpers ----------------------------------------------------------------------------------------------------

    private static AttemptLaunch Launch(long token, string jobId = "job-1", int attempt = 1) => new()
    {
        Token = new AttemptToken(token),
        JobId = jobId,
        Attempt = attempt,
        JobDefinitionName = "def",
        Command = ["echo", "hi"],
        Environment = new Dictionary<string, string>(StringComparer.Ordinal) { ["A"] = "1" },
        Vcpus = 1,
        MemoryMiB = 64,
        HostName = "n1",
        Reattachable = true,
    };

    private static AttemptReattach Reattach(AttemptToken token, AttemptLaunch launch, string? handle) => new()
    {
        Token = token,
        JobId = launch.JobId,
        Attempt = launch.Attempt,
        LogStreamName = launch.LogStreamName,
        HostName = launch.HostName,
        Handle = handle,
    };

    private List<string> Lines(AttemptLaunch launch) =>
        [.. _logs.GetLogEvents(launch.LogStreamName).Events.Select(e => e.Message)];

    /// <summary>
    /// An engine's driver launches an attempt, sees it start (the handle the engine journals), then the engine dies: its
    /// driver's squeue fails from then on, so it reports nothing more (it is disposed when the test ends).
    /// </summary>
    private async Task<(AttemptLaunch Launch, FakeJob Job, string Handle)> CrashWhileRunningAsync(string output = "")
    {
        var (client, driver, events, launch, job) = await LaunchOnCrashingDriverAsync();
        _slurm.Run(job, output);
        await events.WaitStartedAsync(launch.Token);
        var handle = events.Handle(launch.Token);
        client.FailSqueue(true);
        Assert.True(handle is not null, "Started carried no re-attach handle");
        return (launch, job, handle);
    }

    /// <summary>As <see cref="CrashWhileRunningAsync"/>, but the engine dies while the job is still pending (no handle journaled).</summary>
    private async Task<(AttemptLaunch Launch, FakeJob Job)> CrashWhilePendingAsync()
    {
        var (client, _, _, launch, job) = await LaunchOnCrashingDriverAsync();
        client.FailSqueue(true);
        return (launch, job);
    }

    private async Task<(FakeSlurmClient, SlurmHostDriver, AttemptEventRecorder, AttemptLaunch, FakeJob)> LaunchOnCrashingDriverAsync()
    {
        var client = _slurm.Client();
        var driver = new SlurmHostDriver(client.Options(new InMemoryLogStore()));
        _crashed.Add((client, driver));
        var events = new AttemptEventRecorder();
        var launch = Launch(1);
        driver.Launch(launch, events);
        var job = await _slurm.WaitForJobAsync();
        await FakeSlurm.WaitUntilAsync(() => driver.SlurmJobId(launch.Token) is not null, "sbatch answered");
        return (client, driver, events, launch, job);
    }

    private sealed class ThrowingLogStore(bool ioException) : LogStore
    {
        public override void Append(string logStreamName, long timestampMs, string message) =>
            throw (ioException ? new IOException("log volume full") : new InvalidOperationException("log store closed"));

        public override GetLogEventsResponse GetLogEvents(string logStreamName, string? nextToken = null, int limit = 10_000) => new([], null);

        public override bool StreamExists(string logStreamName) => false;
    }
}
