using System.Globalization;
using BatchCore.Hosts;
using BatchCore.Logs;

namespace BatchCore.Tests.Hosts;

/// <summary>What a contract test asks the job to do; each driver expresses it in its own terms.</summary>
public enum DummyJob
{
    /// <summary>Sleep args[0] seconds, exit 0.</summary>
    Sleep,
    /// <summary>Exit with code args[0].</summary>
    Exit,
    /// <summary>Print NAME=value for each name in args.</summary>
    Env,
    /// <summary>Print each argument on its own line, verbatim.</summary>
    Echo,
    /// <summary>Allocate and touch args[0] MiB, then hold it.</summary>
    Alloc,
    /// <summary>Burn one CPU for args[0] seconds, then print <c>cpu-permille=N</c> (CPU time / wall time × 1000).</summary>
    Spin,
    /// <summary>Print "ready", ignore SIGTERM, sleep args[0] seconds.</summary>
    IgnoreSigterm,
    /// <summary>Print args joined by spaces to stderr.</summary>
    Stderr,
}

/// <summary>
/// The host-driver contract (see <see cref="HostDriver"/>), one subclass per driver. Subclasses say how to create the
/// driver and how to express a <see cref="DummyJob"/> as a command. Awaits use <see cref="AttemptEventRecorder.HangGuard"/>
/// only to turn a hang into a failure; nothing here asserts on timing.
/// </summary>
public abstract class HostDriverContractTests : IAsyncLifetime
{
    protected const string MarkerVariable = "BATCHCORE_TEST_MARKER";
    private static long s_nextToken = 1_000;
    private HostDriver? _driver;

    protected InMemoryLogStore Logs { get; } = new();

    protected AttemptEventRecorder Events { get; } = new();

    protected HostDriver Driver => _driver ??= CreateDriver(Logs);

    /// <summary>Creates the driver under test, writing logs to <paramref name="logs"/>.</summary>
    protected abstract HostDriver CreateDriver(LogStore logs);

    /// <summary>The command that makes the driver's job do <paramref name="job"/>.</summary>
    protected abstract IReadOnlyList<string> Command(DummyJob job, params string[] args);

    /// <summary>A command whose executable does not exist.</summary>
    protected virtual IReadOnlyList<string> MissingExecutableCommand => ["batchcore-no-such-executable-4711"];

    /// <summary>Null when the driver can run at all here; otherwise every test skips with this reason.</summary>
    protected virtual string? UnavailableReason => null;

    /// <summary>Null when memory and CPU limits are enforced; otherwise limit tests skip with this reason.</summary>
    protected abstract string? LimitsUnavailableReason { get; }

    /// <summary>Null when a fractional vCPU quota is enforced; otherwise the CPU quota test skips with this reason.</summary>
    protected virtual string? CpuQuotaUnavailableReason => null;

    /// <summary>Why the driver does not resolve <c>containerProperties.secrets</c> itself, or null when it does.</summary>
    protected virtual string? SecretsUnsupportedReason => null;

    /// <summary>Driver-specific check that nothing of the attempt is left (cgroups, containers).</summary>
    protected virtual Task AssertNothingLeftAsync(AttemptLaunch launch) => Task.CompletedTask;

    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public virtual async ValueTask DisposeAsync()
    {
        if (_driver is not null)
        {
            await _driver.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>Builds a launch; subclasses add what their driver needs (an image).</summary>
    protected virtual AttemptLaunch MakeLaunch(IReadOnlyList<string> command, IReadOnlyDictionary<string, string>? environment = null,
        double vcpus = 1, int memoryMiB = 512)
    {
        var token = new AttemptToken(Interlocked.Increment(ref s_nextToken));
        var env = new Dictionary<string, string>(environment ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            [MarkerVariable] = Guid.NewGuid().ToString("N"),
            ["AWS_BATCH_JOB_ATTEMPT"] = "1",
        };
        return new AttemptLaunch
        {
            Token = token,
            JobId = "job-" + token.Value.ToString(CultureInfo.InvariantCulture),
            Attempt = 1,
            JobDefinitionName = "contract",
            LogStreamName = "contract/default/" + token.Value.ToString(CultureInfo.InvariantCulture),
            Command = command,
            Environment = env,
            Vcpus = vcpus,
            MemoryMiB = memoryMiB,
            HostName = "local",
        };
    }

    protected void RequireDriver()
    {
        if (UnavailableReason is { } reason)
        {
            Assert.Skip(reason);
        }
    }

    protected void RequireLimits()
    {
        RequireDriver();
        if (LimitsUnavailableReason is { } reason)
        {
            Assert.Skip("resource limits unavailable: " + reason);
        }
    }

    protected async Task<AttemptExit> RunAsync(AttemptLaunch launch)
    {
        Driver.Launch(launch, Events);
        var exit = await Events.WaitExitedAsync(launch.Token);
        await AssertCleanAsync(launch);
        return exit;
    }

    protected string[] LogLines(AttemptLaunch launch)
    {
        var events = Logs.GetLogEvents(launch.LogStreamName).Events;
        var lines = new string[events.Count];
        for (var i = 0; i < lines.Length; i++)
        {
            lines[i] = events[i].Message;
        }

        return lines;
    }

    /// <summary>Bounded polling (hang guard) until the attempt's log has a line equal to <paramref name="line"/>.</summary>
    protected async Task WaitForLogLineAsync(AttemptLaunch launch, string line)
    {
        using var guard = new CancellationTokenSource(AttemptEventRecorder.HangGuard);
        while (Array.IndexOf(LogLines(launch), line) < 0)
        {
            Assert.False(guard.IsCancellationRequested, $"log line '{line}' did not appear; log: {string.Join(" | ", LogLines(launch))}");
            await Task.Delay(20);
        }
    }

    /// <summary>Exactly one Started at most and exactly one Exited; no process of the attempt is alive.</summary>
    protected async Task AssertCleanAsync(AttemptLaunch launch)
    {
        Assert.Equal(1, Events.ExitedCount(launch.Token));
        Assert.True(Events.StartedCount(launch.Token) <= 1);
        var marker = MarkerVariable + "=" + launch.Environment[MarkerVariable];
        Assert.Empty(ProcessesWithEnvironment(marker));
        await AssertNothingLeftAsync(launch);
    }

    /// <summary>Pids of live processes whose initial environment contains <paramref name="entry"/> (zombies have none).</summary>
    protected static List<int> ProcessesWithEnvironment(string entry)
    {
        var found = new List<int>();
        if (!OperatingSystem.IsLinux())
        {
            return found;
        }

        var needle = System.Text.Encoding.UTF8.GetBytes(entry + "\0");
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var environ = File.ReadAllBytes(Path.Combine(dir, "environ"));
                if (environ.AsSpan().IndexOf(needle) >= 0)
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // gone, or a kernel thread
            }
        }

        return found;
    }

    [Fact]
    public async Task ExitCodeZero_ReportsStartedThenExitedZero()
    {
        RequireDriver();
        var launch = MakeLaunch(Command(DummyJob.Exit, "0"));

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        Assert.False(exit.HostFailure);
        Assert.Equal(["started:" + launch.Token.Value, "exited:" + launch.Token.Value], Events.Log);
    }

    [Fact]
    public async Task NonZeroExitCode_IsReported()
    {
        RequireDriver();
        var launch = MakeLaunch(Command(DummyJob.Exit, "3"));

        var exit = await RunAsync(launch);

        Assert.Equal(3, exit.ExitCode);
        Assert.Equal(1, Events.StartedCount(launch.Token));
    }

    [Fact]
    public async Task EnvironmentVariables_AreVisibleToTheJob()
    {
        RequireDriver();
        var launch = MakeLaunch(Command(DummyJob.Env, "GREETING", "AWS_BATCH_JOB_ID", "WITH_EQUALS"),
            new Dictionary<string, string>
            {
                ["GREETING"] = "hello world",
                ["AWS_BATCH_JOB_ID"] = "job-env",
                ["WITH_EQUALS"] = "a=b;$HOME",
            });

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        var lines = LogLines(launch);
        Assert.Contains("GREETING=hello world", lines);
        Assert.Contains("AWS_BATCH_JOB_ID=job-env", lines);
        Assert.Contains("WITH_EQUALS=a=b;$HOME", lines);
    }

    /// <summary>containerProperties.secrets reach the job as environment variables, resolved by the engine's resolver.</summary>
    [Fact]
    public async Task Secrets_AreVisibleToTheJob()
    {
        RequireDriver();
        RequireSecrets();
        var launch = MakeLaunch(Command(DummyJob.Env, "DB_PASSWORD")) with
        {
            Container = new BatchCore.Model.ContainerProperties { Secrets = [new() { Name = "DB_PASSWORD", ValueFrom = "arn:aws:secretsmanager:local:1:secret:db" }] },
            SecretResolver = (secret, _) => ValueTask.FromResult("value-of-" + secret.ValueFrom![(secret.ValueFrom!.LastIndexOf(':') + 1)..]),
        };

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        Assert.Contains("DB_PASSWORD=value-of-db", LogLines(launch));
    }

    /// <summary>A secret that cannot be resolved (no resolver, or the resolver throws): the attempt never starts (AWS).</summary>
    [Theory]
    [InlineData(false, "ResourceInitializationError: unable to pull secrets: DB (db): no secret resolver is configured (BatchEngineOptions.SecretResolver)")]
    [InlineData(true, "ResourceInitializationError: unable to pull secrets: DB (db): vault sealed")]
    public async Task Secrets_Unresolvable_TheAttemptDoesNotStart(bool withResolver, string reason)
    {
        RequireDriver();
        RequireSecrets();
        var launch = MakeLaunch(Command(DummyJob.Echo, "started")) with
        {
            Container = new BatchCore.Model.ContainerProperties { Secrets = [new() { Name = "DB", ValueFrom = "db" }] },
            SecretResolver = withResolver ? (_, _) => throw new InvalidOperationException("vault sealed") : null,
        };

        var exit = await RunAsync(launch);

        Assert.Equal((null, reason), (exit.ExitCode, exit.Reason));
        Assert.DoesNotContain("started", LogLines(launch));
    }

    /// <summary>
    /// TerminateJob while the attempt's secrets are still being resolved (a resolver waiting on a vault): the resolution
    /// is cancelled and the attempt ends unstarted, instead of waiting for the resolver.
    /// </summary>
    [Fact]
    public async Task Secrets_TerminateWhileResolving_CancelsTheResolution_AndTheAttemptNeverStarts()
    {
        RequireDriver();
        RequireSecrets();
        var resolving = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resolverCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var launch = MakeLaunch(Command(DummyJob.Echo, "started")) with
        {
            Container = new BatchCore.Model.ContainerProperties { Secrets = [new() { Name = "DB", ValueFrom = "db" }] },
            SecretResolver = async (_, ct) =>
            {
                await using var registration = ct.Register(() => resolverCancelled.TrySetResult());
                resolving.TrySetResult();
                await Task.Delay(Timeout.Infinite, ct);
                return "never";
            },
        };

        Driver.Launch(launch, Events);
        await resolving.Task.WaitAsync(AttemptEventRecorder.HangGuard);
        Driver.Terminate(launch.Token, TimeSpan.FromSeconds(10));
        var exit = await Events.WaitExitedAsync(launch.Token);

        Assert.Equal((null, "Terminated before the attempt started"), (exit.ExitCode, exit.Reason));
        await resolverCancelled.Task.WaitAsync(AttemptEventRecorder.HangGuard);
        Assert.DoesNotContain("started", LogLines(launch));
        Assert.Equal(0, Events.StartedCount(launch.Token));
    }

    private void RequireSecrets()
    {
        if (SecretsUnsupportedReason is { } reason)
        {
            Assert.Skip(reason);
        }
    }

    [Fact]
    public async Task Stdout_LinesLandInTheLogStream()
    {
        RequireDriver();
        var launch = MakeLaunch(Command(DummyJob.Echo, "first line", "second line"));

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(["first line", "second line"], LogLines(launch));
        Assert.All(Logs.GetLogEvents(launch.LogStreamName).Events, e => Assert.True(e.Timestamp > 0));
    }

    [Fact]
    public async Task Stderr_LinesLandInTheLogStream()
    {
        RequireDriver();
        var launch = MakeLaunch(Command(DummyJob.Stderr, "oops on stderr"));

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        Assert.Contains("oops on stderr", LogLines(launch));
    }

    [Fact]
    public async Task ShellMetacharacters_StayOneLiteralArgument()
    {
        RequireDriver();
        string[] args = ["$(rm -rf /)", "`id`", "a b", "*", "'quoted'", "x; exit 7", "$HOME"];
        var launch = MakeLaunch(Command(DummyJob.Echo, args));

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(args, LogLines(launch));
    }

    [Fact]
    public async Task Terminate_WhileRunning_EndsTheAttemptAndLeavesNothing()
    {
        RequireDriver();
        var launch = MakeLaunch(Command(DummyJob.Sleep, "300"));
        Driver.Launch(launch, Events);
        await Events.WaitStartedAsync(launch.Token);

        Driver.Terminate(launch.Token, TimeSpan.FromSeconds(10));
        var exit = await Events.WaitExitedAsync(launch.Token);

        Assert.NotEqual(0, exit.ExitCode);
        Assert.Contains(exit.ExitCode, new int?[] { 143, 137, null });
        await AssertCleanAsync(launch);
    }

    [Fact]
    public async Task Terminate_JobIgnoringSigterm_IsKilledAfterTheGracePeriod()
    {
        RequireDriver();
        var launch = MakeLaunch(Command(DummyJob.IgnoreSigterm, "300"));
        Driver.Launch(launch, Events);
        await WaitForLogLineAsync(launch, "ready");

        Driver.Terminate(launch.Token, TimeSpan.FromMilliseconds(500));
        var exit = await Events.WaitExitedAsync(launch.Token);

        Assert.Equal(137, exit.ExitCode);
        await AssertCleanAsync(launch);
    }

    /// <summary>
    /// A second terminate with a shorter grace period (the engine's stop escalating after its timeout) brings the kill
    /// forward: a job ignoring SIGTERM is not left running for the first, long grace period.
    /// </summary>
    [Fact]
    public async Task Terminate_AgainWithAShorterGrace_KillsAtTheShorterOne()
    {
        RequireDriver();
        var launch = MakeLaunch(Command(DummyJob.IgnoreSigterm, "300"));
        Driver.Launch(launch, Events);
        await WaitForLogLineAsync(launch, "ready");

        Driver.Terminate(launch.Token, TimeSpan.FromHours(1));
        Driver.Terminate(launch.Token, TimeSpan.Zero);
        var exit = await Events.WaitExitedAsync(launch.Token);

        Assert.Equal(137, exit.ExitCode);
        await AssertCleanAsync(launch);
    }

    [Fact]
    public async Task Terminate_RightAfterLaunch_EndsCleanlyWithOneExit()
    {
        RequireDriver();
        var launch = MakeLaunch(Command(DummyJob.Sleep, "300"));

        Driver.Launch(launch, Events);
        Driver.Terminate(launch.Token, TimeSpan.Zero);
        var exit = await Events.WaitExitedAsync(launch.Token);

        Assert.NotEqual(0, exit.ExitCode);
        await AssertCleanAsync(launch);
    }

    [Fact]
    public async Task Terminate_AfterExit_DoesNothing()
    {
        RequireDriver();
        var launch = MakeLaunch(Command(DummyJob.Exit, "0"));
        await RunAsync(launch);

        Driver.Terminate(launch.Token, TimeSpan.Zero);
        Driver.Terminate(new AttemptToken(-1), TimeSpan.Zero);

        Assert.Equal(1, Events.ExitedCount(launch.Token));
    }

    [Fact]
    public async Task MissingExecutable_ExitsWithAReasonInsteadOfThrowing()
    {
        RequireDriver();
        var launch = MakeLaunch(MissingExecutableCommand);

        var exit = await RunAsync(launch);

        Assert.Null(exit.ExitCode);
        Assert.StartsWith("CannotStartContainerError:", exit.Reason, StringComparison.Ordinal);
        Assert.Contains("batchcore-no-such-executable-4711", exit.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConcurrentAttempts_EachReportTheirOwnExit()
    {
        RequireDriver();
        var launches = new AttemptLaunch[4];
        for (var i = 0; i < launches.Length; i++)
        {
            launches[i] = MakeLaunch(Command(DummyJob.Exit, (10 + i).ToString(CultureInfo.InvariantCulture)));
            Driver.Launch(launches[i], Events);
        }

        for (var i = 0; i < launches.Length; i++)
        {
            var exit = await Events.WaitExitedAsync(launches[i].Token);
            Assert.Equal(10 + i, exit.ExitCode);
            await AssertCleanAsync(launches[i]);
        }
    }

    [Fact]
    public async Task MemoryLimit_Exceeded_Exits137WithOutOfMemoryReason()
    {
        RequireLimits();
        var launch = MakeLaunch(Command(DummyJob.Alloc, "1024"), memoryMiB: 128);

        var exit = await RunAsync(launch);

        Assert.Equal(137, exit.ExitCode);
        Assert.Equal(AttemptExit.OutOfMemoryReason, exit.Reason);
        Assert.DoesNotContain("allocated", LogLines(launch));
    }

    [Fact]
    public async Task CpuQuota_HalfVcpu_ThrottlesASpinningJob()
    {
        RequireLimits();
        if (CpuQuotaUnavailableReason is { } noQuota)
        {
            Assert.Skip(noQuota);
        }

        var launch = MakeLaunch(Command(DummyJob.Spin, "2"), vcpus: 0.5);

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        var line = Array.Find(LogLines(launch), l => l.StartsWith("cpu-permille=", StringComparison.Ordinal));
        Assert.NotNull(line);
        var permille = int.Parse(line.AsSpan("cpu-permille=".Length).TrimEnd().ToString().Split(' ')[0], CultureInfo.InvariantCulture);
        // Unthrottled, one spinning thread uses ~1000 ‰ of a CPU; the quota allows 500 ‰. The bound is generous on
        // purpose: a loaded machine only lowers the ratio, and only a missing quota pushes it near 1000.
        Assert.InRange(permille, 1, 750);
    }
}
