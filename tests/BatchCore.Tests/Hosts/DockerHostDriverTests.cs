using System.Globalization;
using BatchCore.Hosts;
using BatchCore.Hosts.Docker;
using BatchCore.Logs;

namespace BatchCore.Tests.Hosts;

/// <summary>The host-driver contract for <see cref="DockerHostDriver"/> against a private dockerd, plus its own rules.</summary>
public sealed class DockerHostDriverTests(DockerFixture docker) : HostDriverContractTests, IClassFixture<DockerFixture>
{
    // Busybox jobs: "$@"/positional parameters keep every test argument one literal word.
    private const string SpinScript =
        "s=$(cat /sys/fs/cgroup/cpuacct/cpuacct.usage); timeout \"$1\" sh -c 'while :; do :; done'; " +
        "e=$(cat /sys/fs/cgroup/cpuacct/cpuacct.usage); echo cpu-permille=$(( (e - s) / ($1 * 1000000) ))";

    // The shell itself holds the memory, so the OOM killer picks the job's main process (as with the dummy program).
    private const string AllocScript = "v=$(head -c $(($1 * 1048576)) /dev/zero | tr '\\0' a); echo allocated; sleep 300";

    protected override string? UnavailableReason => docker.UnavailableReason;

    protected override string? LimitsUnavailableReason => null; // Docker enforces memory and CPU limits itself

    protected override HostDriver CreateDriver(LogStore logs) => new DockerHostDriver(Options(logs));

    private DockerHostDriverOptions Options(LogStore logs) => new()
    {
        LogStore = logs,
        Endpoint = docker.Endpoint,
        NetworkMode = "none",
        // docker-init as PID 1 forwards SIGTERM, so a job without a handler ends at once rather than after the grace.
        InitProcessEnabled = true,
    };

    protected override AttemptLaunch MakeLaunch(IReadOnlyList<string> command, IReadOnlyDictionary<string, string>? environment = null,
        double vcpus = 1, int memoryMiB = 512) =>
        base.MakeLaunch(command, environment, vcpus, memoryMiB) with { Image = DockerFixture.TestImage };

    protected override IReadOnlyList<string> Command(DummyJob job, params string[] args) => job switch
    {
        DummyJob.Sleep => ["sleep", .. args],
        DummyJob.Exit => ["sh", "-c", "exit \"$1\"", "sh", .. args],
        DummyJob.Env => ["env"],
        DummyJob.Echo => ["printf", "%s\\n", .. args],
        DummyJob.Alloc => ["sh", "-c", AllocScript, "sh", .. args],
        DummyJob.Spin => ["sh", "-c", SpinScript, "sh", .. args],
        DummyJob.IgnoreSigterm => ["sh", "-c", "trap '' TERM; echo ready; sleep \"$1\"", "sh", .. args],
        DummyJob.Stderr => ["sh", "-c", "echo \"$*\" >&2", "sh", .. args],
        _ => throw new ArgumentOutOfRangeException(nameof(job)),
    };

    /// <summary>
    /// The driver reports the exit, then removes the container (a hung removal must not hold back the exit): polled
    /// until it is gone, the hang guard turning a container left behind into a failure.
    /// </summary>
    protected override async Task AssertNothingLeftAsync(AttemptLaunch launch)
    {
        var attempt = launch.Token.Value.ToString(CultureInfo.InvariantCulture);
        using var guard = new CancellationTokenSource(AttemptEventRecorder.HangGuard);
        IList<Docker.DotNet.Models.ContainerListResponse> left;
        while ((left = await docker.ListAttemptContainersAsync(attempt)).Count > 0 && !guard.IsCancellationRequested)
        {
            await Task.Delay(50);
        }

        Assert.Empty(left);
    }

    [Fact]
    public async Task ReattachableLaunch_OverALeftoverContainerOfTheSameAttempt_RemovesItFirst()
    {
        RequireDriver();
        var launch = MakeLaunch(["true"]) with { Reattachable = true };

        // What an engine that died before journaling its STARTING record leaves: a running container of this job and
        // attempt (another token) that no record names.
        using var client = new Docker.DotNet.DockerClientConfiguration(new Uri(docker.Endpoint)).CreateClient();
        var leftover = await client.Containers.CreateContainerAsync(new Docker.DotNet.Models.CreateContainerParameters
        {
            Image = DockerFixture.TestImage,
            Cmd = ["sleep", "600"],
            Labels = new Dictionary<string, string>
            {
                [DockerHostDriver.AttemptLabel] = "999999999",
                [DockerHostDriver.JobIdLabel] = launch.JobId,
                [DockerHostDriver.JobAttemptLabel] = launch.Attempt.ToString(CultureInfo.InvariantCulture),
            },
            HostConfig = new Docker.DotNet.Models.HostConfig { NetworkMode = "none" },
        }, TestContext.Current.CancellationToken);
        await client.Containers.StartContainerAsync(leftover.ID, new Docker.DotNet.Models.ContainerStartParameters(), TestContext.Current.CancellationToken);

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        Assert.Empty(await docker.ListAttemptContainersAsync("999999999"));
    }

    /// <summary>
    /// The definition's containerProperties as ECS applies them: a host-path volume bound at its mount point, an anonymous
    /// volume (removed with the container), the user, ulimits and a read-only root file system.
    /// </summary>
    [Fact]
    public async Task ContainerProperties_MountVolumes_AndSetUserUlimitsAndReadOnlyRoot()
    {
        RequireDriver();
        var dir = Directory.CreateTempSubdirectory("bc-vol-");
        try
        {
            if (OperatingSystem.IsLinux())
            {
                File.SetUnixFileMode(dir.FullName, (UnixFileMode)0x1FF); // 0777: the job runs as uid 1000
            }

            await File.WriteAllTextAsync(Path.Combine(dir.FullName, "in.txt"), "hello", TestContext.Current.CancellationToken);
            using var client = new Docker.DotNet.DockerClientConfiguration(new Uri(docker.Endpoint)).CreateClient();
            var volumesBefore = (await client.Volumes.ListAsync(TestContext.Current.CancellationToken)).Volumes?.Count ?? 0;
            const string Script =
                "test \"$(id -u)\" = 1000 || exit 11; test \"$(ulimit -n)\" = 256 || exit 12; " +
                "cat /data/in.txt > /data/out.txt || exit 13; touch /root-write 2>/dev/null && exit 14; test -d /scratch || exit 15; " +
                "test -d /made || exit 16; exit 0";
            var launch = MakeLaunch(["sh", "-c", Script]) with
            {
                Container = new BatchCore.Model.ContainerProperties
                {
                    User = "1000",
                    ReadonlyRootFilesystem = true,
                    Ulimits = [new() { Name = "nofile", SoftLimit = 256, HardLimit = 512 }],
                    Volumes =
                    [
                        new() { Name = "data", Host = new() { SourcePath = dir.FullName } },
                        new() { Name = "scratch" },
                        new() { Name = "made", Host = new() { SourcePath = Path.Combine(dir.FullName, "not-yet") } }, // created, as ECS does
                    ],
                    MountPoints =
                    [
                        new() { ContainerPath = "/data", SourceVolume = "data" },
                        new() { ContainerPath = "/scratch", SourceVolume = "scratch" },
                        new() { ContainerPath = "/made", SourceVolume = "made", ReadOnly = true },
                    ],
                },
            };

            var exit = await RunAsync(launch);

            Assert.Equal(0, exit.ExitCode);
            Assert.Equal("hello", await File.ReadAllTextAsync(Path.Combine(dir.FullName, "out.txt"), TestContext.Current.CancellationToken));
            Assert.True(Directory.Exists(Path.Combine(dir.FullName, "not-yet")));
            await AssertNothingLeftAsync(launch);
            Assert.Equal(volumesBefore, (await client.Volumes.ListAsync(TestContext.Current.CancellationToken)).Volumes?.Count ?? 0);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task MissingImage_ExitsWithCannotPullContainerError()
    {
        RequireDriver();
        var launch = MakeLaunch(["true"]) with { Image = "batchcore-test/no-such-image:1" };

        var exit = await RunAsync(launch);

        Assert.Null(exit.ExitCode);
        Assert.StartsWith("CannotPullContainerError:", exit.Reason, StringComparison.Ordinal);
        Assert.Equal(0, Events.StartedCount(launch.Token));
    }

    [Fact]
    public async Task MissingImage_WithPullingDisabled_ExitsWithCannotPullContainerError()
    {
        RequireDriver();
        await using var driver = new DockerHostDriver(Options(Logs) with { PullMissingImages = false });
        var launch = MakeLaunch(["true"]) with { Image = "batchcore-test/no-such-image:2" };
        driver.Launch(launch, Events);

        var exit = await Events.WaitExitedAsync(launch.Token);

        Assert.Null(exit.ExitCode);
        Assert.Contains("pulling is disabled", exit.Reason, StringComparison.Ordinal);
    }

    /// <summary>The attempt's labels, and the job's propagated tags as labels beside them (never over the attempt's own).</summary>
    [Fact]
    public async Task Container_CarriesAttemptAndJobLabels_AndIsRemovedAfterwards()
    {
        RequireDriver();
        var launch = MakeLaunch(Command(DummyJob.Sleep, "300")) with
        {
            Tags = new Dictionary<string, string> { ["team"] = "data", [DockerHostDriver.AttemptLabel] = "spoofed" },
        };
        Driver.Launch(launch, Events);
        await Events.WaitStartedAsync(launch.Token);

        var containers = await docker.ListAttemptContainersAsync(launch.Token.Value.ToString(CultureInfo.InvariantCulture));
        Driver.Terminate(launch.Token, TimeSpan.Zero);
        await Events.WaitExitedAsync(launch.Token);

        var container = Assert.Single(containers);
        Assert.Equal(launch.JobId, container.Labels[DockerHostDriver.JobIdLabel]);
        Assert.Equal("data", container.Labels["team"]);
        Assert.Equal(launch.Token.Value.ToString(CultureInfo.InvariantCulture), container.Labels[DockerHostDriver.AttemptLabel]);
        await AssertCleanAsync(launch);
    }

    [Fact]
    public async Task DisposeAsync_StopsAndRemovesRunningContainers()
    {
        RequireDriver();
        var driver = new DockerHostDriver(Options(Logs));
        var launch = MakeLaunch(Command(DummyJob.Sleep, "300"));
        driver.Launch(launch, Events);
        await Events.WaitStartedAsync(launch.Token);

        await driver.DisposeAsync();

        Assert.Equal(1, Events.ExitedCount(launch.Token));
        await AssertCleanAsync(launch);
    }

    [Fact]
    public async Task UnreachableDaemon_ExitsAsAHostFailureInsteadOfThrowing()
    {
        var socket = Path.Combine(Path.GetTempPath(), "batchcore-no-daemon-" + Guid.NewGuid().ToString("N")[..8] + ".sock");
        await using var driver = new DockerHostDriver(new DockerHostDriverOptions { LogStore = Logs, Endpoint = "unix://" + socket });
        var launch = MakeLaunch(["true"]);

        driver.Launch(launch, Events);
        var exit = await Events.WaitExitedAsync(launch.Token);

        Assert.Null(exit.ExitCode);
        Assert.True(exit.HostFailure);
        Assert.Equal(0, Events.StartedCount(launch.Token));
    }

    [Theory]
    [InlineData("tcp://10.1.2.3:2375")]
    [InlineData("tcp://docker.example.com:2375")]
    public void PlainTcpToARemoteAddress_IsRefusedUnlessAllowed(string endpoint)
    {
        var e = Assert.Throws<BatchClientException>(() => new DockerHostDriver(new DockerHostDriverOptions { LogStore = Logs, Endpoint = endpoint }));
        Assert.Contains(endpoint, e.Message, StringComparison.Ordinal);

        using var allowed = new DisposableDriver(new DockerHostDriver(new DockerHostDriverOptions
        {
            LogStore = Logs,
            Endpoint = endpoint,
            AllowInsecureRemote = true,
        }));
    }

    [Theory]
    [InlineData("tcp://127.0.0.1:2375")]
    [InlineData("tcp://localhost:2375")]
    [InlineData("tcp://[::1]:2375")]
    [InlineData("unix:///var/run/docker.sock")]
    public void LocalEndpoints_AreAccepted(string endpoint)
    {
        using var driver = new DisposableDriver(new DockerHostDriver(new DockerHostDriverOptions { LogStore = Logs, Endpoint = endpoint }));
        Assert.Equal("docker", driver.Driver.Kind);
    }

    [Theory]
    [InlineData("http://127.0.0.1:2375")]
    [InlineData("not a uri")]
    [InlineData("")]
    public void UnsupportedEndpoints_AreRefused(string endpoint)
    {
        var e = Assert.Throws<BatchClientException>(() => new DockerHostDriver(new DockerHostDriverOptions { LogStore = Logs, Endpoint = endpoint }));
        Assert.StartsWith("Endpoint must be", e.Message, StringComparison.Ordinal);
    }

    private sealed class DisposableDriver(DockerHostDriver driver) : IDisposable
    {
        public DockerHostDriver Driver => driver;

        public void Dispose() => driver.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
