using System.Globalization;
using BatchCore.Hosts;
using BatchCore.Hosts.InProcess;
using BatchCore.Logs;
using BatchCore.Model;
using Microsoft.Extensions.Logging;

namespace BatchCore.Tests.Hosts.InProcess;

/// <summary>
/// In-process handlers through the whole engine, on the real clock (handlers run on the thread pool). Awaits carry hang
/// guards only; nothing asserts on timing.
/// </summary>
public sealed class InProcessEngineTests : IAsyncLifetime
{
    private static readonly TimeSpan HangGuard = AttemptEventRecorder.HangGuard;
    private readonly InProcessHandlerRegistry _handlers = new();
    private readonly InMemoryLogStore _logs = new();
    private BatchEngine _engine = null!;

    public ValueTask InitializeAsync()
    {
        var driverOptions = new InProcessHostDriverOptions { HandlerResolver = _handlers.Resolve, LogStore = _logs };
        _engine = new BatchEngine(new BatchEngineOptions
        {
            AllowShortTimeouts = true,
            LogStore = _logs,
            TerminationGracePeriod = TimeSpan.FromSeconds(30),
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>
            {
                [InProcessHostDriverDefaults.Kind] = InProcessHostDriver.SharedFactory(driverOptions),
            },
        });
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync() => await _engine.StopAsync(TimeSpan.FromSeconds(30));

    private async Task SetUpAsync(double hostVcpus = 2, int hosts = 1, JobQueueExtensions? queue = null, int hostMemoryMiB = 4096, int hostGpus = 0)
    {
        await _engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "local",
            Type = CEType.UNMANAGED,
            Hosts = Enumerable.Range(0, hosts)
                .Select(i => new HostSpec { HostName = "h" + i, Driver = InProcessHostDriverDefaults.Kind, Vcpus = hostVcpus, MemoryMiB = hostMemoryMiB, Gpus = hostGpus })
                .ToList(),
        });
        await _engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "q",
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "local" }],
            Extensions = queue,
        });
    }

    private Task Define(string name, string handler, RetryStrategy? retry = null, int? timeoutSeconds = null,
        ConsumableResourceProperties? consumables = null, IReadOnlyList<string>? command = null) =>
        _engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = name,
            Type = JobDefinitionType.container,
            ContainerProperties = new ContainerProperties
            {
                Command = command,
                ResourceRequirements = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, "128")],
            },
            RetryStrategy = retry,
            Timeout = timeoutSeconds is null ? null : new JobTimeout { AttemptDurationSeconds = timeoutSeconds },
            ConsumableResourceProperties = consumables,
            Extensions = new JobDefinitionExtensions { Handler = handler },
        });

    private async Task<JobDetail> RunAsync(string definition, IReadOnlyDictionary<string, string>? parameters = null)
    {
        var submitted = await _engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = definition, Parameters = parameters });
        return await WaitAsync(submitted.JobId);
    }

    private async Task<JobDetail> WaitAsync(string jobId)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        return await _engine.WaitForJobAsync(jobId, guard.Token);
    }

    [Fact]
    public async Task Handler_ReturningZero_Succeeds_AndSeesItsParametersAndLog()
    {
        await SetUpAsync();
        _handlers.Add("greet", (c, _) =>
        {
            c.Log.WriteLine("hello " + c.Parameters["who"] + " from attempt " + c.Attempt.ToString(CultureInfo.InvariantCulture));
            return Task.FromResult(c.Environment["AWS_BATCH_JQ_NAME"] == "q" ? 0 : 9);
        });
        await Define("greet", "greet", command: ["Ref::who"]);

        var job = await RunAsync("greet", new Dictionary<string, string> { ["who"] = "world" });

        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        Assert.Equal(0, job.Container!.ExitCode);
        var events = _engine.GetLogEvents(job.Container.LogStreamName!).Events;
        Assert.Equal(["hello world from attempt 1"], events.Select(e => e.Message));
    }

    [Fact]
    public async Task Handler_SeesEveryFactOfItsJobAndAttempt()
    {
        // The engine hands the driver no launch record: the context reads the job's immutable facts itself.
        await SetUpAsync();
        BatchJobContext? seen = null;
        Dictionary<string, string>? env = null;
        _handlers.Add("facts", (c, _) =>
        {
            seen = c;
            env = new Dictionary<string, string>(c.Environment);
            c.Logger.LogInformation("from the logger");
            return Task.FromResult(0);
        });
        await Define("facts-def", "facts", command: ["say", "Ref::who"]);

        var job = await RunAsync("facts-def", new Dictionary<string, string> { ["who"] = "world" });

        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        Assert.NotNull(seen);
        Assert.Equal(job.JobId, seen.JobId);
        Assert.Equal("j", seen.JobName);
        Assert.Equal("q", seen.JobQueueName);
        Assert.Equal("facts-def", seen.JobDefinitionName);
        Assert.Equal(1, seen.Attempt);
        Assert.Null(seen.ArrayIndex);
        Assert.Null(seen.ArraySize);
        Assert.Equal(["say", "world"], seen.Command);
        Assert.Equal("world", seen.Parameters["who"]);
        Assert.Equal(1.0, seen.Vcpus);
        Assert.Equal(128, seen.MemoryMiB);
        Assert.Equal("h0", seen.HostName);
        Assert.Equal(job.Container!.LogStreamName, seen.LogStreamName);
        Assert.Equal(job.JobId, env!["AWS_BATCH_JOB_ID"]);
        Assert.Equal("1", env["AWS_BATCH_JOB_ATTEMPT"]);
        Assert.Equal("local", env["AWS_BATCH_CE_NAME"]);
        Assert.Equal("q", env["AWS_BATCH_JQ_NAME"]);
        Assert.False(env.ContainsKey("AWS_BATCH_JOB_ARRAY_INDEX"));
        Assert.Equal(["info: from the logger"], _logs.GetLogEvents(seen.LogStreamName).Events.Select(e => e.Message));
    }

    [Fact]
    public async Task ArrayChildren_SeeTheirLazilyBuiltIdStreamAndEnvironment_AndSilentOnesGetNoLogStream()
    {
        await SetUpAsync();
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<int, (string Id, string Stream, Dictionary<string, string> Env, int? Size)>();
        _handlers.Add("facts", (c, _) =>
        {
            var index = c.ArrayIndex!.Value;
            if (index == 0)
            {
                // Only child 0 reads its facts and logs; the others never touch them.
                seen[index] = (c.JobId, c.LogStreamName, new Dictionary<string, string>(c.Environment), c.ArraySize);
                c.Log.WriteLine("child 0");
            }

            return Task.FromResult(0);
        });
        await Define("facts", "facts");

        var submitted = await _engine.SubmitJobAsync(new SubmitJobRequest { JobName = "a", JobQueue = "q", JobDefinition = "facts", ArrayProperties = new ArrayProperties { Size = 3 } });
        var parent = await WaitAsync(submitted.JobId);

        Assert.Equal(JobStatus.SUCCEEDED, parent.Status);
        var (id, stream, env, size) = seen[0];
        var child0 = await _engine.DescribeAsync(submitted.JobId + ":0");
        Assert.Equal(submitted.JobId + ":0", id);
        Assert.Equal(child0.Container!.LogStreamName, stream);
        Assert.Equal(3, size);
        Assert.Equal(submitted.JobId + ":0", env["AWS_BATCH_JOB_ID"]);
        Assert.Equal("1", env["AWS_BATCH_JOB_ATTEMPT"]);
        Assert.Equal("0", env["AWS_BATCH_JOB_ARRAY_INDEX"]);
        Assert.Equal("3", env["AWS_BATCH_JOB_ARRAY_SIZE"]);
        Assert.Equal("local", env["AWS_BATCH_CE_NAME"]);
        Assert.Equal("q", env["AWS_BATCH_JQ_NAME"]);
        Assert.Equal(["child 0"], _logs.GetLogEvents(stream).Events.Select(e => e.Message));

        // Every child went through every state and has a start and a stop; silent children have no log stream.
        for (var i = 0; i < 3; i++)
        {
            var child = await _engine.DescribeAsync(submitted.JobId + ":" + i.ToString(CultureInfo.InvariantCulture));
            Assert.Equal(JobStatus.SUCCEEDED, child.Status);
            var attempt = Assert.Single(child.Attempts);
            Assert.NotNull(attempt.StartedAt);
            Assert.True(attempt.StoppedAt >= attempt.StartedAt);
            Assert.True(child.StartedAt >= child.CreatedAt);
            Assert.Equal(i == 0, _logs.StreamExists(child.Container!.LogStreamName!));
        }
    }

    [Theory]
    [InlineData("sync")]
    [InlineData("async")]
    public async Task Handler_CompletingSynchronouslyOrNot_GoesThroughEveryState_WithStartBeforeStop(string kind)
    {
        // A synchronous handler's start and exit come as one driver report: the engine must still apply both.
        await SetUpAsync();
        _handlers.Add("sync", static (_, _) => Task.FromResult(0));
        _handlers.Add("async", static async (_, ct) =>
        {
            await Task.Yield();
            return 0;
        });
        await Define(kind, kind);
        using var cts = new CancellationTokenSource(HangGuard);
        var enumerator = _engine.WatchJobsAsync(ct: cts.Token).GetAsyncEnumerator(cts.Token);
        var first = enumerator.MoveNextAsync(); // subscribes ahead of the submit below

        var submitted = await _engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = kind });
        var job = await WaitAsync(submitted.JobId);

        var seen = new List<string>();
        Assert.True(await first);
        seen.Add(enumerator.Current.Status);
        while (seen[^1] != JobStatus.SUCCEEDED && await enumerator.MoveNextAsync())
        {
            seen.Add(enumerator.Current.Status);
        }

        Assert.Equal([JobStatus.SUBMITTED, JobStatus.RUNNABLE, JobStatus.STARTING, JobStatus.RUNNING, JobStatus.SUCCEEDED], seen);
        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        var attempt = Assert.Single(job.Attempts);
        Assert.NotNull(attempt.StartedAt);
        Assert.True(job.CreatedAt <= attempt.StartedAt);
        Assert.True(attempt.StartedAt <= attempt.StoppedAt);
        Assert.Equal(attempt.StartedAt, job.StartedAt);
        await cts.CancelAsync();
    }

    [Fact]
    public async Task Handler_BusyInItsSynchronousPart_IsRunningFromWhenItBegan_NotFromItsReport()
    {
        // The driver reports a synchronous handler's start once it returned, with how long it ran: startedAt is set
        // back by that, so the attempt's run time includes the synchronous part (a lower bound: it slept 300 ms).
        await SetUpAsync();
        _handlers.Add("busy", static (_, _) =>
        {
            Thread.Sleep(300);
            return Task.FromResult(0);
        });
        await Define("busy", "busy");

        var job = await RunAsync("busy");

        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        var attempt = Assert.Single(job.Attempts);
        Assert.True(attempt.StoppedAt - attempt.StartedAt >= 250, $"ran {attempt.StoppedAt - attempt.StartedAt} ms");
        Assert.True(job.CreatedAt <= attempt.StartedAt);
    }

    [Fact]
    public async Task Handler_Throwing_FailsWithTheExceptionType_AndIsRetriedByRetryStrategy()
    {
        await SetUpAsync();
        var calls = 0;
        _handlers.Add("flaky", (_, _) =>
        {
            Interlocked.Increment(ref calls);
            throw new TimeoutException("backend did not answer");
        });
        await Define("flaky", "flaky", retry: new RetryStrategy { Attempts = 3 });

        var job = await RunAsync("flaky");

        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Equal(3, calls);
        Assert.Equal(3, job.Attempts.Count);
        Assert.All(job.Attempts, a =>
        {
            Assert.Equal(1, a.Container!.ExitCode);
            Assert.Equal("System.TimeoutException: backend did not answer", a.Container.Reason);
        });
        Assert.Equal("System.TimeoutException: backend did not answer", job.Container!.Reason);
    }

    [Fact]
    public async Task Handler_Throwing_OnlyOnTheFirstAttempt_SucceedsOnTheRetry()
    {
        await SetUpAsync();
        _handlers.Add("once", (c, _) => c.Attempt == 1 ? throw new InvalidOperationException("first") : Task.FromResult(0));
        await Define("once", "once", retry: new RetryStrategy
        {
            Attempts = 2,
            EvaluateOnExit = [new EvaluateOnExit { OnReason = "System.InvalidOperationException*", Action = RetryAction.RETRY }],
        });

        var job = await RunAsync("once");

        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        Assert.Equal(2, job.Attempts.Count);
    }

    [Fact]
    public async Task UnknownHandler_FailsWithCannotStartContainerError()
    {
        await SetUpAsync();
        await Define("ghost", "nobody-registered-this");

        var job = await RunAsync("ghost");

        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Null(job.Attempts.Single().Container!.ExitCode);
        Assert.Equal("CannotStartContainerError: no handler named nobody-registered-this", job.Attempts.Single().Container!.Reason);
    }

    [Fact]
    public async Task Timeout_FiresTheToken_AndFailsTheJob()
    {
        await SetUpAsync();
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _handlers.Add("slow", async (_, ct) =>
        {
            using var reg = ct.Register(() => fired.TrySetResult());
            await Task.Delay(Timeout.Infinite, ct);
            return 0;
        });
        await Define("slow", "slow", timeoutSeconds: 1);

        var job = await RunAsync("slow");

        await fired.Task.WaitAsync(HangGuard);
        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Equal(StatusReasons.TimeoutExceeded, job.StatusReason);
        Assert.Equal(143, job.Attempts.Single().Container!.ExitCode);
    }

    [Fact]
    public async Task TerminateJob_FiresTheToken_AndFailsTheJob()
    {
        await SetUpAsync();
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _handlers.Add("forever", async (_, ct) =>
        {
            using var reg = ct.Register(() => fired.TrySetResult());
            running.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
            return 0;
        });
        await Define("forever", "forever");
        var submitted = await _engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "forever" });
        await running.Task.WaitAsync(HangGuard);

        await _engine.TerminateJobAsync(submitted.JobId, "operator said stop");
        var job = await WaitAsync(submitted.JobId);

        await fired.Task.WaitAsync(HangGuard);
        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Equal("operator said stop", job.StatusReason);
        Assert.True(job.IsTerminated);
    }

    /// <summary>
    /// A traced attempt's activity is the handler's ambient activity: what the handler traces (an HTTP call, a query) is
    /// a child of the attempt, in the attempt's trace.
    /// </summary>
    [Fact]
    public async Task Handler_RunsUnderTheAttemptsActivity_SoItsSpansJoinTheAttemptsTrace()
    {
        using var handlerSource = new System.Diagnostics.ActivitySource("handler-test");
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = s => s.Name is "BatchCore" or "handler-test",
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) =>
                System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        await SetUpAsync();
        System.Diagnostics.Activity? ambient = null, attempt = null, child = null;
        _handlers.Add("traced", async (context, _) =>
        {
            ambient = System.Diagnostics.Activity.Current;
            attempt = context.Activity;
            await Task.Yield(); // the ambient activity survives the handler's awaits
            using var span = handlerSource.StartActivity("query");
            child = span;
            return 0;
        });
        await Define("traced", "traced");

        var job = await RunAsync("traced");

        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        Assert.NotNull(attempt);
        Assert.Equal("batchcore.attempt", attempt.OperationName);
        Assert.Equal(job.JobId, attempt.GetTagItem("batchcore.job.id"));
        Assert.Same(attempt, ambient);
        Assert.Equal((attempt.TraceId, attempt.SpanId), (child!.TraceId, child.ParentSpanId));
    }

    /// <summary>
    /// One queue over an in-process and a process environment: handler jobs run only on the in-process host (waiting for
    /// it when it is full, with the reason) and command jobs only on the process host.
    /// </summary>
    [Fact]
    public async Task MixedQueue_HandlerJobsRunOnInProcessHosts_CommandJobsOnProcessHosts()
    {
        var handlers = new InProcessHandlerRegistry();
        var release = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var ran = new System.Collections.Concurrent.ConcurrentBag<string>();
        handlers.Add("hold", async (c, _) =>
        {
            ran.Add(c.HostName);
            return await release.Task;
        });
        await using var process = new BatchCore.Hosts.Process.ProcessHostDriver(new BatchCore.Hosts.Process.ProcessHostDriverOptions { LogStore = _logs });
        await using var engine = new BatchEngine(new BatchEngineOptions
        {
            LogStore = _logs,
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>
            {
                [InProcessHostDriverDefaults.Kind] = InProcessHostDriver.SharedFactory(new InProcessHostDriverOptions { HandlerResolver = handlers.Resolve, LogStore = _logs }),
                ["process"] = _ => process,
            },
        });
        foreach (var (ce, driver) in new[] { ("handlers", InProcessHostDriverDefaults.Kind), ("shell", "process") })
        {
            await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
            {
                ComputeEnvironmentName = ce,
                Type = CEType.UNMANAGED,
                Hosts = [new HostSpec { HostName = ce + "-1", Driver = driver, Vcpus = 1, MemoryMiB = 2048 }],
            });
        }

        await engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "mixed", Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "handlers" }, new() { Order = 2, ComputeEnvironment = "shell" }],
        });
        ResourceRequirement[] oneVcpu = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, "128")];
        await engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "hold", Type = JobDefinitionType.container,
            ContainerProperties = new ContainerProperties { ResourceRequirements = oneVcpu },
            Extensions = new JobDefinitionExtensions { Handler = "hold" },
        });
        await engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "shell", Type = JobDefinitionType.container,
            ContainerProperties = new ContainerProperties { Command = ["true"], ResourceRequirements = oneVcpu },
        });
        using var guard = new CancellationTokenSource(HangGuard);

        // The handlers environment is first in order and free, but runs no commands: the shell job runs on the shell host.
        var shell = await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "s", JobQueue = "mixed", JobDefinition = "shell" }, guard.Token);
        var shellDone = await engine.WaitForJobAsync(shell.JobId, guard.Token);
        var first = await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "h1", JobQueue = "mixed", JobDefinition = "hold" }, guard.Token);
        while (ran.IsEmpty)
        {
            await Task.Delay(5, guard.Token);
        }

        // The shell host is free, but not for a handler job: h2 waits for the handlers host.
        var second = await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "h2", JobQueue = "mixed", JobDefinition = "hold" }, guard.Token);
        JobDetail waiting;
        while ((waiting = (await engine.DescribeJobsAsync([second.JobId], guard.Token)).Single()).StatusReason is null)
        {
            await Task.Delay(5, guard.Token);
        }

        release.TrySetResult(0);
        var done = await Task.WhenAll(engine.WaitForJobAsync(first.JobId, guard.Token), engine.WaitForJobAsync(second.JobId, guard.Token));

        Assert.Equal(JobStatus.SUCCEEDED, shellDone.Status);
        Assert.Equal("shell", shellDone.Attempts.Single().Container!.ContainerInstanceArn!.Split('/')[^2]);
        Assert.Equal(JobStatus.RUNNABLE, waiting.Status);
        Assert.Contains("1 run no in-process handlers", waiting.StatusReason, StringComparison.Ordinal);
        Assert.All(done, d => Assert.Equal(JobStatus.SUCCEEDED, d.Status));
        Assert.Equal(["handlers-1", "handlers-1"], ran);
    }

    /// <summary>
    /// StopAsync keeps to its timeout: a handler that ignores its token, under grace periods far longer than the
    /// timeout (the engine's and the driver's disposal), is abandoned (137) once the timeout has passed.
    /// </summary>
    [Fact]
    public async Task Stop_HandlerIgnoringItsToken_IsAbandonedOnceTheStopTimeoutPasses_NotAfterTheGracePeriod()
    {
        var handlers = new InProcessHandlerRegistry();
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        handlers.Add("stubborn", (_, _) =>
        {
            running.TrySetResult();
            return release.Task; // ignores its token
        });
        var engine = new BatchEngine(new BatchEngineOptions
        {
            LogStore = _logs,
            TerminationGracePeriod = TimeSpan.FromHours(1),
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>
            {
                [InProcessHostDriverDefaults.Kind] = InProcessHostDriver.SharedFactory(new InProcessHostDriverOptions
                {
                    HandlerResolver = handlers.Resolve, LogStore = _logs, DisposeGracePeriod = TimeSpan.FromHours(1),
                }),
            },
        });
        try
        {
            await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
            {
                ComputeEnvironmentName = "local",
                Type = CEType.UNMANAGED,
                Hosts = [new HostSpec { HostName = "h0", Driver = InProcessHostDriverDefaults.Kind, Vcpus = 2, MemoryMiB = 4096 }],
            });
            await engine.CreateJobQueueAsync(new CreateJobQueueRequest
            {
                JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "local" }],
            });
            await engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
            {
                JobDefinitionName = "stubborn",
                Type = JobDefinitionType.container,
                ContainerProperties = new ContainerProperties { ResourceRequirements = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, "128")] },
                Extensions = new JobDefinitionExtensions { Handler = "stubborn" },
            });
            await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "stubborn" });
            await running.Task.WaitAsync(HangGuard);

            // Before the fix the stop waited out the hour-long grace period (here: the hang guard failed the test).
            var stop = engine.StopAsync(TimeSpan.FromMilliseconds(50));
            await stop.WaitAsync(HangGuard);

            Assert.True(stop.IsCompletedSuccessfully);
            Assert.False(release.Task.IsCompleted); // the handler never returned: it was abandoned, not waited for
        }
        finally
        {
            release.TrySetResult(0);
            await engine.StopAsync(TimeSpan.Zero);
        }
    }

    [Fact]
    public async Task TwoVcpuHost_RunsAtMostTwoOneVcpuHandlersAtOnce()
    {
        await SetUpAsync(hostVcpus: 2);
        var probe = new ConcurrencyProbe();
        _handlers.Add("probe", probe.RunAsync);
        await Define("probe", "probe");

        var max = await RunManyAsync(probe, jobs: 6, expectedConcurrency: 2);

        Assert.Equal(2, max);
    }

    [Fact]
    public async Task ConsumableResource_OfOne_SerializesHandlers()
    {
        await SetUpAsync(hostVcpus: 4);
        await _engine.CreateConsumableResourceAsync(new CreateConsumableResourceRequest { ConsumableResourceName = "license", TotalQuantity = 1 });
        var probe = new ConcurrencyProbe();
        _handlers.Add("licensed", probe.RunAsync);
        await Define("licensed", "licensed", consumables: new ConsumableResourceProperties
        {
            ConsumableResourceList = [new ConsumableResourceRequirement { ConsumableResource = "license", Quantity = 1 }],
        });

        var max = await RunManyAsync(probe, jobs: 4, expectedConcurrency: 1, definition: "licensed");

        Assert.Equal(1, max);
    }

    /// <summary>Memory is accounted like vCPU: a 4-vCPU host with memory for two 1,500 MiB jobs runs two handlers at once.</summary>
    [Fact]
    public async Task HostMemory_CapsHandlers()
    {
        await SetUpAsync(hostVcpus: 4, hostMemoryMiB: 3_100); // 3,100 − the 32 MiB reserve: two 1,500 MiB jobs, not three
        var probe = new ConcurrencyProbe();
        _handlers.Add("big", probe.RunAsync);
        await DefineWith("big", vcpus: "1", memory: "1500");

        var max = await RunManyAsync(probe, jobs: 5, expectedConcurrency: 2, definition: "big");

        Assert.Equal(2, max);
    }

    /// <summary>GPUs are accounted too: a host with one GPU runs one GPU handler at a time, which sees its GPU count.</summary>
    [Fact]
    public async Task HostGpus_SerializeGpuHandlers_AndTheContextSeesItsGpus()
    {
        await SetUpAsync(hostVcpus: 4, hostGpus: 1);
        var probe = new ConcurrencyProbe();
        var gpus = new System.Collections.Concurrent.ConcurrentBag<int>();
        _handlers.Add("gpu", (c, ct) =>
        {
            gpus.Add(c.Gpus);
            return probe.RunAsync(c, ct);
        });
        await DefineWith("gpu", vcpus: "1", memory: "128", gpus: "1");

        var max = await RunManyAsync(probe, jobs: 3, expectedConcurrency: 1, definition: "gpu");

        Assert.Equal(1, max);
        Assert.Equal([1, 1, 1], gpus);
    }

    private Task DefineWith(string name, string vcpus, string memory, string? gpus = null) =>
        _engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = name,
            Type = JobDefinitionType.container,
            ContainerProperties = new ContainerProperties
            {
                ResourceRequirements = gpus is null
                    ? [new(ResourceType.VCPU, vcpus), new(ResourceType.MEMORY, memory)]
                    : [new(ResourceType.VCPU, vcpus), new(ResourceType.MEMORY, memory), new(ResourceType.GPU, gpus)],
            },
            Extensions = new JobDefinitionExtensions { Handler = name },
        });

    [Fact]
    public async Task QueueMaxRunningJobs_CapsHandlers()
    {
        await SetUpAsync(hostVcpus: 4, queue: new JobQueueExtensions { MaxRunningJobs = 3 });
        var probe = new ConcurrencyProbe();
        _handlers.Add("capped", probe.RunAsync);
        await Define("capped", "capped");

        var max = await RunManyAsync(probe, jobs: 7, expectedConcurrency: 3, definition: "capped");

        Assert.Equal(3, max);
    }

    /// <summary>
    /// Submits <paramref name="jobs"/> probe jobs, then repeatedly: waits until the engine shows as many running as the
    /// limit allows (or as remain) and releases one. Returns the highest concurrency the handlers themselves observed.
    /// </summary>
    private async Task<int> RunManyAsync(ConcurrencyProbe probe, int jobs, int expectedConcurrency, string definition = "probe")
    {
        var ids = new List<string>();
        for (var i = 0; i < jobs; i++)
        {
            ids.Add((await _engine.SubmitJobAsync(new SubmitJobRequest { JobName = "p" + i, JobQueue = "q", JobDefinition = definition })).JobId);
        }

        using var guard = new CancellationTokenSource(HangGuard);
        for (var remaining = jobs; remaining > 0; remaining--)
        {
            var expected = Math.Min(expectedConcurrency, remaining);
            while (probe.Current < expected)
            {
                await Task.Delay(5, guard.Token);
            }

            probe.ReleaseOne();
        }

        foreach (var id in ids)
        {
            Assert.Equal(JobStatus.SUCCEEDED, (await WaitAsync(id)).Status);
        }

        return probe.Max;
    }

    /// <summary>Handlers that count themselves in and wait until the test lets one go.</summary>
    private sealed class ConcurrencyProbe
    {
        private readonly SemaphoreSlim _release = new(0);
        private int _current;
        private int _max;

        public int Current => Volatile.Read(ref _current);

        public int Max => Volatile.Read(ref _max);

        public void ReleaseOne() => _release.Release();

        public async Task<int> RunAsync(BatchJobContext context, CancellationToken ct)
        {
            var now = Interlocked.Increment(ref _current);
            int seen;
            while ((seen = Volatile.Read(ref _max)) < now && Interlocked.CompareExchange(ref _max, now, seen) != seen)
            {
            }

            await _release.WaitAsync(ct);
            Interlocked.Decrement(ref _current);
            return 0;
        }
    }
}
