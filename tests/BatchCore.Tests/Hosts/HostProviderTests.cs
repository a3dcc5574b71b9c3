using BatchCore.Hosts;
using BatchCore.Hosts.InProcess;
using BatchCore.Logs;
using BatchCore.Model;

namespace BatchCore.Tests.Hosts;

/// <summary>
/// The engine side of <see cref="HostProvider"/>, without a cluster: a provider that reports hosts by hand. In-process
/// handlers run the jobs; awaits carry hang guards only.
/// </summary>
public sealed class HostProviderTests : IAsyncLifetime
{
    private static readonly TimeSpan HangGuard = AttemptEventRecorder.HangGuard;
    private readonly InProcessHandlerRegistry _handlers = new();
    private readonly InMemoryLogStore _logs = new();
    private readonly ManualProvider _provider = new();
    private InProcessHostDriver _driver = null!;
    private BatchEngine _engine = null!;

    public ValueTask InitializeAsync()
    {
        _driver = new InProcessHostDriver(new InProcessHostDriverOptions { HandlerResolver = _handlers.Resolve, LogStore = _logs });
        _engine = new BatchEngine(new BatchEngineOptions
        {
            LogStore = _logs,
            TerminationGracePeriod = TimeSpan.FromSeconds(5),
            HostProviders = new Dictionary<string, Func<CreateComputeEnvironmentRequest, HostProvider>> { ["manual"] = _ => _provider },
        });
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _engine.StopAsync(TimeSpan.FromSeconds(30));
        await _driver.DisposeAsync();
    }

    private sealed class ManualProvider : HostProvider
    {
        public IHostMembershipSink? Sink { get; private set; }

        public bool Disposed { get; private set; }

        public override string Kind => "manual";

        public override void Start(IHostMembershipSink membership) => Sink = membership;

        public override ValueTask DisposeAsync()
        {
            Disposed = true;
            return base.DisposeAsync();
        }
    }

    private ProvidedHost Host(string name) => new() { HostName = name, Vcpus = 2, MemoryMiB = 2048, Driver = _driver };

    private async Task SetUpAsync()
    {
        await _engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Provider = "manual" });
        await _engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "q",
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
        });
        await _engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "d",
            Type = JobDefinitionType.container,
            ContainerProperties = new ContainerProperties { ResourceRequirements = [new(ResourceType.VCPU, "2"), new(ResourceType.MEMORY, "512")] },
            RetryStrategy = new RetryStrategy { Attempts = 2 },
            Extensions = new JobDefinitionExtensions { Handler = "h" },
        });
    }

    private async Task WaitForStatusAsync(string jobId, string status)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        while ((await _engine.DescribeJobsAsync([jobId], guard.Token))[0].Status != status)
        {
            await Task.Delay(10, guard.Token);
        }
    }

    [Fact]
    public async Task JobWaitsForAHost_RunsWhenOneJoins_AndALostHostsAttemptRetriesElsewhere()
    {
        await SetUpAsync();
        var first = new TaskCompletionSource();
        _handlers.Add("h", async (c, ct) =>
        {
            if (c.Attempt == 1)
            {
                first.TrySetResult();
                await Task.Delay(Timeout.Infinite, ct); // until the host is lost
            }

            return 0;
        });

        var job = await _engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "d" });
        await WaitForStatusAsync(job.JobId, JobStatus.RUNNABLE); // no host yet: it waits
        _provider.Sink!.HostAvailable(Host("a"));
        await first.Task.WaitAsync(HangGuard);
        _provider.Sink.HostAvailable(Host("b"));
        _provider.Sink.HostLost("a", "Host EC2 (instance a) terminated: test");
        using var guard = new CancellationTokenSource(HangGuard);
        var done = await _engine.WaitForJobAsync(job.JobId, guard.Token);

        Assert.Equal(JobStatus.SUCCEEDED, done.Status);
        Assert.Equal(2, done.Attempts.Count);
        Assert.Equal("Host EC2 (instance a) terminated: test", done.Attempts[0].StatusReason);
        Assert.EndsWith("/a", done.Attempts[0].Container!.ContainerInstanceArn, StringComparison.Ordinal);
        Assert.EndsWith("/b", done.Attempts[1].Container!.ContainerInstanceArn, StringComparison.Ordinal);
        Assert.Equal(["b"], await _engine.Run(c => c.AcceptingHostNames("ce"), CancellationToken.None)); // a left at once
    }

    [Fact]
    public async Task UnknownOrDuplicateReports_AreIgnored_AndStopDisposesTheProvider()
    {
        await SetUpAsync();
        _provider.Sink!.HostAvailable(Host("a"));
        _provider.Sink.HostAvailable(Host("a"));
        _provider.Sink.HostLost("nope", "x");
        _provider.Sink.HostAvailable(Host("b")); // reports are handled in order: once b is in, the others were handled

        using var guard = new CancellationTokenSource(HangGuard);
        List<string> hosts;
        while ((hosts = await _engine.Run(c => c.AcceptingHostNames("ce"), guard.Token)).Count < 2)
        {
            await Task.Delay(10, guard.Token);
        }

        Assert.Equal(["a", "b"], hosts);
        await _engine.StopAsync(TimeSpan.FromSeconds(5));
        Assert.True(_provider.Disposed);
    }

    [Fact]
    public async Task ProviderOnAnUnmanagedCe_WithHostsListed_IsRejected()
    {
        var e = await Assert.ThrowsAsync<BatchClientException>(() => _engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.UNMANAGED,
            Provider = "manual",
            Hosts = [new HostSpec { HostName = "h", Vcpus = 1, MemoryMiB = 512 }],
        }));

        Assert.Contains("hosts must be empty when provider manual supplies the hosts", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownProvider_NamesTheRegisteredOnes()
    {
        var e = await Assert.ThrowsAsync<BatchClientException>(() => _engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.UNMANAGED,
            Provider = "slurmm",
        }));

        Assert.Contains("provider must be one of simulated | local | manual, was slurmm", e.Message, StringComparison.Ordinal);
    }
}
