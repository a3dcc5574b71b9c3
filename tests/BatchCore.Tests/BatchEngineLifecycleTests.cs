using System.Collections.Concurrent;
using BatchCore.Hosts;
using BatchCore.Hosts.InProcess;
using BatchCore.Hosts.Process;
using BatchCore.Journal;
using BatchCore.Logs;
using BatchCore.Model;

namespace BatchCore.Tests;

/// <summary>
/// The public API's lifecycle (found by an audit of concurrency and stopping): requests queued behind a stop, a second
/// stop or a dispose during the first, stop timeouts that mean "no limit", cancelled tokens, abandoned waits.
/// </summary>
public sealed class BatchEngineLifecycleTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    /// <summary>A driver whose first Launch blocks the loop until released; every attempt starts and runs until terminated.</summary>
    private sealed class GateDriver : HostDriver
    {
        public readonly ManualResetEventSlim Gate = new(false);
        public readonly SemaphoreSlim Entered = new(0);
        private int _launches;
        private readonly ConcurrentDictionary<long, IAttemptEventSink> _sinks = new();
        public override string Kind => "gate";

        public override void Launch(AttemptLaunch launch, IAttemptEventSink sink)
        {
            if (Interlocked.Increment(ref _launches) == 1)
            {
                Entered.Release();
                Gate.Wait(Guard);
            }

            _sinks[launch.Token.Value] = sink;
            sink.Started(launch.Token);
        }

        public override void Terminate(AttemptToken token, TimeSpan gracePeriod)
        {
            if (_sinks.TryRemove(token.Value, out var sink))
            {
                sink.Exited(token, new AttemptExit(143));
            }
        }
    }

    private static async Task SetUpAsync(BatchEngine engine, string driver, string handler = "h", IReadOnlyList<string>? command = null)
    {
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.UNMANAGED,
            Hosts = [new HostSpec { HostName = "h0", Driver = driver, Vcpus = 4, MemoryMiB = 4096 }],
        });
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
        });
        await engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "d",
            Type = JobDefinitionType.container,
            ContainerProperties = new ContainerProperties
            {
                Command = command ?? ["true"],
                ResourceRequirements = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, "128")],
            },
            Extensions = driver == "inprocess" ? new JobDefinitionExtensions { Handler = handler } : null,
        });
    }

    private static SubmitJobRequest Job(string name = "j") => new() { JobName = name, JobQueue = "q", JobDefinition = "d" };

    // ---- 1. lost acknowledged job ----------------------------------------------------------------------------------

    [Fact]
    public async Task SubmitsQueuedBehindAStop_AreRefused_AndEveryAcknowledgedOneIsJournaled()
    {
        var dir = Path.Combine(Path.GetTempPath(), "audit-journal-" + Guid.NewGuid().ToString("N"));
        var gate = new GateDriver();
        var options = new BatchEngineOptions
        {
            RequestQueueCapacity = 1,
            Journal = new JournalOptions { Durability = Durability.Journal, StateDirectory = dir },
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>> { ["gate"] = _ => gate },
        };
        var accepted = new ConcurrentBag<string>();
        var refused = new ConcurrentBag<string>();
        try
        {
            var engine = new BatchEngine(options);
            await SetUpAsync(engine, "gate");
            var first = engine.SubmitJobAsync(Job("first")); // acknowledged after the round's commit, i.e. after Launch
            Assert.True(await gate.Entered.WaitAsync(Guard)); // the loop is now inside Launch

            var submitters = Enumerable.Range(0, 20).Select(i => Task.Run(async () =>
            {
                try
                {
                    accepted.Add((await engine.SubmitJobAsync(Job("s" + i))).JobId);
                }
                catch (Exception e)
                {
                    refused.Add(e.GetType().Name);
                }
            })).ToArray();
            await Task.Delay(500); // all 20 are waiting for room (capacity 1)

            var stop = engine.StopAsync(TimeSpan.FromSeconds(5));
            gate.Gate.Set();
            await stop.WaitAsync(Guard);
            await Task.WhenAll(submitters).WaitAsync(Guard);
            output.WriteLine($"first: {await Record(first)}");
            output.WriteLine($"accepted {accepted.Count}, refused {refused.Count}: {string.Join(",", refused.Distinct())}");

            await using var again = new BatchEngine(options with { DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>> { ["gate"] = _ => { var d = new GateDriver(); d.Gate.Set(); return d; } } });
            var found = new List<JobDetail>();
            foreach (var chunk in accepted.Chunk(100))
            {
                found.AddRange(await again.DescribeJobsAsync(chunk));
            }

            output.WriteLine($"after restart: {found.Count} of {accepted.Count} acknowledged jobs exist");
            Assert.Equal(accepted.Count, found.Count);
        }
        finally
        {
            gate.Gate.Set();
            try { Directory.Delete(dir, true); } catch { }
        }
    }

    // ---- 2. concurrent StopAsync / DisposeAsync ---------------------------------------------------------------------

    [Fact]
    public async Task DisposeAsync_DuringStopAsync_ReturnsOnceTheEngineIsStopped()
    {
        var running = 0;
        var handlers = new InProcessHandlerRegistry();
        handlers.Add("h", async (c, ct) =>
        {
            Interlocked.Exchange(ref running, 1);
            await Task.Delay(3000, CancellationToken.None); // ignores cancellation for 3 s
            Interlocked.Exchange(ref running, 0);
            return 0;
        });
        var logs = new InMemoryLogStore();
        var engine = new BatchEngine(new BatchEngineOptions
        {
            LogStore = logs,
            TerminationGracePeriod = TimeSpan.FromSeconds(10),
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>
            {
                ["inprocess"] = InProcessHostDriver.SharedFactory(new InProcessHostDriverOptions { HandlerResolver = handlers.Resolve, LogStore = logs }),
            },
        });
        await SetUpAsync(engine, "inprocess");
        await engine.SubmitJobAsync(Job());
        using var g = new CancellationTokenSource(Guard);
        while (Volatile.Read(ref running) == 0) { await Task.Delay(10, g.Token); }

        var first = engine.StopAsync(TimeSpan.FromSeconds(10));
        await engine.DisposeAsync().AsTask().WaitAsync(Guard);
        var firstDone = first.IsCompleted;
        var handlerStillRunning = Volatile.Read(ref running) == 1;
        await first.WaitAsync(Guard);
        output.WriteLine($"when DisposeAsync returned: first StopAsync completed={firstDone}, handler still running={handlerStillRunning}");
        Assert.True(firstDone, "DisposeAsync returned while StopAsync was still terminating attempts and drivers were not disposed");
    }

    [Fact]
    public async Task SecondStopAsync_ReturnsOnlyOnceTheJobsProcessIsGone()
    {
        var pidFile = Path.Combine(Path.GetTempPath(), "audit-pid-" + Guid.NewGuid().ToString("N"));
        var logs = new InMemoryLogStore();
        var engine = new BatchEngine(new BatchEngineOptions
        {
            LogStore = logs,
            TerminationGracePeriod = TimeSpan.FromSeconds(5),
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>
            {
                ["process"] = _ => new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = logs }),
            },
        });
        try
        {
            await SetUpAsync(engine, "process", command: ["sh", "-c", $"trap '' TERM; echo $$ > {pidFile}; sleep 302"]);
            await engine.SubmitJobAsync(Job());
            using var g = new CancellationTokenSource(Guard);
            while (!File.Exists(pidFile) || File.ReadAllText(pidFile).Trim().Length == 0) { await Task.Delay(20, g.Token); }
            var pid = int.Parse(File.ReadAllText(pidFile).Trim());

            var first = engine.StopAsync(TimeSpan.FromSeconds(10));
            await engine.StopAsync(TimeSpan.FromSeconds(10)).WaitAsync(Guard); // e.g. the hosted service, or DisposeAsync
            var aliveWhenSecondReturned = Alive(pid);
            await first.WaitAsync(Guard);
            output.WriteLine($"second StopAsync returned with the job's process {pid} alive={aliveWhenSecondReturned}; alive after the first returned={Alive(pid)}");
            Assert.False(aliveWhenSecondReturned);
        }
        finally
        {
            foreach (var n in Directory.GetDirectories("/proc").Select(p => Path.GetFileName(p)).Where(n => int.TryParse(n, out _)))
            {
                try { if (File.ReadAllText($"/proc/{n}/cmdline").Contains("sleep\0302")) { System.Diagnostics.Process.GetProcessById(int.Parse(n)).Kill(); } } catch { }
            }

            File.Delete(pidFile);
        }
    }

    // ---- 3. StopAsync(Timeout.InfiniteTimeSpan) / TimeSpan.MaxValue ---------------------------------------------------

    [Theory]
    [InlineData(-1L)] // Timeout.InfiniteTimeSpan
    [InlineData(long.MaxValue)] // TimeSpan.MaxValue
    public async Task StopAsync_WithNoTimeLimit_WaitsForTheAttemptsToEnd(long ticks)
    {
        var timeout = ticks == -1 ? Timeout.InfiniteTimeSpan : TimeSpan.MaxValue;
        var cleanedUp = 0;
        var started = 0;
        var errors = new ConcurrentQueue<Exception>();
        var handlers = new InProcessHandlerRegistry();
        handlers.Add("h", async (c, ct) =>
        {
            Interlocked.Exchange(ref started, 1);
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                await Task.Delay(500, CancellationToken.None); // a clean shutdown that takes half a second
                Interlocked.Exchange(ref cleanedUp, 1);
                return 0;
            }

            return 1;
        });
        var logs = new InMemoryLogStore();
        var engine = new BatchEngine(new BatchEngineOptions
        {
            LogStore = logs,
            TerminationGracePeriod = TimeSpan.FromSeconds(10),
            UnexpectedError = errors.Enqueue,
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>
            {
                ["inprocess"] = InProcessHostDriver.SharedFactory(new InProcessHostDriverOptions { HandlerResolver = handlers.Resolve, LogStore = logs }),
            },
        });
        await SetUpAsync(engine, "inprocess");
        var changes = new ConcurrentQueue<JobStateChange>();
        var watch = Task.Run(async () => { await foreach (var ch in engine.WatchJobsAsync()) { changes.Enqueue(ch); } });
        await engine.SubmitJobAsync(Job());
        using var g = new CancellationTokenSource(Guard);
        while (Volatile.Read(ref started) == 0) { await Task.Delay(10, g.Token); }

        await engine.StopAsync(timeout).WaitAsync(Guard);
        await watch.WaitAsync(Guard);
        var last = changes.Last();
        output.WriteLine($"timeout {timeout}: last change {last.Status} {last.StatusReason}; handler cleaned up={cleanedUp}; unexpected errors: {string.Join(" | ", errors.Select(e => e.GetType().Name + ": " + e.Message))}");
        Assert.Empty(errors);
        Assert.Equal(1, Volatile.Read(ref cleanedUp));
    }

    // ---- 4. cancellation tokens ----------------------------------------------------------------------------------------

    [Fact]
    public async Task ARequestWhoseTokenIsAlreadyCancelled_IsNotApplied()
    {
        await using var engine = TestEngine.Create();
        await SetUpAsync(engine, "simulated");
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        string? outcome;
        try
        {
            var r = await engine.SubmitJobAsync(Job(), cancelled.Token);
            outcome = "submitted " + r.JobId;
        }
        catch (OperationCanceledException)
        {
            outcome = "cancelled";
        }

        var listed = await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", Filters = [new() { Name = "JOB_NAME", Values = ["*"] }] });
        output.WriteLine($"SubmitJobAsync with a cancelled token: {outcome}; jobs in queue: {listed.JobSummaryList.Count}");
        Assert.Equal("cancelled", outcome);
    }

    [Fact]
    public async Task CancelledWaitsForAJob_LeaveNoWaiterBehind()
    {
        var gate = new GateDriver();
        gate.Gate.Set();
        await using var engine = new BatchEngine(new BatchEngineOptions
        {
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>> { ["gate"] = _ => gate },
        });
        await SetUpAsync(engine, "gate");
        var id = (await engine.SubmitJobAsync(Job())).JobId;
        for (var i = 0; i < 100; i++)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(5));
            try { await engine.WaitForJobAsync(id, cts.Token); } catch (OperationCanceledException) { }
        }

        var count = await engine.Run(c => c.WaiterCount(id), CancellationToken.None);
        output.WriteLine($"waiters kept for the job after 100 cancelled waits: {count}");
        Assert.Equal(0, count);
    }

    private static bool Alive(int pid) => File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Split(' ')[2].Equals("Z", StringComparison.Ordinal);

    private static async Task<string> Record(Task t)
    {
        try { await t.WaitAsync(Guard); return "ok"; } catch (Exception e) { return e.GetType().Name; }
    }
}
