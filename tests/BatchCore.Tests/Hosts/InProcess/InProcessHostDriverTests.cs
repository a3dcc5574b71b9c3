using System.Globalization;
using BatchCore.Hosts;
using BatchCore.Hosts.InProcess;
using BatchCore.Logs;
using Microsoft.Extensions.Logging;

namespace BatchCore.Tests.Hosts.InProcess;

/// <summary>
/// The host-driver contract for <see cref="InProcessHostDriver"/>: a contract command's first word names a handler, the
/// rest are its arguments (<see cref="BatchJobContext.Command"/>). Stdout and stderr are both the context's log.
/// </summary>
public sealed class InProcessHostDriverTests : HostDriverContractTests
{
    private readonly InProcessHandlerRegistry _handlers = DummyHandlers.Create();

    protected override HostDriver CreateDriver(LogStore logs) =>
        new InProcessHostDriver(new InProcessHostDriverOptions { HandlerResolver = _handlers.Resolve, LogStore = logs });

    protected override string? LimitsUnavailableReason => "in-process handlers share this process: no memory or CPU limits";

    protected override IReadOnlyList<string> Command(DummyJob job, params string[] args) => [DummyHandlers.NameOf(job), .. args];

    protected override AttemptLaunch MakeLaunch(IReadOnlyList<string> command, IReadOnlyDictionary<string, string>? environment = null,
        double vcpus = 1, int memoryMiB = 512) =>
        base.MakeLaunch(command, environment, vcpus, memoryMiB) with { Handler = command[0], Command = command.Skip(1).ToArray() };

    [Fact]
    public async Task Exception_ExitsOneWithTheExceptionTypeAsReasonAndLogsIt()
    {
        _handlers.Add("throws", (_, _) => throw new InvalidOperationException("the widget broke"));
        var launch = MakeLaunch(["throws"]);

        var exit = await RunAsync(launch);

        Assert.Equal(1, exit.ExitCode);
        Assert.Equal("System.InvalidOperationException: the widget broke", exit.Reason);
        Assert.Equal(1, Events.StartedCount(launch.Token));
        Assert.Contains(LogLines(launch), l => l.StartsWith("System.InvalidOperationException: the widget broke", StringComparison.Ordinal));
    }

    /// <summary>A launch's activity is the handler's ambient activity while it runs, and the context's Activity.</summary>
    [Fact]
    public async Task LaunchActivity_IsTheHandlersAmbientActivity()
    {
        using var attempt = new System.Diagnostics.Activity("batchcore.attempt").Start();
        System.Diagnostics.Activity.Current = null;
        System.Diagnostics.Activity? seen = null, fromContext = null;
        _handlers.Add("sees-activity", (c, _) =>
        {
            seen = System.Diagnostics.Activity.Current;
            fromContext = c.Activity;
            return Task.FromResult(0);
        });
        var launch = MakeLaunch(["sees-activity"]) with { Activity = attempt };

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        Assert.Same(attempt, seen);
        Assert.Same(attempt, fromContext);
    }

    [Fact]
    public async Task AsyncException_IsReportedLikeASynchronousOne()
    {
        _handlers.Add("throws-later", async (_, _) =>
        {
            await Task.Yield();
            throw new FormatException(new string('x', 400));
        });
        var launch = MakeLaunch(["throws-later"]);

        var exit = await RunAsync(launch);

        Assert.Equal(1, exit.ExitCode);
        Assert.StartsWith("System.FormatException: xxx", exit.Reason, StringComparison.Ordinal);
        Assert.Equal(255, exit.Reason!.Length);
    }

    [Fact]
    public async Task VoidDelegate_ExitsZero()
    {
        _handlers.Add("void", async (BatchJobContext c, CancellationToken _) =>
        {
            await Task.Yield();
            c.Log.Write("partial ");
            c.Log.Write("line");
        });
        var launch = MakeLaunch(["void"]);

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        Assert.Equal(["partial line"], LogLines(launch));
    }

    /// <summary>1 MB through the context's log without a newline: events of at most <see cref="LogStore.MaxEventBytes"/>,
    /// every character kept, as the process driver cuts a long line.</summary>
    [Fact]
    public async Task LongLineWithoutNewline_BecomesEventsWithinTheCap_NothingLost()
    {
        _handlers.Add("long-line", (c, _) =>
        {
            var chunk = new string('a', 1000);
            for (var i = 0; i < 1000; i++)
            {
                c.Log.Write(chunk);
            }

            return Task.FromResult(0);
        });
        var launch = MakeLaunch(["long-line"]);

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        var lines = LogLines(launch);
        Assert.Equal([LogStore.MaxEventBytes, LogStore.MaxEventBytes, LogStore.MaxEventBytes, 213_646], lines.Select(l => l.Length));
        Assert.All(lines, l => Assert.DoesNotContain(l, c => c != 'a'));
    }

    [Fact]
    public async Task Logger_WritesLevelledEntriesIntoTheStream()
    {
        _handlers.Add("logs", (c, _) =>
        {
            c.Logger.LogInformation("rendered {Pages} pages", 3);
            c.Logger.LogWarning(new InvalidOperationException("late"), "slow page");
            return Task.FromResult(0);
        });
        var launch = MakeLaunch(["logs"]);

        var exit = await RunAsync(launch);

        Assert.Equal(0, exit.ExitCode);
        var lines = LogLines(launch);
        Assert.Equal("info: rendered 3 pages", lines[0]);
        Assert.StartsWith("warn: slow page" + Environment.NewLine + "System.InvalidOperationException: late", lines[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Logger_ForwardsToTheAppsLoggerWithTheJobInScope()
    {
        var sink = new RecordingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(sink).SetMinimumLevel(LogLevel.Information));
        var logs = new InMemoryLogStore();
        await using var driver = new InProcessHostDriver(new InProcessHostDriverOptions { HandlerResolver = _handlers.Resolve, LogStore = logs, LoggerFactory = factory });
        _handlers.Add("fwd", (c, _) =>
        {
            c.Logger.LogDebug("below the app's level");
            c.Logger.LogInformation("hello {Who}", "world");
            return Task.FromResult(0);
        });
        var launch = MakeLaunch(["fwd"]);
        var events = new AttemptEventRecorder();

        driver.Launch(launch, events);
        await events.WaitExitedAsync(launch.Token);

        var entry = Assert.Single(sink.Entries);
        Assert.Equal("BatchCore.Jobs." + launch.JobDefinitionName, entry.Category);
        Assert.Equal("hello world", entry.Message);
        Assert.Contains(("AwsBatchJobId", (object?)launch.JobId), entry.Scope);
        Assert.Contains(("AwsBatchJobAttempt", (object?)1), entry.Scope);
        // The stream keeps every level.
        Assert.Equal(["dbug: below the app's level", "info: hello world"], logs.GetLogEvents(launch.LogStreamName).Events.Select(e => e.Message));
    }

    private sealed class RecordingLoggerProvider : ILoggerProvider
    {
        public List<(string Category, string Message, List<(string, object?)> Scope)> Entries { get; } = [];

        public ILogger CreateLogger(string categoryName) => new Recorder(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Recorder(RecordingLoggerProvider owner, string category) : ILogger
        {
            private readonly Stack<object> _scopes = new();

            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull
            {
                _scopes.Push(state);
                return new Pop(_scopes);
            }

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var scope = _scopes.OfType<IEnumerable<KeyValuePair<string, object>>>().SelectMany(s => s).Select(kv => (kv.Key, (object?)kv.Value)).ToList();
                lock (owner.Entries)
                {
                    owner.Entries.Add((category, formatter(state, exception), scope));
                }
            }

            private sealed class Pop(Stack<object> scopes) : IDisposable
            {
                public void Dispose() => scopes.Pop();
            }
        }
    }

    [Fact]
    public async Task Context_CarriesTheLaunch()
    {
        BatchJobContext? seen = null;
        _handlers.Add("ctx", (c, _) => { seen = c; return Task.FromResult(0); });
        var launch = MakeLaunch(["ctx", "a"], new Dictionary<string, string> { ["AWS_BATCH_JOB_ARRAY_SIZE"] = "7" }) with
        {
            ArrayIndex = 3,
            JobName = "named",
            JobQueueName = "queue",
            Parameters = new Dictionary<string, string> { ["p"] = "v" },
        };

        await RunAsync(launch);

        Assert.NotNull(seen);
        Assert.Equal(launch.JobId, seen.JobId);
        Assert.Equal("named", seen.JobName);
        Assert.Equal("queue", seen.JobQueueName);
        Assert.Equal(1, seen.Attempt);
        Assert.Equal(3, seen.ArrayIndex);
        Assert.Equal(7, seen.ArraySize);
        Assert.Equal("v", seen.Parameters["p"]);
        Assert.Equal(["a"], seen.Command);
        Assert.Equal(launch.LogStreamName, seen.LogStreamName);
    }

    [Fact]
    public async Task NoHandlerName_CannotStart()
    {
        var launch = MakeLaunch(["x"]) with { Handler = null };

        var exit = await RunAsync(launch);

        Assert.Null(exit.ExitCode);
        Assert.StartsWith(InProcessHostDriver.CannotStartReasonPrefix, exit.Reason, StringComparison.Ordinal);
        Assert.Equal(0, Events.StartedCount(launch.Token));
    }

    [Fact]
    public async Task HandlerReturningAfterCancellation_ExitsWithItsCode()
    {
        _handlers.Add("polite", async (_, ct) =>
        {
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
            }

            return 42;
        });
        var launch = MakeLaunch(["polite"]);
        Driver.Launch(launch, Events);
        await Events.WaitStartedAsync(launch.Token);

        Driver.Terminate(launch.Token, TimeSpan.FromMinutes(5));
        var exit = await Events.WaitExitedAsync(launch.Token);

        Assert.Equal(42, exit.ExitCode);
        await AssertCleanAsync(launch);
    }

    [Fact]
    public async Task Dispose_CancelsRunningHandlers()
    {
        var launch = MakeLaunch(Command(DummyJob.Sleep, "300"));
        Driver.Launch(launch, Events);
        await Events.WaitStartedAsync(launch.Token);

        await Driver.DisposeAsync();

        Assert.Equal(143, (await Events.WaitExitedAsync(launch.Token)).ExitCode);
        Assert.Equal(0, ((InProcessHostDriver)Driver).RunningCount);
        await Driver.DisposeAsync(); // idempotent
    }

    [Fact]
    public async Task ExitedAttempts_AreForgotten_ALateTerminateDoesNothing_ARunningTokenIsRefusedTwice()
    {
        _handlers.Add("noop", (_, _) => Task.FromResult(0));
        var driver = (InProcessHostDriver)Driver;
        var done = Enumerable.Range(0, 200).Select(_ => MakeLaunch(["noop"])).ToArray();
        foreach (var launch in done)
        {
            Driver.Launch(launch, Events);
        }

        foreach (var launch in done)
        {
            Assert.Equal(0, (await Events.WaitExitedAsync(launch.Token)).ExitCode);
        }

        Assert.Equal(0, driver.RunningCount);
        foreach (var launch in done)
        {
            Driver.Terminate(launch.Token, TimeSpan.Zero); // exited: nothing happens, no second exit
        }

        var running = MakeLaunch(Command(DummyJob.Sleep, "300"));
        Driver.Launch(running, Events);
        await Events.WaitStartedAsync(running.Token);
        Assert.Equal(1, driver.RunningCount);
        Assert.Throws<InvalidOperationException>(() => Driver.Launch(running, Events));

        Driver.Terminate(running.Token, TimeSpan.FromMinutes(5));
        Assert.Equal(143, (await Events.WaitExitedAsync(running.Token)).ExitCode);
        Assert.All(done, l => Assert.Equal(1, Events.ExitedCount(l.Token)));
        Assert.Equal(0, driver.RunningCount);

        // The map forgets exited attempts lazily (every 64 launches, or when a token is found there): a token whose
        // attempt exited is not taken for a running one.
        var again = MakeLaunch(Command(DummyJob.Sleep, "300")) with { Token = done[^1].Token };
        Driver.Launch(again, Events);
        Assert.Equal(1, driver.RunningCount);
        Driver.Terminate(again.Token, TimeSpan.FromMinutes(5));
        await Task.Run(async () =>
        {
            while (Events.ExitedCount(again.Token) < 2)
            {
                await Task.Delay(10);
            }
        }).WaitAsync(AttemptEventRecorder.HangGuard, TestContext.Current.CancellationToken);
        Assert.Equal(0, driver.RunningCount);
    }

    [Fact]
    public void Options_AreValidated()
    {
        var e = Assert.Throws<BatchClientException>(() => new InProcessHostDriver(new InProcessHostDriverOptions
        {
            HandlerResolver = null!,
            LogStore = null!,
            DisposeGracePeriod = TimeSpan.FromSeconds(-1),
        }));

        Assert.Equal(3, e.Problems.Count);
    }

    [Fact]
    public void Registry_RejectsDuplicateNames()
    {
        _handlers.Add("dup", (_, _) => Task.FromResult(0));

        Assert.Throws<ArgumentException>(() => _handlers.Add("dup", (_, _) => Task.FromResult(0)));
        Assert.Contains("dup", _handlers.Names);
        Assert.Null(_handlers.Resolve("missing"));
    }
}

/// <summary>Handlers doing what <see cref="DummyJob"/> asks, the in-process counterpart of the dummy program.</summary>
internal static class DummyHandlers
{
    public static string NameOf(DummyJob job) => job switch
    {
        DummyJob.Sleep => "sleep",
        DummyJob.Exit => "exit",
        DummyJob.Env => "env",
        DummyJob.Echo => "echo",
        DummyJob.Alloc => "alloc",
        DummyJob.Spin => "spin",
        DummyJob.IgnoreSigterm => "ignore-sigterm",
        DummyJob.Stderr => "stderr",
        _ => throw new ArgumentOutOfRangeException(nameof(job)),
    };

    private static int Int(BatchJobContext c, int i) => int.Parse(c.Command[i], CultureInfo.InvariantCulture);

    public static InProcessHandlerRegistry Create() => new InProcessHandlerRegistry()
        .Add("sleep", async (c, ct) => { await Task.Delay(TimeSpan.FromSeconds(Int(c, 0)), ct); return 0; })
        .Add("exit", (c, _) => Task.FromResult(Int(c, 0)))
        .Add("env", (c, _) =>
        {
            foreach (var name in c.Command)
            {
                c.Log.WriteLine(name + "=" + c.Environment.GetValueOrDefault(name, ""));
            }

            return Task.FromResult(0);
        })
        .Add("echo", (c, _) =>
        {
            foreach (var arg in c.Command)
            {
                c.Log.WriteLine(arg);
            }

            return Task.FromResult(0);
        })
        .Add("stderr", (c, _) => { c.Log.WriteLine(string.Join(' ', c.Command)); return Task.FromResult(0); })
        .Add("ignore-sigterm", async (c, _) =>
        {
            c.Log.WriteLine("ready");
            await Task.Delay(TimeSpan.FromSeconds(Int(c, 0)), CancellationToken.None);
            return 0;
        });
}
