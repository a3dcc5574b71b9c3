using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace BatchCore.Hosts.Process;

/// <summary>
/// The driver-owned cgroup parent(s) in whichever hierarchy is usable: cgroup v2 when the unified hierarchy offers the
/// memory, cpu and pids controllers, else cgroup v1 (one directory per controller). Created once per driver.
/// </summary>
internal abstract class CgroupLayout
{
    private static readonly string[] Controllers = ["memory", "cpu", "pids"];

    /// <summary>"v1" or "v2", for diagnostics.</summary>
    public abstract string Version { get; }

    /// <summary>Creates an attempt's cgroup with its limits. Throws <see cref="IOException"/> or
    /// <see cref="UnauthorizedAccessException"/> when the cgroup file system refuses.</summary>
    public abstract AttemptCgroup Create(string name, double vcpus, int memoryMiB);

    /// <summary>Removes the driver-owned parent directories if they are empty (best effort).</summary>
    public abstract void RemoveParents();

    /// <summary>
    /// Finds a usable layout: v2 first, then v1. Verifies it by creating, limiting and removing a probe cgroup.
    /// Returns null with the reason when neither works.
    /// </summary>
    public static CgroupLayout? Probe(ProcessHostDriverOptions options, string probeName, out string? unavailableReason)
    {
        if (!OperatingSystem.IsLinux())
        {
            unavailableReason = "cgroups need Linux";
            return null;
        }

        string[] selfCgroup;
        try
        {
            selfCgroup = File.ReadAllLines("/proc/self/cgroup");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            unavailableReason = "cannot read /proc/self/cgroup: " + e.Message;
            return null;
        }

        var v2Reason = "cgroup v2 not mounted";
        if (V2.TryCreate(options, selfCgroup, out var v2, out var why2) && TryProbe(v2, probeName, out why2))
        {
            unavailableReason = null;
            return v2;
        }

        v2Reason = "cgroup v2: " + (why2 ?? v2Reason);
        v2?.RemoveParents();

        if (V1.TryCreate(options, selfCgroup, out var v1, out var why1) && TryProbe(v1, probeName, out why1))
        {
            unavailableReason = null;
            return v1;
        }

        v1?.RemoveParents();
        unavailableReason = v2Reason + "; cgroup v1: " + why1;
        return null;
    }

    private static bool TryProbe(CgroupLayout layout, string probeName, out string? reason)
    {
        try
        {
            var probe = layout.Create(probeName, 0.5, 64);
            var removed = probe.RemoveAsync(TimeProvider.System).AsTask().GetAwaiter().GetResult();
            reason = removed ? null : "cannot remove probe cgroup " + probe;
            return removed;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            reason = e.Message;
            return false;
        }
    }

    /// <summary>The cgroup path of this process in the hierarchy whose controller list contains <paramref name="controller"/>
    /// (v1), or in the unified hierarchy when <paramref name="controller"/> is empty (v2, the <c>0::</c> line).</summary>
    private static string? OwnPath(string[] selfCgroup, string controller)
    {
        foreach (var line in selfCgroup)
        {
            var first = line.IndexOf(':', StringComparison.Ordinal);
            var second = first < 0 ? -1 : line.IndexOf(':', first + 1);
            if (second < 0)
            {
                continue;
            }

            var list = line.AsSpan(first + 1, second - first - 1);
            var matches = controller.Length == 0 ? list.IsEmpty : ContainsToken(list, controller);
            if (matches)
            {
                return line[(second + 1)..];
            }
        }

        return null;
    }

    private static bool ContainsToken(ReadOnlySpan<char> commaList, string token)
    {
        foreach (var range in commaList.Split(','))
        {
            if (commaList[range].SequenceEqual(token))
            {
                return true;
            }
        }

        return false;
    }

    private static string Join(string root, string own, string rest) =>
        Path.Combine(root, own.TrimStart('/'), rest);

    internal static void WriteFile(string path, string value)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
        RandomAccess.Write(handle, Encoding.ASCII.GetBytes(value), 0);
    }

    internal static string Memory(long bytes) => bytes.ToString(CultureInfo.InvariantCulture);

    private static void CreateDirectory(string path)
    {
        // A concurrent driver may rmdir a shared parent between our mkdir -p steps; one retry covers that race.
        try
        {
            Directory.CreateDirectory(path);
        }
        catch (DirectoryNotFoundException)
        {
            Directory.CreateDirectory(path);
        }
    }

    private sealed class V1 : CgroupLayout
    {
        private readonly string[] _parents; // memory, cpu, pids
        private readonly ProcessHostDriverOptions _options;

        private V1(ProcessHostDriverOptions options, string[] parents)
        {
            _options = options;
            _parents = parents;
        }

        public override string Version => "v1";

        public static bool TryCreate(ProcessHostDriverOptions options, string[] selfCgroup, [NotNullWhen(true)] out V1? layout, out string? reason)
        {
            layout = null;
            var parents = new string[Controllers.Length];
            for (var i = 0; i < Controllers.Length; i++)
            {
                var mount = Path.Combine(options.CgroupRoot, Controllers[i]);
                var own = OwnPath(selfCgroup, Controllers[i]);
                if (own is null || !File.Exists(Path.Combine(mount, "cgroup.procs")))
                {
                    reason = $"controller {Controllers[i]} is not mounted at {mount}";
                    return false;
                }

                parents[i] = Join(mount, own, options.CgroupParent);
            }

            layout = new V1(options, parents);
            reason = null;
            return true;
        }

        public override AttemptCgroup Create(string name, double vcpus, int memoryMiB)
        {
            var dirs = new string[_parents.Length];
            var created = 0;
            try
            {
                for (; created < dirs.Length; created++)
                {
                    dirs[created] = Path.Combine(_parents[created], name);
                    CreateDirectory(dirs[created]);
                }

                var bytes = (long)memoryMiB * 1024 * 1024;
                WriteFile(Path.Combine(dirs[0], "memory.limit_in_bytes"), Memory(bytes));
                var memsw = Path.Combine(dirs[0], "memory.memsw.limit_in_bytes");
                if (File.Exists(memsw))
                {
                    // No swap beyond the memory limit, like Docker's MemorySwap = Memory.
                    WriteFile(memsw, Memory(bytes));
                }

                var period = _options.CpuPeriodMicroseconds;
                var quota = Math.Max(1_000, (long)Math.Round(vcpus * period));
                WriteFile(Path.Combine(dirs[1], "cpu.cfs_period_us"), period.ToString(CultureInfo.InvariantCulture));
                WriteFile(Path.Combine(dirs[1], "cpu.cfs_quota_us"), quota.ToString(CultureInfo.InvariantCulture));
                WriteFile(Path.Combine(dirs[2], "pids.max"), _options.PidsMax.ToString(CultureInfo.InvariantCulture));
                return new V1Attempt(dirs);
            }
            catch
            {
                for (var i = Math.Min(created, dirs.Length - 1); i >= 0; i--)
                {
                    TryRmdir(dirs[i]);
                }

                throw;
            }
        }

        public override void RemoveParents()
        {
            foreach (var parent in _parents)
            {
                TryRmdir(parent);
            }
        }
    }

    private sealed class V2 : CgroupLayout
    {
        private readonly string _parent;
        private readonly ProcessHostDriverOptions _options;

        private V2(ProcessHostDriverOptions options, string parent)
        {
            _options = options;
            _parent = parent;
        }

        public override string Version => "v2";

        public static bool TryCreate(ProcessHostDriverOptions options, string[] selfCgroup, [NotNullWhen(true)] out V2? layout, out string? reason)
        {
            layout = null;
            var mount = File.Exists(Path.Combine(options.CgroupRoot, "cgroup.controllers"))
                ? options.CgroupRoot
                : Path.Combine(options.CgroupRoot, "unified");
            var own = OwnPath(selfCgroup, "");
            if (own is null || !File.Exists(Path.Combine(mount, "cgroup.controllers")))
            {
                reason = "not mounted";
                return false;
            }

            var ownDir = Join(mount, own, "");
            string available;
            try
            {
                available = File.ReadAllText(Path.Combine(ownDir, "cgroup.controllers"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                reason = e.Message;
                return false;
            }

            foreach (var controller in Controllers)
            {
                if (!ContainsToken(available.AsSpan().Trim(), controller.AsSpan(), ' '))
                {
                    reason = $"controller {controller} not available in {ownDir} (has '{available.Trim()}')";
                    return false;
                }
            }

            try
            {
                // The parent must delegate memory, cpu and pids to attempt cgroups. Enabling them in our own cgroup
                // fails (EBUSY) when it holds processes and is not the root: then v2 is not usable for us.
                WriteFile(Path.Combine(ownDir, "cgroup.subtree_control"), "+memory +cpu +pids");
                var parent = Path.Combine(ownDir, options.CgroupParent);
                CreateDirectory(parent);
                WriteFile(Path.Combine(parent, "cgroup.subtree_control"), "+memory +cpu +pids");
                layout = new V2(options, parent);
                reason = null;
                return true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                reason = "cannot delegate controllers: " + e.Message;
                return false;
            }
        }

        private static bool ContainsToken(ReadOnlySpan<char> list, ReadOnlySpan<char> token, char separator)
        {
            foreach (var range in list.Split(separator))
            {
                if (list[range].SequenceEqual(token))
                {
                    return true;
                }
            }

            return false;
        }

        public override AttemptCgroup Create(string name, double vcpus, int memoryMiB)
        {
            var dir = Path.Combine(_parent, name);
            CreateDirectory(dir);
            try
            {
                var bytes = (long)memoryMiB * 1024 * 1024;
                WriteFile(Path.Combine(dir, "memory.max"), Memory(bytes));
                var swap = Path.Combine(dir, "memory.swap.max");
                if (File.Exists(swap))
                {
                    WriteFile(swap, "0");
                }

                var period = _options.CpuPeriodMicroseconds;
                var quota = Math.Max(1_000, (long)Math.Round(vcpus * period));
                WriteFile(Path.Combine(dir, "cpu.max"), string.Create(CultureInfo.InvariantCulture, $"{quota} {period}"));
                WriteFile(Path.Combine(dir, "pids.max"), _options.PidsMax.ToString(CultureInfo.InvariantCulture));
                return new V2Attempt(dir);
            }
            catch
            {
                TryRmdir(dir);
                throw;
            }
        }

        public override void RemoveParents() => TryRmdir(_parent);
    }

    internal static bool TryRmdir(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: false);
            return true;
        }
        catch (DirectoryNotFoundException)
        {
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    internal static AttemptCgroup Reopen(string[] paths) => paths.Length == 3 ? new V1Attempt(paths) : new V2Attempt(paths[0]);

    private sealed class V1Attempt(string[] dirs) : AttemptCgroup
    {
        public override IReadOnlyList<string> ProcsFiles { get; } = [.. dirs.Select(d => Path.Combine(d, "cgroup.procs"))];

        // The pids hierarchy lists every process of the attempt (all three list the same set).
        protected override string ListFile => ProcsFiles[2];

        public override bool OomKilled() =>
            ReadCounter(Path.Combine(dirs[0], "memory.oom_control"), "oom_kill") > 0;

        protected override IEnumerable<string> Directories => dirs;
    }

    private sealed class V2Attempt(string dir) : AttemptCgroup
    {
        public override IReadOnlyList<string> ProcsFiles { get; } = [Path.Combine(dir, "cgroup.procs")];

        protected override string ListFile => ProcsFiles[0];

        public override bool OomKilled() => ReadCounter(Path.Combine(dir, "memory.events"), "oom_kill") > 0;

        protected override IEnumerable<string> Directories => [dir];
    }

    private static long ReadCounter(string file, string key)
    {
        try
        {
            foreach (var line in File.ReadLines(file))
            {
                if (line.StartsWith(key, StringComparison.Ordinal) && line.Length > key.Length && line[key.Length] == ' '
                    && long.TryParse(line.AsSpan(key.Length + 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
                {
                    return n;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return 0;
    }
}

/// <summary>One attempt's cgroup (a directory per v1 controller, or one v2 directory).</summary>
internal abstract class AttemptCgroup
{
    /// <summary>The <c>cgroup.procs</c> files the job's first process writes its pid into before it execs the job.</summary>
    public abstract IReadOnlyList<string> ProcsFiles { get; }

    /// <summary>Whether the kernel's OOM killer killed a process of this cgroup.</summary>
    public abstract bool OomKilled();

    /// <summary>The file listing every process of the attempt.</summary>
    protected abstract string ListFile { get; }

    /// <summary>The directories to remove, in any order.</summary>
    protected abstract IEnumerable<string> Directories { get; }

    /// <summary>Sends <paramref name="signal"/> to every process in the cgroup; returns how many there were.</summary>
    public int SignalAll(int signal)
    {
        var count = 0;
        try
        {
            foreach (var line in File.ReadLines(ListFile))
            {
                if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0)
                {
                    _ = NativeMethods.Kill(pid, signal);
                    count++;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return count;
    }

    /// <summary>
    /// Kills whatever is left (like a container whose main process ended) and removes the directories. Bounded polling:
    /// an exiting process stays listed until the kernel has torn it down. Returns false when it gave up.
    /// </summary>
    public async ValueTask<bool> RemoveAsync(TimeProvider time)
    {
        for (var i = 0; i < 250; i++)
        {
            if (SignalAll(NativeMethods.SIGKILL) == 0)
            {
                var all = true;
                foreach (var dir in Directories)
                {
                    all &= CgroupLayout.TryRmdir(dir);
                }

                if (all)
                {
                    return true;
                }
            }

            await Task.Delay(TimeSpan.FromMilliseconds(20), time).ConfigureAwait(false);
        }

        return false;
    }

    /// <summary>For diagnostics.</summary>
    public override string ToString() => ListFile;

    /// <summary>The directories, as recorded in a re-attach handle.</summary>
    public string[] Paths => [.. Directories];

    /// <summary>An attempt cgroup a previous engine created: three directories (v1: memory, cpu, pids) or one (v2).</summary>
    public static AttemptCgroup Reopen(string[] paths) => CgroupLayout.Reopen(paths);
}
