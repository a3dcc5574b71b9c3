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
    private readonly System.Collections.Concurrent.ConcurrentQueue<Exception> _errors = new();
    private InProcessHostDriver _driver = null!;
    private BatchEngine _engine = null!;

    public ValueTask InitializeAsync()
    {
        _driver = new InProcessHostDriver(new InProcessHostDriverOptions { HandlerResolver = _handlers.Resolve, LogStore = _logs });
        _engine = new BatchEngine(new BatchEngineOptions
        {
            LogStore = _logs,
            TerminationGracePeriod = TimeSpan.FromSeconds(5),
            UnexpectedError = _errors.Enqueue,
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

    /// <summary>
    /// A provider's host is held to a listed host's limits: one out of range used to join, its vCPUs wrapping the int
    /// that counts thousandths of a vCPU (2,000,000 vCPUs became a negative capacity). The report is refused on the loop,
    /// reported as an unexpected error naming the provider, the host and the field, and the host ignored; the provider is
    /// not thrown at, and its other hosts join.
    /// </summary>
    [Fact]
    public async Task ReportedHostOutOfRange_IsIgnoredAndReported_AndTheOthersJoin()
    {
        await SetUpAsync();
        var sink = _provider.Sink!;
        sink.HostAvailable(Host("big") with { Vcpus = 2_000_000 });
        sink.HostAvailable(Host("nan") with { Vcpus = double.NaN });
        sink.HostAvailable(Host("inf") with { Vcpus = double.PositiveInfinity });
        sink.HostAvailable(Host("negative") with { Vcpus = -1 });
        sink.HostAvailable(Host("memory") with { MemoryMiB = -1 });
        sink.HostAvailable(Host("gpus") with { Gpus = -2 });
        sink.HostAvailable(Host("arch") with { Architecture = "sparc" });
        sink.HostAvailable(Host("ok") with { Vcpus = 1_000_000 }); // the limit itself is allowed; handled after the others

        using var guard = new CancellationTokenSource(HangGuard);
        List<string> hosts;
        while ((hosts = await _engine.Run(c => c.AcceptingHostNames("ce"), guard.Token)).Count < 1)
        {
            await Task.Delay(10, guard.Token);
        }

        Assert.Equal(["ok"], hosts);
        var messages = _errors.Select(e => Assert.IsType<InvalidOperationException>(e).Message).ToList();
        Assert.Equal(7, messages.Count);
        Assert.Equal("host provider manual of compute environment ce reported host big, which is ignored: vcpus must be at most 1000000 (the engine counts thousandths of a vCPU in an int), was 2000000", messages[0]);
        Assert.EndsWith("host nan, which is ignored: vcpus must be greater than 0, was NaN", messages[1], StringComparison.Ordinal);
        Assert.EndsWith("host inf, which is ignored: vcpus must be at most 1000000 (the engine counts thousandths of a vCPU in an int), was Infinity", messages[2], StringComparison.Ordinal);
        Assert.EndsWith("host negative, which is ignored: vcpus must be greater than 0, was -1", messages[3], StringComparison.Ordinal);
        Assert.EndsWith("host memory, which is ignored: memoryMiB must be at least 0, was -1", messages[4], StringComparison.Ordinal);
        Assert.EndsWith("host gpus, which is ignored: gpus must be at least 0, was -2", messages[5], StringComparison.Ordinal);
        Assert.EndsWith("host arch, which is ignored: architecture must be one of x86_64 | arm64, was sparc", messages[6], StringComparison.Ordinal);
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
