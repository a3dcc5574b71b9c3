using System.Diagnostics;
using System.Formats.Tar;
using BatchCore.Hosts.Docker;
using BatchCore.Hosts.Process;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace BatchCore.Tests.Hosts;

/// <summary>
/// A private Docker daemon for the Docker driver tests: its own data root, exec root, socket and pid file under a temp
/// directory, no bridge and no iptables changes, so it neither clashes with another daemon nor leaves network state
/// behind. The test image is a busybox-static root file system imported from a tar built in memory (no registry here).
/// The daemon (and the containerd it starts) is stopped by PID on dispose. Missing dockerd or busybox: tests skip.
/// </summary>
public sealed class DockerFixture : IAsyncLifetime
{
    /// <summary>The image the tests run.</summary>
    public const string TestImage = "batchcore-test/busybox:latest";

    private static readonly TimeSpan StartupGuard = TimeSpan.FromSeconds(60);
    private string? _dir;
    private Process? _dockerd;

    /// <summary>Null when the daemon runs; otherwise why the Docker tests skip.</summary>
    public string? UnavailableReason { get; private set; }

    /// <summary>The daemon's API endpoint (<c>unix://…/docker.sock</c>).</summary>
    public string Endpoint { get; private set; } = "";

    public async ValueTask InitializeAsync()
    {
        var dockerd = FindExecutable("dockerd", "/usr/sbin/dockerd", "/usr/bin/dockerd");
        var busybox = FindExecutable("busybox", "/bin/busybox", "/usr/bin/busybox");
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            UnavailableReason = "the Docker driver tests start their own dockerd and need root on Linux";
            return;
        }

        if (dockerd is null || busybox is null)
        {
            UnavailableReason = "dockerd or busybox is not installed (apt-get install docker.io busybox-static)";
            return;
        }

        // Short (unix socket paths are limited to 108 bytes); under BATCHCORE_DOCKER_TEST_ROOT when CI sets it, so that
        // its safety net can find a daemon of this run by PID if the test host dies before disposing the fixture.
        var root = Environment.GetEnvironmentVariable("BATCHCORE_DOCKER_TEST_ROOT");
        _dir = string.IsNullOrEmpty(root) || !Directory.Exists(root)
            ? Directory.CreateTempSubdirectory("bcd-").FullName
            : Directory.CreateDirectory(Path.Combine(root, "bcd-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        var socket = Path.Combine(_dir, "docker.sock");
        Endpoint = "unix://" + socket;
        var log = Path.Combine(_dir, "dockerd.log");
        var start = new ProcessStartInfo("/bin/sh")
        {
            // The shell only redirects the daemon's output to a file and execs it: every argument stays separate.
            ArgumentList =
            {
                "-c", "exec \"$@\" > \"$0\" 2>&1", log, dockerd,
                "--data-root", Path.Combine(_dir, "data"),
                "--exec-root", Path.Combine(_dir, "exec"),
                "--pidfile", Path.Combine(_dir, "docker.pid"),
                "-H", Endpoint,
                "--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
            },
            UseShellExecute = false,
        };
        _dockerd = Process.Start(start)!;

        using var client = new DockerClientConfiguration(new Uri(Endpoint)).CreateClient();
        using var guard = new CancellationTokenSource(StartupGuard);
        while (true)
        {
            if (_dockerd.HasExited)
            {
                UnavailableReason = "dockerd exited during startup: " + Tail(log);
                return;
            }

            try
            {
                await client.System.PingAsync(guard.Token);
                break;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or DockerApiException or System.Net.Sockets.SocketException)
            {
                if (guard.IsCancellationRequested)
                {
                    UnavailableReason = "dockerd did not answer /_ping: " + Tail(log);
                    return;
                }

                await Task.Delay(100, guard.Token);
            }
        }

        using var rootfs = await BusyboxRootfsAsync(busybox);
        await client.Images.CreateImageAsync(
            new ImagesCreateParameters { FromSrc = "-", Repo = "batchcore-test/busybox", Tag = "latest" },
            rootfs, null, new Progress<JSONMessage>(), guard.Token);
    }

    public async ValueTask DisposeAsync()
    {
        if (_dockerd is not null)
        {
            try
            {
                await RemoveLeftoverContainersAsync();
            }
            finally
            {
                await StopDaemonAsync(_dockerd);
                _dockerd.Dispose();
            }
        }

        if (_dir is not null)
        {
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // best effort: an overlay mount still going away
            }
        }
    }

    /// <summary>Containers of this fixture that are still around (should be none: every test checks).</summary>
    public async Task<IList<ContainerListResponse>> ListAttemptContainersAsync(string? attempt = null)
    {
        using var client = new DockerClientConfiguration(new Uri(Endpoint)).CreateClient();
        var label = attempt is null ? DockerHostDriver.AttemptLabel : DockerHostDriver.AttemptLabel + "=" + attempt;
        return await client.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [label] = true } },
        });
    }

    private async Task RemoveLeftoverContainersAsync()
    {
        if (UnavailableReason is not null && Endpoint.Length == 0)
        {
            return;
        }

        try
        {
            using var client = new DockerClientConfiguration(new Uri(Endpoint)).CreateClient();
            foreach (var container in await ListAttemptContainersAsync())
            {
                await client.Containers.RemoveContainerAsync(container.ID, new ContainerRemoveParameters { Force = true });
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException or DockerApiException)
        {
            // daemon already gone
        }
    }

    private async Task StopDaemonAsync(Process dockerd)
    {
        var containerd = ContainerdPids();
        if (!dockerd.HasExited)
        {
            _ = NativeMethods.Kill(dockerd.Id, NativeMethods.SIGTERM);
            using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await dockerd.WaitForExitAsync(guard.Token);
            }
            catch (OperationCanceledException)
            {
                dockerd.Kill();
                await dockerd.WaitForExitAsync();
            }
        }

        // containerd exits with dockerd; make sure, by PID, bounded.
        foreach (var pid in containerd)
        {
            for (var i = 0; i < 100 && Directory.Exists("/proc/" + pid); i++)
            {
                if (i == 50)
                {
                    _ = NativeMethods.Kill(pid, NativeMethods.SIGKILL);
                }

                await Task.Delay(100);
            }
        }
    }

    /// <summary>The containerd processes this fixture's daemon started (their command line names our exec root).</summary>
    private List<int> ContainerdPids()
    {
        var pids = new List<int>();
        if (_dir is null)
        {
            return pids;
        }

        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
                if (cmdline.StartsWith("containerd", StringComparison.Ordinal) && cmdline.Contains(_dir, StringComparison.Ordinal))
                {
                    pids.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return pids;
    }

    /// <summary>A tar of a minimal root file system: busybox-static and a symlink per applet, like runtimes.md §2.</summary>
    private static async Task<MemoryStream> BusyboxRootfsAsync(string busybox)
    {
        var list = Process.Start(new ProcessStartInfo(busybox, "--list") { RedirectStandardOutput = true, UseShellExecute = false })!;
        var applets = (await list.StandardOutput.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        await list.WaitForExitAsync();

        var tar = new MemoryStream();
        await using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            const UnixFileMode dirMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
            foreach (var dir in new[] { "bin/", "proc/", "sys/", "dev/", "etc/", "tmp/" })
            {
                await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, dir)
                {
                    Mode = dir == "tmp/" ? dirMode | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite | UnixFileMode.StickyBit : dirMode,
                });
            }

            await using (var binary = File.OpenRead(busybox))
            {
                await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, "bin/busybox") { Mode = dirMode, DataStream = binary });
            }

            foreach (var applet in applets)
            {
                if (applet != "busybox")
                {
                    await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, "bin/" + applet) { LinkName = "busybox" });
                }
            }

            using var passwd = new MemoryStream("root:x:0:0:root:/root:/bin/sh\n"u8.ToArray());
            await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, "etc/passwd") { DataStream = passwd, Mode = dirMode & ~UnixFileMode.UserExecute & ~UnixFileMode.GroupExecute & ~UnixFileMode.OtherExecute });
        }

        tar.Position = 0;
        return tar;
    }

    private static string? FindExecutable(string name, params string[] candidates)
    {
        foreach (var candidate in candidates)
        {
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path))
            {
                return path;
            }
        }

        return null;
    }

    private static string Tail(string log)
    {
        try
        {
            var lines = File.ReadAllLines(log);
            return string.Join(" | ", lines.AsSpan(Math.Max(0, lines.Length - 5)).ToArray());
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }
}
