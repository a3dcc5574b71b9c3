using BatchCore.Hosts;
using BatchCore.Hosts.Process;
using BatchCore.Logs;
using BatchCore.Model;

namespace BatchCore.Tests.Hosts;

/// <summary>
/// containerProperties.secrets through the whole engine (process driver): resolved by BatchEngineOptions.SecretResolver
/// into the job's environment; without a resolver the job fails with AWS's ResourceInitializationError, unstarted.
/// </summary>
public sealed class SecretsTests
{
    private static async Task<(JobDetail Job, IReadOnlyList<string> Log)> RunAsync(Func<Secret, CancellationToken, ValueTask<string>>? resolver)
    {
        var logs = new InMemoryLogStore();
        await using var engine = new BatchEngine(new BatchEngineOptions
        {
            LogStore = logs,
            SecretResolver = resolver,
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>
            {
                ["process"] = _ => new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = logs, EnableLimits = false }),
            },
        });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Driver = "process", Vcpus = 1, MemoryMiB = 1024 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def", memory: 128) with
        {
            ContainerProperties = TestEngine.Definition("def", memory: 128).ContainerProperties! with
            {
                Command = ["sh", "-c", "echo \"token=$API_TOKEN\""],
                Secrets = [new() { Name = "API_TOKEN", ValueFrom = "arn:aws:ssm:local:000000000000:parameter/api-token" }],
            },
        });
        var id = (await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "def" })).JobId;
        using var guard = new CancellationTokenSource(AttemptEventRecorder.HangGuard);
        var job = await engine.WaitForJobAsync(id, guard.Token);
        var stream = job.Attempts.LastOrDefault()?.Container?.LogStreamName;
        return (job, stream is null ? [] : logs.GetLogEvents(stream).Events.Select(e => e.Message).ToList());
    }

    [Fact]
    public async Task Resolved_TheJobSeesTheValue()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("the process driver needs Linux");
        }

        var (job, log) = await RunAsync((secret, _) => ValueTask.FromResult(secret.ValueFrom!.EndsWith("/api-token", StringComparison.Ordinal) ? "t0ps3cret" : "?"));

        Assert.Equal(JobStatus.SUCCEEDED, job.Status);
        Assert.Equal("token=t0ps3cret", log.Single(l => !l.StartsWith("batchcore:", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task NoResolver_TheJobFailsUnstarted()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("the process driver needs Linux");
        }

        var (job, log) = await RunAsync(null);

        Assert.Equal(JobStatus.FAILED, job.Status);
        var attempt = Assert.Single(job.Attempts);
        Assert.Null(attempt.Container!.ExitCode);
        Assert.StartsWith(AttemptLaunch.SecretsErrorPrefix + "API_TOKEN", attempt.Container.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(log, l => l.StartsWith("token=", StringComparison.Ordinal));
    }

    /// <summary>An engine with one in-process host, a queue and definition <c>read</c> (handler <c>read</c>, secret API_TOKEN).</summary>
    private static async Task<BatchEngine> InProcessEngineAsync(Func<BatchCore.Hosts.InProcess.BatchJobContext, CancellationToken, Task<int>> handler,
        Func<Secret, CancellationToken, ValueTask<string>>? resolver)
    {
        var logs = new InMemoryLogStore();
        var handlers = new BatchCore.Hosts.InProcess.InProcessHandlerRegistry().Add("read", handler);
        var engine = new BatchEngine(new BatchEngineOptions
        {
            LogStore = logs,
            SecretResolver = resolver,
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>
            {
                [BatchCore.Hosts.InProcess.InProcessHostDriverDefaults.Kind] = BatchCore.Hosts.InProcess.InProcessHostDriver.SharedFactory(
                    new BatchCore.Hosts.InProcess.InProcessHostDriverOptions { HandlerResolver = handlers.Resolve, LogStore = logs }),
            },
        });
        await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Driver = BatchCore.Hosts.InProcess.InProcessHostDriverDefaults.Kind, Vcpus = 1, MemoryMiB = 1024 }] });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "read",
            Type = JobDefinitionType.container,
            ContainerProperties = new() { ResourceRequirements = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, "128")], Secrets = [new() { Name = "API_TOKEN", ValueFrom = "api-token" }] },
            Extensions = new() { Handler = "read" },
        });
        return engine;
    }

    /// <summary>In-process handlers (the engine's own launch path) see resolved secrets in their context's environment.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task InProcessHandler_SeesResolvedSecrets(bool withResolver)
    {
        string? seen = null;
        await using var engine = await InProcessEngineAsync((context, _) =>
        {
            seen = context.Environment.GetValueOrDefault("API_TOKEN");
            return Task.FromResult(0);
        }, withResolver ? (_, _) => ValueTask.FromResult("t0ps3cret") : null);
        var id = (await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "read" })).JobId;
        using var guard = new CancellationTokenSource(AttemptEventRecorder.HangGuard);
        var job = await engine.WaitForJobAsync(id, guard.Token);

        if (withResolver)
        {
            Assert.Equal((JobStatus.SUCCEEDED, "t0ps3cret"), (job.Status, seen));
        }
        else
        {
            Assert.Equal((JobStatus.FAILED, null), (job.Status, seen)); // the handler never ran
            Assert.StartsWith(AttemptLaunch.SecretsErrorPrefix + "API_TOKEN", job.Attempts.Single().Container!.Reason, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// A resolver that never answers and ignores its token: TerminateJob still ends the in-process attempt (unstarted),
    /// so the job and the engine's stop never hang on it.
    /// </summary>
    [Fact]
    public async Task InProcess_ResolverThatHangs_TerminateStillEndsTheAttempt()
    {
        await using var engine = await InProcessEngineAsync((_, _) => Task.FromResult(0), async (_, _) =>
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, CancellationToken.None); // never answers, ignores the token
            return "";
        });
        var id = (await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "read" })).JobId;
        using var guard = new CancellationTokenSource(AttemptEventRecorder.HangGuard);
        while ((await engine.DescribeAsync(id)).Status != JobStatus.STARTING)
        {
            await Task.Delay(10, guard.Token);
        }

        await engine.TerminateJobAsync(id, "stop", guard.Token);
        var job = await engine.WaitForJobAsync(id, guard.Token);

        Assert.Equal((JobStatus.FAILED, true), (job.Status, job.IsTerminated));
        Assert.Null(job.Attempts.Single().Container!.ExitCode);
    }
}
