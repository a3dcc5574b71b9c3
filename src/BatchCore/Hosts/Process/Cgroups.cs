using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace BatchCore.Hosts.Process;

/// <summary>
/// The driver-owned cgroup parent(s) in whichever hierarchy is usable: cgroup v2 when the unified hierarchy offers the
/// memory, cpu and pids controllers, else cgroup v1 (one directory per controller). Created once per driver.
/// </summary>
/// <remarks>
/// Cost per attempt is what matters here (a trivial job takes ~3 ms to fork and exec on a small VM):
/// <list type="bullet">
/// <item>v1 attempt cgroups are pooled: a slot is emptied, reset and reused instead of three mkdir/rmdir pairs.</item>
/// <item>v1 attempts join their cgroups without an extra exec: the starting thread moves itself (only itself, by writing
/// 0 to <c>tasks</c>) into the slot, whose limits are already set, forks the job, which inherits the thread's cgroups,
/// and moves back; any runtime thread it created meanwhile is moved back too. The memory-cgroup OOM killer only picks
/// thread-group leaders, so a (non-main) driver thread in a limited slot never makes the driver a candidate.</item>
/// <item>v2 forbids moving single threads of a domain cgroup: there the job's first process joins through the
/// <c>/bin/sh</c> wrapper (<see cref="AttemptCgroup.ProcsFiles"/>), and cgroups are created and removed per attempt.</item>
/// </list>
/// </remarks>
internal abstract class CgroupLayout
{
    private static readonly string[] Controllers = ["memory", "cpu", "pids"];

    protected CgroupLayout(bool limits) => Limits = limits;

    /// <summary>"v1" or "v2", for diagnostics.</summary>
    public abstract string Version { get; }

    /// <summary>Whether attempt cgroups carry limits. False: they only track the attempt's processes (v1 pids hierarchy).</summary>
    public bool Limits { get; }

    /// <summary>An attempt cgroup for the given limits, reused from the pool when one is free. Throws
    /// <see cref="IOException"/> or <see cref="UnauthorizedAccessException"/> when the cgroup file system refuses.</summary>
    public abstract AttemptCgroup Rent(double vcpus, int memoryMiB);

    /// <summary>
    /// Kills whatever is left in the attempt's cgroup (like a container whose main process ended), waits until it is
    /// empty, then keeps it for the next attempt or removes it. Returns false when it gave up (the cgroup is left).
    /// </summary>
    public abstract ValueTask<bool> ReturnAsync(AttemptCgroup cgroup, TimeProvider time);

    /// <summary>Removes the pooled cgroups and the driver-owned parent directories (best effort). Call once no attempt runs.</summary>
    public abstract void RemoveAll();

    /// <summary>
    /// Finds a usable layout: v2 first, then v1; with <paramref name="limits"/> false only a v1 pids hierarchy, used to
    /// track (and kill) each attempt's process tree without an extra exec. Verifies it by renting, joining and returning
    /// a probe cgroup. Returns null with the reason when none works. Cgroup names start with <paramref name="namePrefix"/>.
    /// </summary>
    public static CgroupLayout? Probe(ProcessHostDriverOptions options, string namePrefix, bool limits, out string? unavailableReason)
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

        var v2Reason = "cgroup v2: not tried without limits";
        if (limits)
        {
            if (V2.TryCreate(options, namePrefix, selfCgroup, out var v2, out var why2) && TryProbe(v2, out why2))
            {
                unavailableReason = null;
                return v2;
            }

            v2Reason = "cgroup v2: " + (why2 ?? "not mounted");
            v2?.RemoveAll();
        }

        if (V1.TryCreate(options, namePrefix, selfCgroup, limits, out var v1, out var why1) && TryProbe(v1, out why1))
        {
            unavailableReason = null;
            return v1;
        }

        v1?.RemoveAll();
        unavailableReason = v2Reason + "; cgroup v1: " + why1;
        return null;
    }

    private static bool TryProbe(CgroupLayout layout, out string? reason)
    {
        AttemptCgroup? probe = null;
        try
        {
            probe = layout.Rent(0.5, 64);
            probe.EnterForStart();
            probe.LeaveAfterStart();
            var returned = layout.ReturnAsync(probe, TimeProvider.System).AsTask().GetAwaiter().GetResult();
            reason = returned ? null : "cannot empty probe cgroup " + probe;
            return returned;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (probe is not null)
            {
                layout.Discard(probe);
            }

            reason = e.Message;
            return false;
        }
    }

    /// <summary>Removes an attempt cgroup that is known to be empty (best effort).</summary>
    protected abstract void Discard(AttemptCgroup cgroup);

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
            var matches = controller.Length == 0 ? list.IsEmpty : ContainsToken(list, controller, ',');
            if (matches)
            {
                return line[(second + 1)..];
            }
        }

        return null;
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

    private static string Join(string root, string own, string rest) =>
        Path.Combine(root, own.TrimStart('/'), rest);

    internal static void WriteFile(string path, string value)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
        RandomAccess.Write(handle, Encoding.ASCII.GetBytes(value), 0);
    }

    internal static void WriteFile(string path, ReadOnlySpan<byte> value)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Write);
        RandomAccess.Write(handle, value, 0);
    }

    /// <summary>
    /// Reads a small (pseudo-)file whole into a pooled buffer (cgroup files report no size): the caller returns
    /// <paramref name="buffer"/> to <see cref="System.Buffers.ArrayPool{T}.Shared"/>. Throws as File.OpenHandle does.
    /// </summary>
    internal static int ReadSmallFile(string path, out byte[] buffer)
    {
        buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(512);
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                var bigger = System.Buffers.ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                buffer.AsSpan(0, length).CopyTo(bigger);
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                buffer = bigger;
            }

            var n = RandomAccess.Read(handle, buffer.AsSpan(length), length);
            if (n == 0)
            {
                return length;
            }

            length += n;
        }
    }

    /// <summary>The next decimal number of a newline-separated list at <paramref name="position"/> (advanced past it);
    /// false at the end. Lines that are not numbers are skipped.</summary>
    internal static bool NextNumber(ReadOnlySpan<byte> text, ref int position, out int value)
    {
        while (position < text.Length)
        {
            var rest = text[position..];
            var end = rest.IndexOf((byte)'\n');
            var line = end < 0 ? rest : rest[..end];
            position += end < 0 ? rest.Length : end + 1;
            if (System.Buffers.Text.Utf8Parser.TryParse(line, out value, out var consumed) && consumed == line.Length && value > 0)
            {
                return true;
            }
        }

        value = 0;
        return false;
    }

    internal static string Memory(long bytes) => bytes.ToString(CultureInfo.InvariantCulture);

    private static string Quota(double vcpus, int period) =>
        Math.Max(1_000, (long)Math.Round(vcpus * period)).ToString(CultureInfo.InvariantCulture);

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

    internal static long ReadCounter(string file, string key)
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

    private static long ReadNumber(string file)
    {
        try
        {
            var length = ReadSmallFile(file, out var text);
            try
            {
                return System.Buffers.Text.Utf8Parser.TryParse(text.AsSpan(0, length).Trim((byte)'\n'), out long n, out _) ? n : 0;
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(text);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>
    /// cgroup v1: one directory per controller (memory, cpu, pids; only pids when tracking without limits). Slots are
    /// pooled and joined by the starting thread.
    /// </summary>
    private sealed class V1 : CgroupLayout
    {
        // A slot holding more than this much charged memory after its attempt (page cache, tmpfs) is reclaimed with
        // memory.force_empty before reuse, so the next attempt starts with its whole limit; below it, not worth a pass.
        private const long ReclaimThresholdBytes = 1024 * 1024;

        // More idle slots than this are removed instead of pooled (peak concurrency on one host stays far below).
        private const int MaxPooled = 256;

        private readonly ProcessHostDriverOptions _options;
        private readonly string _namePrefix;
        private readonly string[] _parents; // memory, cpu, pids — or pids alone without limits
        private readonly string[] _homeTasks; // the driver's own cgroup per hierarchy: where the starting thread returns
        private readonly ConcurrentBag<V1Slot> _pool = [];
        private int _pooled;
        private long _nextSlot;

        private V1(ProcessHostDriverOptions options, string namePrefix, bool limits, string[] parents, string[] homeTasks)
            : base(limits)
        {
            _options = options;
            _namePrefix = namePrefix;
            _parents = parents;
            _homeTasks = homeTasks;
        }

        public override string Version => "v1";

        public static bool TryCreate(ProcessHostDriverOptions options, string namePrefix, string[] selfCgroup, bool limits,
            [NotNullWhen(true)] out V1? layout, out string? reason)
        {
            layout = null;
            string[] controllers = limits ? Controllers : ["pids"];
            var parents = new string[controllers.Length];
            var homeTasks = new string[controllers.Length];
            for (var i = 0; i < controllers.Length; i++)
            {
                var mount = Path.Combine(options.CgroupRoot, controllers[i]);
                var own = OwnPath(selfCgroup, controllers[i]);
                if (own is null || !File.Exists(Path.Combine(mount, "cgroup.procs")))
                {
                    reason = $"controller {controllers[i]} is not mounted at {mount}";
                    return false;
                }

                parents[i] = Join(mount, own, options.CgroupParent);
                homeTasks[i] = Join(mount, own, "tasks");
            }

            layout = new V1(options, namePrefix, limits, parents, homeTasks);
            SweepStaleSlots(parents);
            reason = null;
            return true;
        }

        /// <summary>
        /// Removes the idle pooled slots of drivers whose process is gone (an engine that crashed cannot return its
        /// pool). Slot names start with the owner's pid; a slot that still lists a process (an attempt a restarted
        /// engine may re-attach) is left alone.
        /// </summary>
        private static void SweepStaleSlots(string[] parents)
        {
            foreach (var parent in parents)
            {
                IEnumerable<string> dirs;
                try
                {
                    dirs = Directory.EnumerateDirectories(parent).ToList();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    continue;
                }

                foreach (var dir in dirs)
                {
                    var name = Path.GetFileName(dir.AsSpan());
                    var dash = name.IndexOf('-');
                    if (dash <= 0 || !name.Contains("-s", StringComparison.Ordinal) ||
                        !int.TryParse(name[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ||
                        pid == Environment.ProcessId || Directory.Exists("/proc/" + pid.ToString(CultureInfo.InvariantCulture)))
                    {
                        continue;
                    }

                    try
                    {
                        if (File.ReadAllText(Path.Combine(dir, "cgroup.procs")).Length == 0)
                        {
                            _ = TryRmdir(dir);
                        }
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // gone meanwhile, or not ours to read
                    }
                }
            }
        }

        public override AttemptCgroup Rent(double vcpus, int memoryMiB)
        {
            if (_pool.TryTake(out var slot))
            {
                Interlocked.Decrement(ref _pooled);
            }
            else
            {
                slot = CreateSlot();
            }

            slot.Prepare(vcpus, memoryMiB);
            return slot;
        }

        private V1Slot CreateSlot()
        {
            var name = _namePrefix + "-s" + Interlocked.Increment(ref _nextSlot).ToString(CultureInfo.InvariantCulture);
            var dirs = new string[_parents.Length];
            var created = 0;
            try
            {
                for (; created < dirs.Length; created++)
                {
                    dirs[created] = Path.Combine(_parents[created], name);
                    CreateDirectory(dirs[created]);
                }

                // Constant for the driver's lifetime: written once per slot. Memory and quota are per attempt.
                if (Limits)
                {
                    WriteFile(Path.Combine(dirs[1], "cpu.cfs_period_us"), _options.CpuPeriodMicroseconds.ToString(CultureInfo.InvariantCulture));
                    WriteFile(Path.Combine(dirs[2], "pids.max"), _options.PidsMax.ToString(CultureInfo.InvariantCulture));
                }

                return new V1Slot(this, dirs);
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

        public override async ValueTask<bool> ReturnAsync(AttemptCgroup cgroup, TimeProvider time)
        {
            var slot = (V1Slot)cgroup;
            if (!slot.TakeDrained())
            {
                slot.EvictOwnThreads();
                if (!await slot.EmptyAsync(time).ConfigureAwait(false))
                {
                    return false; // still holds processes: never reuse it, and leave it for the diagnostic
                }
            }

            if (Interlocked.Increment(ref _pooled) <= MaxPooled && slot.TryReset())
            {
                _pool.Add(slot);
                return true;
            }

            Interlocked.Decrement(ref _pooled);
            return slot.TryRemove();
        }

        protected override void Discard(AttemptCgroup cgroup) => _ = ((V1Slot)cgroup).TryRemove();

        public override void RemoveAll()
        {
            while (_pool.TryTake(out var slot))
            {
                Interlocked.Decrement(ref _pooled);
                _ = slot.TryRemove();
            }

            foreach (var parent in _parents)
            {
                TryRmdir(parent);
            }
        }

        private sealed class V1Slot : AttemptCgroup
        {
            private readonly V1 _layout;
            private readonly string[] _dirs;
            private readonly string[] _tasks;
            private readonly string _procs; // last hierarchy (pids) lists every process of the attempt
            private readonly string? _memoryLimit;
            private readonly string? _memswLimit;
            private readonly string? _cpuQuota;
            private readonly string? _oomControl;
            private long _oomBaseline;
            private string? _pendingMemory;
            private string? _pendingQuota;
            private bool _limitFailed;
            private bool _deferLimits;
            private string? _appliedMemory; // null: unlimited, or unknown after a failed write
            private string? _appliedQuota;
            private bool _entered;

            public V1Slot(V1 layout, string[] dirs)
            {
                _layout = layout;
                _dirs = dirs;
                _tasks = [.. dirs.Select(d => Path.Combine(d, "tasks"))];
                _procs = Path.Combine(dirs[^1], "cgroup.procs");
                if (layout.Limits)
                {
                    _memoryLimit = Path.Combine(dirs[0], "memory.limit_in_bytes");
                    var memsw = Path.Combine(dirs[0], "memory.memsw.limit_in_bytes");
                    _memswLimit = File.Exists(memsw) ? memsw : null;
                    _cpuQuota = Path.Combine(dirs[1], "cpu.cfs_quota_us");
                    _oomControl = Path.Combine(dirs[0], "memory.oom_control");
                }
            }

            public override IReadOnlyList<string> ProcsFiles => [];

            public override string[] Paths => _dirs;

            public override long OomBaseline => _oomBaseline;

            protected override string ListFile => _procs;

            public void Prepare(double vcpus, int memoryMiB)
            {
                _limitFailed = false;
                if (_layout.Limits)
                {
                    _pendingMemory = Memory((long)memoryMiB * 1024 * 1024);
                    _pendingQuota = Quota(vcpus, _layout._options.CpuPeriodMicroseconds);
                }
            }

            public override void EnterForStart()
            {
                // The memory-cgroup OOM killer only picks thread-group leaders of the cgroup. A non-leader thread can
                // join a limited cgroup safely, so the job sees its limits from its first instruction. The leader (the
                // main thread: only the constructor's probe) joins an unlimited cgroup and limits follow its leave.
                _deferLimits = _layout.Limits && NativeMethods.GetTid() == OwnPid;
                if (_deferLimits)
                {
                    if (_memswLimit is not null)
                    {
                        WriteFile(_memswLimit, "-1"u8);
                    }

                    WriteFile(_memoryLimit!, "-1"u8);
                    _appliedMemory = null;
                }
                else if (_layout.Limits)
                {
                    ApplyLimits();
                }

                var joined = 0;
                try
                {
                    for (; joined < _tasks.Length; joined++)
                    {
                        WriteFile(_tasks[joined], "0"u8); // 0: the calling thread only
                    }
                }
                catch
                {
                    Leave(joined);
                    throw;
                }

                _entered = true;
            }

            public override void LeaveAfterStart()
            {
                if (!_entered)
                {
                    return;
                }

                _entered = false;
                Leave(_tasks.Length);
                EvictOwnThreads();
                if (_deferLimits)
                {
                    try
                    {
                        ApplyLimits();
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // The kernel refuses a memory limit below what the job already uses (EBUSY after reclaim): the
                        // job exceeded its memory before its limit was in place. End it as the limit would have.
                        _limitFailed = true;
                        _ = SignalAll(NativeMethods.SIGKILL);
                    }
                }
            }

            private void ApplyLimits()
            {
                // A slot keeps its last attempt's limits: consecutive attempts of one job definition write nothing.
                if (_pendingMemory != _appliedMemory)
                {
                    // memory.limit_in_bytes must stay at or below memsw: raise memsw first, lower memory first (null is
                    // unlimited, so a first limit lowers).
                    var raising = _appliedMemory is not null && long.Parse(_pendingMemory!, CultureInfo.InvariantCulture) > long.Parse(_appliedMemory, CultureInfo.InvariantCulture);
                    _appliedMemory = null; // unknown until both are written
                    if (raising && _memswLimit is not null)
                    {
                        WriteFile(_memswLimit, _pendingMemory!);
                    }

                    WriteFile(_memoryLimit!, _pendingMemory!);
                    if (!raising && _memswLimit is not null)
                    {
                        WriteFile(_memswLimit, _pendingMemory!); // no swap beyond the memory limit, like Docker's MemorySwap = Memory
                    }

                    _appliedMemory = _pendingMemory;
                }

                if (_pendingQuota != _appliedQuota)
                {
                    _appliedQuota = null;
                    WriteFile(_cpuQuota!, _pendingQuota!);
                    _appliedQuota = _pendingQuota;
                }
            }

            private void Leave(int joined)
            {
                // Back to the driver's own cgroups. Failing here would leave a driver thread in an attempt's cgroup, so
                // retry once, then let it surface (SignalAll never signals the driver's own process either way).
                for (var i = joined - 1; i >= 0; i--)
                {
                    try
                    {
                        WriteFile(_layout._homeTasks[i], "0"u8);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        WriteFile(_layout._homeTasks[i], "0"u8);
                    }
                }
            }

            /// <summary>
            /// Threads the runtime created from the starting thread while it was in the slot (a thread-pool worker, the
            /// process-exit wait thread, the signal thread on a first start) inherited the slot's cgroups: move every
            /// thread of this process back home. A few rounds, in case one of them started another meanwhile.
            /// </summary>
            public override void EvictOwnThreads()
            {
                // A thread created while the starting thread was in the slot inherited all of its hierarchies, so the
                // last one (pids) lists every such thread: one read per attempt.
                for (var round = 0; round < 3; round++)
                {
                    var found = false;
                    byte[]? text = null;
                    try
                    {
                        var length = ReadSmallFile(_tasks[^1], out text);
                        var position = 0;
                        while (NextNumber(text.AsSpan(0, length), ref position, out var tid))
                        {
                            if (NativeMethods.TgKill(OwnPid, tid, 0) == 0)
                            {
                                found = true;
                                var id = tid.ToString(CultureInfo.InvariantCulture);
                                for (var i = _tasks.Length - 1; i >= 0; i--)
                                {
                                    WriteFile(_layout._homeTasks[i], id);
                                }
                            }
                        }
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // the thread ended meanwhile (ESRCH), or the slot is going away
                    }
                    finally
                    {
                        if (text is not null)
                        {
                            System.Buffers.ArrayPool<byte>.Shared.Return(text);
                        }
                    }

                    if (!found)
                    {
                        return;
                    }
                }
            }

            public override bool OomKilled() =>
                _limitFailed || (_oomControl is not null && ReadCounter(_oomControl, "oom_kill") > _oomBaseline);

            /// <summary>Memory reclaimed if much is still charged, limits known (or back to unlimited), a fresh OOM baseline.</summary>
            public bool TryReset()
            {
                if (!_layout.Limits)
                {
                    return true;
                }

                try
                {
                    // Limits stay for the next attempt (rewritten only when they differ); a slot whose limits are in an
                    // unknown state after a failed write goes back to unlimited first.
                    if (_appliedMemory is null)
                    {
                        if (_memswLimit is not null)
                        {
                            WriteFile(_memswLimit, "-1"u8); // memsw first: memory.limit_in_bytes may not exceed it
                        }

                        WriteFile(_memoryLimit!, "-1"u8);
                    }

                    var usage = Path.Combine(_dirs[0], "memory.usage_in_bytes");
                    if (ReadNumber(usage) > ReclaimThresholdBytes)
                    {
                        WriteFile(Path.Combine(_dirs[0], "memory.force_empty"), "0"u8);
                        if (ReadNumber(usage) > ReclaimThresholdBytes)
                        {
                            return false; // unreclaimable (tmpfs without swap): charges go to the parent on rmdir
                        }
                    }

                    _oomBaseline = ReadCounter(_oomControl!, "oom_kill");
                    return true;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    return false;
                }
            }

            public bool TryRemove()
            {
                var all = true;
                foreach (var dir in _dirs)
                {
                    all &= TryRmdir(dir);
                }

                return all;
            }
        }
    }

    /// <summary>cgroup v2: one directory per attempt, joined through the <c>/bin/sh</c> wrapper, removed afterwards.</summary>
    private sealed class V2 : CgroupLayout
    {
        private readonly string _parent;
        private readonly string _namePrefix;
        private readonly ProcessHostDriverOptions _options;
        private long _next;

        private V2(ProcessHostDriverOptions options, string namePrefix, string parent)
            : base(limits: true)
        {
            _options = options;
            _namePrefix = namePrefix;
            _parent = parent;
        }

        public override string Version => "v2";

        public static bool TryCreate(ProcessHostDriverOptions options, string namePrefix, string[] selfCgroup,
            [NotNullWhen(true)] out V2? layout, out string? reason)
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
                layout = new V2(options, namePrefix, parent);
                reason = null;
                return true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                reason = "cannot delegate controllers: " + e.Message;
                return false;
            }
        }

        public override AttemptCgroup Rent(double vcpus, int memoryMiB)
        {
            var dir = Path.Combine(_parent, _namePrefix + "-a" + Interlocked.Increment(ref _next).ToString(CultureInfo.InvariantCulture));
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
                WriteFile(Path.Combine(dir, "cpu.max"), Quota(vcpus, period) + " " + period.ToString(CultureInfo.InvariantCulture));
                WriteFile(Path.Combine(dir, "pids.max"), _options.PidsMax.ToString(CultureInfo.InvariantCulture));
                return new V2Attempt(dir);
            }
            catch
            {
                TryRmdir(dir);
                throw;
            }
        }

        public override async ValueTask<bool> ReturnAsync(AttemptCgroup cgroup, TimeProvider time)
        {
            // rmdir can still fail (EBUSY) for a moment after the list is empty; bounded retries like EmptyAsync.
            var dir = ((V2Attempt)cgroup).Directory;
            for (var i = 0; i < 50; i++)
            {
                if (await cgroup.EmptyAsync(time).ConfigureAwait(false) && TryRmdir(dir))
                {
                    return true;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(20), time).ConfigureAwait(false);
            }

            return false;
        }

        protected override void Discard(AttemptCgroup cgroup) => _ = TryRmdir(((V2Attempt)cgroup).Directory);

        public override void RemoveAll() => TryRmdir(_parent);

        private sealed class V2Attempt(string dir) : AttemptCgroup
        {
            public string Directory => dir;

            public override IReadOnlyList<string> ProcsFiles { get; } = [Path.Combine(dir, "cgroup.procs")];

            public override string[] Paths => [dir];

            protected override string ListFile => ProcsFiles[0];

            public override void EnterForStart()
            {
                // The job's first process joins through the wrapper (ProcsFiles).
            }

            public override void LeaveAfterStart()
            {
            }

            public override bool OomKilled() => ReadCounter(Path.Combine(dir, "memory.events"), "oom_kill") > 0;
        }
    }
}

/// <summary>One attempt's cgroup (a directory per v1 controller, or one v2 directory).</summary>
internal abstract class AttemptCgroup
{
    protected static readonly int OwnPid = Environment.ProcessId;

    /// <summary>
    /// The <c>cgroup.procs</c> files the job's first process must write its pid into before it execs the job (the
    /// <c>/bin/sh</c> wrapper); empty when <see cref="EnterForStart"/> already places the job.
    /// </summary>
    public abstract IReadOnlyList<string> ProcsFiles { get; }

    /// <summary>Whether the kernel's OOM killer killed a process of this cgroup during the current attempt.</summary>
    public abstract bool OomKilled();

    /// <summary>The file listing every process of the attempt.</summary>
    protected abstract string ListFile { get; }

    /// <summary>
    /// Called on the thread that starts the job's process, right before the start: a process forked by this thread
    /// starts in the attempt's cgroup. Must be followed by <see cref="LeaveAfterStart"/> on the same thread, with no
    /// await in between. Throws <see cref="IOException"/> when the cgroup refuses (nothing joined then).
    /// </summary>
    public abstract void EnterForStart();

    /// <summary>Moves the starting thread back and puts the attempt's limits in place.</summary>
    public abstract void LeaveAfterStart();

    /// <summary>Moves back home any thread of this process left in the cgroup (v1 slots: threads the runtime created
    /// while the starting thread was inside). Nothing to do elsewhere.</summary>
    public virtual void EvictOwnThreads()
    {
    }

    private bool _drained;

    /// <summary>Whether <see cref="DrainAsync"/> found the cgroup empty since the last call (nothing enters an empty
    /// attempt cgroup by itself); clears it, so a pooled slot's next attempt starts undrained.</summary>
    public bool TakeDrained()
    {
        var drained = _drained;
        _drained = false;
        return drained;
    }

    /// <summary>Takes this process's threads back and kills what is left until the cgroup is empty (see
    /// <see cref="EmptyAsync"/>); returning the slot to the pool right after need not do it again.</summary>
    public async ValueTask DrainAsync(TimeProvider time)
    {
        EvictOwnThreads();
        _drained = await EmptyAsync(time).ConfigureAwait(false);
    }

    /// <summary>Sends <paramref name="signal"/> to every process in the cgroup; returns how many there were.</summary>
    public int SignalAll(int signal)
    {
        var count = 0;
        byte[]? text = null;
        try
        {
            var length = CgroupLayout.ReadSmallFile(ListFile, out text);
            var position = 0;
            while (CgroupLayout.NextNumber(text.AsSpan(0, length), ref position, out var pid))
            {
                // Never the driver itself: its starting thread is in the cgroup for the moment of a fork.
                if (pid != OwnPid)
                {
                    _ = NativeMethods.Kill(pid, signal);
                    count++;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        finally
        {
            if (text is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(text);
            }
        }

        return count;
    }

    /// <summary>
    /// Kills whatever is left until the cgroup lists no process. Bounded polling: an exiting process stays listed until
    /// the kernel has torn it down. Returns false when it gave up.
    /// </summary>
    public async ValueTask<bool> EmptyAsync(TimeProvider time)
    {
        for (var i = 0; i < 250; i++)
        {
            if (SignalAll(NativeMethods.SIGKILL) == 0)
            {
                return true;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(20), time).ConfigureAwait(false);
        }

        return false;
    }

    /// <summary>For diagnostics.</summary>
    public override string ToString() => ListFile;

    /// <summary>The directories (v1: memory, cpu, pids; v2: one), as recorded in a re-attach handle.</summary>
    public abstract string[] Paths { get; }

    /// <summary>The OOM-kill count when the current attempt began (v1 slots are reused), as recorded in a re-attach handle.</summary>
    public virtual long OomBaseline => 0;

    /// <summary>
    /// An attempt cgroup a previous engine created (re-attach after a restart): it is emptied and removed when the
    /// attempt ends, never pooled — the pool it came from died with that engine.
    /// </summary>
    public static AttemptCgroup Reopen(string[] paths, long oomBaseline = 0) => new Reopened(paths, oomBaseline);

    /// <summary>Kills what is left, then removes the directories (and their parent when it became empty).</summary>
    public async ValueTask<bool> RemoveAsync(TimeProvider time)
    {
        for (var i = 0; i < 250; i++)
        {
            if (await EmptyAsync(time).ConfigureAwait(false))
            {
                var all = true;
                foreach (var dir in Paths)
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

    private sealed class Reopened(string[] dirs, long oomBaseline) : AttemptCgroup
    {
        public override IReadOnlyList<string> ProcsFiles => [];

        public override string[] Paths => dirs;

        public override long OomBaseline => oomBaseline;

        // v1: the pids hierarchy (last) lists every process of the attempt.
        protected override string ListFile => Path.Combine(dirs[^1], "cgroup.procs");

        public override void EnterForStart() => throw new InvalidOperationException("a reopened cgroup never starts a process");

        public override void LeaveAfterStart()
        {
        }

        public override bool OomKilled() => dirs.Length == 3
            ? CgroupLayout.ReadCounter(Path.Combine(dirs[0], "memory.oom_control"), "oom_kill") > oomBaseline
            : CgroupLayout.ReadCounter(Path.Combine(dirs[0], "memory.events"), "oom_kill") > oomBaseline;
    }
}
