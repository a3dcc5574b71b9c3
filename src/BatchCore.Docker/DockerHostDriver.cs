using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using BatchCore.Logs;
using Docker.DotNet;
using Docker.DotNet.Models;
using Docker.DotNet.X509;

namespace BatchCore.Hosts.Docker;

/// <summary>
/// Runs attempts as Docker containers (kind <c>docker</c>) through the Docker Engine API: the launch's image and command
/// (exec form), its environment, and the requested memory (hard limit, no extra swap), vCPUs and a pids limit. Logs are
/// followed into the attempt's log stream; the container is always removed after the attempt's exit is reported (never
/// auto-removed by the daemon, so that it outlives a crashed engine: <see cref="TryReattach"/>), tried again a bounded
/// number of times when the daemon fails or hangs, then left to a sweep (<see cref="SweepAsync"/>) that also removes a
/// crash's leftovers once the engine launches again. Every request but the exit wait is bounded; a failed exit wait is
/// followed by an inspect, so that a daemon restart neither fails nor kills a job that still runs, and the log follow it cut
/// off is resumed where it stopped (<see cref="DockerLogFollower"/>). Containers carry the labels
/// <c>batchcore.attempt</c>, <c>batchcore.job-id</c>, <c>batchcore.job-attempt</c> and, for a journaling engine,
/// <c>batchcore.engine-id</c> (<see cref="AttemptLaunch.EngineId"/>): what the driver finds again or removes by labels is
/// only its own engine's.
/// </summary>
public sealed partial class DockerHostDriver : HostDriver
{
    /// <summary>Label holding the attempt token.</summary>
    public const string AttemptLabel = "batchcore.attempt";

    /// <summary>Label holding the job id.</summary>
    public const string JobIdLabel = "batchcore.job-id";

    /// <summary>Label holding the 1-based attempt number: with the job id, finds an attempt again after an engine restart.</summary>
    public const string JobAttemptLabel = "batchcore.job-attempt";

    /// <summary>
    /// Label holding the engine's id (<see cref="AttemptLaunch.EngineId"/>), on the containers of a journaling engine:
    /// scopes what the driver finds by labels to its own engine (another engine's job of the same id is never touched).
    /// </summary>
    public const string EngineIdLabel = "batchcore.engine-id";

    /// <summary>The reason of an attempt terminated before its container was started.</summary>
    public const string TerminatedBeforeStartReason = "Terminated before the attempt started";

    // docker-init (tini) exits 127 after "[FATAL tini (7)] exec x failed: No such file or directory".
    private const int InitExecFailedExitCode = 127;
    private const string InitFatalPrefix = "[FATAL tini";

    private readonly DockerHostDriverOptions _options;
    private readonly DockerClientConfiguration _configuration;
    private readonly DockerClient _client;
    private readonly ConcurrentDictionary<AttemptToken, Attempt> _attempts = new();
    private readonly CancellationTokenSource _disposing = new();
    // Cancelled when disposing starts: retries stop waiting between tries, and a removal makes one last try.
    private readonly CancellationTokenSource _closing = new();
    // Work outside any attempt (removals of containers not taken back by TryReattach, sweeps): awaited by DisposeAsync.
    private readonly ConcurrentDictionary<Task, byte> _background = new();
    private int _disposed;

    /// <summary>Creates the driver. Does not contact the daemon until the first launch.</summary>
    /// <exception cref="BatchClientException">The options break a rule, e.g. plain TCP to a remote address.</exception>
    public DockerHostDriver(DockerHostDriverOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var endpoint = options.Validate();
        _options = options with { };
        Credentials? credentials = null;
        if (endpoint.Scheme == "tcp" && options.ClientCertificate is not null)
        {
            var tls = new CertificateCredentials(options.ClientCertificate);
            if (options.ServerCertificateValidation is not null)
            {
                tls.ServerCertificateValidationCallback = options.ServerCertificateValidation;
            }

            credentials = tls;
        }

        _configuration = credentials is null ? new DockerClientConfiguration(endpoint) : new DockerClientConfiguration(endpoint, credentials);
        _client = _configuration.CreateClient();
        s_drivers.Add(this, null);
    }

    /// <inheritdoc />
    public override string Kind => "docker";

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The token is already running on this driver.</exception>
    public override void Launch(AttemptLaunch launch, IAttemptEventSink sink)
    {
        ArgumentNullException.ThrowIfNull(launch);
        ArgumentNullException.ThrowIfNull(sink);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var attempt = new Attempt(this, launch, sink);
        if (!_attempts.TryAdd(launch.Token, attempt))
        {
            ThrowDuplicate(launch.Token);
        }

        attempt.Completion = Task.Run(attempt.RunAsync);
        NoteEngine(launch.EngineId); // after the attempt is tracked: a sweep it starts leaves its container alone
    }

    /// <inheritdoc />
    /// <remarks>
    /// Finds the container by its id (the handle) or, when the engine died before journaling it, by the labels
    /// <c>batchcore.job-id</c> and <c>batchcore.job-attempt</c>; a container of another job is never taken. A running or
    /// exited container is taken back: its logs are followed from the start, its exit awaited and reported, and it is
    /// removed. A container that never started is removed and not taken back. When the daemon does not answer within
    /// 30 seconds, or fails, the attempt is not taken back either, and its container is looked for again and removed
    /// in the background (<see cref="RemoveUnreattachedAsync"/>).
    /// </remarks>
    public override bool TryReattach(AttemptReattach reattach, IAttemptEventSink sink)
    {
        ArgumentNullException.ThrowIfNull(reattach);
        ArgumentNullException.ThrowIfNull(sink);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ContainerInspectResponse? found;
        var givenUp = new CancellationTokenSource(); // holds no timer: not disposed, the find may still look at its token
        try
        {
            // Recovery runs synchronously; the pool thread keeps a caller's synchronization context out of the way.
            found = Task.Run(() => FindAsync(reattach, givenUp.Token)).WaitAsync(_options.ReattachTimeout, _options.TimeProvider)
                .GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is TimeoutException or DockerApiException or IOException or HttpRequestException)
        {
            // The engine ends the attempt as a host failure and may run it again: a container that still runs must not
            // run on beside the retry, unobserved until a sweep. The hung look is cut short and a new one removes it.
            givenUp.Cancel();
            Track(Task.Run(() => RemoveUnreattachedAsync(reattach)));
            return false;
        }

        if (found is null)
        {
            return false;
        }

        var launch = new AttemptLaunch
        {
            Token = reattach.Token,
            JobId = reattach.JobId,
            Attempt = reattach.Attempt,
            JobDefinitionName = "",
            LogStreamName = reattach.LogStreamName,
            Command = [],
            Environment = new Dictionary<string, string>(),
            Vcpus = 0,
            MemoryMiB = 0,
            HostName = reattach.HostName,
            EngineId = reattach.EngineId,
        };
        var attempt = new Attempt(this, launch, sink);
        if (found.State is not { } state || (!state.Running && state.Status == "created"))
        {
            Track(Task.Run(() => attempt.RemoveAsync(found.ID)));
            return false;
        }

        if (!_attempts.TryAdd(launch.Token, attempt))
        {
            ThrowDuplicate(launch.Token);
        }

        attempt.Reattaching(found.ID); // before the task runs: a release may come first
        attempt.Completion = Task.Run(() => attempt.ReattachAsync(found.ID, state.Running));
        return true;
    }

    /// <summary>
    /// A re-attach that gave up: finds the attempt's container again as TryReattach would (by its handle or labels,
    /// never another job's or engine's) and force-removes it (one still running is killed), unless an attempt of a docker
    /// driver in this process follows it. Each try is bounded by <see cref="DockerHostDriverOptions.RemoveRequestTimeout"/>
    /// per request and made again after a growing wait, at most <see cref="DockerHostDriverOptions.RemoveTries"/> times;
    /// once the driver is disposing, the try under way is the last. A removal that gives up is left to the sweep. Never throws.
    /// </summary>
    private async Task RemoveUnreattachedAsync(AttemptReattach reattach)
    {
        var id = reattach.Handle;
        var delay = _options.RetryDelay;
        for (var tries = 1; ; tries++)
        {
            try
            {
                ContainerInspectResponse? found;
                using (var bound = new CancellationTokenSource(_options.RemoveRequestTimeout, _options.TimeProvider))
                {
                    found = await FindAsync(reattach, bound.Token).ConfigureAwait(false);
                }

                if (found is null || FollowedByADriver(found.ID, found.Config?.Labels))
                {
                    return; // gone meanwhile (or never created), or taken back after all
                }

                id = found.ID;
                using (var bound = new CancellationTokenSource(_options.RemoveRequestTimeout, _options.TimeProvider))
                {
                    await _client.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, bound.Token)
                        .ConfigureAwait(false);
                }

                return;
            }
            catch (DockerContainerNotFoundException)
            {
                return; // removed meanwhile
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // a timeout, a daemon error or a daemon gone: tried again
            }

            if (tries >= _options.RemoveTries || _closing.IsCancellationRequested)
            {
                RemovalGaveUp(id); // the sweep tries again later (by id when it was found)
                return;
            }

            await DelayAsync(delay).ConfigureAwait(false);
            delay += delay;
        }
    }

    private async Task<ContainerInspectResponse?> FindAsync(AttemptReattach reattach, CancellationToken cancellationToken)
    {
        var attemptNumber = reattach.Attempt.ToString(CultureInfo.InvariantCulture);
        var id = reattach.Handle;
        if (string.IsNullOrEmpty(id))
        {
            var list = await _client.Containers.ListContainersAsync(new ContainersListParameters
            {
                All = true,
                Filters = new Dictionary<string, IDictionary<string, bool>>
                {
                    ["label"] = new Dictionary<string, bool> { [JobIdLabel + "=" + reattach.JobId] = true, [JobAttemptLabel + "=" + attemptNumber] = true },
                },
            }, cancellationToken).ConfigureAwait(false);
            foreach (var candidate in list)
            {
                if (OfEngine(candidate.Labels, reattach.EngineId))
                {
                    id = candidate.ID;
                    break;
                }
            }

            if (string.IsNullOrEmpty(id))
            {
                return null;
            }
        }

        try
        {
            var inspected = await _client.Containers.InspectContainerAsync(id, cancellationToken).ConfigureAwait(false);
            var labels = inspected.Config?.Labels;
            return labels is not null && labels.TryGetValue(JobIdLabel, out var job) && job == reattach.JobId
                && (!labels.TryGetValue(JobAttemptLabel, out var n) || n == attemptNumber) && OfEngine(labels, reattach.EngineId) ? inspected : null;
        }
        catch (DockerContainerNotFoundException)
        {
            return null;
        }
    }

    /// <inheritdoc />
    /// <remarks>Docker's stop timeout has a granularity of seconds: the grace period is rounded up.</remarks>
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
    /// <remarks>Each re-attached container stops being watched: it is neither stopped nor removed, and no exit is reported.</remarks>
    public override async ValueTask ReleaseReattachedAsync()
    {
        var released = new List<Task>();
        foreach (var (_, attempt) in _attempts)
        {
            if (attempt.Release() && attempt.Completion is { } completion)
            {
                released.Add(completion);
            }
        }

        await Task.WhenAll(released).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Stops the running containers (grace 0) and waits for their exits; a container still being removed gets one last
    /// removal try (bounded), so a hung daemon delays this by at most about one request bound. Never throws.
    /// </remarks>
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _closing.CancelAsync().ConfigureAwait(false);
        var running = new List<Task>();
        foreach (var (_, attempt) in _attempts)
        {
            attempt.Terminate(TimeSpan.Zero);
            if (attempt.Completion is { } completion)
            {
                running.Add(completion);
            }
        }

        running.AddRange(_background.Keys);
        await Task.WhenAll(running).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        s_drivers.Remove(this);
        await _disposing.CancelAsync().ConfigureAwait(false);
        _client.Dispose();
        _configuration.Dispose();
        _disposing.Dispose();
        _closing.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Keeps background work for DisposeAsync to await, until it is done.</summary>
    private void Track(Task work)
    {
        _background.TryAdd(work, 0);
        _ = work.ContinueWith(static (done, background) => ((ConcurrentDictionary<Task, byte>)background!).TryRemove(done, out _),
            _background, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Waits before a retry; disposing ends the wait at once.</summary>
    private async Task DelayAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _options.TimeProvider, _closing.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            // disposing: the next try is made now
        }
    }

    /// <summary>
    /// Whether a container is of the engine <paramref name="engineId"/>: its <see cref="EngineIdLabel"/> is that id, or it
    /// has none (made before the label existed). Any container is, for a launch without an engine id.
    /// </summary>
    private static bool OfEngine(IDictionary<string, string>? labels, string? engineId) =>
        engineId is null || labels is null || !labels.TryGetValue(EngineIdLabel, out var label) || label == engineId;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDuplicate(AttemptToken token) =>
        throw new InvalidOperationException($"attempt {token.Value} is already running on this driver");

    /// <summary>The daemon's message from an API error body (<c>{"message":"..."}</c>), else the exception's.</summary>
    private static string DaemonMessage(Exception e)
    {
        if (e is DockerApiException api && !string.IsNullOrEmpty(api.ResponseBody))
        {
            const string key = "\"message\":\"";
            var body = api.ResponseBody;
            var start = body.IndexOf(key, StringComparison.Ordinal);
            if (start >= 0)
            {
                start += key.Length;
                var end = body.LastIndexOf('"');
                if (end > start)
                {
                    return System.Text.RegularExpressions.Regex.Unescape(body[start..end]);
                }
            }

            return body.Trim();
        }

        return e.Message;
    }

    /// <summary>One launched attempt: its container and termination state.</summary>
    private sealed class Attempt(DockerHostDriver driver, AttemptLaunch launch, IAttemptEventSink sink)
    {
        private readonly Lock _gate = new();
        // Cancelled by Terminate: ends a secret resolution that is still waiting, so the attempt ends unstarted.
        private readonly CancellationTokenSource _unstarted = new();
        private bool _terminateRequested;
        private TimeSpan _grace;
        private bool _started;
        // The container exited or the attempt ended: a stop is not tried again.
        private bool _exited;
        private string? _containerId;
        // A create that got no answer (timeout, dropped connection, Terminate): the daemon may have created the container.
        private bool _createUnanswered;
        private string? _initExecFailure;
        private bool _reattached;
        private bool _ended;
        private bool _releaseRequested;
        // An exit wait failed (the daemon restarted?): the log follow may have been cut too.
        private bool _waitFailed;
        private readonly CancellationTokenSource _released = new(); // never disposed: Release may cancel it at any time

        /// <summary>A re-attached attempt stops being watched, its container left as it is; false for any other attempt.</summary>
        public bool Release()
        {
            lock (_gate)
            {
                if (!_reattached || _ended)
                {
                    return false;
                }

                _releaseRequested = true;
            }

            _released.Cancel(); // outside the lock: the watch may go on on this thread
            return true;
        }

        public Task? Completion { get; set; }

        private IContainerOperations Containers => driver._client.Containers;

        public async Task RunAsync()
        {
            AttemptExit exit;
            try
            {
                exit = await RunCoreAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Failures are values: a daemon that fails mid-attempt ends it as a host failure.
                exit = new AttemptExit(null, "CannotInspectContainerError: " + DaemonMessage(e), HostFailure: true);
            }
            finally
            {
                _unstarted.Dispose();
            }

            await EndAsync(exit).ConfigureAwait(false);
        }

        /// <summary>
        /// Reports the exit, then removes the container. The engine need not wait for the daemon's cleanup (a removal
        /// that hangs must not hold back the exit: the process driver reports before its cleanup too); the attempt stays
        /// tracked until the removal is done, so DisposeAsync still waits for it.
        /// </summary>
        private async Task EndAsync(AttemptExit exit)
        {
            lock (_gate)
            {
                _exited = true;
            }

            try
            {
                sink.Exited(launch.Token, exit);
            }
            finally
            {
                await RemoveContainerAsync().ConfigureAwait(false);
                driver._attempts.TryRemove(new KeyValuePair<AttemptToken, Attempt>(launch.Token, this));
            }
        }

        private async Task<AttemptExit> RunCoreAsync()
        {
            if (IsTerminateRequested())
            {
                return new AttemptExit(null, TerminatedBeforeStartReason);
            }

            if (string.IsNullOrEmpty(launch.Image))
            {
                return new AttemptExit(null, "CannotCreateContainerError: the docker driver needs an image");
            }

            string? pullError;
            try
            {
                pullError = await EnsureImageAsync(launch.Image, _unstarted.Token).ConfigureAwait(false);
            }
            catch (Exception) when (IsTerminateRequested())
            {
                // Terminate cut the inspect or the pull short (whatever the client made of the cancellation).
                return new AttemptExit(null, TerminatedBeforeStartReason);
            }

            if (IsTerminateRequested())
            {
                return new AttemptExit(null, TerminatedBeforeStartReason); // a cut-off pull stream can end without an error
            }

            if (pullError is not null)
            {
                return new AttemptExit(null, "CannotPullContainerError: " + pullError);
            }

            if (await launch.ResolveSecretsUnlessTerminatedAsync(TerminatedBeforeStartReason, _unstarted.Token).ConfigureAwait(false) is { } secretsError)
            {
                return new AttemptExit(null, secretsError);
            }

            if (launch.Reattachable)
            {
                await RemoveLeftoversAsync().ConfigureAwait(false);
            }

            if (IsTerminateRequested())
            {
                return new AttemptExit(null, TerminatedBeforeStartReason);
            }

            CreateContainerResponse created;
            try
            {
                created = await Containers.CreateContainerAsync(CreateParameters(), _unstarted.Token).ConfigureAwait(false);
            }
            catch (DockerApiException e)
            {
                return new AttemptExit(null, "CannotCreateContainerError: " + DaemonMessage(e));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // No answer (the client's timeout, a dropped connection, Terminate): the daemon may have created the
                // container all the same. It has no id here; RemoveContainerAsync finds it by its attempt label.
                lock (_gate)
                {
                    _createUnanswered = true;
                }

                return IsTerminateRequested()
                    ? new AttemptExit(null, TerminatedBeforeStartReason)
                    : new AttemptExit(null, "CannotCreateContainerError: " + e.Message, HostFailure: true);
            }

            lock (_gate)
            {
                _containerId = created.ID;
                if (_terminateRequested)
                {
                    return new AttemptExit(null, TerminatedBeforeStartReason);
                }
            }

            if (await StartAsync(created.ID).ConfigureAwait(false) is { } notStarted)
            {
                return notStarted; // the container is removed (EndAsync): one the daemon started after all is killed
            }

            bool stopNow;
            TimeSpan grace;
            lock (_gate)
            {
                _started = true;
                stopNow = _terminateRequested;
                grace = _grace;
            }

            sink.Started(launch.Token, created.ID); // the container id: re-attach handle
            if (stopNow)
            {
                _ = StopAsync(created.ID, grace);
            }

            return await WatchAsync(created.ID).ConfigureAwait(false);
        }

        /// <summary>
        /// Starts the created container; null when it started, else how the attempt ends unstarted. The request is bounded
        /// by <see cref="DockerHostDriverOptions.StartRequestTimeout"/> (a daemon that takes the connection and never
        /// answers would otherwise hold the attempt in STARTING), and Terminate cuts it short.
        /// </summary>
        private async Task<AttemptExit?> StartAsync(string id)
        {
            var timeout = driver._options.StartRequestTimeout;
            using var bound = new CancellationTokenSource(timeout, driver._options.TimeProvider);
            try
            {
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(bound.Token, _unstarted.Token);
                await Containers.StartContainerAsync(id, new ContainerStartParameters(), linked.Token).ConfigureAwait(false);
                return null;
            }
            catch (DockerApiException e)
            {
                // e.g. exec: "x": executable file not found in $PATH
                return new AttemptExit(null, "CannotStartContainerError: " + DaemonMessage(e));
            }
            catch (Exception) when (IsTerminateRequested())
            {
                return new AttemptExit(null, TerminatedBeforeStartReason);
            }
            catch (OperationCanceledException) when (bound.IsCancellationRequested)
            {
                return new AttemptExit(null, $"CannotStartContainerError: the Docker daemon did not answer the start of container {id} within {timeout}",
                    HostFailure: true);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A dropped connection, the client's own timeout: the daemon, not the job, failed.
                return new AttemptExit(null, "CannotStartContainerError: " + e.Message, HostFailure: true);
            }
        }

        /// <summary>The attempt is a container a previous engine started, about to be taken back.</summary>
        public void Reattaching(string id)
        {
            lock (_gate)
            {
                _containerId = id;
                _started = true;
                _reattached = true;
            }
        }

        /// <summary>Takes back a container a previous engine started (see <see cref="TryReattach"/>).</summary>
        public async Task ReattachAsync(string id, bool running)
        {
            AttemptExit exit = default;
            try
            {
                if (running)
                {
                    sink.Started(launch.Token);
                }

                exit = await WatchAsync(id, _released.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (Volatile.Read(ref _releaseRequested))
            {
                // released (a failed engine start): the container is left for the next start
            }
            catch (Exception e)
            {
                exit = new AttemptExit(null, "CannotInspectContainerError: " + DaemonMessage(e), HostFailure: true);
            }

            bool released;
            lock (_gate)
            {
                _ended = true;
                released = _releaseRequested;
            }

            if (released)
            {
                driver._attempts.TryRemove(new KeyValuePair<AttemptToken, Attempt>(launch.Token, this)); // left for the next start
                return;
            }

            await EndAsync(exit).ConfigureAwait(false);
        }

        /// <summary>
        /// Whether this attempt's container is <paramref name="containerId"/>, or one labelled with its token (a create
        /// under way, or one that got no answer).
        /// </summary>
        public bool Owns(string containerId, long? token)
        {
            if (token == launch.Token.Value)
            {
                return true;
            }

            lock (_gate)
            {
                return _containerId == containerId;
            }
        }

        /// <summary>Removes a container that is not taken back.</summary>
        public async Task RemoveAsync(string id)
        {
            lock (_gate)
            {
                _containerId = id;
            }

            await RemoveContainerAsync().ConfigureAwait(false);
        }

        /// <summary>
        /// Follows a started container's logs (from its start) until it exits; its exit as AWS reports it. Throws
        /// <see cref="OperationCanceledException"/> when <paramref name="released"/> is cancelled first.
        /// </summary>
        private async Task<AttemptExit> WatchAsync(string id, CancellationToken released = default)
        {
            using var logsDone = released.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(released) : new CancellationTokenSource();
            var exitKnown = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var logs = FollowLogsAsync(id, exitKnown.Task, logsDone.Token);
            ContainerExit waited;
            try
            {
                waited = await WaitForExitAsync(id, released).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (released.IsCancellationRequested)
            {
                await logs.ConfigureAwait(false); // ends with the same token
                throw;
            }

            lock (_gate)
            {
                _exited = true;
            }

            exitKnown.TrySetResult();
            if (waited.Lost is not null)
            {
                await logsDone.CancelAsync().ConfigureAwait(false); // given up: the lines read so far are what there is
            }
            else
            {
                // The log stream ends when the container has stopped; the bound only guards against a daemon that never closes it.
                logsDone.CancelAfter(driver._options.LogDrainTimeout);
            }

            await logs.ConfigureAwait(false);

            if (waited.Lost is { } lost)
            {
                return new AttemptExit(null, "CannotInspectContainerError: " + lost, HostFailure: true);
            }

            var code = waited.Code;
            var oomKilled = waited.OomKilled;
            if (code != 0 && oomKilled is null)
            {
                try
                {
                    oomKilled = (await InspectAsync(id, CancellationToken.None).ConfigureAwait(false)).State?.OOMKilled;
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // The exit code is known: a daemon that fails now only loses the OOM verdict.
                }
            }

            if (code != 0 && oomKilled == true)
            {
                return new AttemptExit(137, AttemptExit.OutOfMemoryReason);
            }

            if (code == InitExecFailedExitCode && _initExecFailure is { } failure)
            {
                // With an init process the container starts and docker-init reports the failed exec: same meaning as
                // the daemon's start error without one.
                return new AttemptExit(null, "CannotStartContainerError: " + failure);
            }

            return new AttemptExit(code);
        }

        /// <summary>
        /// Waits for the container's exit. The wait is a long poll that lasts as long as the container runs, so it has no
        /// bound; a wait that fails instead (the daemon restarted, the connection reset, an error) does not decide the
        /// attempt: the container is inspected. Exited: its exit code. Gone: lost. Still running: waited for again after
        /// a growing pause (at most <see cref="DockerHostDriverDefaults.MaxWaitRetryDelay"/>), for as long as the daemon
        /// says it runs (ending the attempt would remove, and so kill, a job that runs). Only when the inspect fails too
        /// <see cref="DockerHostDriverOptions.LostWaitTries"/> times in a row (or once the driver is disposing) is the
        /// container lost.
        /// </summary>
        private async Task<ContainerExit> WaitForExitAsync(string id, CancellationToken released)
        {
            var options = driver._options;
            var delay = options.RetryDelay;
            var unknown = 0;
            while (true)
            {
                Exception failure;
                try
                {
                    var waited = await Containers.WaitContainerAsync(id, released).ConfigureAwait(false);
                    return new ContainerExit((int)waited.StatusCode, null, null);
                }
                catch (OperationCanceledException) when (released.IsCancellationRequested)
                {
                    throw;
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    failure = e;
                }

                Volatile.Write(ref _waitFailed, true); // the daemon may have dropped the log follow too: it is made once more after the exit
                ContainerInspectResponse? inspected = null;
                try
                {
                    inspected = await InspectAsync(id, released).ConfigureAwait(false);
                }
                catch (DockerContainerNotFoundException)
                {
                    return new ContainerExit(0, null, $"container {id} is gone (removed while it ran, outside the engine): its exit is unknown");
                }
                catch (OperationCanceledException) when (released.IsCancellationRequested)
                {
                    throw;
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    failure = e;
                }

                if (inspected?.State is { Running: false } state)
                {
                    return new ContainerExit((int)state.ExitCode, state.OOMKilled, null); // exited while the wait was down
                }

                // Running, or unknown (the daemon not answering): tried again, the unknowns in a row bounded. A driver
                // that is disposing has stopped the container: it no longer waits long for a daemon that fails.
                unknown = inspected?.State is null || driver._closing.IsCancellationRequested ? unknown + 1 : 0;
                if (unknown >= options.LostWaitTries)
                {
                    return new ContainerExit(0, null,
                        $"lost the wait for container {id} and could not inspect it {unknown} times in a row: {DaemonMessage(failure)}");
                }

                await DelayAsync(delay, released).ConfigureAwait(false);
                delay = delay + delay > DockerHostDriverDefaults.MaxWaitRetryDelay ? DockerHostDriverDefaults.MaxWaitRetryDelay : delay + delay;
            }
        }

        /// <summary>Inspects the container, bounded by <see cref="DockerHostDriverOptions.InspectRequestTimeout"/>.</summary>
        private async Task<ContainerInspectResponse> InspectAsync(string id, CancellationToken cancellationToken)
        {
            using var bound = new CancellationTokenSource(driver._options.InspectRequestTimeout, driver._options.TimeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(bound.Token, cancellationToken);
            return await Containers.InspectContainerAsync(id, linked.Token).ConfigureAwait(false);
        }

        /// <summary>The driver's retry pause, which <paramref name="released"/> ends by throwing.</summary>
        private async Task DelayAsync(TimeSpan delay, CancellationToken released)
        {
            if (!released.CanBeCanceled)
            {
                await driver.DelayAsync(delay).ConfigureAwait(false);
                return;
            }

            await driver.DelayAsync(delay).WaitAsync(released).ConfigureAwait(false);
        }

        /// <summary>A container's exit code and OOM verdict (null: not known yet), or why its exit is lost.</summary>
        private readonly record struct ContainerExit(int Code, bool? OomKilled, string? Lost);

        private CreateContainerParameters CreateParameters()
        {
            var env = new List<string>(launch.Environment.Count);
            foreach (var (name, value) in launch.Environment)
            {
                env.Add(name + "=" + value);
            }

            var memory = (long)launch.MemoryMiB * 1024 * 1024;
            var options = driver._options;
            return new CreateContainerParameters
            {
                Image = launch.Image,
                Cmd = launch.Command.Count == 0 ? null : [.. launch.Command],
                Env = env,
                Labels = Labels(),
                AttachStdout = false,
                AttachStderr = false,
                User = launch.Container?.User,
                HostConfig = ApplyContainerProperties(new HostConfig
                {
                    Memory = memory,
                    MemorySwap = memory, // no swap beyond the memory limit
                    NanoCPUs = (long)Math.Round(launch.Vcpus * 1e9),
                    PidsLimit = options.PidsLimit,
                    NetworkMode = options.NetworkMode,
                    Init = options.InitProcessEnabled ? true : null,
                }, launch.Container, memory, options.AllowPrivileged),
            };
        }

        /// <summary>The attempt's own labels, and the job's propagated tags (propagateTags) beside them.</summary>
        private Dictionary<string, string> Labels()
        {
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (k, v) in launch.Tags ?? EmptyTags)
            {
                labels[k] = v;
            }

            labels[AttemptLabel] = launch.Token.Value.ToString(CultureInfo.InvariantCulture); // ours win over a tag of the same name
            labels[JobIdLabel] = launch.JobId;
            labels[JobAttemptLabel] = launch.Attempt.ToString(CultureInfo.InvariantCulture);
            if (launch.EngineId is { } engineId)
            {
                labels[EngineIdLabel] = engineId;
            }
            else
            {
                labels.Remove(EngineIdLabel); // a propagated tag must not pass the container off as an engine's
            }

            return labels;
        }

        private static readonly IReadOnlyDictionary<string, string> EmptyTags = new Dictionary<string, string>();

        /// <summary>
        /// What ECS would set from the definition: host-path volumes bound at their mount points (as binds, so a missing
        /// host path is created, as the Docker daemon does for ECS; a volume with neither a host path nor EFS is an
        /// anonymous volume, removed with the container; EFS has no local counterpart and is not mounted), ulimits, a
        /// read-only root, the linux parameters (tmpfs, shared memory, swap, init), and — with
        /// <see cref="DockerHostDriverOptions.AllowPrivileged"/> — privileged mode and devices.
        /// </summary>
        private static HostConfig ApplyContainerProperties(HostConfig host, Model.ContainerProperties? cp, long memory, bool allowPrivileged)
        {
            if (cp is null)
            {
                return host;
            }

            foreach (var mount in cp.MountPoints ?? [])
            {
                var volume = cp.Volumes?.FirstOrDefault(v => v.Name == mount.SourceVolume);
                if (volume is null || volume.EfsVolumeConfiguration is not null || mount.ContainerPath is null)
                {
                    continue;
                }

                if (volume.Host?.SourcePath is { } source)
                {
                    (host.Binds ??= []).Add(source + ":" + mount.ContainerPath + (mount.ReadOnly == true ? ":ro" : ""));
                }
                else
                {
                    (host.Mounts ??= []).Add(new Mount { Type = "volume", Target = mount.ContainerPath, ReadOnly = mount.ReadOnly == true });
                }
            }

            foreach (var u in cp.Ulimits ?? [])
            {
                (host.Ulimits ??= []).Add(new Ulimit { Name = u.Name, Soft = u.SoftLimit ?? 0, Hard = u.HardLimit ?? 0 });
            }

            host.ReadonlyRootfs = cp.ReadonlyRootFilesystem == true;
            host.Privileged = allowPrivileged && cp.Privileged == true;
            if (cp.LinuxParameters is { } lp)
            {
                foreach (var d in allowPrivileged ? lp.Devices ?? [] : [])
                {
                    if (string.IsNullOrEmpty(d.HostPath))
                    {
                        continue;
                    }

                    (host.Devices ??= []).Add(new DeviceMapping
                    {
                        PathOnHost = d.HostPath,
                        PathInContainer = d.ContainerPath ?? d.HostPath,
                        CgroupPermissions = d.Permissions is { Count: > 0 } perms
                            ? (perms.Contains("READ") ? "r" : "") + (perms.Contains("WRITE") ? "w" : "") + (perms.Contains("MKNOD") ? "m" : "")
                            : "rwm",
                    });
                }

                foreach (var t in lp.Tmpfs ?? [])
                {
                    if (t.ContainerPath is { } path)
                    {
                        var size = "size=" + t.Size.ToString(CultureInfo.InvariantCulture) + "m";
                        (host.Tmpfs ??= new Dictionary<string, string>())[path] = t.MountOptions is { Count: > 0 } o ? string.Join(',', [.. o, size]) : size;
                    }
                }

                if (lp.SharedMemorySize is { } shm)
                {
                    host.ShmSize = shm * 1024L * 1024;
                }

                if (lp.MaxSwap is { } swap)
                {
                    host.MemorySwap = memory + (swap * 1024L * 1024); // ECS: maxSwap MiB of swap on top of the memory limit
                }

                if (lp.Swappiness is { } swappiness)
                {
                    host.MemorySwappiness = swappiness;
                }

                if (lp.InitProcessEnabled == true)
                {
                    host.Init = true;
                }
            }

            return host;
        }

        /// <summary>
        /// Null when the image is present (or was pulled), else why not. <paramref name="terminated"/> (Terminate) cuts
        /// the inspect or the pull short: it then throws or returns early, and the caller checks the terminate flag.
        /// </summary>
        private async Task<string?> EnsureImageAsync(string image, CancellationToken terminated)
        {
            try
            {
                await driver._client.Images.InspectImageAsync(image, terminated).ConfigureAwait(false);
                return null;
            }
            catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                if (!driver._options.PullMissingImages)
                {
                    return $"image {image} is not present and pulling is disabled";
                }
            }

            var (repository, tag) = SplitImage(image);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(terminated);
            timeout.CancelAfter(driver._options.ImagePullTimeout);
            var progress = new PullProgress();
            var tooLong = $"pulling {image} took longer than {driver._options.ImagePullTimeout}";
            try
            {
                await driver._client.Images.CreateImageAsync(new ImagesCreateParameters { FromImage = repository, Tag = tag },
                    null, progress, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!terminated.IsCancellationRequested)
            {
                return tooLong;
            }
            catch (DockerApiException e)
            {
                return DaemonMessage(e);
            }

            // A cut-off progress stream can end without an error (the client disposes it).
            if (timeout.IsCancellationRequested && !terminated.IsCancellationRequested)
            {
                return tooLong;
            }

            // The daemon reports pull failures in the progress stream with status 200.
            return progress.Error;
        }

        private static (string Repository, string? Tag) SplitImage(string image)
        {
            if (image.Contains('@', StringComparison.Ordinal))
            {
                return (image, null);
            }

            var colon = image.LastIndexOf(':');
            return colon > image.LastIndexOf('/') ? (image[..colon], image[(colon + 1)..]) : (image, "latest");
        }

        /// <summary>
        /// Follows the container's logs (from its start) into the log stream until it has stopped. A follow ends when
        /// the container stops, or when the daemon drops it (a restart, a reset connection) while the container runs on:
        /// one that ended before the exit is known is followed again after a pause (doubling, as the exit wait's, while
        /// the daemon does not answer), unless the exit comes within the pause and neither the follow nor the exit wait
        /// had failed (then the stop ended it, with everything). Once the exit is known, a follow that had been cut is
        /// made once more to its end (a stopped container's follow returns what is left, then ends). Each new follow
        /// resumes where the last stopped, neither losing nor repeating a line (<see cref="DockerLogFollower"/>).
        /// <paramref name="cancellationToken"/> (the drain bound after the exit, or a release) ends it; the lines read
        /// so far are kept.
        /// </summary>
        private async Task FollowLogsAsync(string id, Task exitKnown, CancellationToken cancellationToken)
        {
            var options = driver._options;
            var follower = new DockerLogFollower(AppendLog);
            var buffer = new byte[16 * 1024];
            var delay = options.RetryDelay;
            while (true)
            {
                var afterExit = exitKnown.IsCompleted;
                var ended = await FollowOnceAsync(id, follower, buffer, cancellationToken).ConfigureAwait(false);
                if (ended is LogsEnd.Cancelled or LogsEnd.Unreadable || (ended == LogsEnd.Stopped && afterExit))
                {
                    break;
                }

                try
                {
                    if (afterExit)
                    {
                        await Task.Delay(delay, options.TimeProvider, cancellationToken).ConfigureAwait(false); // the follow after the exit failed
                    }
                    else
                    {
                        await exitKnown.WaitAsync(delay, options.TimeProvider, cancellationToken).ConfigureAwait(false);
                    }
                }
                catch (TimeoutException)
                {
                    // still running: followed again
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                if (!afterExit && ended == LogsEnd.Stopped && exitKnown.IsCompleted && !Volatile.Read(ref _waitFailed))
                {
                    break; // the container's stop ended the follow
                }

                delay = delay + delay > DockerHostDriverDefaults.MaxWaitRetryDelay ? DockerHostDriverDefaults.MaxWaitRetryDelay : delay + delay;
            }

            follower.Flush();
        }

        /// <summary>One follow, from where the last one stopped (<see cref="DockerLogFollower.Since"/>).</summary>
        private async Task<LogsEnd> FollowOnceAsync(string id, DockerLogFollower follower, byte[] buffer, CancellationToken cancellationToken)
        {
            follower.BeginStream();
            try
            {
                // Not demultiplexed by the client (tty: true): DockerLogFollower reads the frames, one per stamped message.
                using var stream = await Containers.GetContainerLogsAsync(id, true, new ContainerLogsParameters
                {
                    Follow = true,
                    ShowStdout = true,
                    ShowStderr = true,
                    Timestamps = true,
                    Since = follower.Since,
                }, cancellationToken).ConfigureAwait(false);
                while (true)
                {
                    var read = await stream.ReadOutputAsync(buffer, 0, buffer.Length, cancellationToken).ConfigureAwait(false);
                    if (read.EOF)
                    {
                        return LogsEnd.Stopped;
                    }

                    follower.Append(buffer.AsSpan(0, read.Count));
                }
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
                return LogsEnd.Cancelled;
            }
            catch (DockerApiException e) when ((int)e.StatusCode < 500)
            {
                return LogsEnd.Unreadable; // the container is gone, or its logging driver cannot be read: nothing to follow
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return LogsEnd.Failed; // dropped, refused, reset, a daemon error: followed again
            }
        }

        /// <summary>How a follow of the logs ended.</summary>
        private enum LogsEnd
        {
            /// <summary>The daemon ended it: the container stopped, or the daemon went away cleanly.</summary>
            Stopped,

            /// <summary>It failed: a dropped or refused connection, a daemon error.</summary>
            Failed,

            /// <summary>Nothing can be followed: the container is gone, or its logs cannot be read.</summary>
            Unreadable,

            /// <summary>The drain bound or a release ended it.</summary>
            Cancelled,
        }

        private void AppendLog(string line)
        {
            if (driver._options.InitProcessEnabled && _initExecFailure is null
                && line.StartsWith(InitFatalPrefix, StringComparison.Ordinal) && line.Contains(" exec ", StringComparison.Ordinal))
            {
                _initExecFailure = line;
            }

            driver._options.LogStore.Append(launch.LogStreamName, driver._options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds(), line);
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
            string? id;
            lock (_gate)
            {
                if (_exited || (_terminateRequested && grace >= _grace))
                {
                    return;
                }

                _terminateRequested = true;
                _grace = grace;
                id = _started ? _containerId : null;
            }

            if (id is not null)
            {
                _ = StopAsync(id, grace);
                return;
            }

            AttemptCancellation.CancelOffThread(_unstarted); // a secret resolution still waiting ends now; RunAsync sees the flag
        }

        /// <summary>
        /// Stops the container (SIGTERM, SIGKILL after the grace period). A stop that fails or hangs (each request is
        /// bounded by the grace period and <see cref="DockerHostDriverOptions.StopRequestMargin"/>) is tried again after a
        /// growing wait while the container has not exited; after <see cref="DockerHostDriverOptions.StopTries"/> failed
        /// stops the container is killed instead, at most <see cref="DockerHostDriverOptions.KillTries"/> times. Otherwise
        /// a terminated job would keep running while the engine waits for its exit. Never throws.
        /// </summary>
        private async Task StopAsync(string id, TimeSpan grace)
        {
            var options = driver._options;
            var seconds = (uint)Math.Ceiling(grace.TotalSeconds);
            var delay = options.RetryDelay;
            for (var tries = 1; ; tries++)
            {
                if (HasExited() || driver._disposing.IsCancellationRequested)
                {
                    return;
                }

                var kill = tries > options.StopTries;
                if (await TryStopAsync(id, kill, seconds).ConfigureAwait(false) || tries >= options.StopTries + options.KillTries)
                {
                    return;
                }

                await driver.DelayAsync(delay).ConfigureAwait(false);
                delay += delay;
            }
        }

        /// <summary>One stop (or kill) request; true when the container is stopped or gone.</summary>
        private async Task<bool> TryStopAsync(string id, bool kill, uint seconds)
        {
            var options = driver._options;
            try
            {
                // Docker.DotNet waits for a stop without a bound (the daemon answers once the container is down).
                using var bound = new CancellationTokenSource(
                    kill ? options.StopRequestMargin : TimeSpan.FromSeconds(seconds) + options.StopRequestMargin, options.TimeProvider);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(bound.Token, driver._disposing.Token);
                if (kill)
                {
                    await Containers.KillContainerAsync(id, new ContainerKillParameters(), linked.Token).ConfigureAwait(false);
                }
                else
                {
                    await Containers.StopContainerAsync(id, new ContainerStopParameters { WaitBeforeKillSeconds = seconds },
                        linked.Token).ConfigureAwait(false);
                }

                return true;
            }
            catch (DockerContainerNotFoundException)
            {
                return true; // already removed
            }
            catch (DockerApiException e) when (kill && e.StatusCode == HttpStatusCode.Conflict)
            {
                return true; // not running any more
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return false; // RunAsync reports the exit once the container is down
            }
        }

        private bool HasExited()
        {
            lock (_gate)
            {
                return _exited;
            }
        }

        /// <summary>
        /// A journaling engine that died between creating a container and journaling its STARTING record leaves a
        /// container no record names, while the job is RUNNABLE again: when the job is launched again (same job id and
        /// attempt number) that container is removed first, so the attempt never runs twice at once. Containers of
        /// attempts this driver runs, and another engine's (<see cref="EngineIdLabel"/>), are left alone. Best effort:
        /// a daemon error here does not stop the launch.
        /// </summary>
        private async Task RemoveLeftoversAsync()
        {
            try
            {
                var list = await Containers.ListContainersAsync(new ContainersListParameters
                {
                    All = true,
                    Filters = new Dictionary<string, IDictionary<string, bool>>
                    {
                        ["label"] = new Dictionary<string, bool>
                        {
                            [JobIdLabel + "=" + launch.JobId] = true,
                            [JobAttemptLabel + "=" + launch.Attempt.ToString(CultureInfo.InvariantCulture)] = true,
                        },
                    },
                }, _unstarted.Token).ConfigureAwait(false);
                foreach (var leftover in list)
                {
                    if (!OfEngine(leftover.Labels, launch.EngineId))
                    {
                        continue; // another engine's job of the same id: not ours to remove
                    }

                    if (leftover.Labels is { } labels && labels.TryGetValue(AttemptLabel, out var token)
                        && long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
                        && driver._attempts.ContainsKey(new AttemptToken(value)))
                    {
                        continue; // one of ours, running now
                    }

                    await Containers.RemoveContainerAsync(leftover.ID, new ContainerRemoveParameters { Force = true, RemoveVolumes = true },
                        _unstarted.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Best effort (a timeout, Terminate): a leftover still there is no live attempt's, so a sweep removes it.
                driver.SweepLater();
            }
        }

        /// <summary>
        /// Removes the attempt's container (forced: one still running is killed) or, after a create that got no answer,
        /// the containers carrying the attempt's label. A try that fails or hangs (bounded by
        /// <see cref="DockerHostDriverOptions.RemoveRequestTimeout"/>) is made again after a growing wait, at most
        /// <see cref="DockerHostDriverOptions.RemoveTries"/> times; once the driver is disposing, the try under way is the
        /// last. A removal that gives up is left to the sweep (<see cref="SweepAsync"/>). Never throws.
        /// </summary>
        private async Task RemoveContainerAsync()
        {
            string? id;
            bool unanswered;
            lock (_gate)
            {
                id = _containerId;
                unanswered = _createUnanswered;
            }

            if (id is null && !unanswered)
            {
                return;
            }

            var options = driver._options;
            var delay = options.RetryDelay;
            for (var tries = 1; ; tries++)
            {
                if (await TryRemoveAsync(id).ConfigureAwait(false))
                {
                    return;
                }

                if (tries >= options.RemoveTries || driver._closing.IsCancellationRequested)
                {
                    driver.RemovalGaveUp(id); // the sweep tries again later
                    return;
                }

                await driver.DelayAsync(delay).ConfigureAwait(false);
                delay += delay;
            }
        }

        /// <summary>One removal try: true when the container is gone.</summary>
        private async Task<bool> TryRemoveAsync(string? id)
        {
            var remove = new ContainerRemoveParameters { Force = true, RemoveVolumes = true };
            try
            {
                using var bound = new CancellationTokenSource(driver._options.RemoveRequestTimeout, driver._options.TimeProvider);
                if (id is not null)
                {
                    await Containers.RemoveContainerAsync(id, remove, bound.Token).ConfigureAwait(false);
                    return true;
                }

                // The attempt label is unique to this attempt. None found is no proof yet: the daemon may still be
                // completing the create, so the next try looks again.
                var list = await Containers.ListContainersAsync(new ContainersListParameters
                {
                    All = true,
                    Filters = new Dictionary<string, IDictionary<string, bool>>
                    {
                        ["label"] = new Dictionary<string, bool>
                        {
                            [AttemptLabel + "=" + launch.Token.Value.ToString(CultureInfo.InvariantCulture)] = true,
                            [JobIdLabel + "=" + launch.JobId] = true,
                        },
                    },
                }, bound.Token).ConfigureAwait(false);
                foreach (var found in list)
                {
                    try
                    {
                        await Containers.RemoveContainerAsync(found.ID, remove, bound.Token).ConfigureAwait(false);
                    }
                    catch (DockerContainerNotFoundException)
                    {
                        // removed meanwhile
                    }
                }

                return list.Count > 0;
            }
            catch (DockerContainerNotFoundException)
            {
                return true; // already removed
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return false; // a timeout, a daemon error or a daemon gone: tried again
            }
        }
    }

    /// <summary>Collects the error a pull reports in its progress stream.</summary>
    private sealed class PullProgress : IProgress<JSONMessage>
    {
        public string? Error { get; private set; }

        public void Report(JSONMessage value)
        {
            if (value.Error is not null || !string.IsNullOrEmpty(value.ErrorMessage))
            {
                Error ??= value.ErrorMessage ?? value.Error?.Message;
            }
        }
    }
}
