using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using BatchCore.Logs;

namespace BatchCore.Hosts.Slurm;

/// <summary>
/// Runs attempts as Slurm batch jobs (kind <c>slurm</c>), one job per attempt, pinned to the node the attempt was placed
/// on: <c>sbatch --parsable --nodelist=&lt;host&gt; --cpus-per-task --mem --gres=gpu:N --time</c>, the job's environment
/// from a NUL-separated <c>--export-file</c>, and a small wrapper script that runs the command in exec form (its
/// arguments are sbatch's script arguments: never parsed by a shell) and records its exit code in a result file.
/// Every job carries the attempt's identity (<c>--job-name=bc-&lt;job id&gt;-&lt;attempt&gt;</c>, <c>--comment</c> with
/// the driver instance, the token and the attempt's files), so that a submission whose sbatch failed is found and
/// cancelled, and an attempt a previous engine launched is found again (<see cref="TryReattach"/>).
/// Progress comes from one <c>squeue</c> poll per interval for all of the driver's jobs; output is read from the job's
/// output file into the attempt's log stream. Terminate: <c>scancel --signal=TERM --full</c>, then
/// <c>--signal=KILL</c> after the grace period; a scancel that fails is sent again on the next poll. See docs/slurm.md.
/// </summary>
public sealed partial class SlurmHostDriver : HostDriver
{
    /// <summary>The reason of an attempt terminated before its Slurm job started.</summary>
    public const string TerminatedBeforeStartReason = "Terminated before the attempt started";

    /// <summary>The prefix of the reason of an attempt whose node failed under it (Slurm's NODE_FAIL, BOOT_FAIL).</summary>
    public const string HostTerminatedPrefix = "Host EC2 (instance ";

    // Written once per driver. "$1" is the result file, the rest is the command, exactly as given. The trap keeps the
    // wrapper alive through SIGTERM (scancel --full signals the command itself) so that it records the command's exit.
    private const string WrapperScript = """
        #!/bin/sh
        # BatchCore's Slurm job wrapper: runs the command (exec form) and records how it ended in the result file "$1".
        r="$1"; shift
        trap 't=1' TERM
        : > "$r.started"
        if [ "$#" -eq 0 ] || ! command -v "$1" >/dev/null 2>&1; then
          printf 'notfound\n' > "$r.tmp" && mv "$r.tmp" "$r"
          exit 127
        fi
        "$@"
        c=$?
        printf 'exit %s\n' "$c" > "$r.tmp" && mv "$r.tmp" "$r"
        exit "$c"
        """;

    // The job's --comment: "batchcore attempt=<driver instance>/<token> files=<the attempt's file prefix>".
    private const string CommentPrefix = "batchcore attempt=";
    private const string FilesKey = " files=";

    // A driver's directory is <shared directory>/batchcore-<instance> (or a temporary batchcore-slurm-*).
    private const string DirectoryPrefix = "batchcore-";

    // An attempt's files: <file prefix> (the directory and the token) and one of these.
    private static readonly string[] AttemptFileSuffixes = [".out", ".result", ".env", ".result.started", ".result.tmp"];

    private static readonly string[] TerminalStates =
        ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED", "SPECIAL_EXIT", "REVOKED"];

    private readonly SlurmOptions _options;
    private readonly SlurmCommands _commands;
    private readonly string _instance;
    private readonly string _directory;
    private readonly bool _ownsDirectory;
    private readonly string _wrapper;
    private readonly ConcurrentDictionary<AttemptToken, Attempt> _attempts = new();
    private readonly CancellationTokenSource _disposing = new();
    private readonly Lock _pollerGate = new();
    private readonly Lock _straysGate = new();
    private readonly List<Stray> _strays = [];
    private Task? _poller;
    private int _disposed;

    /// <summary>Creates the driver and writes its wrapper script. Contacts Slurm only when attempts are launched.</summary>
    /// <exception cref="BatchClientException">The options break a rule.</exception>
    public SlurmHostDriver(SlurmOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options with { };
        _commands = new SlurmCommands(_options);
        _instance = Guid.NewGuid().ToString("N")[..12];
        if (_options.SharedDirectory is { } shared)
        {
            _directory = Directory.CreateDirectory(Path.Combine(shared, DirectoryPrefix + _instance)).FullName;
        }
        else
        {
            _directory = Directory.CreateTempSubdirectory(DirectoryPrefix + "slurm-").FullName;
        }

        _ownsDirectory = true;
        _wrapper = Path.Combine(_directory, "wrapper.sh");
        File.WriteAllText(_wrapper, WrapperScript.Replace("\r\n", "\n", StringComparison.Ordinal) + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(_wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
    }

    /// <inheritdoc />
    public override string Kind => "slurm";

    /// <summary>The Slurm job id of a running attempt (null before sbatch answered or after it ended): for tests and tools.</summary>
    public long? SlurmJobId(AttemptToken token) => _attempts.TryGetValue(token, out var a) ? a.JobId : null;

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The token is already running on this driver.</exception>
    public override void Launch(AttemptLaunch launch, IAttemptEventSink sink)
    {
        ArgumentNullException.ThrowIfNull(launch);
        ArgumentNullException.ThrowIfNull(sink);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var attempt = new Attempt(this, launch, sink, Path.Combine(_directory, launch.Token.Value.ToString(CultureInfo.InvariantCulture)));
        if (!_attempts.TryAdd(launch.Token, attempt))
        {
            ThrowDuplicate(launch.Token);
        }

        EnsurePoller();
        _ = Task.Run(attempt.SubmitAsync);
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
            running.Add(attempt.Completion.Task);
        }

        // The poller reports their ends; bounded, so that a dead controller cannot hang disposal.
        using (var guard = new CancellationTokenSource(_options.CommandTimeout * 2))
        {
            try
            {
                await Task.WhenAll(running).WaitAsync(guard.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // leave them: Slurm's own time limit ends them
            }
        }

        await _disposing.CancelAsync().ConfigureAwait(false);
        if (_poller is { } poller)
        {
            try
            {
                await poller.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        // A submission cancelled just now (or failed lately) may have reached the controller: one last look for it.
        try
        {
            await SweepStraysAsync(final: true, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // best effort: the controller did not answer
        }

        _commands.Dispose();
        _disposing.Dispose();

        // A Slurm job whose end this driver never saw (its scancel failed: the controller did not answer) may still run,
        // and a journaling engine's next start may take it back: it needs its wrapper and its files, so they stay.
        var mayStillRun = false;
        foreach (var attempt in _attempts.Values)
        {
            mayStillRun |= attempt.JobId is not null;
        }

        if (_ownsDirectory && !mayStillRun)
        {
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // best effort
            }
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDuplicate(AttemptToken token) =>
        throw new InvalidOperationException($"attempt {token.Value} is already running on this driver");

    /// <summary>
    /// The attempt's Slurm job name, <c>bc-&lt;job id&gt;-&lt;attempt&gt;</c>: what <see cref="TryReattach"/> finds an
    /// attempt by when the engine died before it journaled a handle. Only letters, digits and <c>- _ . :</c> (squeue's
    /// <c>--name</c> takes a comma-separated list).
    /// </summary>
    internal static string JobName(string jobId, int attempt)
    {
        var name = new StringBuilder(Math.Min(jobId.Length, 200) + 16).Append("bc-");
        for (var i = 0; i < jobId.Length && i < 200; i++)
        {
            var c = jobId[i];
            name.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' ? c : '_');
        }

        return name.Append('-').Append(attempt.ToString(CultureInfo.InvariantCulture)).ToString();
    }

    /// <summary>The attempt's file prefix in a job's comment, or null when the comment is not one of ours.</summary>
    internal static string? FilesOf(string comment)
    {
        if (!comment.StartsWith(CommentPrefix, StringComparison.Ordinal))
        {
            return null;
        }

        var at = comment.IndexOf(FilesKey, CommentPrefix.Length, StringComparison.Ordinal);
        var files = at < 0 ? "" : comment[(at + FilesKey.Length)..];
        return Path.IsPathFullyQualified(files) ? files : null;
    }

    /// <summary>Whether an attempt's files are in a driver directory under this driver's shared (or temporary) directory.</summary>
    private bool IsOwnFiles(string files) =>
        string.Equals(Path.GetDirectoryName(Path.GetDirectoryName(files)), Path.GetDirectoryName(_directory), StringComparison.Ordinal);

    private static bool IsTerminal(string state) => Array.IndexOf(TerminalStates, state) >= 0;

    /// <summary>scancel failed because there is nothing left to cancel.</summary>
    private static bool AlreadyEnded(SlurmResult result) =>
        result.StandardError.Contains("Invalid job id", StringComparison.Ordinal)
        || result.StandardError.Contains("already completing or completed", StringComparison.Ordinal);

    private static void DeleteAttemptFiles(string prefix)
    {
        foreach (var suffix in AttemptFileSuffixes)
        {
            try
            {
                File.Delete(prefix + suffix);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // best effort: the driver's directory goes on dispose
            }
        }
    }

    /// <summary>
    /// The attempt files in <paramref name="prefix"/>'s directory are gone: when that is the directory of another driver
    /// instance (a re-attached attempt of an engine that died) and no attempt file is left in it, the directory is
    /// deleted with what is left (its wrapper, what jobs wrote in their working directory), as that driver would have
    /// deleted it on disposal. A file of another attempt (its <c>.env</c> is there from its submission to its end: a job
    /// that may still run, or be re-attached by another driver) keeps it. Never this driver's own directory (it goes on
    /// disposal), nor one outside this driver's shared directory or not named as a driver directory. Best effort.
    /// </summary>
    private void RemoveEndedDriverDirectory(string prefix)
    {
        var directory = Path.GetDirectoryName(prefix);
        if (directory is null || string.Equals(directory, _directory, StringComparison.Ordinal) || !IsOwnFiles(prefix)
            || !Path.GetFileName(directory).StartsWith(DirectoryPrefix, StringComparison.Ordinal))
        {
            return;
        }

        try
        {
            foreach (var file in Directory.EnumerateFiles(directory))
            {
                if (IsAttemptFile(Path.GetFileName(file)))
                {
                    return;
                }
            }

            Directory.Delete(directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // best effort: gone already, or the shared directory hiccupped (the next re-attached attempt's end tries again)
        }
    }

    /// <summary>Whether a file name is an attempt file: <c>&lt;token&gt;</c> and one of <see cref="AttemptFileSuffixes"/>.</summary>
    private static bool IsAttemptFile(string name)
    {
        var dot = name.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || name.AsSpan(0, dot).ContainsAnyExceptInRange('0', '9'))
        {
            return false;
        }

        return Array.IndexOf(AttemptFileSuffixes, name[dot..]) >= 0;
    }

    private void EnsurePoller()
    {
        lock (_pollerGate)
        {
            if (Volatile.Read(ref _disposed) == 0)
            {
                _poller ??= Task.Run(PollLoopAsync);
            }
        }
    }

    /// <summary>
    /// One tick per interval: first the strays (submissions that may have reached Slurm unseen), then one squeue for
    /// all submitted jobs, after which each attempt reads its output and, when its job ended, reports. Failures are
    /// values: whatever goes wrong in a tick, the next one asks again; the poller never dies.
    /// </summary>
    private async Task PollLoopAsync()
    {
        var ct = _disposing.Token;
        using var timer = new PeriodicTimer(_options.PollInterval, _options.TimeProvider);
        var ids = new List<long>();
        var known = new Dictionary<long, SlurmJob>();
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
        {
            try
            {
                await SweepStraysAsync(final: false, ct).ConfigureAwait(false);
                await PollAttemptsAsync(ids, known, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // the next tick tries again (or, when the driver is being disposed, the loop ends)
            }
        }
    }

    private async Task PollAttemptsAsync(List<long> ids, Dictionary<long, SlurmJob> known, CancellationToken ct)
    {
        ids.Clear();
        foreach (var (_, attempt) in _attempts)
        {
            if (attempt.JobId is { } id)
            {
                ids.Add(id);
            }
        }

        if (ids.Count == 0)
        {
            return;
        }

        var list = new StringBuilder("--jobs=");
        for (var i = 0; i < ids.Count; i++)
        {
            list.Append(i == 0 ? "" : ",").Append(ids[i].ToString(CultureInfo.InvariantCulture));
        }

        var jobs = await QueryAsync(list.ToString(), withComment: false, ct).ConfigureAwait(false);
        known.Clear();
        foreach (var job in jobs ?? [])
        {
            known[job.Id] = job;
        }

        var now = _options.TimeProvider.GetUtcNow();
        foreach (var (_, attempt) in _attempts)
        {
            if (attempt.JobId is not { } id)
            {
                continue;
            }

            // A job id Slurm gave another job since (its ids restart when its state is lost) is not the attempt's job.
            var state = jobs is null ? "?" : known.TryGetValue(id, out var job) && job.Name == attempt.Name ? job.State : null;
            try
            {
                attempt.Poll(state, now);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // the shared directory hiccupped: the next tick reads again
            }
        }
    }

    /// <summary>
    /// squeue's view of the jobs <paramref name="filter"/> selects (<c>--jobs=</c> or <c>--name=</c>): an empty list
    /// when it knows none of them, null when it did not answer. (<c>--json</c> ignores the job filter in 22.05, see docs/slurm.md.)
    /// </summary>
    private async Task<List<SlurmJob>?> QueryAsync(string filter, bool withComment, CancellationToken ct)
    {
        var result = await _commands.RunAsync("squeue",
            ["--noheader", "--states=all", filter, withComment ? "--format=%i|%T|%j|%k" : "--format=%i|%T|%j"], ct).ConfigureAwait(false);
        if (!result.Ok)
        {
            // Every id unknown (all purged): "Invalid job id specified". Anything else: ask again later.
            return result.StandardError.Contains("Invalid job id", StringComparison.Ordinal) ? [] : null;
        }

        var jobs = new List<SlurmJob>();
        foreach (var line in result.StandardOutput.AsSpan().EnumerateLines())
        {
            if (SlurmJob.TryParse(line, out var job))
            {
                jobs.Add(job);
            }
        }

        return jobs;
    }

    /// <summary>Watches for a submission that may have reached Slurm without the driver learning its job id.</summary>
    private void AddStray(string name, string? comment)
    {
        lock (_straysGate)
        {
            _strays.Add(new Stray(name, comment, _options.TimeProvider.GetUtcNow() + _options.LostJobTimeout));
        }

        EnsurePoller();
    }

    /// <summary>
    /// One squeue for every stray's job name; the live jobs that carry a stray's identity are cancelled. A stray is
    /// forgotten once a look found nothing left of it after its watch (a controller slow to register a submission that
    /// timed out may show the job late) or, <paramref name="final"/>ly, at once.
    /// </summary>
    private async Task SweepStraysAsync(bool final, CancellationToken ct)
    {
        Stray[] strays;
        lock (_straysGate)
        {
            if (_strays.Count == 0)
            {
                return;
            }

            strays = [.. _strays];
        }

        var names = new StringBuilder("--name=");
        for (var i = 0; i < strays.Length; i++)
        {
            names.Append(i == 0 ? "" : ",").Append(strays[i].Name);
        }

        if (await QueryAsync(names.ToString(), withComment: true, ct).ConfigureAwait(false) is not { } jobs)
        {
            return; // Slurm did not answer: the next tick asks again
        }

        var now = _options.TimeProvider.GetUtcNow();
        foreach (var stray in strays)
        {
            var left = false;
            foreach (var job in jobs)
            {
                if (job.Name != stray.Name || IsTerminal(job.State)
                    || (stray.Comment is { } comment ? job.Comment != comment : FilesOf(job.Comment) is not { } files || !IsOwnFiles(files)))
                {
                    continue;
                }

                var result = await _commands.RunAsync("scancel", [job.Id.ToString(CultureInfo.InvariantCulture)], ct).ConfigureAwait(false);
                left |= !result.Ok && !AlreadyEnded(result);
            }

            if (!left && (final || now >= stray.WatchUntil))
            {
                lock (_straysGate)
                {
                    _strays.Remove(stray);
                }
            }
        }
    }

    private static string TimeLimit(TimeSpan timeout, TimeSpan margin)
    {
        var minutes = (long)Math.Ceiling((timeout + margin).TotalMinutes);
        return Math.Max(1, minutes).ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// A submission whose job id the driver never learned: the job <paramref name="Name"/> carrying the identity
    /// <paramref name="Comment"/> (null: any attempt file prefix of this driver's directory) is cancelled when found.
    /// </summary>
    private sealed record Stray(string Name, string? Comment, DateTimeOffset WatchUntil);

    private enum CancelStep
    {
        None,
        Cancel,
        Term,
        Kill,
    }

    /// <summary>One attempt: its Slurm job, files, termination state and log tail.</summary>
    private sealed class Attempt(SlurmHostDriver driver, AttemptLaunch launch, IAttemptEventSink sink, string prefix)
    {
        private readonly Lock _gate = new();
        // Cancelled by Terminate (and by the driver's disposal) while the attempt has no job id: ends a secret
        // resolution still waiting, or an sbatch under way (what it may have queued is looked for and cancelled).
        private readonly CancellationTokenSource _unstarted = CancellationTokenSource.CreateLinkedTokenSource(driver._disposing.Token);
        private readonly string _name = JobName(launch.JobId, launch.Attempt);
        private LineSplitter? _lines;
        private long _offset;
        private long _jobId = -1;
        private bool _terminateRequested;
        private DateTimeOffset _killAt;
        private bool _cancelInFlight;
        private bool _cancelSent;
        private bool _termSent;
        private bool _killSent;
        private bool _started;
        private bool _finished;
        private DateTimeOffset? _missingSince;

        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long? JobId
        {
            get
            {
                var id = Volatile.Read(ref _jobId);
                return id < 0 ? null : id;
            }
        }

        /// <summary>The Slurm job name (<see cref="JobName"/>).</summary>
        public string Name => _name;

        /// <summary>What <see cref="TryReattach"/> needs to find the job again: <c>&lt;Slurm job id&gt; &lt;file prefix&gt;</c>.</summary>
        private string Handle => string.Create(CultureInfo.InvariantCulture, $"{_jobId} {prefix}");

        // Unique per submission (driver instance and token); the prefix says where the attempt's files are.
        private string Comment => string.Create(CultureInfo.InvariantCulture, $"{CommentPrefix}{driver._instance}/{launch.Token.Value}{FilesKey}{prefix}");

        private string OutputFile => prefix + ".out";
        private string ResultFile => prefix + ".result";
        private string EnvironmentFile => prefix + ".env";
        private string StartedFile => ResultFile + ".started";

        /// <summary>A job a previous engine submitted (<see cref="TryReattach"/>): tracked from the next poll on.</summary>
        public void Adopt(long jobId) => Volatile.Write(ref _jobId, jobId);

        public async Task SubmitAsync()
        {
            try
            {
                if (IsTerminateRequested())
                {
                    Finish(new AttemptExit(null, TerminatedBeforeStartReason));
                    return;
                }

                if (launch.Command.Count == 0)
                {
                    Finish(new AttemptExit(null, "CannotStartContainerError: the job has no command"));
                    return;
                }

                if (await launch.ResolveSecretsUnlessTerminatedAsync(TerminatedBeforeStartReason, _unstarted.Token).ConfigureAwait(false) is { } secretsError)
                {
                    Finish(new AttemptExit(null, secretsError));
                    return;
                }

                await File.WriteAllTextAsync(EnvironmentFile, EnvironmentText(), _unstarted.Token).ConfigureAwait(false);
                var comment = Comment;
                var result = await driver._commands.SubmitAsync(SbatchArguments(comment), _unstarted.Token).ConfigureAwait(false);
                if (!result.Ok || !long.TryParse(result.StandardOutput.Trim().Split(';')[0], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
                {
                    // sbatch may fail (time out, be cancelled) after the controller queued the job: whatever carries
                    // this submission's identity is cancelled when found.
                    driver.AddStray(_name, comment);
                    Finish(IsTerminateRequested()
                        ? new AttemptExit(null, TerminatedBeforeStartReason)
                        : new AttemptExit(null, "CannotStartContainerError: sbatch: " + result.Message));
                    return;
                }

                bool terminate;
                lock (_gate)
                {
                    Volatile.Write(ref _jobId, id);
                    terminate = _terminateRequested;
                }

                if (terminate)
                {
                    _ = DeliverCancelAsync();
                }
            }
            catch (OperationCanceledException)
            {
                // terminated before sbatch ran
                Finish(new AttemptExit(null, TerminatedBeforeStartReason));
            }
            catch (ObjectDisposedException)
            {
                // the driver was disposed under the submission
                Finish(new AttemptExit(null, TerminatedBeforeStartReason));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Finish(new AttemptExit(null, "CannotStartContainerError: " + e.Message, HostFailure: true));
            }
        }

        private string EnvironmentText()
        {
            // NUL-separated NAME=value entries: values stay literal whatever they hold ('=', ';', '$', newlines).
            var text = new StringBuilder();
            foreach (var (name, value) in launch.Environment)
            {
                text.Append(name).Append('=').Append(value).Append('\0');
            }

            return text.ToString();
        }

        private List<string> SbatchArguments(string comment)
        {
            var cpus = Math.Max(1, (int)Math.Ceiling(launch.Vcpus - 1e-9));
            var args = new List<string>(20 + launch.Command.Count)
            {
                "--parsable",
                "--job-name=" + _name,
                "--comment=" + comment,
                "--nodes=1",
                "--ntasks=1",
                "--nodelist=" + launch.HostName,
                "--cpus-per-task=" + cpus.ToString(CultureInfo.InvariantCulture),
                "--mem=" + Math.Max(1, launch.MemoryMiB).ToString(CultureInfo.InvariantCulture),
                "--output=" + OutputFile,
                "--export-file=" + EnvironmentFile,
                "--chdir=" + (launch.WorkingDirectory ?? driver._directory),
                "--kill-on-invalid-dep=yes",
            };
            if (launch.WorkingDirectory is { } wd)
            {
                Directory.CreateDirectory(wd);
            }

            if (driver._options.Partition is { } partition)
            {
                args.Add("--partition=" + partition);
            }

            if (launch.Gpus > 0)
            {
                args.Add("--gres=gpu:" + launch.Gpus.ToString(CultureInfo.InvariantCulture));
            }

            if (launch.Timeout is { } timeout)
            {
                args.Add("--time=" + TimeLimit(timeout, driver._options.TimeLimitMargin));
            }

            args.Add(driver._wrapper);
            args.Add(ResultFile);
            args.AddRange(launch.Command);
            return args;
        }

        private bool IsTerminateRequested()
        {
            lock (_gate)
            {
                return _terminateRequested;
            }
        }

        public void Terminate(TimeSpan grace)
        {
            var now = driver._options.TimeProvider.GetUtcNow();
            var killAt = grace >= DateTimeOffset.MaxValue - now ? DateTimeOffset.MaxValue : now + grace;
            bool submitted;
            lock (_gate)
            {
                // A second request only brings the SIGKILL forward (disposal's zero grace after a timeout's).
                if (_finished || (_terminateRequested && killAt >= _killAt))
                {
                    return;
                }

                _terminateRequested = true;
                _killAt = killAt;
                submitted = _jobId >= 0;
            }

            if (submitted)
            {
                _ = DeliverCancelAsync();
                return;
            }

            AttemptCancellation.CancelOffThread(_unstarted); // a secret resolution or an sbatch under way ends now; SubmitAsync sees the flag
        }

        /// <summary>
        /// What termination still has to send, in order. Not started (pending, or still starting): <c>scancel</c>, which
        /// ends the job whatever its state (a wrapper already up gets SIGTERM from Slurm and records the exit).
        /// Started: SIGTERM to every process of the job until the grace period is over, then SIGKILL and <c>scancel</c>.
        /// </summary>
        private CancelStep NextCancelStep(DateTimeOffset now)
        {
            if (_cancelSent)
            {
                return CancelStep.None;
            }

            if (!_started)
            {
                return CancelStep.Cancel;
            }

            if (now < _killAt)
            {
                return _termSent ? CancelStep.None : CancelStep.Term;
            }

            return _killSent ? CancelStep.Cancel : CancelStep.Kill;
        }

        /// <summary>
        /// Sends what termination has due, one scancel at a time. A scancel that fails (the controller did not answer)
        /// is sent again by the next poll, for as long as the attempt has not ended.
        /// </summary>
        private async Task DeliverCancelAsync()
        {
            while (true)
            {
                CancelStep step;
                string id;
                lock (_gate)
                {
                    if (_finished || !_terminateRequested || _jobId < 0 || _cancelInFlight)
                    {
                        return;
                    }

                    id = _jobId.ToString(CultureInfo.InvariantCulture);

                    step = NextCancelStep(driver._options.TimeProvider.GetUtcNow());
                    if (step == CancelStep.None)
                    {
                        return;
                    }

                    _cancelInFlight = true;
                }

                var delivered = false;
                try
                {
                    string[] args = step switch
                    {
                        CancelStep.Term => ["--signal=TERM", "--full", id],
                        CancelStep.Kill => ["--signal=KILL", "--full", id],
                        _ => [id],
                    };
                    var result = await driver._commands.RunAsync("scancel", args).ConfigureAwait(false);
                    delivered = result.Ok || AlreadyEnded(result);
                }
                catch (ObjectDisposedException)
                {
                    // driver disposed meanwhile
                }
                finally
                {
                    lock (_gate)
                    {
                        _cancelInFlight = false;
                        if (delivered)
                        {
                            _cancelSent |= step == CancelStep.Cancel;
                            _termSent |= step == CancelStep.Term;
                            _killSent |= step == CancelStep.Kill;
                        }
                    }
                }

                if (!delivered)
                {
                    return;
                }
            }
        }

        private bool IsFinished()
        {
            lock (_gate)
            {
                return _finished;
            }
        }

        /// <summary>
        /// One poll tick. <paramref name="state"/>: the job's Slurm state, null when squeue does not know the job, "?"
        /// when squeue failed.
        /// </summary>
        public void Poll(string? state, DateTimeOffset now)
        {
            if (IsFinished())
            {
                return;
            }

            // Started before the output is read: whoever sees a line of the job may rely on it being RUNNING.
            if (state is "RUNNING" or "COMPLETING" or "SUSPENDED" or "STOPPED" or "?")
            {
                // Running for Slurm is not yet running for us: the wrapper marks when it (and its SIGTERM trap) is up.
                if (File.Exists(StartedFile))
                {
                    ReportStarted();
                }
            }

            TryReadOutput(final: false);
            if (state is null)
            {
                // Purged (MinJobAge) or lost by the controller: the result file still says how it ended.
                _missingSince ??= now;
                if (File.Exists(ResultFile) || now - _missingSince.Value >= driver._options.LostJobTimeout)
                {
                    End("UNKNOWN");
                    return;
                }
            }
            else if (state != "?")
            {
                _missingSince = null;
                if (IsTerminal(state))
                {
                    End(state);
                    return;
                }
            }

            if (IsTerminateRequested())
            {
                _ = DeliverCancelAsync(); // what failed before, or the SIGKILL whose time has come
            }
        }

        private void ReportStarted()
        {
            lock (_gate)
            {
                if (_started || _finished)
                {
                    return;
                }

                _started = true;
            }

            sink.Started(launch.Token, Handle);
        }

        private void End(string state)
        {
            TryReadOutput(final: true);
            var result = ReadResult();
            var ran = result is not null || File.Exists(StartedFile);
            AttemptExit exit;
            bool term, kill, requested;
            lock (_gate)
            {
                term = _termSent;
                kill = _killSent;
                requested = _terminateRequested;
            }

            if (result == "notfound")
            {
                // A re-attached attempt does not know its command.
                var command = launch.Command.Count > 0 ? launch.Command[0] : "the command";
                exit = new AttemptExit(null, $"CannotStartContainerError: {command}: executable file not found in $PATH");
                ran = false;
            }
            else if (state == "OUT_OF_MEMORY")
            {
                exit = new AttemptExit(137, AttemptExit.OutOfMemoryReason);
            }
            else if (result is not null && result.StartsWith("exit ", StringComparison.Ordinal)
                && int.TryParse(result.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var code))
            {
                exit = new AttemptExit(code);
            }
            else if (state is "NODE_FAIL" or "BOOT_FAIL")
            {
                exit = new AttemptExit(null, $"{HostTerminatedPrefix}{launch.HostName}) terminated: Slurm job ended {state}", HostFailure: true);
            }
            else if (!ran && requested)
            {
                exit = new AttemptExit(null, TerminatedBeforeStartReason);
            }
            else if (kill)
            {
                exit = new AttemptExit(137);
            }
            else if (term || requested)
            {
                exit = new AttemptExit(143);
            }
            else if (state == "TIMEOUT")
            {
                exit = new AttemptExit(137, "Slurm time limit reached");
            }
            else
            {
                exit = new AttemptExit(null, $"Slurm job {_jobId} ended {state} without a result", HostFailure: !ran);
            }

            if (ran)
            {
                ReportStarted();
            }

            Finish(exit);
        }

        private string? ReadResult()
        {
            try
            {
                return File.Exists(ResultFile) ? File.ReadAllText(ResultFile).Trim() : null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }

        private void Finish(AttemptExit exit)
        {
            lock (_gate)
            {
                if (_finished)
                {
                    return;
                }

                _finished = true;
            }

            _unstarted.Dispose(); // unlinks it from the driver's disposal token
            driver._attempts.TryRemove(new KeyValuePair<AttemptToken, Attempt>(launch.Token, this));
            DeleteAttemptFiles(prefix);
            driver.RemoveEndedDriverDirectory(prefix); // a re-attached attempt's: its output was read (End) and its files are gone
            sink.Exited(launch.Token, exit);
            Completion.TrySetResult();
        }

        /// <summary>
        /// <see cref="ReadOutput"/>; a shared directory that fails is read again next tick, or at the end loses the
        /// rest of the output, never the attempt.
        /// </summary>
        private void TryReadOutput(bool final)
        {
            try
            {
                ReadOutput(final);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        /// <summary>Reads what the job wrote since the last tick; lines go to the log stream, a partial line waits.</summary>
        private void ReadOutput(bool final)
        {
            if (!File.Exists(OutputFile))
            {
                return;
            }

            using (var stream = new FileStream(OutputFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                if (stream.Length > _offset)
                {
                    stream.Position = _offset;
                    var buffer = new byte[Math.Min(stream.Length - _offset, 1 << 20)];
                    int read;
                    while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
                    {
                        _offset += read;
                        (_lines ??= new LineSplitter(AppendLog)).Append(buffer.AsSpan(0, read));
                    }
                }
            }

            if (final)
            {
                _lines?.Flush();
            }
        }

        private void AppendLog(string line)
        {
            try
            {
                driver._options.LogStore.Append(launch.LogStreamName, driver._options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds(), line);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A failing log store loses lines, never the attempt: thrown here, it would stop the output copy and,
                // at the end, the attempt's exit (End reads the output first).
            }
        }
    }
}
