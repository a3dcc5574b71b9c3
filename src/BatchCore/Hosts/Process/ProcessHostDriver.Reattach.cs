using System.Globalization;
using System.Text.Json;

namespace BatchCore.Hosts.Process;

/// <summary>
/// Survivable attempts and re-attaching (the engine journals): the job must outlive a crashed engine and be found again.
/// A process whose parent engine died loses its stdout pipe (SIGPIPE on the next write) and its exit status can only be
/// reaped by its parent, so a survivable attempt runs under a small <c>/bin/sh</c> wrapper (the cgroup-joining one, which
/// here waits instead of exec'ing) that sends the job's output to a file — tailed into the log stream — and writes the
/// job's exit code to another file. The re-attach handle records the wrapper's pid and start time (field 22 of
/// <c>/proc/&lt;pid&gt;/stat</c>: a reused pid has another one), those files and the cgroup.
/// </summary>
public sealed partial class ProcessHostDriver
{
    /// <summary>The reason of a re-attached attempt whose process ended without an exit status (killed with its wrapper).</summary>
    public const string VanishedReason = "Host terminated: the attempt's process ended without an exit status while the engine was down";

    // $1 output file, $2 exit-code file, $3 N, then N cgroup.procs files, then the job: "$@" stays literal. The wrapper
    // traps SIGTERM (a handler, unlike an ignored signal, is reset for the job) so that it outlives the job to record its
    // exit code; SIGTERM reaches the job through the cgroup or the process group.
    // The wrapper first records its pid beside the exit-code file (the "pid" file): an engine that died between the
    // fork and journaling the handle finds the attempt by its run directory (see TryReattach).
    private const string SurvivableScript =
        "trap : TERM; echo $$ > \"${2%/*}/pid\"; exec >\"$1\" 2>&1 </dev/null; e=$2; n=$3; shift 3; " +
        "while [ \"$n\" -gt 0 ]; do echo $$ > \"$1\" || exit 125; shift; n=$((n-1)); done; " +
        "\"$@\"; c=$?; echo $c > \"$e\"; exit $c";

    private const string OutputFileName = "output";
    private const string ExitFileName = "exit-code";
    private const string PidFileName = "pid";
    private const string HandleFileName = "handle";

    /// <summary>Survivable runs need Linux and a way to signal the job's whole tree (its cgroup or its own session).</summary>
    private bool CanSurvive => OperatingSystem.IsLinux() && (_cgroups is not null || _useSetsid);

    /// <inheritdoc />
    /// <remarks>
    /// Takes back an attempt by its handle: when the wrapper (same pid, same start time) still runs, its output file is
    /// followed from the start and its liveness polled; when it is gone, the exit-code file holds the job's exit. A
    /// wrapper gone without that file (killed, or the machine rebooted) cannot be re-attached: what is left of it (its
    /// cgroup's processes, its files) is removed and false returned. A live pid with another start time is another
    /// process and is never signalled.
    /// </remarks>
    public override bool TryReattach(AttemptReattach reattach, IAttemptEventSink sink)
    {
        ArgumentNullException.ThrowIfNull(reattach);
        ArgumentNullException.ThrowIfNull(sink);
        if (Volatile.Read(ref _disposed) != 0)
        {
            ThrowDisposed();
        }

        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        var reported = false;
        var handle = ProcessHandle.Decode(reattach.Handle);
        if (handle is null)
        {
            // The engine died after the fork but before it journaled the handle (its record says STARTING): the run
            // directory, named after the engine, job and attempt, tells whether the wrapper started and where it is.
            if (FindByRunDirectory(reattach.EngineId, reattach.JobId, reattach.Attempt) is not { } found)
            {
                return false;
            }

            handle = found;
            reported = true;
        }

        var alive = handle.StartTime > 0 && ProcStat.StartTime(handle.Pid) == handle.StartTime;
        if (!alive && !File.Exists(Path.Combine(handle.RunDirectory, ExitFileName)))
        {
            Reattached.CleanUpAsync(handle, _options).AsTask().GetAwaiter().GetResult();
            return false;
        }

        var attempt = new Reattached(this, reattach, handle, sink);
        if (!_attempts.TryAdd(reattach.Token, attempt))
        {
            ThrowDuplicate(reattach.Token);
        }

        attempt.Completion = Task.Run(() => attempt.RunAsync(alive, reported ? handle.Encode() : null));
        return true;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Each re-attached attempt stops being polled and tailed; its process, cgroup and run directory (with the output and
    /// exit-code files the next start reads) are left as they are, and no exit is reported. A wrapper that ended at that
    /// moment keeps its exit-code file: the next start reports that exit.
    /// </remarks>
    public override async ValueTask ReleaseReattachedAsync()
    {
        var released = new List<Task>();
        foreach (var (_, tracked) in _attempts)
        {
            if (tracked is Reattached attempt)
            {
                attempt.Release();
                if (attempt.Completion is { } completion)
                {
                    released.Add(completion);
                }
            }
        }

        await Task.WhenAll(released).ConfigureAwait(false);
    }

    /// <summary>
    /// Appends an attempt's output line; a failing log store loses lines, never the attempt, and is said once per attempt
    /// (<paramref name="failed"/>).
    /// </summary>
    private void AppendLog(string logStreamName, string line, ref int failed)
    {
        try
        {
            _options.LogStore.Append(logStreamName, _options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds(), line);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            if (Interlocked.Exchange(ref failed, 1) == 0)
            {
                _options.Diagnostic?.Invoke($"log stream {logStreamName}: the log store failed ({e.GetType().Name}: {e.Message}); the attempt's further lines may be lost");
            }
        }
    }

    /// <summary>
    /// The run directory of a survivable attempt: named after its engine, job and attempt (<c>&lt;engineId&gt;@&lt;jobId&gt;-&lt;attempt&gt;.run</c>,
    /// or <c>&lt;jobId&gt;-&lt;attempt&gt;.run</c> for a launch without <see cref="AttemptLaunch.EngineId"/>), so that the
    /// engine finds it again without a handle and no other engine takes it for its own (characters other than letters,
    /// digits, '-', '_', '.' and ':' become '_'; '@' is thus only ever the separator).
    /// </summary>
    private string RunDirectoryOf(string? engineId, string jobId, int attempt)
    {
        var engine = engineId is null ? 0 : Math.Min(engineId.Length, 64) + 1;
        Span<char> name = stackalloc char[engine + Math.Min(jobId.Length, 200)];
        for (var i = 0; i < engine - 1; i++)
        {
            name[i] = RunDirectoryChar(engineId![i]);
        }

        if (engine > 0)
        {
            name[engine - 1] = '@';
        }

        for (var i = engine; i < name.Length; i++)
        {
            name[i] = RunDirectoryChar(jobId[i - engine]);
        }

        return Path.Combine(_options.WorkRoot, string.Concat(name, "-", attempt.ToString(CultureInfo.InvariantCulture), ".run"));
    }

    private static char RunDirectoryChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' ? c : '_';

    /// <summary>
    /// An attempt whose handle never reached the journal: its run directory holds the handle written before the fork and
    /// the wrapper's pid. The pid counts only while that process's command line still names the run directory's
    /// exit-code file (a reused pid is another program). No pid and no exit code: the wrapper never ran (or died at
    /// once) — what is left is removed and null returned, so the engine retries the attempt.
    /// </summary>
    private ProcessHandle? FindByRunDirectory(string? engineId, string jobId, int attempt)
    {
        var runDir = RunDirectoryOf(engineId, jobId, attempt);
        if (!Directory.Exists(runDir))
        {
            return null;
        }

        ProcessHandle? written;
        try
        {
            written = ProcessHandle.Decode(File.ReadAllText(Path.Combine(runDir, HandleFileName)), beforeFork: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            written = null;
        }

        if (written is null || written.RunDirectory != runDir)
        {
            Attempt.TryDeleteDirectory(runDir); // crashed before the handle was complete: nothing was started
            return null;
        }

        var exitFile = Path.Combine(runDir, ExitFileName);
        if (ReadPid(Path.Combine(runDir, PidFileName)) is { } pid && CommandLineNames(pid, exitFile))
        {
            var start = ProcStat.StartTime(pid);
            if (start > 0)
            {
                return written with { Pid = pid, StartTime = start };
            }
        }

        if (File.Exists(exitFile))
        {
            return written with { StartTime = 0 }; // ended: its exit code is on file
        }

        Reattached.CleanUpAsync(written, _options).AsTask().GetAwaiter().GetResult();
        return null;
    }

    /// <summary>
    /// The run directory for a survivable launch. Normally <see cref="RunDirectoryOf"/>; when it exists, a previous run of
    /// this engine (same <see cref="AttemptLaunch.EngineId"/>) launched this very attempt and died before journaling it
    /// (the job was RUNNABLE again after the restart): whatever of it still runs is killed before this launch forks, so
    /// the attempt never runs twice at once. Another engine's attempts, even of a job with the same id, are in
    /// directories of other names and never touched. A caller that launches one job id and attempt twice at the same
    /// time on this driver gets a directory of its own for the second.
    /// </summary>
    private string ClaimRunDirectory(AttemptLaunch launch)
    {
        var dir = RunDirectoryOf(launch.EngineId, launch.JobId, launch.Attempt);
        if (!_runDirectories.TryAdd(dir, 0))
        {
            dir = Path.Combine(_options.WorkRoot, _instanceId + "-" + launch.Token.Value.ToString(CultureInfo.InvariantCulture) + ".run");
            _runDirectories[dir] = 0;
            return dir;
        }

        if (Directory.Exists(dir) && FindByRunDirectory(launch.EngineId, launch.JobId, launch.Attempt) is { } leftover)
        {
            StopLeftover(leftover);
        }

        return dir;
    }

    private void StopLeftover(ProcessHandle leftover)
    {
        if (leftover.StartTime > 0)
        {
            if (leftover.ProcessGroup)
            {
                _ = NativeMethods.Kill(-leftover.Pid, NativeMethods.SIGKILL);
            }

            _ = NativeMethods.Kill(leftover.Pid, NativeMethods.SIGKILL);
            for (var i = 0; i < 250 && ProcStat.StartTime(leftover.Pid) == leftover.StartTime; i++)
            {
                Thread.Sleep(20); // bounded: a killed process is gone once the kernel has torn it down
            }

            _options.Diagnostic?.Invoke("process driver: killed a leftover of a previous engine's launch in " + leftover.RunDirectory);
        }

        Reattached.CleanUpAsync(leftover, _options).AsTask().GetAwaiter().GetResult(); // its cgroup's processes too
    }

    private static int? ReadPid(string file)
    {
        try
        {
            return int.TryParse(File.ReadAllText(file).AsSpan().Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Whether <paramref name="pid"/>'s command line has <paramref name="argument"/> as one of its arguments.</summary>
    private static bool CommandLineNames(int pid, string argument)
    {
        byte[] cmdline;
        try
        {
            cmdline = File.ReadAllBytes(string.Create(CultureInfo.InvariantCulture, $"/proc/{pid}/cmdline"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        var needle = System.Text.Encoding.UTF8.GetBytes(argument);
        foreach (var range in cmdline.AsSpan().Split((byte)0))
        {
            if (cmdline.AsSpan(range).SequenceEqual(needle))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>What a survivable attempt's handle records.</summary>
    internal sealed record ProcessHandle(int Pid, long StartTime, string RunDirectory, string[]? Cgroup, bool ProcessGroup, string? OwnedWorkDirectory, long CgroupOomBaseline = 0)
    {
        public string Encode() => JsonSerializer.Serialize(this);

        /// <summary>The handle, or null when it is missing or malformed; <paramref name="beforeFork"/> accepts the one
        /// written before the fork (no pid yet).</summary>
        public static ProcessHandle? Decode(string? handle, bool beforeFork = false)
        {
            if (string.IsNullOrEmpty(handle))
            {
                return null;
            }

            try
            {
                var h = JsonSerializer.Deserialize<ProcessHandle>(handle);
                return h is not null && (h.Pid > 0 || beforeFork) && !string.IsNullOrEmpty(h.RunDirectory) ? h : null;
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }

    /// <summary>An attempt a previous engine launched: polled by pid and start time, its output file tailed.</summary>
    private sealed class Reattached(ProcessHostDriver driver, AttemptReattach reattach, ProcessHandle handle, IAttemptEventSink sink) : Tracked
    {
        private readonly Lock _gate = new();
        private readonly CancellationTokenSource _killTimer = new();
        private readonly CancellationTokenSource _released = new(); // never disposed: Release may cancel it at any time
        private bool _releaseRequested;
        private readonly AttemptCgroup? _cgroup = handle.Cgroup is { Length: > 0 } paths ? AttemptCgroup.Reopen(paths, handle.CgroupOomBaseline) : null;
        private bool _terminateRequested;
        private bool _killed;
        private TimeSpan _grace;

        /// <summary>Stops following the attempt, leaving it as it is (see <see cref="ReleaseReattachedAsync"/>).</summary>
        public void Release()
        {
            lock (_gate)
            {
                if (_killed)
                {
                    return; // ended and reported already
                }

                _releaseRequested = true;
            }

            _released.Cancel(); // outside the lock: the poll may go on on this thread
        }

        /// <param name="alive">Whether the wrapper still runs.</param>
        /// <param name="newHandle">The handle to report with the start (found without one), else null.</param>
        public async Task RunAsync(bool alive, string? newHandle)
        {
            AttemptExit exit = default;
            var released = false;
            try
            {
                var tail = new OutputTail(Path.Combine(handle.RunDirectory, OutputFileName), AppendLog);
                if (alive)
                {
                    if (newHandle is null)
                    {
                        sink.Started(reattach.Token);
                    }
                    else
                    {
                        sink.Started(reattach.Token, newHandle);
                    }
                    var time = driver._options.TimeProvider;
                    while (IsAlive())
                    {
                        tail.Read(final: false);
                        await Task.Delay(OutputTail.PollInterval, time, _released.Token).ConfigureAwait(false);
                    }
                }

                tail.Read(final: true);
                exit = ReadExit();
            }
            catch (OperationCanceledException) when (Volatile.Read(ref _releaseRequested))
            {
                // released: below
            }
            catch (Exception e)
            {
                exit = new AttemptExit(null, "CannotInspectContainerError: " + e.Message, HostFailure: true);
            }
            finally
            {
                await _killTimer.CancelAsync().ConfigureAwait(false);
                _killTimer.Dispose();
                lock (_gate)
                {
                    _killed = true; // the process is gone (or no longer ours to signal): never signal its pid again
                    released = _releaseRequested;
                }

                if (!released)
                {
                    await CleanUpAsync(handle, driver._options).ConfigureAwait(false);
                }

                driver._attempts.TryRemove(new KeyValuePair<AttemptToken, Tracked>(reattach.Token, this));
            }

            if (!released)
            {
                sink.Exited(reattach.Token, exit);
            }
        }

        private bool IsAlive() => ProcStat.StartTime(handle.Pid) == handle.StartTime;

        private AttemptExit ReadExit()
        {
            string? text = null;
            try
            {
                text = File.ReadAllText(Path.Combine(handle.RunDirectory, ExitFileName));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }

            if (text is not null && int.TryParse(text.AsSpan().Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var code))
            {
                return code != 0 && _cgroup is not null && _cgroup.OomKilled() ? new AttemptExit(137, AttemptExit.OutOfMemoryReason) : new AttemptExit(code);
            }

            lock (_gate)
            {
                // Killed by our own SIGKILL (with its wrapper): 137 as for any killed job.
                return _terminateRequested ? new AttemptExit(137) : new AttemptExit(null, VanishedReason, HostFailure: true);
            }
        }

        /// <summary>Kills what is left in the attempt's cgroup and removes it, its files and its owned working directory.</summary>
        public static async ValueTask CleanUpAsync(ProcessHandle handle, ProcessHostDriverOptions options)
        {
            if (handle.Cgroup is { Length: > 0 } paths && !await AttemptCgroup.Reopen(paths).RemoveAsync(options.TimeProvider).ConfigureAwait(false))
            {
                options.Diagnostic?.Invoke("process driver: could not remove cgroup " + paths[0]);
            }

            Attempt.TryDeleteDirectory(handle.RunDirectory);
            if (handle.OwnedWorkDirectory is { } work)
            {
                Attempt.TryDeleteDirectory(work);
            }
        }

        private int _logFailed;

        // As for a launched attempt: a failing log store loses lines, never the attempt (an exception here would end a job
        // that still runs as a host failure).
        private void AppendLog(string line) => driver.AppendLog(reattach.LogStreamName, line, ref _logFailed);

        public override void Terminate(TimeSpan grace)
        {
            lock (_gate)
            {
                if (_terminateRequested && grace >= _grace)
                {
                    return;
                }

                _terminateRequested = true;
                _grace = grace;
            }

            Signal(NativeMethods.SIGTERM);
            _ = KillAfterAsync(grace);
        }

        private async Task KillAfterAsync(TimeSpan grace)
        {
            try
            {
                if (grace > TimeSpan.Zero)
                {
                    await Task.Delay(grace, driver._options.TimeProvider, _killTimer.Token).ConfigureAwait(false);
                }

                Signal(NativeMethods.SIGKILL);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                // ended within the grace period
            }
        }

        private void Signal(int signal)
        {
            lock (_gate)
            {
                // Not our parent-child pid any more: signal it only while it is provably the same process.
                if (_killed || !IsAlive())
                {
                    _cgroup?.SignalAll(signal);
                    return;
                }

                if (handle.ProcessGroup)
                {
                    _ = NativeMethods.Kill(-handle.Pid, signal);
                }

                _ = NativeMethods.Kill(handle.Pid, signal);
                _cgroup?.SignalAll(signal);
            }
        }
    }
}
