using BatchCore.Hosts;
using BatchCore.Model;

namespace BatchCore.Tests.Dispatch;

/// <summary>
/// Drivers that break their contract (throw instead of reporting): the engine neither loses the job nor stops serving.
/// </summary>
public sealed class FaultyDriverTests
{
    /// <summary>A driver that starts every attempt at once and, as configured, throws from Launch or Terminate.</summary>
    private sealed class FaultyDriver(bool throwOnLaunch, bool throwOnTerminate, bool throwOnDispose = false) : HostDriver
    {
        public override string Kind => "faulty";

        public bool Disposed { get; private set; }

        public override ValueTask DisposeAsync()
        {
            Disposed = true;
            return throwOnDispose ? throw new InvalidOperationException("dispose broke") : ValueTask.CompletedTask;
        }

        public override void Launch(AttemptLaunch launch, IAttemptEventSink sink)
        {
            if (throwOnLaunch)
            {
                throw new InvalidOperationException("launch broke");
            }

            sink.Started(launch.Token);
        }

        public override void Terminate(AttemptToken token, TimeSpan gracePeriod)
        {
            if (throwOnTerminate)
            {
                throw new InvalidOperationException("terminate broke");
            }
        }
    }

    private static async Task<BatchEngine> EngineAsync(FaultyDriver driver, BatchEngineOptions? options = null, bool realTime = false)
    {
        var withDriver = (options ?? new BatchEngineOptions()) with
        {
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>> { ["faulty"] = _ => driver },
        };
        var engine = realTime ? new BatchEngine(withDriver with { AllowShortTimeouts = true }) : TestEngine.Create(withDriver);
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "faulty-ce",
            Type = CEType.UNMANAGED,
            Hosts = [new HostSpec { HostName = "f0", Driver = "faulty", Vcpus = 2, MemoryMiB = 4096 }],
        });
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "sim-ce",
            Type = CEType.UNMANAGED,
            Hosts = [new HostSpec { HostName = "s0", Vcpus = 2, MemoryMiB = 4096 }],
        });
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "faulty-ce" }],
        });
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "sim", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "sim-ce" }],
        });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def", retry: new RetryStrategy { Attempts = 2 }, timeout: 1));
        return engine;
    }

    [Fact]
    public async Task LaunchThrowing_EndsTheAttemptAsAHostFailure_AndRetryStrategyApplies()
    {
        await using var engine = await EngineAsync(new FaultyDriver(throwOnLaunch: true, throwOnTerminate: false));

        var submitted = await engine.SubmitJobAsync(TestEngine.Job());
        await engine.RunUntilIdleAsync();

        var job = await engine.DescribeAsync(submitted.JobId);
        Assert.Equal(JobStatus.FAILED, job.Status);
        Assert.Equal(2, job.Attempts.Count);
        Assert.All(job.Attempts, a => Assert.Equal(
            "CannotStartContainerError: the faulty driver failed to launch the attempt: System.InvalidOperationException: launch broke",
            a.StatusReason));
        Assert.Null(engine.LastLoopError);
        var queue = await engine.GetJobQueueSnapshotAsync("q");
        Assert.Empty(queue.FrontOfQueue!.Jobs!); // nothing left waiting or holding the host
    }

    /// <summary>
    /// On the real clock (the loop's own cycles, not a caller's command): a job's timeout whose terminate throws is an
    /// error the loop survives; it is reported through <see cref="BatchEngineOptions.UnexpectedError"/> (whose own
    /// exception is ignored) and kept in <see cref="BatchEngine.LastLoopError"/>, and the engine keeps serving.
    /// </summary>
    [Fact]
    public async Task TerminateThrowing_IsReportedAsAnUnexpectedError_AndTheEngineKeepsServing()
    {
        var reported = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var engine = await EngineAsync(new FaultyDriver(throwOnLaunch: false, throwOnTerminate: true),
            new BatchEngineOptions
            {
                UnexpectedError = e =>
                {
                    reported.TrySetResult(e);
                    throw new InvalidOperationException("the reporter broke too");
                },
            }, realTime: true);
        using var guard = new CancellationTokenSource(Hosts.AttemptEventRecorder.HangGuard);

        await engine.SubmitJobAsync(TestEngine.Job(), guard.Token); // runs until its 1 s timeout, whose terminate throws
        var error = await reported.Task.WaitAsync(guard.Token);
        var other = await engine.SubmitJobAsync(TestEngine.Job(queue: "sim", runSeconds: 0), guard.Token);
        var done = await engine.WaitForJobAsync(other.JobId, guard.Token);

        Assert.Equal("terminate broke", error.Message);
        Assert.Same(error, engine.LastLoopError);
        Assert.Equal(JobStatus.SUCCEEDED, done.Status);
        // The stop goes through too: its terminate throws again (reported), and the drivers are still disposed.
        await engine.StopAsync(TimeSpan.Zero).WaitAsync(guard.Token);
    }

    /// <summary>A driver whose DisposeAsync throws does not keep the engine's stop from disposing the others (both throw
    /// here, so whichever goes first, the second is disposed only if the first one's failure is survived).</summary>
    [Fact]
    public async Task Stop_DisposesEveryDriver_WhenOneDisposalThrows()
    {
        var reported = new List<Exception>();
        var broken = new FaultyDriver(throwOnLaunch: false, throwOnTerminate: false, throwOnDispose: true);
        var good = new FaultyDriver(throwOnLaunch: false, throwOnTerminate: false, throwOnDispose: true);
        var engine = TestEngine.Create(new BatchEngineOptions
        {
            UnexpectedError = reported.Add,
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>> { ["broken"] = _ => broken, ["good"] = _ => good },
        });
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "two-drivers",
            Type = CEType.UNMANAGED,
            Hosts =
            [
                new HostSpec { HostName = "b0", Driver = "broken", Vcpus = 1, MemoryMiB = 1024 },
                new HostSpec { HostName = "g0", Driver = "good", Vcpus = 1, MemoryMiB = 1024 },
            ],
        });

        await engine.StopAsync(TimeSpan.Zero);

        Assert.True(broken.Disposed);
        Assert.True(good.Disposed);
        Assert.Equal(["dispose broke", "dispose broke"], reported.Select(e => e.Message));
    }

    /// <summary>
    /// A managed environment whose driver cannot be created when it first launches a host turns INVALID with the reason
    /// (AWS's state for an environment that cannot launch instances) instead of failing every scheduling cycle.
    /// </summary>
    [Fact]
    public async Task ManagedDriverFactoryThrowing_TurnsTheEnvironmentInvalid_WithTheReason()
    {
        var reported = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var engine = new BatchEngine(new BatchEngineOptions
        {
            UnexpectedError = e => reported.TrySetResult(e),
            Provisioning = new BatchCore.Provisioning.ProvisioningOptions { ManagedHostDriver = "boom" },
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>> { ["boom"] = _ => throw new InvalidOperationException("no daemon") },
        });
        using var guard = new CancellationTokenSource(Hosts.AttemptEventRecorder.HangGuard);
        await engine.CreateComputeEnvironmentAsync(TestEngine.ManagedEc2(), guard.Token);
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "m" }] }, guard.Token);
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"), guard.Token);

        var job = await engine.SubmitJobAsync(TestEngine.Job(), guard.Token);
        var error = await reported.Task.WaitAsync(guard.Token);
        var ce = (await engine.DescribeComputeEnvironmentsAsync(ct: guard.Token)).ComputeEnvironments.Single();

        Assert.Equal("no daemon", error.Message);
        Assert.Equal(ResourceStatus.INVALID, ce.Status);
        Assert.Equal("CLIENT_ERROR - its hosts' driver boom could not be created: no daemon", ce.StatusReason);
        Assert.Equal(JobStatus.RUNNABLE, (await engine.DescribeJobsAsync([job.JobId], guard.Token)).Single().Status);
    }

    /// <summary>
    /// A create refused for a later host (an unknown driver, or a factory that throws) disposes the drivers it built for
    /// the earlier ones: they were kept by nothing and never disposed (audit).
    /// </summary>
    [Theory]
    [InlineData("unknown")]
    [InlineData("boom")]
    public async Task CreateRefusedForALaterHost_DisposesTheDriversItBuilt(string laterDriver)
    {
        var built = new List<FaultyDriver>();
        await using var engine = TestEngine.Create(new BatchEngineOptions
        {
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>
            {
                ["faulty"] = _ =>
                {
                    var d = new FaultyDriver(throwOnLaunch: false, throwOnTerminate: false);
                    built.Add(d);
                    return d;
                },
                ["boom"] = _ => throw new InvalidOperationException("no daemon"),
            },
        });

        var e = await Record.ExceptionAsync(() => engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.UNMANAGED,
            Hosts = [new() { HostName = "a", Vcpus = 2, MemoryMiB = 4096, Driver = "faulty" }, new() { HostName = "b", Vcpus = 2, MemoryMiB = 4096, Driver = laterDriver }],
        }));

        Assert.NotNull(e);
        Assert.Empty((await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments);
        using var guard = new CancellationTokenSource(Hosts.AttemptEventRecorder.HangGuard);
        while (!Assert.Single(built).Disposed)
        {
            await Task.Delay(10, guard.Token); // disposed off the loop
        }
    }

    /// <summary>
    /// minvCpus on an environment whose driver cannot be created: the create completes (all of it, journal included)
    /// and the environment is INVALID with the reason, as AWS shows an environment that cannot launch instances.
    /// </summary>
    [Fact]
    public async Task MinvCpus_WithADriverThatCannotBeCreated_CreatesTheEnvironmentInvalid()
    {
        var reported = new List<Exception>();
        await using var engine = TestEngine.Create(new BatchEngineOptions
        {
            UnexpectedError = reported.Add,
            Provisioning = new BatchCore.Provisioning.ProvisioningOptions { ManagedHostDriver = "boom" },
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>> { ["boom"] = _ => throw new InvalidOperationException("no daemon") },
        });
        var request = TestEngine.ManagedEc2();

        await engine.CreateComputeEnvironmentAsync(request with { ComputeResources = request.ComputeResources! with { MinvCpus = 2 } });

        var ce = (await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments.Single();
        Assert.Equal(ResourceStatus.INVALID, ce.Status);
        Assert.Equal("CLIENT_ERROR - its hosts' driver boom could not be created: no daemon", ce.StatusReason);
        Assert.Equal("no daemon", Assert.Single(reported).Message);
    }
}
