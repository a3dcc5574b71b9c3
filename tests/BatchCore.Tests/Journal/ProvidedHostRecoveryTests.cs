using System.Collections.Concurrent;
using BatchCore.Hosts;
using BatchCore.Model;

namespace BatchCore.Tests.Journal;

/// <summary>
/// Attempts on a host provider's host across a restart (EngineCore.ProvidedHosts): recovery runs before the provider
/// reports its hosts again, so the provider's driver takes them back onto a stand-in host that the reported host later
/// takes over, or that is lost after <see cref="BatchEngineOptions.ProvidedHostRecoveryTimeout"/>. Virtual clock; the
/// driver and the provider are played by hand.
/// </summary>
public sealed class ProvidedHostRecoveryTests() : StateDirectoryTest("bc-provided-recovery-")
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task ReportedAgain_TheHostTakesOverTheAttempts_WithItsReportedCapacityLessTheirs()
    {
        var (a, b) = await RunTwoThenCrashAsync();

        var driver = new HeldDriver();
        var provider = new ManualProvider(driver);
        await using var engine = new BatchEngine(Options(provider));
        Assert.Equal(2, engine.Recovery!.Reattached);
        Assert.Equal(0, engine.Recovery.InterruptedAttempts);
        Assert.Equal(new[] { a, b }.Order(), driver.TakenBack.Keys.Order());
        Assert.Equal(JobStatus.RUNNING, await StatusAsync(engine, a));
        Assert.Equal(JobStatus.RUNNING, await StatusAsync(engine, b));

        // The stand-in takes nothing new: the engine has not seen n1's capacity yet.
        var c = await SubmitAsync(engine);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(JobStatus.RUNNABLE, await StatusAsync(engine, c));

        // n1 comes back with 3 vCPUs: the two re-attached attempts use 2, so exactly one more job fits.
        var d = await SubmitAsync(engine);
        provider.Sink!.HostAvailable(new ProvidedHost { HostName = "n1", Vcpus = 3, MemoryMiB = 4096, Driver = driver });
        await UntilAsync(engine, async () => await StatusAsync(engine, c) == JobStatus.RUNNING);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(JobStatus.RUNNABLE, await StatusAsync(engine, d));

        driver.Complete(a, 0);
        await UntilAsync(engine, async () => await StatusAsync(engine, a) == JobStatus.SUCCEEDED);
        var done = (await engine.DescribeJobsAsync([a]))[0];
        Assert.Single(done.Attempts);
        await UntilAsync(engine, async () => await StatusAsync(engine, d) == JobStatus.RUNNING); // a's vCPU is free again
        Assert.Empty(driver.Terminated);
    }

    [Fact]
    public async Task NotReportedInTime_TheAttemptsAreStopped_AndEndAsHostFailuresThatRetry()
    {
        var (a, b) = await RunTwoThenCrashAsync();

        var driver = new HeldDriver();
        var provider = new ManualProvider(driver);
        await using var engine = new BatchEngine(Options(provider) with { ProvidedHostRecoveryTimeout = TimeSpan.FromMinutes(2) });
        Assert.Equal(2, engine.Recovery!.Reattached);

        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(1));
        Assert.Empty(driver.Terminated);
        Assert.Equal(JobStatus.RUNNING, await StatusAsync(engine, a));

        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(new[] { a, b }.Order(), driver.Terminated.Order());
        foreach (var id in new[] { a, b })
        {
            var job = (await engine.DescribeJobsAsync([id]))[0];
            Assert.Equal(JobStatus.RUNNABLE, job.Status); // retried: no host to run on until the provider reports one
            Assert.Equal(StatusReasons.EngineRestarted, Assert.Single(job.Attempts).StatusReason);
        }
    }

    [Fact]
    public async Task ReportedLostBeforeItWasReported_TheAttemptsAreStopped_AndRetried()
    {
        var (a, b) = await RunTwoThenCrashAsync();

        var driver = new HeldDriver();
        var provider = new ManualProvider(driver);
        await using var engine = new BatchEngine(Options(provider));

        provider.Sink!.HostLost("n1", "node n1 is DOWN");
        await UntilAsync(engine, () => Task.FromResult(driver.Terminated.Count == 2));
        await UntilAsync(engine, async () => await StatusAsync(engine, b) == JobStatus.RUNNABLE);
        var job = (await engine.DescribeJobsAsync([a]))[0];
        Assert.Equal(JobStatus.RUNNABLE, job.Status);
        Assert.Equal("node n1 is DOWN", Assert.Single(job.Attempts).StatusReason);
    }

    /// <summary>Two 1-vCPU jobs run on n1 (2 vCPUs); then the engine stops as a crash leaves it (its driver can stop nothing).</summary>
    private async Task<(string A, string B)> RunTwoThenCrashAsync()
    {
        var driver = new HeldDriver { IgnoreTerminate = true };
        var provider = new ManualProvider(driver);
        var engine = new BatchEngine(Options(provider));
        try
        {
            await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Provider = "manual" });
            await engine.CreateJobQueueAsync(new CreateJobQueueRequest { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
            await engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
            {
                JobDefinitionName = "d",
                Type = JobDefinitionType.container,
                ContainerProperties = new ContainerProperties { Command = ["work"], ResourceRequirements = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, "512")] },
                RetryStrategy = new RetryStrategy { Attempts = 2 },
            });
            provider.Sink!.HostAvailable(new ProvidedHost { HostName = "n1", Vcpus = 2, MemoryMiB = 2048, Driver = driver });
            var a = await SubmitAsync(engine);
            var b = await SubmitAsync(engine);
            await UntilAsync(engine, async () => await StatusAsync(engine, a) == JobStatus.RUNNING && await StatusAsync(engine, b) == JobStatus.RUNNING);
            return (a, b);
        }
        finally
        {
            await engine.StopAsync(TimeSpan.FromMilliseconds(100));
        }
    }

    private BatchEngineOptions Options(ManualProvider provider) => Options() with
    {
        HostProviders = new Dictionary<string, Func<CreateComputeEnvironmentRequest, HostProvider>> { ["manual"] = _ => provider },
    };

    private static async Task<string> SubmitAsync(BatchEngine engine) =>
        (await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "d" })).JobId;

    private static async Task<string> StatusAsync(BatchEngine engine, string id) => (await engine.DescribeJobsAsync([id]))[0].Status;

    /// <summary>Lets the loop run (a second of virtual time per round) until <paramref name="condition"/> holds; the limit is a hang guard.</summary>
    private static async Task UntilAsync(BatchEngine engine, Func<Task<bool>> condition)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        while (!await condition())
        {
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1), guard.Token);
            await Task.Delay(5, guard.Token);
        }
    }

    /// <summary>A provider whose hosts the test reports; every host runs on <see cref="Driver"/>.</summary>
    private sealed class ManualProvider(HostDriver driver) : HostProvider
    {
        public IHostMembershipSink? Sink { get; private set; }

        public override string Kind => "manual";

        public override HostDriver? Driver => driver;

        public override void Start(IHostMembershipSink membership) => Sink = membership;
    }

    /// <summary>Attempts start at once and run until the test completes them; they can be taken back after a restart.</summary>
    private sealed class HeldDriver : HostDriver
    {
        private readonly ConcurrentDictionary<string, (AttemptToken Token, IAttemptEventSink Sink)> _running = new();

        /// <summary>Terminate does nothing (the controller does not answer): the first engine's "crash".</summary>
        public bool IgnoreTerminate { get; init; }

        /// <summary>The attempts taken back, by job id.</summary>
        public ConcurrentDictionary<string, AttemptToken> TakenBack { get; } = new();

        /// <summary>The job ids whose attempts were terminated.</summary>
        public ConcurrentQueue<string> Terminated { get; } = new();

        public override string Kind => "held";

        public override void Launch(AttemptLaunch launch, IAttemptEventSink sink)
        {
            _running[launch.JobId] = (launch.Token, sink);
            sink.Started(launch.Token, "handle-" + launch.JobId);
        }

        public override bool TryReattach(AttemptReattach reattach, IAttemptEventSink sink)
        {
            Assert.Equal("handle-" + reattach.JobId, reattach.Handle);
            _running[reattach.JobId] = (reattach.Token, sink);
            TakenBack[reattach.JobId] = reattach.Token;
            return true;
        }

        public override void Terminate(AttemptToken token, TimeSpan gracePeriod)
        {
            if (IgnoreTerminate)
            {
                return;
            }

            foreach (var (jobId, (t, sink)) in _running)
            {
                if (t == token && _running.TryRemove(jobId, out _))
                {
                    Terminated.Enqueue(jobId);
                    sink.Exited(token, new AttemptExit(143, "terminated"));
                }
            }
        }

        public void Complete(string jobId, int exitCode)
        {
            Assert.True(_running.TryRemove(jobId, out var attempt));
            attempt.Sink.Exited(attempt.Token, new AttemptExit(exitCode));
        }
    }
}
