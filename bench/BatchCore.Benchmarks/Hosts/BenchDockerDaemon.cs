using System.Diagnostics;
using System.Formats.Tar;
using BatchCore.Hosts.Process;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace BatchCore.Benchmarks.Hosts;

/// <summary>
/// A private dockerd for the Docker benchmarks, started like the tests' <c>DockerFixture</c>: its own data root, exec
/// root, socket and pid file under a temp directory, no bridge and no iptables changes; the image is a busybox-static
/// root file system imported from a tar built in memory (no registry here). Stopped by PID.
/// </summary>
internal sealed class BenchDockerDaemon : IAsyncDisposable
{
    public const string Image = "batchcore-bench/busybox:latest";

    private readonly string _dir;
    private readonly Process _dockerd;

    private BenchDockerDaemon(string dir, Process dockerd, string endpoint)
    {
        _dir = dir;
        _dockerd = dockerd;
        Endpoint = endpoint;
    }

    /// <summary>The daemon's API endpoint (<c>unix://…/docker.sock</c>).</summary>
    public string Endpoint { get; }

    /// <summary>Starts the daemon and imports <see cref="Image"/>; throws with the reason when it cannot.</summary>
    public static async Task<BenchDockerDaemon> StartAsync()
    {
        var dockerd = Find("/usr/sbin/dockerd", "/usr/bin/dockerd")
            ?? throw new InvalidOperationException("dockerd is not installed (apt-get install docker.io busybox-static)");
        var busybox = Find("/bin/busybox", "/usr/bin/busybox")
            ?? throw new InvalidOperationException("busybox is not installed (apt-get install busybox-static)");
        var dir = Directory.CreateTempSubdirectory("bcb-").FullName; // short: unix socket paths are limited to 108 bytes
        var endpoint = "unix://" + Path.Combine(dir, "docker.sock");
        var log = Path.Combine(dir, "dockerd.log");
        var process = Process.Start(new ProcessStartInfo("/bin/sh")
        {
            ArgumentList =
            {
                "-c", "exec \"$@\" > \"$0\" 2>&1", log, dockerd,
                "--data-root", Path.Combine(dir, "data"),
                "--exec-root", Path.Combine(dir, "exec"),
                "--pidfile", Path.Combine(dir, "docker.pid"),
                "-H", endpoint,
                "--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
            },
            UseShellExecute = false,
        })!;
        var daemon = new BenchDockerDaemon(dir, process, endpoint);
        try
        {
            using var client = daemon.CreateClient();
            using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (true)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException("dockerd exited during startup: " + File.ReadAllText(log));
                }

                try
                {
                    await client.System.PingAsync(guard.Token);
                    break;
                }
                catch (Exception e) when (e is HttpRequestException or IOException or DockerApiException or System.Net.Sockets.SocketException)
                {
                    await Task.Delay(100, guard.Token);
                }
            }

            using var rootfs = await BusyboxRootfsAsync(busybox);
            await client.Images.CreateImageAsync(
                new ImagesCreateParameters { FromSrc = "-", Repo = "batchcore-bench/busybox", Tag = "latest" },
                rootfs, null, new Progress<JSONMessage>(), guard.Token);
            return daemon;
        }
        catch
        {
            await daemon.DisposeAsync();
            throw;
        }
    }

    public DockerClient CreateClient() => new DockerClientConfiguration(new Uri(Endpoint)).CreateClient();

    public async ValueTask DisposeAsync()
    {
        if (!_dockerd.HasExited)
        {
            _ = NativeMethods.Kill(_dockerd.Id, NativeMethods.SIGTERM);
            using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _dockerd.WaitForExitAsync(guard.Token);
            }
            catch (OperationCanceledException)
            {
                _dockerd.Kill();
                await _dockerd.WaitForExitAsync();
            }
        }

        _dockerd.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // best effort: an overlay mount still going away
        }
    }

    private static async Task<MemoryStream> BusyboxRootfsAsync(string busybox)
    {
        var list = Process.Start(new ProcessStartInfo(busybox, "--list") { RedirectStandardOutput = true, UseShellExecute = false })!;
        var applets = (await list.StandardOutput.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        await list.WaitForExitAsync();

        const UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        var tar = new MemoryStream();
        await using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var dir in new[] { "bin/", "proc/", "sys/", "dev/", "etc/", "tmp/" })
            {
                await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, dir) { Mode = mode });
            }

            await using (var binary = File.OpenRead(busybox))
            {
                await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, "bin/busybox") { Mode = mode, DataStream = binary });
            }

            foreach (var applet in applets)
            {
                if (applet != "busybox")
                {
                    await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, "bin/" + applet) { LinkName = "busybox" });
                }
            }
        }

        tar.Position = 0;
        return tar;
    }

    private static string? Find(params string[] candidates) => Array.Find(candidates, File.Exists);
}
