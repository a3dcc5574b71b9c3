using BatchCore.Hosts;
using BatchCore.Hosts.Docker;
using BatchCore.Logs;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using CliWrap;

namespace BatchCore.Benchmarks.Hosts;

/// <summary>
/// Container jobs per second through <see cref="DockerHostDriver"/> against <c>docker run --rm</c> of the same image and
/// command in a loop (baseline), <see cref="Containers"/> trivial <c>true</c> containers, <see cref="Concurrency"/> at a
/// time, same limits and network mode on both sides, against a private dockerd (<see cref="BenchDockerDaemon"/>).
/// Docker itself runs ~1.7 containers/s on the 2-core VM, so one operation is ~10 s: few iterations.
/// Run: <c>dotnet run -c Release --project bench/BatchCore.Benchmarks -- --filter '*DockerDriverBenchmarks*'</c>
/// (root, with <c>docker.io</c> and <c>busybox-static</c> installed).
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 3)]
public class DockerDriverBenchmarks
{
    private const int Containers = 20;

    /// <summary>Quick mode (CI): skipped where no private dockerd can be started (not installed, not root, no busybox).</summary>
    public static string? QuickSkipReason =>
        !OperatingSystem.IsLinux() || Environment.UserName != "root" ? "a private dockerd needs root on Linux"
        : !File.Exists("/usr/sbin/dockerd") && !File.Exists("/usr/bin/dockerd") ? "dockerd is not installed (apt-get install docker.io)"
        : !File.Exists("/bin/busybox") ? "busybox-static is not installed (the test image is imported from it)"
        : !File.Exists("/usr/local/bin/docker") && !File.Exists("/usr/bin/docker") ? "no docker CLI for the docker run baseline"
        : null;
    private const int Concurrency = 2;
    private const int MemoryMiB = 256;
    private const long PidsLimit = 4096;
    private static readonly string[] TrueCommand = ["true"];

    private BenchDockerDaemon _daemon = null!;
    private DockerHostDriver _driver = null!;
    private string _dockerCli = null!;

    [GlobalSetup]
    public void Setup()
    {
        _daemon = BenchDockerDaemon.StartAsync().GetAwaiter().GetResult();
        _driver = new DockerHostDriver(new DockerHostDriverOptions
        {
            LogStore = new InMemoryLogStore(),
            Endpoint = _daemon.Endpoint,
            NetworkMode = "none",
            PidsLimit = PidsLimit,
            PullMissingImages = false,
        });
        _dockerCli = Array.Find(["/usr/local/bin/docker", "/usr/bin/docker"], File.Exists)
            ?? throw new InvalidOperationException("no docker CLI");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _driver.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _daemon.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Benchmark(Baseline = true, Description = "docker run --rm in a loop")]
    public async Task DockerRunLoop()
    {
        var workers = new Task[Concurrency];
        for (var w = 0; w < workers.Length; w++)
        {
            workers[w] = Task.Run(async () =>
            {
                for (var i = 0; i < Containers / Concurrency; i++)
                {
                    var result = await Cli.Wrap(_dockerCli)
                        .WithArguments(["-H", _daemon.Endpoint, "run", "--rm", "--network", "none",
                            "--memory", MemoryMiB + "m", "--memory-swap", MemoryMiB + "m", "--cpus", "1",
                            "--pids-limit", PidsLimit.ToString(System.Globalization.CultureInfo.InvariantCulture),
                            BenchDockerDaemon.Image, "true"])
                        .WithValidation(CommandResultValidation.None)
                        .ExecuteAsync();
                    if (result.ExitCode != 0)
                    {
                        throw new InvalidOperationException("docker run exited " + result.ExitCode);
                    }
                }
            });
        }

        await Task.WhenAll(workers);
    }

    [Benchmark(Description = "DockerHostDriver")]
    public Task Driver() =>
        DriverLoad.RunAsync(_driver, Containers, Concurrency, () => DriverLoad.Launch(TrueCommand, MemoryMiB, BenchDockerDaemon.Image));
}
