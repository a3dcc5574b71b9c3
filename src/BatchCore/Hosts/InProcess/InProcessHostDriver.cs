using System.Runtime.CompilerServices;
using BatchCore.Logs;
using BatchCore.Model;

namespace BatchCore.Hosts.InProcess;

/// <summary>
/// Runs attempts as .NET handlers (<see cref="IBatchJobHandler"/>) on the thread pool of this process (kind
/// <c>inprocess</c>). The handler is the one named by the job definition's <c>extensions.handler</c>; vCPUs, memory and
/// consumable resources are accounted by the engine against the host's declared capacity, as for any host.
/// </summary>
/// <remarks>
/// <para>How an attempt ends:</para>
/// <list type="bullet">
/// <item>the handler returns <c>n</c>: exit code <c>n</c>;</item>
/// <item>the handler throws: exit code 1 and <c>container.reason</c> = <c>Full.Exception.Type: message</c> (≤255
/// characters); the exception is also written to the log stream; the engine's <c>retryStrategy</c> applies;</item>
/// <item>the attempt is terminated (TerminateJob, timeout, engine stop): the handler's token fires; a handler that then
/// throws <see cref="OperationCanceledException"/> exits 143 (128 + SIGTERM), one that returns exits with its code;</item>
/// <item>a terminated handler still running after the grace period: exit 137 (128 + SIGKILL) with a reason saying it
/// was abandoned. A thread cannot be killed: the handler's task keeps running unobserved until it returns, so a handler
/// must honour its token;</item>
/// <item>no handler of that name: no start, exit code null, <c>CannotStartContainerError: no handler named X</c>.</item>
/// </list>
/// <para>Memory limits are not enforced (handlers share this process's heap).</para>
/// </remarks>
public sealed class InProcessHostDriver : HostDriver
{
    /// <summary>AWS's reason prefix when the container (here: the handler) cannot be started.</summary>
    public const string CannotStartReasonPrefix = "CannotStartContainerError: ";

    /// <summary>The reason of an attempt terminated before its handler was started.</summary>
    public const string TerminatedBeforeStartReason = "Terminated before the attempt started";

    private readonly InProcessHostDriverOptions _options;
    // Launch, Terminate and DisposeAsync come one at a time (the engine's loop calls them; HostDriver's contract), so the
    // map of attempts is a plain dictionary only those calls touch: no lock. A handler thread that reports an exit
    // pushes its attempt on a lock-free stack (one CAS, no allocation: the attempt is the node) and the next call
    // removes what the stack holds. (A ConcurrentDictionary written by both sides cost the loop ~10 % of its time in
    // lock contention at 10,000 no-op jobs.)
    private readonly Dictionary<long, Attempt> _attempts = new();
    private Attempt? _exited;
    private int _ended; // handler threads: attempts that reported their exit
    private int _disposed;
    // The caller of Launch counts launches on a cache line of its own: a counter both sides changed (one interlocked
    // increment per launch, one decrement per exit) moved its line between the cores twice per attempt.
    private PaddedCount _launched;

    /// <summary>Creates the driver.</summary>
    /// <exception cref="BatchClientException">The options break a rule (the message names it).</exception>
    public InProcessHostDriver(InProcessHostDriverOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options with { };
    }

    /// <summary>
    /// A factory for <see cref="BatchEngineOptions.DriverFactories"/> (key <c>inprocess</c>) that hands every host the
    /// same driver, created on first use.
    /// </summary>
    public static Func<HostSpec, HostDriver> SharedFactory(InProcessHostDriverOptions options)
    {
        var driver = new Lazy<InProcessHostDriver>(() => new InProcessHostDriver(options), LazyThreadSafetyMode.ExecutionAndPublication);
        return _ => driver.Value;
    }

    /// <inheritdoc />
    public override string Kind => InProcessHostDriverDefaults.Kind;

    /// <summary>Attempts launched and not yet reported as exited.</summary>
    public int RunningCount
    {
        get
        {
            var ended = Volatile.Read(ref _ended); // first: an attempt ends after its launch, so the difference is never negative
            return (int)(Volatile.Read(ref _launched.Value) - ended);
        }
    }

    internal LogStore LogStore => _options.LogStore;

    internal Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory => _options.LoggerFactory;

    internal TimeProvider TimeProvider => _options.TimeProvider;

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The token is already running on this driver, or the driver is disposed.</exception>
    public override void Launch(AttemptLaunch launch, IAttemptEventSink sink)
    {
        ArgumentNullException.ThrowIfNull(launch);
        ArgumentNullException.ThrowIfNull(sink);
        Start(new Attempt(this, launch, sink));
    }

    /// <summary>
    /// The engine's launch (its loop, like <see cref="Launch"/>): the attempt reads the job's immutable facts from
    /// <paramref name="top"/> instead of a copy of them in an <see cref="AttemptLaunch"/>.
    /// </summary>
    /// <remarks>A job with secrets gets the engine's <see cref="BatchEngineOptions.SecretResolver"/> as the last argument.</remarks>
    internal void LaunchFromEngine(Jobs.TopJob top, int arrayIndex, Placement.Host host, long token, int attempt, IAttemptEventSink sink,
        Func<Model.Secret, CancellationToken, ValueTask<string>>? secretResolver = null, System.Diagnostics.Activity? activity = null)
    {
        var a = new Attempt(this, top, arrayIndex, host, token, attempt, sink);
        if (secretResolver is not null)
        {
            a.UseSecretResolver(secretResolver);
        }

        if (activity is not null)
        {
            a.UseActivity(activity);
        }

        Start(a);
    }

    private void Start(Attempt attempt)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            ThrowDisposed();
        }

        // Exited attempts leave the map every 64 launches (and at every Terminate): reading the stack's head, a line the
        // handler threads write, on every launch cost a cache miss each.
        var launched = _launched.Value + 1;
        if ((launched & 63) == 0)
        {
            RemoveExited();
        }

        if (!_attempts.TryAdd(attempt.Token, attempt))
        {
            RemoveExited(); // an exited attempt of that token may still be there
            if (!_attempts.TryAdd(attempt.Token, attempt))
            {
                ThrowDuplicate(new AttemptToken(attempt.Token));
            }
        }

        Volatile.Write(ref _launched.Value, launched);

        // Not the engine's loop thread: the handler's synchronous part must not hold up scheduling. Queued on the calling
        // thread's local queue (the loop runs on a pool thread): idle workers steal from it as from the global queue, and
        // the loop's own thread runs what is left once the loop awaits, without a hand-off to a woken worker — 10,000
        // no-op handlers per array: 18.6 → 14.3 ms median in alternating runs. A handler that blocks the thread it runs
        // on holds up only itself: whatever else waits in that thread's local queue is stolen by the other workers.
        ThreadPool.UnsafeQueueUserWorkItem(attempt, preferLocal: true);
    }

    /// <inheritdoc />
    public override void Terminate(AttemptToken token, TimeSpan gracePeriod)
    {
        if (gracePeriod < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(gracePeriod), gracePeriod, "gracePeriod must not be negative");
        }

        RemoveExited();
        if (_attempts.TryGetValue(token.Value, out var attempt))
        {
            attempt.Terminate(gracePeriod);
        }
    }

    /// <summary>
    /// Cancels every running handler, waits up to <see cref="InProcessHostDriverOptions.DisposeGracePeriod"/> for them,
    /// and reports the rest as abandoned (137). Idempotent: the engine may dispose a shared driver once per host.
    /// </summary>
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        RemoveExited();
        var pending = new List<Task>();
        foreach (var (_, attempt) in _attempts)
        {
            attempt.Terminate(_options.DisposeGracePeriod);
            pending.Add(attempt.WhenReported());
        }

        await Task.WhenAll(pending).ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Forgets the attempts whose exit was reported since the last call.</summary>
    private void RemoveExited()
    {
        if (Volatile.Read(ref _exited) is null)
        {
            return;
        }

        for (var a = Interlocked.Exchange(ref _exited, null); a is not null; a = a.NextExited)
        {
            _attempts.Remove(a.Token);
        }
    }

    /// <summary>A handler thread: the attempt reported its exit (lock-free push; <see cref="RemoveExited"/> pops all).</summary>
    private void PushExited(Attempt attempt)
    {
        Interlocked.Increment(ref _ended);
        var head = Volatile.Read(ref _exited);
        while (true)
        {
            attempt.NextExited = head;
            var seen = Interlocked.CompareExchange(ref _exited, attempt, head);
            if (ReferenceEquals(seen, head))
            {
                return;
            }

            head = seen;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDisposed() => throw new ObjectDisposedException(nameof(InProcessHostDriver));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDuplicate(AttemptToken token) =>
        throw new InvalidOperationException($"attempt {token.Value} is already running on this driver");

    /// <summary>A count alone on its cache line (64 bytes either side).</summary>
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit, Size = 136)]
    private struct PaddedCount
    {
        [System.Runtime.InteropServices.FieldOffset(64)]
        public long Value;
    }

    /// <summary>Whole-reason text, capped at AWS's 255 characters.</summary>
    internal static string Cap(string reason) => StatusReasons.Cap(reason);

    /// <summary>
    /// One launched attempt. It is the handler's context, its own thread-pool work item and its continuation target, so
    /// a handler that completes synchronously costs this object and a token source.
    /// </summary>
    private sealed class Attempt : BatchJobContext, IThreadPoolWorkItem
    {
        private readonly IAttemptEventSink _sink;

        public Attempt(InProcessHostDriver driver, AttemptLaunch launch, IAttemptEventSink sink)
            : base(launch, driver) => _sink = sink;

        public Attempt(InProcessHostDriver driver, Jobs.TopJob top, int arrayIndex, Placement.Host host, long token, int attempt, IAttemptEventSink sink)
            : base(top, arrayIndex, host, token, attempt, driver) => _sink = sink;

        // _state: lock-free flags (one CAS each), so an attempt takes no lock and allocates no lock object.
        private const int HandlerStarted = 1;
        private const int TerminateRequested = 2;

        private readonly CancellationTokenSource _cts = new();
        private Task<int>? _task;
        private int _state;
        private int _exited;

        /// <summary>The next attempt on the driver's stack of exited attempts.</summary>
        public Attempt? NextExited;

        /// <summary>Engine launches of a job with secrets: the engine's resolver (in the extras, allocated only then).</summary>
        public void UseSecretResolver(Func<Model.Secret, CancellationToken, ValueTask<string>> resolver) => More.SecretResolver = resolver;

        /// <summary>Engine launches of a traced job: the attempt's activity (in the extras, allocated only then).</summary>
        public void UseActivity(System.Diagnostics.Activity activity) => More.Activity = activity;

        public long Token => TokenValue;

        /// <summary>Thread pool: resolve the handler, run it, report Started (with the exit when it completed synchronously).</summary>
        public void Execute()
        {
            if (Secrets.Count > 0 && MoreIfAny is not { SecretsResolved: true })
            {
                _ = ResolveSecretsThenExecuteAsync();
                return;
            }

            IBatchJobHandler? handler;
            var name = HandlerName;
            if (string.IsNullOrEmpty(name))
            {
                ReportNotStarted(new AttemptExit(null, CannotStartReasonPrefix + "the job definition names no handler (extensions.handler)"));
                return;
            }

            try
            {
                handler = Driver._options.HandlerResolver(name);
            }
            catch (Exception e)
            {
                ReportNotStarted(new AttemptExit(null, Cap(CannotStartReasonPrefix + "resolving handler " + name + " failed: " + e.GetType().FullName + ": " + e.Message)));
                return;
            }

            if (handler is null)
            {
                ReportNotStarted(new AttemptExit(null, Cap(CannotStartReasonPrefix + "no handler named " + name)));
                return;
            }

            // Either the handler starts (and a later Terminate arms the grace timer) or a Terminate came first.
            if (Interlocked.CompareExchange(ref _state, HandlerStarted, 0) != 0)
            {
                // Terminated between Launch and now: never started, like a container stopped before it ran.
                ReportNotStarted(new AttemptExit(null, TerminatedBeforeStartReason));
                return;
            }

            // Started is reported once the handler's synchronous part returned, with how long ago it began: a handler that
            // completed synchronously (a no-op, a cached answer) costs one event, STARTING → RUNNING → its exit.
            var clock = Driver._options.TimeProvider;
            var began = clock.GetTimestamp();
            Task<int> task;
            // The attempt's activity is the handler's ambient one (its continuations keep it): its spans join the trace.
            var activity = Activity;
            var ambient = activity is null ? null : System.Diagnostics.Activity.Current;
            if (activity is not null)
            {
                System.Diagnostics.Activity.Current = activity;
            }

            try
            {
                task = handler.RunAsync(this, _cts.Token) ?? throw new InvalidOperationException($"handler {name} returned a null task");
            }
            catch (Exception e)
            {
                task = Task.FromException<int>(e);
            }
            finally
            {
                if (activity is not null)
                {
                    System.Diagnostics.Activity.Current = ambient;
                }
            }

            _task = task;
            var ranMs = (long)clock.GetElapsedTime(began).TotalMilliseconds;
            if (task.IsCompleted)
            {
                Complete(ranMs);
            }
            else
            {
                _sink.StartedEarlier(new AttemptToken(Token), ranMs);
                task.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(OnHandlerCompleted);
            }
        }

        /// <summary>A job with secrets: they are resolved into its environment before the handler starts (AWS).</summary>
        private async Task ResolveSecretsThenExecuteAsync()
        {
            string? error;
            try
            {
                error = await ResolveSecretsAsync(_cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_cts.IsCancellationRequested)
            {
                error = TerminatedBeforeStartReason; // terminated while its secrets were being resolved
            }
            catch (Exception e)
            {
                error = CannotStartReasonPrefix + "resolving secrets failed: " + e.GetType().FullName + ": " + e.Message; // never lost
            }

            if (error is not null)
            {
                ReportNotStarted(new AttemptExit(null, Cap(error)));
                return;
            }

            More.SecretsResolved = true;
            Execute();
        }

        private void OnHandlerCompleted() => Complete(null);

        /// <param name="ranSynchronouslyMs">Set when the handler completed before returning: Started is reported with the exit.</param>
        private void Complete(long? ranSynchronouslyMs)
        {
            var task = _task!;
            FlushLog();
            AttemptExit exit;
            if (task.IsCompletedSuccessfully)
            {
                exit = new AttemptExit(task.Result);
            }
            else
            {
                var error = task.IsCanceled ? new TaskCanceledException(task) : task.Exception!.InnerExceptions.Count == 1
                    ? task.Exception.InnerException!
                    : task.Exception;
                var terminated = (Volatile.Read(ref _state) & TerminateRequested) != 0;
                if (terminated && error is OperationCanceledException)
                {
                    exit = new AttemptExit(InProcessHostDriverDefaults.TerminatedExitCode);
                }
                else
                {
                    WriteException(error);
                    exit = new AttemptExit(InProcessHostDriverDefaults.ExceptionExitCode, Cap(error.GetType().FullName + ": " + error.Message));
                }
            }

            Report(exit, ranSynchronouslyMs);
            _cts.Dispose();
        }

        private void WriteException(Exception error)
        {
            try
            {
                var log = Log;
                log.WriteLine(error.ToString());
                log.Flush();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // a failing log store must not lose the exit
            }
        }

        /// <summary>SIGTERM: fire the token (off this thread: callbacks are user code), then SIGKILL after the grace.</summary>
        public void Terminate(TimeSpan grace)
        {
            if (Volatile.Read(ref _exited) != 0)
            {
                return;
            }

            var before = Interlocked.Or(ref _state, TerminateRequested);
            if ((before & TerminateRequested) != 0)
            {
                Shorten(grace);
                return;
            }

            if ((before & HandlerStarted) != 0)
            {
                var more = More;
                more.GraceDeadlineTicks = Driver._options.TimeProvider.GetUtcNow().UtcTicks + grace.Ticks;
                var timer = Driver._options.TimeProvider.CreateTimer(static s => ((Attempt)s!).Abandon(), this, grace, Timeout.InfiniteTimeSpan);
                Interlocked.Exchange(ref more.GraceTimer, timer); // a full fence: Report reads it after setting _exited
                if (Volatile.Read(ref _exited) != 0)
                {
                    timer.Dispose(); // the exit was reported meanwhile (Report may not have seen the timer)
                }
            }

            AttemptCancellation.CancelOffThread(_cts);
        }

        /// <summary>
        /// A terminate of an attempt already being terminated, with a shorter grace (the engine's stop escalating after its
        /// timeout, or the driver's disposal): the handler is abandoned at the earlier of the two deadlines.
        /// </summary>
        private void Shorten(TimeSpan grace)
        {
            if (MoreIfAny is not { GraceTimer: { } timer } more)
            {
                return; // not started (it never will) or already ended
            }

            var deadline = Driver._options.TimeProvider.GetUtcNow().UtcTicks + grace.Ticks;
            if (deadline >= Volatile.Read(ref more.GraceDeadlineTicks))
            {
                return;
            }

            Volatile.Write(ref more.GraceDeadlineTicks, deadline);
            try
            {
                timer.Change(grace, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // the exit was reported meanwhile
            }
        }

        /// <summary>The grace period passed and the handler still runs: report the attempt killed and stop watching it.</summary>
        private void Abandon()
        {
            FlushLog();
            Report(new AttemptExit(InProcessHostDriverDefaults.AbandonedExitCode, Cap(
                "Handler " + HandlerName + " ignored cancellation for the grace period and was abandoned (an in-process handler cannot be killed)")));
        }

        private void ReportNotStarted(AttemptExit exit)
        {
            Report(exit);
            _cts.Dispose();
        }

        /// <summary>Reports the exit exactly once (with the start, when <paramref name="startedAgoMs"/> is set).</summary>
        private void Report(AttemptExit exit, long? startedAgoMs = null)
        {
            if (Interlocked.Exchange(ref _exited, 1) != 0)
            {
                return;
            }

            if (MoreIfAny is { } more)
            {
                Volatile.Read(ref more.GraceTimer)?.Dispose();
            }

            Driver.PushExited(this);
            if (startedAgoMs is { } ago)
            {
                _sink.Ran(new AttemptToken(Token), exit, ago);
            }
            else
            {
                _sink.Exited(new AttemptToken(Token), exit);
            }

            if (MoreIfAny is { } extras)
            {
                Volatile.Read(ref extras.Reported)?.TrySetResult();
            }
        }

        /// <summary>Completes once the exit was reported.</summary>
        public Task WhenReported()
        {
            if (Volatile.Read(ref _exited) != 0)
            {
                return Task.CompletedTask;
            }

            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var reported = Interlocked.CompareExchange(ref More.Reported, tcs, null) ?? tcs;
            if (Volatile.Read(ref _exited) != 0)
            {
                reported.TrySetResult(); // Report ran meanwhile and may have missed it
            }

            return reported.Task;
        }
    }
}
