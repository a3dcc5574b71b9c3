using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using BatchCore.Hosts.Process;

namespace BatchCore.Tests.Hosts.Slurm;

/// <summary>
/// A private 4-node Slurm cluster on this machine for the Slurm tests: its own slurm.conf (and cgroup.conf) in a temp
/// directory, free ports picked at start, its own state, spool, pid and log files; <c>slurmctld</c> and four
/// <c>slurmd -N nX</c> run in the foreground as children of the test host and are stopped by PID on dispose (munged
/// too, when the fixture had to start it). Clients find the cluster through <see cref="SlurmConf"/> (SLURM_CONF).
/// Missing binaries, not root, or a cluster that does not come up: every Slurm test skips with the reason.
/// </summary>
public sealed class SlurmFixture : IAsyncLifetime
{
    /// <summary>The emulated nodes.</summary>
    public static readonly string[] Nodes = ["n1", "n2", "n3", "n4"];

    /// <summary>CPUs per emulated node (they all share this machine's cores).</summary>
    public const int CpusPerNode = 2;

    /// <summary>Memory per emulated node (MiB): what Slurm schedules, and what the hosts offer.</summary>
    public const int MemoryPerNodeMiB = 2000;

    private static readonly TimeSpan StartupGuard = TimeSpan.FromSeconds(60);
    private readonly List<Process> _daemons = [];
    private string? _dir;
    private int? _mungedPid;

    /// <summary>Null when the cluster runs; otherwise why the Slurm tests skip.</summary>
    public string? UnavailableReason { get; private set; }

    /// <summary>Null when task/cgroup enforces --mem (cgroup v1 memory controller present); otherwise why limit tests skip.</summary>
    public string? LimitsUnavailableReason { get; private set; }

    /// <summary>The cluster's slurm.conf.</summary>
    public string SlurmConf { get; private set; } = "";

    /// <summary>A directory every node sees (this machine's file system): the driver's shared directory.</summary>
    public string SharedDirectory { get; private set; } = "";

    public async ValueTask InitializeAsync()
    {
        string[] binaries = ["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/sbatch", "/usr/bin/munge"];
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            UnavailableReason = "the Slurm tests start their own slurmctld and slurmd and need root on Linux";
            return;
        }

        if (Array.Find(binaries, b => !File.Exists(b)) is { } missing)
        {
            UnavailableReason = $"{missing} is not installed (apt-get install slurm-wlm munge)";
            return;
        }

        // Under BATCHCORE_SLURM_TEST_ROOT when CI sets it, so that its safety net finds this run's daemons by PID.
        var root = Environment.GetEnvironmentVariable("BATCHCORE_SLURM_TEST_ROOT");
        _dir = string.IsNullOrEmpty(root) || !Directory.Exists(root)
            ? Directory.CreateTempSubdirectory("bcs-").FullName
            : Directory.CreateDirectory(Path.Combine(root, "bcs-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        foreach (var sub in new[] { "state", "spool", "log", "shared" })
        {
            Directory.CreateDirectory(Path.Combine(_dir, sub));
        }

        SharedDirectory = Path.Combine(_dir, "shared");
        if (await EnsureMungeAsync() is { } mungeProblem)
        {
            UnavailableReason = mungeProblem;
            return;
        }

        var cgroups = File.Exists("/sys/fs/cgroup/memory/memory.limit_in_bytes") && Directory.Exists("/sys/fs/cgroup/cpuset")
            && Directory.Exists("/sys/fs/cgroup/freezer");
        LimitsUnavailableReason = cgroups ? null : "no cgroup v1 memory/cpuset/freezer hierarchy: task/cgroup cannot enforce --mem";
        var ports = FreePortRange(1 + Nodes.Length);
        SlurmConf = Path.Combine(_dir, "slurm.conf");
        await File.WriteAllTextAsync(SlurmConf, Conf(_dir, ports, cgroups));
        if (cgroups)
        {
            await File.WriteAllTextAsync(Path.Combine(_dir, "cgroup.conf"),
                "CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\nConstrainCores=yes\nConstrainRAMSpace=yes\nConstrainSwapSpace=yes\nAllowedSwapSpace=0\n");
        }

        _daemons.Add(StartDaemon("/usr/sbin/slurmctld", Path.Combine(_dir, "log", "slurmctld.out"), "-D", "-i", "-f", SlurmConf));
        foreach (var node in Nodes)
        {
            _daemons.Add(StartDaemon("/usr/sbin/slurmd", Path.Combine(_dir, "log", $"slurmd-{node}.out"), "-D", "-N", node, "-f", SlurmConf));
        }

        using var guard = new CancellationTokenSource(StartupGuard);
        while (true)
        {
            if (_daemons.Find(d => d.HasExited) is { } dead)
            {
                UnavailableReason = $"a Slurm daemon ({dead.StartInfo.ArgumentList[3]}) exited during startup: " + Tail(Path.Combine(_dir, "log", "slurmctld.log"));
                return;
            }

            var (code, output) = await RunAsync("/usr/bin/sinfo", "--noheader", "--Node", "--format=%N %t");
            if (code == 0 && CountIdle(output) == Nodes.Length)
            {
                break;
            }

            if (guard.IsCancellationRequested)
            {
                UnavailableReason = "the 4 Slurm nodes did not become idle: " + output.Trim().Replace('\n', ' ');
                return;
            }

            await Task.Delay(200, CancellationToken.None);
        }
    }

    private static int CountIdle(string output)
    {
        var idle = 0;
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (line.EndsWith(" idle", StringComparison.Ordinal))
            {
                idle++;
            }
        }

        return idle;
    }

    private static string Conf(string dir, int[] ports, bool cgroups) => string.Join('\n',
        "ClusterName=batchcoretest",
        "SlurmctldHost=localhost",
        "SlurmUser=root",
        "SlurmdUser=root",
        $"SlurmctldPort={ports[0]}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        $"StateSaveLocation={dir}/state",
        $"SlurmdSpoolDir={dir}/spool/%n",
        $"SlurmctldPidFile={dir}/slurmctld.pid",
        $"SlurmdPidFile={dir}/slurmd-%n.pid",
        $"SlurmctldLogFile={dir}/log/slurmctld.log",
        $"SlurmdLogFile={dir}/log/slurmd-%n.log",
        cgroups ? "ProctrackType=proctrack/cgroup" : "ProctrackType=proctrack/linuxproc",
        cgroups ? "TaskPlugin=task/cgroup,task/affinity" : "TaskPlugin=task/affinity",
        "MpiDefault=none",
        "ReturnToService=2",
        "SchedulerType=sched/backfill",
        // The default batch_sched_delay=3 starts 2 jobs per 3 s (runtimes.md); 0: as many as there are slots per second.
        "SchedulerParameters=batch_sched_delay=0",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "DefMemPerCPU=256",
        // No accounting here (no slurmdbd): a finished job stays visible to squeue for MinJobAge seconds.
        "MinJobAge=3600",
        "MaxJobCount=100000",
        "KillWait=5",
        "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none",
        "JobCompType=jobcomp/none",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        $"NodeName=n[1-4] NodeHostname=localhost NodeAddr=127.0.0.1 Port=[{ports[1]}-{ports[4]}] CPUs={CpusPerNode} RealMemory={MemoryPerNodeMiB} State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        "");

    /// <summary>munged at its default socket: reused when it answers, else started (and stopped by PID on dispose).</summary>
    private async Task<string?> EnsureMungeAsync()
    {
        if ((await RunAsync("/usr/bin/munge", "-n")).Code == 0)
        {
            return null;
        }

        if (!File.Exists("/etc/munge/munge.key"))
        {
            return "munge has no key (/etc/munge/munge.key); reinstall munge";
        }

        Directory.CreateDirectory("/run/munge");
        await RunAsync("/bin/chown", "munge:munge", "/run/munge");
        var (code, output) = await RunAsync("/usr/sbin/runuser", "-u", "munge", "--", "/usr/sbin/munged");
        if (code != 0)
        {
            return "munged did not start: " + output.Trim();
        }

        if (File.Exists("/run/munge/munged.pid")
            && int.TryParse(File.ReadAllText("/run/munge/munged.pid").Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
        {
            _mungedPid = pid;
        }

        return (await RunAsync("/usr/bin/munge", "-n")).Code == 0 ? null : "munged started but munge -n fails";
    }

    private static Process StartDaemon(string path, string log, params string[] args)
    {
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        // The shell only redirects the daemon's output to a file and execs it: the PID is the daemon's.
        foreach (var a in new[] { "-c", "exec \"$@\" > \"$0\" 2>&1", log, path })
        {
            start.ArgumentList.Add(a);
        }

        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        return Process.Start(start)!;
    }

    /// <summary>Runs a Slurm (or other) client command against this cluster; returns its exit code and stdout+stderr.</summary>
    public async Task<(int Code, string Output)> RunAsync(string path, params string[] args)
    {
        var start = new ProcessStartInfo(path) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        if (SlurmConf.Length > 0)
        {
            start.Environment["SLURM_CONF"] = SlurmConf;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary><c>scontrol update nodename=X state=...</c>.</summary>
    public async Task SetNodeStateAsync(string node, string state, string? reason = null)
    {
        var args = new List<string> { "update", "nodename=" + node, "state=" + state };
        if (reason is not null)
        {
            args.Add("reason=" + reason);
        }

        var (code, output) = await RunAsync("/usr/bin/scontrol", [.. args]);
        Assert.True(code == 0, "scontrol failed: " + output);
    }

    /// <summary>The Slurm state of a job (squeue %T), or null when squeue does not know it.</summary>
    public async Task<string?> JobStateAsync(long jobId)
    {
        var (code, output) = await RunAsync("/usr/bin/squeue", "--noheader", "--states=all", "--jobs=" + jobId.ToString(CultureInfo.InvariantCulture), "--format=%T");
        return code == 0 && output.Trim().Length > 0 ? output.Trim() : null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_daemons.Count > 0 && !_daemons[0].HasExited)
        {
            // Nothing of the tests may outlive them: cancel whatever is left (should be nothing).
            await RunAsync("/usr/bin/scancel", "--full", "--signal=KILL", "--user=root");
        }

        // slurmd first (each ends its job steps), then the controller; by PID, bounded.
        for (var i = _daemons.Count - 1; i >= 0; i--)
        {
            await StopAsync(_daemons[i].Id, _daemons[i]);
            _daemons[i].Dispose();
        }

        if (_mungedPid is { } munged)
        {
            await StopAsync(munged, null);
        }

        // Slurm's cgroup plugins leave empty slurm_<node> directories behind.
        foreach (var controller in new[] { "memory", "cpuset", "freezer", "devices" })
        {
            foreach (var node in Nodes)
            {
                RemoveEmptyTree(Path.Combine("/sys/fs/cgroup", controller, "slurm_" + node));
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
            }
        }
    }

    private static async Task StopAsync(int pid, Process? process)
    {
        if (!Directory.Exists("/proc/" + pid.ToString(CultureInfo.InvariantCulture)))
        {
            return;
        }

        _ = NativeMethods.Kill(pid, NativeMethods.SIGTERM);
        for (var i = 0; i < 150; i++)
        {
            if (process is not null ? process.HasExited : !Directory.Exists("/proc/" + pid.ToString(CultureInfo.InvariantCulture)))
            {
                return;
            }

            if (i == 100)
            {
                _ = NativeMethods.Kill(pid, NativeMethods.SIGKILL);
            }

            await Task.Delay(100);
        }
    }

    private static void RemoveEmptyTree(string dir)
    {
        if (!Directory.Exists(dir))
        {
            return;
        }

        try
        {
            foreach (var sub in Directory.GetDirectories(dir))
            {
                RemoveEmptyTree(sub);
            }

            Directory.Delete(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // still in use, or not a cgroup we may remove
        }
    }

    /// <summary>Consecutive free loopback ports (slurm.conf takes the nodes' ports as a range).</summary>
    private static int[] FreePortRange(int count)
    {
        var random = new Random(Environment.ProcessId);
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var first = random.Next(20_000, 60_000);
            var listeners = new List<TcpListener>();
            try
            {
                for (var i = 0; i < count; i++)
                {
                    var l = new TcpListener(IPAddress.Any, first + i);
                    l.Start();
                    listeners.Add(l);
                }

                return [.. Enumerable.Range(first, count)];
            }
            catch (SocketException)
            {
                // taken: try another range
            }
            finally
            {
                foreach (var l in listeners)
                {
                    l.Stop();
                }
            }
        }

        throw new InvalidOperationException("no free port range for the Slurm test cluster");
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

/// <summary>All Slurm test classes share one cluster (the nodes' cgroup names are per node name).</summary>
[CollectionDefinition(Name)]
public sealed class SlurmCollection : ICollectionFixture<SlurmFixture>
{
    public const string Name = "slurm";
}
