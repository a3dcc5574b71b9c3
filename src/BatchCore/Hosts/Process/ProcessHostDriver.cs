using System.Buffers;
using System.Collections;
using System.Collections.Concurrent;
using System.ComponentModel;
using System.Globalization;
using System.Runtime.CompilerServices;
using BatchCore.Logs;
using CliWrap;

namespace BatchCore.Hosts.Process;

/// <summary>
/// Runs attempts as local processes (kind <c>process</c>). The command runs in exec form with exactly the launch's
/// environment on top of the driver's PATH and HOME; stdout and stderr lines go to the attempt's log stream. On Linux each
/// attempt gets its own cgroup with the requested memory (hard limit, no extra swap), vCPU quota and a pids limit, and the
/// job's first process joins it before it execs the job, so nothing the job starts escapes its limits or termination.
/// <c>containerProperties.user</c> runs the job as that user (<see cref="ProcessUser"/>; switched with setpriv, so only
/// when the engine runs as root: otherwise the attempt cannot start rather than run as another user).
/// Launches marked <see cref="AttemptLaunch.Reattachable"/> (the engine journals) run survivably: see
/// <see cref="TryReattach"/>.
/// </summary>
public sealed partial class ProcessHostDriver : HostDriver
{
    /// <summary>AWS's reason prefix when the container (here: the process) cannot be started.</summary>
    public const string CannotStartReasonPrefix = "CannotStartContainerError: ";

    /// <summary>The reason of an attempt terminated before its process was started.</summary>
    public const string TerminatedBeforeStartReason = "Terminated before the attempt started";

    // Joins the cgroups named by the first arguments, then execs the job: "$@" keeps every job argument one literal word.
    private const string JoinCgroupsScript =
        "n=$1; shift; while [ \"$n\" -gt 0 ]; do echo $$ > \"$1\" || exit 125; shift; n=$((n-1)); done; exec \"$@\"";

    private const string ShellPath = "/bin/sh";
    private const string SetsidPath = "/usr/bin/setsid";
    private const string SetprivPath = "/usr/bin/setpriv";

    private static long s_instances;

    private readonly ProcessHostDriverOptions _options;
    private readonly ConcurrentDictionary<AttemptToken, Tracked> _attempts = new();

    /// <summary>Attempts launched and not yet cleaned up (an exit is reported before its cgroup slot is back in the pool).</summary>
    internal int TrackedAttempts => _attempts.Count;
    private readonly ConcurrentDictionary<string, byte> _runDirectories = new(StringComparer.Ordinal);
    private readonly CgroupLayout? _cgroups;
    private readonly string _instanceId;
    private readonly string? _inheritedPath;
    private readonly string? _inheritedHome;
    private readonly string[] _inheritedNames;
    private readonly bool _useSetsid;
    private int _disposed;

    /// <summary>Creates the driver; probes cgroups once.</summary>
    /// <exception cref="BatchClientException">The options break a rule (the message names it).</exception>
    public ProcessHostDriver(ProcessHostDriverOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options with { };
        _instanceId = string.Create(CultureInfo.InvariantCulture,
            $"{Environment.ProcessId}-{Interlocked.Increment(ref s_instances)}");
        _inheritedPath = Environment.GetEnvironmentVariable("PATH");
        _inheritedHome = Environment.GetEnvironmentVariable("HOME");
        var names = new List<string>();
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            names.Add((string)entry.Key);
        }

        _inheritedNames = [.. names];

        // Without limits a v1 pids cgroup (no limit written) still tracks each attempt's process tree when writable.
        _cgroups = CgroupLayout.Probe(_options, _instanceId, options.EnableLimits, out var reason);
        LimitsUnavailableReason = options.EnableLimits ? reason : "limits disabled by ProcessHostDriverOptions.EnableLimits";

        // Without any cgroup, a session of its own per attempt is how SIGTERM reaches the job's whole process tree. With
        // cgroups the cgroup lists the tree, and the extra exec of setsid would only cost start latency.
        _useSetsid = _cgroups is null && OperatingSystem.IsLinux() && File.Exists(SetsidPath);
        if (LimitsUnavailableReason is not null)
        {
            _options.Diagnostic?.Invoke("process driver: running attempts without resource limits: " + LimitsUnavailableReason);
        }
    }

    /// <inheritdoc />
    public override string Kind => "process";

    /// <summary>
    /// Null when attempts run with memory, CPU and pids limits; otherwise why they run without (no writable cgroup
    /// hierarchy, not Linux, or <see cref="ProcessHostDriverOptions.EnableLimits"/> is false).
    /// </summary>
    public string? LimitsUnavailableReason { get; }

    /// <summary>"v1" or "v2" when limits are enforced, else null.</summary>
    public string? CgroupVersion => _cgroups is { Limits: true } layout ? layout.Version : null;

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The token is already running on this driver, or the driver is disposed.</exception>
    public override void Launch(AttemptLaunch launch, IAttemptEventSink sink)
    {
        ArgumentNullException.ThrowIfNull(launch);
        ArgumentNullException.ThrowIfNull(sink);
        if (Volatile.Read(ref _disposed) != 0)
        {
            ThrowDisposed();
        }

        var attempt = new Attempt(this, launch, sink);
        if (!_attempts.TryAdd(launch.Token, attempt))
        {
            ThrowDuplicate(launch.Token);
        }

        attempt.Completion = Task.Run(attempt.RunAsync);
    }

    /// <inheritdoc />
    public override void Terminate(AttemptToken token, TimeSpan gracePeriod)
    {
        if (gracePeriod < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(gracePeriod), gracePeriod, "gracePeriod must not be negative");
        }

        if (_attempts.TryGetValue(token, out var attempt))
        {
            attempt.Terminate(gracePeriod);
        }
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        var running = new List<Task>();
        foreach (var (_, attempt) in _attempts)
        {
            attempt.Terminate(TimeSpan.Zero);
            if (attempt.Completion is { } completion)
            {
                running.Add(completion);
            }
        }

        await Task.WhenAll(running).ConfigureAwait(false);
        _cgroups?.RemoveAll();
        await base.DisposeAsync().ConfigureAwait(false);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDisposed() => throw new ObjectDisposedException(nameof(ProcessHostDriver));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDuplicate(AttemptToken token) =>
        throw new InvalidOperationException($"attempt {token.Value} is already running on this driver");

    /// <summary>The environment: nothing inherited but PATH and HOME, then the launch's variables.</summary>
    private Dictionary<string, string?> BuildEnvironment(AttemptLaunch launch)
    {
        var env = new Dictionary<string, string?>(_inheritedNames.Length + launch.Environment.Count + 2, StringComparer.Ordinal);
        foreach (var name in _inheritedNames)
        {
            env[name] = null; // CliWrap: null removes an inherited variable
        }

        env["PATH"] = _inheritedPath ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        env["HOME"] = _inheritedHome;
        foreach (var (name, value) in launch.Environment)
        {
            env[name] = value;
        }

        return env;
    }

    /// <summary>Resolves argv[0] like execvp: a name with a slash is a path (relative to the working directory), else
    /// the first executable file of that name on PATH.</summary>
    private static string? ResolveExecutable(string name, string? path, string workingDirectory)
    {
        if (name.Length == 0)
        {
            return null;
        }

        if (name.Contains('/', StringComparison.Ordinal))
        {
            var full = Path.GetFullPath(name, workingDirectory);
            return IsExecutableFile(full) ? full : null;
        }

        if (path is null)
        {
            return null;
        }

        foreach (var range in path.AsSpan().Split(':'))
        {
            var dir = path[range];
            if (dir.Length == 0)
            {
                continue;
            }

            var candidate = Path.Combine(dir, name);
            if (IsExecutableFile(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static bool IsExecutableFile(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        if (OperatingSystem.IsWindows())
        {
            return true;
        }

        const UnixFileMode anyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        return (File.GetUnixFileMode(path) & anyExecute) != 0;
    }

    /// <summary>An attempt the driver tracks: launched here, or re-attached after an engine restart.</summary>
    private abstract class Tracked
    {
        public Task? Completion { get; set; }

        public abstract void Terminate(TimeSpan grace);
    }

    /// <summary>One launched attempt: its process, cgroup, working directory and termination state.</summary>
    private sealed class Attempt(ProcessHostDriver driver, AttemptLaunch launch, IAttemptEventSink sink) : Tracked
    {
        private readonly Lock _gate = new();
        private readonly CancellationTokenSource _killTimer = new();
        // Cancelled by Terminate: ends a secret resolution that is still waiting, so the attempt ends unstarted.
        private readonly CancellationTokenSource _unstarted = new();
        // Cancelled once the main process exited and its output still has not closed (see DrainAsync): stops reading it.
        private readonly CancellationTokenSource _drain = new();
        private bool _terminateRequested;
        private TimeSpan _grace;
        private int _pid;
        private System.Diagnostics.Process? _process;
        private bool _processExited;
        private AttemptCgroup? _cgroup;
        private int _exitReported;
        private string? _runDir;
        private string? _ownedWorkDir;

        public async Task RunAsync()
        {
            AttemptExit exit;
            try
            {
                exit = await RunCoreAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Failures are values: whatever went wrong in the driver ends the attempt as a host failure.
                exit = new AttemptExit(null, "CannotStartContainerError: " + e.Message, HostFailure: true);
            }
            finally
            {
                await _killTimer.CancelAsync().ConfigureAwait(false);
                _killTimer.Dispose();
                _unstarted.Dispose();
                _drain.Dispose();
            }

            // Nothing of the attempt runs any more (RunCoreAsync emptied its cgroup): report the exit now. Recycling the
            // cgroup slot and removing the directories is bookkeeping the engine need not wait for; the attempt stays
            // tracked until it is done, so DisposeAsync still waits for it.
            try
            {
                if (Interlocked.Exchange(ref _exitReported, 1) == 0)
                {
                    sink.Exited(launch.Token, exit);
                }
            }
            finally
            {
                await CleanupAsync().ConfigureAwait(false);
                driver._attempts.TryRemove(new KeyValuePair<AttemptToken, Tracked>(launch.Token, this));
            }
        }

        private async Task CleanupAsync()
        {
            try
            {
                if (_cgroup is not null && !await driver._cgroups!.ReturnAsync(_cgroup, driver._options.TimeProvider).ConfigureAwait(false))
                {
                    driver._options.Diagnostic?.Invoke("process driver: could not empty or remove cgroup " + _cgroup);
                }
            }
            finally
            {
                if (_ownedWorkDir is not null)
                {
                    TryDeleteDirectory(_ownedWorkDir);
                }

                if (_runDir is not null)
                {
                    TryDeleteDirectory(_runDir);
                    driver._runDirectories.TryRemove(_runDir, out _);
                }
            }
        }

        private async Task<AttemptExit> RunCoreAsync()
        {
            if (IsTerminateRequested())
            {
                return new AttemptExit(null, TerminatedBeforeStartReason);
            }

            var options = driver._options;
            var command = launch.Command;
            if (command.Count == 0)
            {
                return new AttemptExit(null, CannotStartReasonPrefix + "command is empty");
            }

            var ownsWorkDir = launch.WorkingDirectory is null;
            var workDir = launch.WorkingDirectory
                ?? Path.Combine(options.WorkRoot, driver._instanceId + "-" + launch.Token.Value.ToString(CultureInfo.InvariantCulture));
            if (await launch.ResolveSecretsUnlessTerminatedAsync(TerminatedBeforeStartReason, _unstarted.Token).ConfigureAwait(false) is { } secretsError)
            {
                return new AttemptExit(null, secretsError);
            }

            var env = driver.BuildEnvironment(launch);
            string[]? switchUser = null;
            ProcessUser? user = null;
            if (launch.Container?.User is { Length: > 0 } userSpec && !options.IgnoreContainerUser)
            {
                user = ProcessUser.Resolve(userSpec, out var error);
                if (user is not { } u)
                {
                    return new AttemptExit(null, CannotStartReasonPrefix + error);
                }

                switchUser = SwitchUserArguments(u, userSpec, out error);
                if (error is not null)
                {
                    return new AttemptExit(null, CannotStartReasonPrefix + error);
                }

                if (switchUser is not null && !launch.Environment.ContainsKey("HOME"))
                {
                    env["HOME"] = u.Home ?? "/"; // Docker: the passwd entry's home, or / for a uid without one
                }
            }

            _ownedWorkDir = ownsWorkDir ? workDir : null;
            try
            {
                if (ownsWorkDir && OperatingSystem.IsLinux())
                {
                    // A fresh directory of our own: mkdir fails if anything (a planted symbolic link) is already there,
                    // and lchown never follows one, so a job's user cannot be handed someone else's directory.
                    Directory.CreateDirectory(options.WorkRoot);
                    if (NativeMethods.Mkdir(workDir, 0b111_101_101) != 0)
                    {
                        return new AttemptExit(null, $"CannotCreateContainerError: working directory {workDir}: mkdir failed (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})", HostFailure: true);
                    }

                    if (switchUser is not null && NativeMethods.Lchown(workDir, user!.Value.Uid, user.Value.Gid) != 0)
                    {
                        return new AttemptExit(null, CannotStartReasonPrefix + $"cannot give the working directory to user {launch.Container!.User} (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})", HostFailure: true);
                    }
                }
                else
                {
                    Directory.CreateDirectory(workDir);
                }

                var executable = ResolveExecutable(command[0], env["PATH"], workDir);
                if (executable is null)
                {
                    return new AttemptExit(null, CannotStartReasonPrefix + "executable file not found: " + command[0]);
                }

                if (driver._cgroups is { } layout)
                {
                    try
                    {
                        _cgroup = layout.Rent(launch.Vcpus, launch.MemoryMiB);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        return new AttemptExit(null, "CannotCreateContainerError: cgroup: " + e.Message, HostFailure: true);
                    }
                }

                if (driver.LimitsUnavailableReason is { } noLimits)
                {
                    AppendLog("batchcore: running without resource limits: " + noLimits);
                }

                return await RunProcessAsync(executable, env, workDir, ownsWorkDir, switchUser).ConfigureAwait(false);
            }
            finally
            {
                // The exit is reported only once no process of the attempt is left (and no thread of ours in its slot).
                if (_cgroup is not null)
                {
                    await _cgroup.DrainAsync(options.TimeProvider).ConfigureAwait(false);
                }
            }
        }

        /// <summary>
        /// setpriv's argv that makes the job <paramref name="user"/> (null: this process is that user already), or the
        /// reason it cannot (only root can switch users).
        /// </summary>
        private static string[]? SwitchUserArguments(ProcessUser user, string spec, out string? error)
        {
            error = null;
            var euid = NativeMethods.GetEuid();
            if (user.Uid == euid && user.Gid == NativeMethods.GetEgid())
            {
                return null;
            }

            if (euid != 0)
            {
                error = $"user {spec}: the process driver runs as uid {euid} and can switch users only as root (or set ProcessHostDriverOptions.IgnoreContainerUser)";
                return null;
            }

            if (!File.Exists(SetprivPath))
            {
                error = $"user {spec}: {SetprivPath} (util-linux) is needed to switch users";
                return null;
            }

            return
            [
                SetprivPath,
                "--reuid=" + user.Uid.ToString(CultureInfo.InvariantCulture),
                "--regid=" + user.Gid.ToString(CultureInfo.InvariantCulture),
                user.Name is not null ? "--init-groups" : "--clear-groups", // supplementary groups as Docker gives them
                "--",
            ];
        }

        private async Task<AttemptExit> RunProcessAsync(string executable, Dictionary<string, string?> env, string workDir, bool ownsWorkDir, string[]? switchUser)
        {
            // argv: [setsid] [/bin/sh -c JOIN sh N procs...] executable args...
            //   or, survivable: [setsid] /bin/sh -c SURVIVE sh OUT EXIT N procs... executable args...
            //   (v1 cgroups: N = 0, the starting thread's cgroup is inherited; see CgroupLayout)
            var args = new List<string>(launch.Command.Count + 10);
            var survivable = launch.Reattachable && driver.CanSurvive;
            var joinWrapper = _cgroup is { ProcsFiles.Count: > 0 };
            if (survivable)
            {
                _runDir = driver.ClaimRunDirectory(launch);
                Directory.CreateDirectory(_runDir);

                // Written before the fork: all of the handle but the wrapper's pid, which the wrapper records itself.
                var partial = new ProcessHandle(0, 0, _runDir, _cgroup?.Paths, driver._useSetsid, ownsWorkDir ? workDir : null, _cgroup?.OomBaseline ?? 0);
                File.WriteAllText(Path.Combine(_runDir, HandleFileName), partial.Encode());
                args.Add("-c");
                args.Add(SurvivableScript);
                args.Add("sh");
                args.Add(Path.Combine(_runDir, OutputFileName));
                args.Add(Path.Combine(_runDir, ExitFileName));
                args.Add((_cgroup?.ProcsFiles.Count ?? 0).ToString(CultureInfo.InvariantCulture));
                if (_cgroup is not null)
                {
                    args.AddRange(_cgroup.ProcsFiles);
                }

                args.AddRange(switchUser ?? []);
                args.Add(executable);
            }
            else if (_cgroup is { ProcsFiles: { Count: > 0 } procsFiles })
            {
                args.Add("-c");
                args.Add(JoinCgroupsScript);
                args.Add("sh");
                args.Add(procsFiles.Count.ToString(CultureInfo.InvariantCulture));
                args.AddRange(procsFiles);
                args.AddRange(switchUser ?? []);
                args.Add(executable);
            }
            else if (switchUser is not null)
            {
                // No wrapper: setpriv is what this process starts, and it execs the job as the user.
                args.AddRange(switchUser.AsSpan(1));
                args.Add(executable);
            }

            for (var i = 1; i < launch.Command.Count; i++)
            {
                args.Add(launch.Command[i]);
            }

            var target = survivable || joinWrapper ? ShellPath : switchUser is not null ? switchUser[0] : executable;
            if (driver._useSetsid)
            {
                // A session of its own, so that SIGTERM reaches the whole process group without cgroups.
                // setsid does not fork here: our child is never a process-group leader.
                args.Insert(0, target);
                target = SetsidPath;
            }

            // Survivable: the job writes to a file (a pipe to a dead engine would kill it with SIGPIPE), tailed below.
            var stdout = survivable ? PipeTarget.Null : PipeTarget.Create((pipe, _) => CopyLinesAsync(pipe)); // no token: see DrainAsync
            var cli = Cli.Wrap(target)
                .WithArguments(args)
                .WithWorkingDirectory(workDir)
                .WithEnvironmentVariables(env!)
                .WithValidation(CommandResultValidation.None)
                .WithStandardOutputPipe(stdout)
                .WithStandardErrorPipe(stdout);

            CommandTask<CommandResult> running;
            System.Diagnostics.Process? process = null;
            lock (_gate)
            {
                if (_terminateRequested)
                {
                    return new AttemptExit(null, TerminatedBeforeStartReason);
                }

                // v1: this thread joins the attempt's cgroups for the fork (no wrapper exec); see CgroupLayout.
                try
                {
                    _cgroup?.EnterForStart();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    return new AttemptExit(null, "CannotCreateContainerError: cgroup: " + e.Message, HostFailure: true);
                }

                try
                {
                    running = cli.ExecuteAsync(null, p =>
                    {
                        _cgroup?.LeaveAfterStart(); // right after the fork, before CliWrap starts its pipe tasks
                        process = p;
                        _process = p;
                    });
                }
                catch (Win32Exception e)
                {
                    return new AttemptExit(null, CannotStartReasonPrefix + e.Message);
                }
                finally
                {
                    _cgroup?.LeaveAfterStart(); // no-op unless the start failed before the callback
                }

                _pid = running.ProcessId;
            }

            OutputTail? tail = null;
            if (survivable)
            {
                var handle = new ProcessHandle(_pid, ProcStat.StartTime(_pid, includeZombie: true), _runDir!, _cgroup?.Paths, driver._useSetsid, ownsWorkDir ? workDir : null, _cgroup?.OomBaseline ?? 0);
                sink.Started(launch.Token, handle.Encode());
                tail = new OutputTail(Path.Combine(_runDir!, OutputFileName), AppendLog);
            }
            else
            {
                sink.Started(launch.Token);
            }

            // The job may leave children holding stdout open; like a container, the attempt ends with its main process,
            // so kill what is left before waiting for the pipes to drain.
            if (process is not null)
            {
                try
                {
                    var exited = process.WaitForExitAsync();
                    while (tail is not null && !exited.IsCompleted)
                    {
                        tail.Read(final: false);
                        await Task.WhenAny(exited, Task.Delay(OutputTail.PollInterval, driver._options.TimeProvider)).ConfigureAwait(false);
                    }

                    await exited.ConfigureAwait(false);
                }
                catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
                {
                    // CliWrap already finished with the process.
                }

                lock (_gate)
                {
                    _processExited = true;
                }

                KillLeftovers();
            }

            var cut = await DrainAsync(running.Task).ConfigureAwait(false);
            var result = await running.ConfigureAwait(false);
            if (cut)
            {
                AppendLog("batchcore: stopped reading the job's output: its main process exited, but a process it started outside its process group still holds stdout or stderr open");
            }

            tail?.Read(final: true);
            var code = result.ExitCode;
            if (code != 0 && _cgroup is not null && _cgroup.OomKilled())
            {
                return new AttemptExit(137, AttemptExit.OutOfMemoryReason);
            }

            return new AttemptExit(code);
        }

        /// <summary>
        /// Once the main process exited and what was left in its cgroup or process group was killed, the output pipes
        /// close as soon as the kernel has torn those down. A process that left the process group as well (a session of
        /// its own, with no cgroup to find it by) keeps them open for as long as it runs: reading then stops after
        /// <see cref="ProcessHostDriverOptions.OutputDrainTimeout"/>, or at once when the attempt is terminated, so the
        /// attempt ends with its main process, as a container does. Returns whether reading was cut short.
        /// </summary>
        private async Task<bool> DrainAsync(Task drained)
        {
            if (drained.IsCompleted)
            {
                return false;
            }

            // The delay ends early when Terminate cancels _drain; a faulted copy is seen when the caller awaits the command.
            await Task.WhenAny(drained, Task.Delay(driver._options.OutputDrainTimeout, driver._options.TimeProvider, _drain.Token)).ConfigureAwait(false);
            if (drained.IsCompleted)
            {
                return false;
            }

            await _drain.CancelAsync().ConfigureAwait(false);
            return true;
        }

        /// <summary>Copies one of the job's pipes into its log stream, line by line (stdout and stderr each have their own
        /// splitter; a pooled buffer, and nothing else allocated for a silent job). Ends at end of file, or when
        /// <see cref="DrainAsync"/> stops reading (the pipe read is cancellable), with what was read logged.</summary>
        private async Task CopyLinesAsync(Stream pipe)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(4096);
            LineSplitter? lines = null;
            try
            {
                int n;
                while ((n = await pipe.ReadAsync(buffer, _drain.Token).ConfigureAwait(false)) > 0)
                {
                    (lines ??= new LineSplitter(AppendLog)).Append(buffer.AsSpan(0, n));
                }
            }
            catch (OperationCanceledException) when (_drain.IsCancellationRequested)
            {
                // Stopped reading: a process the job left still holds the pipe.
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            lines?.Flush();
        }

        private void KillLeftovers()
        {
            _cgroup?.SignalAll(NativeMethods.SIGKILL);
            if (driver._useSetsid && _pid > 0)
            {
                _ = NativeMethods.Kill(-_pid, NativeMethods.SIGKILL);
            }
        }

        // A failing log store loses lines, never the attempt: an exception here would stop the output copy (and in a
        // survivable launch report a process that still runs as ended).
        private void AppendLog(string line) => driver.AppendLog(launch.LogStreamName, line, ref _logFailed);

        private int _logFailed;

        private bool IsTerminateRequested()
        {
            lock (_gate)
            {
                return _terminateRequested;
            }
        }

        public override void Terminate(TimeSpan grace)
        {
            int pid;
            bool exited;
            lock (_gate)
            {
                if (_terminateRequested && grace >= _grace)
                {
                    return;
                }

                _terminateRequested = true;
                _grace = grace;
                pid = _pid;
                exited = _processExited || HasExited();
            }

            if (pid == 0)
            {
                // Not started: RunAsync sees the flag and never starts it; a secret resolution still waiting ends now.
                AttemptCancellation.CancelOffThread(_unstarted);
                return;
            }

            if (exited)
            {
                // The main process is gone and what it left in its cgroup or process group is (or is about to be) killed:
                // all that may still keep the attempt is reading output a process outside both holds open. Stop it now.
                AttemptCancellation.CancelOffThread(_drain);
                return;
            }

            Signal(pid, NativeMethods.SIGTERM);
            _ = KillAfterAsync(pid, grace);
        }

        private async Task KillAfterAsync(int pid, TimeSpan grace)
        {
            try
            {
                if (grace > TimeSpan.Zero)
                {
                    await Task.Delay(grace, driver._options.TimeProvider, _killTimer.Token).ConfigureAwait(false);
                }

                Signal(pid, NativeMethods.SIGKILL);
            }
            catch (OperationCanceledException)
            {
                // exited within the grace period
            }
            catch (ObjectDisposedException)
            {
                // exited within the grace period
            }
        }

        /// <summary>Whether the main process has exited, before RunProcessAsync has seen it (its pid may then be reused).</summary>
        private bool HasExited()
        {
            try
            {
                return _process is { HasExited: true };
            }
            catch (Exception e) when (e is InvalidOperationException or Win32Exception)
            {
                return true; // CliWrap already let go of it: it ended
            }
        }

        private void Signal(int pid, int signal)
        {
            lock (_gate)
            {
                // Once the process has been reaped its pid may be reused: signal only while it is live.
                if (_processExited)
                {
                    return;
                }

                if (driver._useSetsid)
                {
                    _ = NativeMethods.Kill(-pid, signal);
                }

                _ = NativeMethods.Kill(pid, signal);
                _cgroup?.SignalAll(signal);
            }
        }

        internal static void TryDeleteDirectory(string dir)
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }
}
