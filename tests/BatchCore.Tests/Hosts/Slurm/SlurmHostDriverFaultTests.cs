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

    public ValueTask DisposeAsync()
    {
        _slurm.Dispose();
        return ValueTask.CompletedTask;
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

    private List<string> Lines(AttemptLaunch launch) =>
        [.. _logs.GetLogEvents(launch.LogStreamName).Events.Select(e => e.Message)];

    private sealed class ThrowingLogStore(bool ioException) : LogStore
    {
        public override void Append(string logStreamName, long timestampMs, string message) =>
            throw (ioException ? new IOException("log volume full") : new InvalidOperationException("log store closed"));

        public override GetLogEventsResponse GetLogEvents(string logStreamName, string? nextToken = null, int limit = 10_000) => new([], null);

        public override bool StreamExists(string logStreamName) => false;
    }
}
