using BatchCore.Hosts;
using BatchCore.Hosts.Slurm;
using BatchCore.Logs;

namespace BatchCore.Tests.Hosts.Slurm;

/// <summary>The host-driver contract for <see cref="SlurmHostDriver"/> on the private 4-node cluster, plus its own rules.</summary>
[Collection(SlurmCollection.Name)]
public sealed class SlurmHostDriverTests(SlurmFixture slurm) : HostDriverContractTests
{
    // The shell itself holds the memory, so the OOM killer picks the job's main process (as in the Docker tests).
    private const string AllocScript = "v=$(head -c $(($1 * 1048576)) /dev/zero | tr '\\0' a); echo allocated; sleep 300";
    private int _next;

    protected override string? UnavailableReason => slurm.UnavailableReason;

    protected override string? LimitsUnavailableReason => slurm.LimitsUnavailableReason;

    protected override string? CpuQuotaUnavailableReason =>
        "Slurm allocates whole CPUs (--cpus-per-task is an integer; task/cgroup confines a job to whole cores), so a 0.5 vCPU quota cannot be expressed";

    protected override HostDriver CreateDriver(LogStore logs) => new SlurmHostDriver(Options(logs));

    private SlurmOptions Options(LogStore logs) => new()
    {
        LogStore = logs,
        SlurmConf = slurm.SlurmConf,
        SharedDirectory = slurm.SharedDirectory,
        PollInterval = TimeSpan.FromMilliseconds(100),
    };

    /// <summary>Attempts go round the four nodes, as placement would spread them.</summary>
    protected override AttemptLaunch MakeLaunch(IReadOnlyList<string> command, IReadOnlyDictionary<string, string>? environment = null,
        double vcpus = 1, int memoryMiB = 512) =>
        base.MakeLaunch(command, environment, vcpus, memoryMiB) with { HostName = SlurmFixture.Nodes[Interlocked.Increment(ref _next) % SlurmFixture.Nodes.Length] };

    protected override IReadOnlyList<string> Command(DummyJob job, params string[] args) => job switch
    {
        DummyJob.Sleep => ["sleep", .. args],
        DummyJob.Exit => ["sh", "-c", "exit \"$1\"", "sh", .. args],
        DummyJob.Env => ["env"],
        DummyJob.Echo => ["printf", "%s\\n", .. args],
        DummyJob.Alloc => ["sh", "-c", AllocScript, "sh", .. args],
        DummyJob.Spin => ["sh", "-c", "timeout \"$1\" sh -c 'while :; do :; done'", "sh", .. args],
        DummyJob.IgnoreSigterm => ["sh", "-c", "trap '' TERM; echo ready; sleep \"$1\"", "sh", .. args],
        DummyJob.Stderr => ["sh", "-c", "echo \"$*\" >&2", "sh", .. args],
        _ => throw new ArgumentOutOfRangeException(nameof(job)),
    };

    [Fact]
    public async Task Launch_PinsTheJobToTheHostWithItsResources()
    {
        RequireDriver();
        var launch = MakeLaunch(["sh", "-c", "echo node=$SLURMD_NODENAME cpus=$SLURM_CPUS_PER_TASK mem=$SLURM_MEM_PER_NODE"], vcpus: 1.5, memoryMiB: 300)
            with { HostName = "n3", Timeout = TimeSpan.FromMinutes(5) };

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(["node=n3 cpus=2 mem=300"], LogLines(launch));
    }

    [Fact]
    public async Task Terminate_RunningJob_LeavesNoRunningSlurmJob()
    {
        RequireDriver();
        var launch = MakeLaunch(Command(DummyJob.Sleep, "300"));
        Driver.Launch(launch, Events);
        await Events.WaitStartedAsync(launch.Token);
        var jobId = ((SlurmHostDriver)Driver).SlurmJobId(launch.Token);
        Assert.NotNull(jobId);

        Driver.Terminate(launch.Token, TimeSpan.FromSeconds(5));
        var exit = await Events.WaitExitedAsync(launch.Token);

        Assert.Equal(143, exit.ExitCode);
        var state = await slurm.JobStateAsync(jobId.Value);
        Assert.True(state is "FAILED" or "CANCELLED", $"Slurm job {jobId} is {state}");
        await AssertCleanAsync(launch);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TryReattach_AfterTheEngineDied_FollowsTheRunningJobToItsExit(bool withHandle)
    {
        RequireDriver();
        // The engine that "dies": its driver's squeue stops answering once the marker exists, so it reports nothing more.
        var bin = Directory.CreateTempSubdirectory("bc-slurm-bin-").FullName;
        var down = Path.Combine(bin, "down");
        var go = Path.Combine(slurm.SharedDirectory, "go-" + Guid.NewGuid().ToString("N"));
        foreach (var command in new[] { "sbatch", "scancel", "sinfo" })
        {
            File.CreateSymbolicLink(Path.Combine(bin, command), "/usr/bin/" + command);
        }

        File.WriteAllText(Path.Combine(bin, "squeue"), $"#!/bin/sh\n[ -e '{down}' ] && {{ echo 'squeue: error: Unable to contact slurm controller' >&2; exit 1; }}\nexec /usr/bin/squeue \"$@\"\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path.Combine(bin, "squeue"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        var crashedEvents = new AttemptEventRecorder();
        var crashed = new SlurmHostDriver(Options(new InMemoryLogStore()) with { BinDirectory = bin });
        try
        {
            var launch = MakeLaunch(["sh", "-c", $"echo before; while [ ! -e '{go}' ]; do sleep 0.1; done; echo after"]);
            crashed.Launch(launch, crashedEvents);
            await crashedEvents.WaitStartedAsync(launch.Token);
            var handle = crashedEvents.Handle(launch.Token);
            Assert.NotNull(handle);
            File.WriteAllText(down, "");
            var token = new AttemptToken(launch.Token.Value + 1_000_000);

            var taken = Driver.TryReattach(new AttemptReattach
            {
                Token = token,
                JobId = launch.JobId,
                Attempt = launch.Attempt,
                LogStreamName = launch.LogStreamName,
                HostName = launch.HostName,
                Handle = withHandle ? handle : null,
            }, Events);
            File.WriteAllText(go, "");
            var exit = await Events.WaitExitedAsync(token);

            Assert.True(taken);
            Assert.Equal(0, exit.ExitCode);
            Assert.Equal(["before", "after"], LogLines(launch));
        }
        finally
        {
            File.Delete(down);
            File.Delete(go);
            await crashed.DisposeAsync();
            Directory.Delete(bin, recursive: true);
        }
    }

    [Fact]
    public async Task UnknownNode_ExitsWithCannotStartContainerError()
    {
        RequireDriver();
        var launch = MakeLaunch(Command(DummyJob.Exit, "0")) with { HostName = "no-such-node" };

        var exit = await RunAsync(launch);

        Assert.Null(exit.ExitCode);
        Assert.StartsWith("CannotStartContainerError: sbatch:", exit.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_UnknownSetting_NamesIt()
    {
        var e = Assert.Throws<BatchClientException>(() =>
            SlurmOptions.FromSettings(new Dictionary<string, string> { ["slurmconf"] = "/x" }, new InMemoryLogStore()));

        Assert.Contains("providerSettings.slurmconf", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_MissingSlurmConf_NamesTheField()
    {
        var e = Assert.Throws<BatchClientException>(() =>
            new SlurmHostDriver(new SlurmOptions { LogStore = new InMemoryLogStore(), SlurmConf = "/no/such/slurm.conf" }));

        Assert.Contains("slurmConf must name an existing file", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", 0)]
    [InlineData("gpu:2", 2)]
    [InlineData("gpu:tesla:2(S:0-1)", 2)]
    [InlineData("gpu:a100:1,gpu:v100:3,mps:100", 4)]
    public void GpuCount_ReadsGresStrings(string gres, int expected) =>
        Assert.Equal(expected, SlurmCommands.GpuCount(gres));

    [Fact]
    public void ParseNodes_ReadsSinfoJson()
    {
        const string json = """
            {"meta":{},"errors":[],"nodes":[
              {"name":"n1","cpus":8,"real_memory":16000,"gres":"gpu:2","architecture":"x86_64","state":"idle","state_flags":[],"partitions":["debug"],"reason":""},
              {"name":"n2","cpus":8,"real_memory":16000,"gres":"","architecture":"x86_64","state":"idle","state_flags":["DRAIN"],"partitions":["debug"],"reason":"test"},
              {"name":"n3","cpus":4,"real_memory":8000,"gres":"","architecture":"aarch64","state":"down","state_flags":["NOT_RESPONDING"],"partitions":["debug"],"reason":"gone"}]}
            """;

        var nodes = SlurmCommands.ParseNodes(json);

        Assert.Equal(3, nodes.Count);
        Assert.True(nodes[0].Usable);
        Assert.Equal((8, 16000, 2), (nodes[0].Cpus, nodes[0].RealMemoryMiB, nodes[0].Gpus));
        Assert.False(nodes[1].Usable);
        Assert.Equal("idle+DRAIN", nodes[1].Describe());
        Assert.False(nodes[2].Usable);
        Assert.Equal(string.Empty, nodes[0].Reason);
    }
}
