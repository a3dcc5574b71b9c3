using BatchCore.Hosting;
using BatchCore.Hosts;
using BatchCore.Hosts.InProcess;
using BatchCore.Model;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BatchCore.Tests.Hosting;

/// <summary>
/// BatchCore inside a generic host, on the real clock. Awaits carry hang guards only; nothing asserts on timing.
/// </summary>
public sealed class BatchCoreHostingTests
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    private static IHost Build(Action<IBatchCoreBuilder> handlers, Action<BatchCoreOptions>? configure = null,
        IDictionary<string, string?>? config = null, Action<IServiceCollection>? services = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(config ?? new Dictionary<string, string?>());
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        var batch = builder.Services.AddBatchCore(builder.Configuration.GetSection(BatchCoreHostingDefaults.SectionName), configure);
        handlers(batch);
        builder.Services.AddHealthChecks().AddBatchCoreCheck();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMinutes(2));
        services?.Invoke(builder.Services);
        return builder.Build();
    }

    private static void LocalQueue(BatchCoreOptions o, double vcpus = 2) => o
        .AddLocalComputeEnvironment("local", vcpus, 4096)
        .AddJobQueue("q", 1, "local");

    [Fact]
    public async Task Host_RunsAScopedHandler_AndStopsCleanly()
    {
        using var host = Build(b => b.AddJobHandler<CountingHandler>("count"), o =>
        {
            LocalQueue(o);
            o.AddHandlerJobDefinition("count", "count");
        }, services: s => s.AddSingleton<CountingHandler.Tally>());
        using var guard = new CancellationTokenSource(HangGuard);
        await host.StartAsync(guard.Token);
        var engine = host.Services.GetRequiredService<BatchEngine>();

        var a = await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "a", JobQueue = "q", JobDefinition = "count" }, guard.Token);
        var b = await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "b", JobQueue = "q", JobDefinition = "count" }, guard.Token);
        Assert.Equal(JobStatus.SUCCEEDED, (await engine.WaitForJobAsync(a.JobId, guard.Token)).Status);
        Assert.Equal(JobStatus.SUCCEEDED, (await engine.WaitForJobAsync(b.JobId, guard.Token)).Status);
        await host.StopAsync(guard.Token);

        var tally = host.Services.GetRequiredService<CountingHandler.Tally>();
        Assert.Equal(2, tally.Runs);
        Assert.Equal(2, tally.Disposed); // one scope per attempt, disposed after it
        await Assert.ThrowsAsync<ObjectDisposedException>(() => engine.DescribeJobQueuesAsync());
    }

    [Fact]
    public async Task Stop_WithJobsInFlight_LetsThemFinishWithinTheDrainTimeout()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = Build(b => b.AddJobHandler("wait", async (_, ct) =>
        {
            started.TrySetResult();
            await release.Task.WaitAsync(ct);
            return 0;
        }), o =>
        {
            LocalQueue(o);
            o.AddHandlerJobDefinition("wait", "wait");
        });
        using var guard = new CancellationTokenSource(HangGuard);
        await host.StartAsync(guard.Token);
        var engine = host.Services.GetRequiredService<BatchEngine>();
        var job = await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "inflight", JobQueue = "q", JobDefinition = "wait" }, guard.Token);
        await started.Task.WaitAsync(guard.Token);
        var finished = engine.WaitForJobAsync(job.JobId, guard.Token);

        var stopping = host.StopAsync(guard.Token);
        // The engine stops taking jobs while the running one may finish; the queue keeps its state (nothing journaled).
        await WaitUntilAsync(async () =>
        {
            try
            {
                await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "late", JobQueue = "q", JobDefinition = "wait" }, guard.Token);
                return false;
            }
            catch (BatchClientException e) when (e.Message.Contains("takes no new jobs", StringComparison.Ordinal))
            {
                return true;
            }
        }, guard.Token);
        Assert.Equal(ResourceState.ENABLED, (await engine.DescribeJobQueuesAsync(new() { JobQueues = ["q"] }, guard.Token)).JobQueues.Single().State);
        release.SetResult();
        var detail = await finished;
        await stopping;

        Assert.Equal(JobStatus.SUCCEEDED, detail.Status);
    }

    [Fact]
    public async Task Stop_AfterTheDrainTimeout_TerminatesHandlers_ThroughTheirToken()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = Build(b => b.AddJobHandler("stubborn", async (_, ct) =>
        {
            using var reg = ct.Register(() => cancelled.TrySetResult());
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
            return 0;
        }), o =>
        {
            LocalQueue(o);
            o.AddHandlerJobDefinition("stubborn", "stubborn");
            o.DrainTimeout = TimeSpan.Zero;
        });
        using var guard = new CancellationTokenSource(HangGuard);
        await host.StartAsync(guard.Token);
        var engine = host.Services.GetRequiredService<BatchEngine>();
        var job = await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "stubborn" }, guard.Token);
        await started.Task.WaitAsync(guard.Token);
        var finished = engine.WaitForJobAsync(job.JobId, guard.Token);

        await host.StopAsync(guard.Token);

        await cancelled.Task.WaitAsync(guard.Token);
        var detail = await finished;
        Assert.Equal(JobStatus.FAILED, detail.Status);
        Assert.Equal(143, detail.Attempts.Single().Container!.ExitCode);
    }

    /// <summary>The host's shutdown token bounds the drain: once it fires, running attempts are terminated at once.</summary>
    [Fact]
    public async Task Stop_WithTheHostsTokenCancelled_SkipsTheDrain_AndTerminates()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = Build(b => b.AddJobHandler("long", async (_, ct) =>
        {
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
            return 0;
        }), o =>
        {
            LocalQueue(o);
            o.AddHandlerJobDefinition("long", "long");
            o.DrainTimeout = TimeSpan.FromHours(1);
        });
        using var guard = new CancellationTokenSource(HangGuard);
        await host.StartAsync(guard.Token);
        var engine = host.Services.GetRequiredService<BatchEngine>();
        var job = await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "long" }, guard.Token);
        await started.Task.WaitAsync(guard.Token);
        var finished = engine.WaitForJobAsync(job.JobId, guard.Token);

        using var shutdownTimedOut = new CancellationTokenSource();
        await shutdownTimedOut.CancelAsync();
        await host.StopAsync(shutdownTimedOut.Token).WaitAsync(guard.Token);

        var detail = await finished;
        Assert.Equal(JobStatus.FAILED, detail.Status);
        Assert.Equal(143, detail.Attempts.Single().Container!.ExitCode);
    }

    [Fact]
    public async Task Configuration_CreatesTheResources()
    {
        var config = new Dictionary<string, string?>
        {
            ["BatchCore:ComputeEnvironments:0:ComputeEnvironmentName"] = "cfg-ce",
            ["BatchCore:ComputeEnvironments:0:Type"] = "UNMANAGED",
            ["BatchCore:ComputeEnvironments:0:Hosts:0:HostName"] = "cfg-h0",
            ["BatchCore:ComputeEnvironments:0:Hosts:0:Driver"] = "inprocess",
            ["BatchCore:ComputeEnvironments:0:Hosts:0:Vcpus"] = "2",
            ["BatchCore:ComputeEnvironments:0:Hosts:0:MemoryMiB"] = "2048",
            ["BatchCore:SchedulingPolicies:0:Name"] = "fair",
            ["BatchCore:SchedulingPolicies:0:FairsharePolicy:ShareDecaySeconds"] = "600",
            ["BatchCore:SchedulingPolicies:0:FairsharePolicy:ShareDistribution:0:ShareIdentifier"] = "team*",
            ["BatchCore:SchedulingPolicies:0:FairsharePolicy:ShareDistribution:0:WeightFactor"] = "0.5",
            ["BatchCore:JobQueues:0:JobQueueName"] = "cfg-q",
            ["BatchCore:JobQueues:0:Priority"] = "10",
            ["BatchCore:JobQueues:0:ComputeEnvironmentOrder:0:Order"] = "1",
            ["BatchCore:JobQueues:0:ComputeEnvironmentOrder:0:ComputeEnvironment"] = "cfg-ce",
            ["BatchCore:JobQueues:0:Tags:team"] = "data",
            ["BatchCore:JobDefinitions:0:JobDefinitionName"] = "cfg-def",
            ["BatchCore:JobDefinitions:0:Type"] = "container",
            ["BatchCore:JobDefinitions:0:ContainerProperties:ResourceRequirements:0:Type"] = "VCPU",
            ["BatchCore:JobDefinitions:0:ContainerProperties:ResourceRequirements:0:Value"] = "1",
            ["BatchCore:JobDefinitions:0:ContainerProperties:ResourceRequirements:1:Type"] = "MEMORY",
            ["BatchCore:JobDefinitions:0:ContainerProperties:ResourceRequirements:1:Value"] = "256",
            ["BatchCore:JobDefinitions:0:ContainerProperties:Environment:0:Name"] = "GREETING",
            ["BatchCore:JobDefinitions:0:ContainerProperties:Environment:0:Value"] = "hi",
            ["BatchCore:JobDefinitions:0:Parameters:who"] = "config",
            ["BatchCore:JobDefinitions:0:Extensions:Handler"] = "greet",
            ["BatchCore:DrainTimeout"] = "00:00:05",
        };
        using var host = Build(b => b.AddJobHandler("greet", (c, _) =>
            Task.FromResult(c.Environment["GREETING"] == "hi" && c.Parameters["who"] == "config" ? 0 : 3)), config: config);
        using var guard = new CancellationTokenSource(HangGuard);
        await host.StartAsync(guard.Token);
        var engine = host.Services.GetRequiredService<BatchEngine>();

        var queue = (await engine.DescribeJobQueuesAsync(new() { JobQueues = ["cfg-q"] }, guard.Token)).JobQueues.Single();
        var policies = await engine.DescribeSchedulingPoliciesAsync(ct: guard.Token);
        var job = await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "cfg-q", JobDefinition = "cfg-def" }, guard.Token);
        var detail = await engine.WaitForJobAsync(job.JobId, guard.Token);
        await host.StopAsync(guard.Token);

        Assert.Equal(10, queue.Priority);
        Assert.Equal("data", queue.Tags["team"]);
        Assert.Equal(0.5, policies.Single().FairsharePolicy.ShareDistribution.Single().WeightFactor);
        Assert.Equal(JobStatus.SUCCEEDED, detail.Status);
        Assert.Equal(TimeSpan.FromSeconds(5), host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<BatchCoreOptions>>().Value.DrainTimeout);
    }

    /// <summary>
    /// With a journal, the app restarts on its state: the configured resources the recovered engine has are kept (not
    /// created again, which AWS refuses), an unchanged job definition gets no new revision, a changed one does, and the
    /// queue takes jobs again — a graceful stop journals no DISABLED state.
    /// </summary>
    [Fact]
    public async Task Restart_OnAJournal_KeepsWhatWasRecovered_AndTakesJobsAgain()
    {
        var dir = Directory.CreateTempSubdirectory("bc-host-").FullName;
        try
        {
            void Configure(BatchCoreOptions o, string greeting)
            {
                o.Engine = o.Engine with { Journal = new BatchCore.Journal.JournalOptions { Durability = BatchCore.Journal.Durability.Journal, StateDirectory = dir } };
                LocalQueue(o);
                o.SchedulingPolicies.Add(new CreateSchedulingPolicyRequest { Name = "fair" });
                o.ConsumableResources.Add(new CreateConsumableResourceRequest { ConsumableResourceName = "licence", TotalQuantity = 2 });
                o.AddHandlerJobDefinition("greet", "greet");
                o.JobDefinitions[^1] = o.JobDefinitions[^1] with { Parameters = new Dictionary<string, string> { ["greeting"] = greeting } };
            }

            async Task<(int Revision, string Status)> RunOnceAsync(string greeting)
            {
                using var host = Build(b => b.AddJobHandler("greet", (_, _) => Task.FromResult(0)), o => Configure(o, greeting));
                using var guard = new CancellationTokenSource(HangGuard);
                await host.StartAsync(guard.Token);
                var engine = host.Services.GetRequiredService<BatchEngine>();
                var job = await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "greet" }, guard.Token);
                var detail = await engine.WaitForJobAsync(job.JobId, guard.Token);
                var revision = (await engine.DescribeJobDefinitionsAsync(new() { JobDefinitionName = "greet" }, guard.Token)).JobDefinitions.Max(d => d.Revision);
                await host.StopAsync(guard.Token);
                return (revision, detail.Status);
            }

            Assert.Equal((1, JobStatus.SUCCEEDED), await RunOnceAsync("hi"));
            Assert.Equal((1, JobStatus.SUCCEEDED), await RunOnceAsync("hi")); // recovered: nothing created twice, same revision
            Assert.Equal((2, JobStatus.SUCCEEDED), await RunOnceAsync("hello")); // the definition's configuration changed
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// A restart on a journal applies what the configuration changed since: the queue's priority and state, the
    /// consumable resource's quantity, the scheduling policy's decay and new tags. A change AWS cannot update (here the
    /// compute environment's hosts) fails the start naming the resource and the field, and changes nothing.
    /// </summary>
    [Fact]
    public async Task Restart_OnAJournal_AppliesConfigurationChanges_AndRefusesWhatCannotChange()
    {
        var dir = Directory.CreateTempSubdirectory("bc-host-").FullName;
        try
        {
            void Configure(BatchCoreOptions o, int? priority, string? state, long? licences, int decay, double vcpus, string driver)
            {
                o.Engine = o.Engine with { Journal = new BatchCore.Journal.JournalOptions { Durability = BatchCore.Journal.Durability.Journal, StateDirectory = dir } };
                o.AddLocalComputeEnvironment("local", vcpus, 4096, driver);
                o.AddJobQueue("q", priority ?? 0, "local");
                o.JobQueues[^1] = o.JobQueues[^1] with { Priority = priority, State = state, Tags = state is null ? null : new Dictionary<string, string> { ["team"] = "ops" } };
                o.SchedulingPolicies.Add(new CreateSchedulingPolicyRequest { Name = "fair", FairsharePolicy = new FairsharePolicy { ShareDecaySeconds = decay } });
                o.ConsumableResources.Add(new CreateConsumableResourceRequest { ConsumableResourceName = "licence", TotalQuantity = licences });
            }

            async Task<(JobQueueDetail Queue, long Licences, int Decay)> StartAsync(int? priority, string? state, long? licences, int decay, double vcpus = 2,
                string driver = InProcessHostDriverDefaults.Kind)
            {
                using var host = Build(_ => { }, o => Configure(o, priority, state, licences, decay, vcpus, driver));
                using var guard = new CancellationTokenSource(HangGuard);
                await host.StartAsync(guard.Token);
                var engine = host.Services.GetRequiredService<BatchEngine>();
                var queue = (await engine.DescribeJobQueuesAsync(new() { JobQueues = ["q"] }, guard.Token)).JobQueues.Single();
                var licence = await engine.DescribeConsumableResourceAsync("licence", guard.Token);
                var policy = (await engine.DescribeSchedulingPoliciesAsync(["fair"], guard.Token)).Single();
                await host.StopAsync(guard.Token);
                return (queue, licence.TotalQuantity, policy.FairsharePolicy.ShareDecaySeconds);
            }

            var first = await StartAsync(priority: 1, state: null, licences: 2, decay: 0);
            Assert.Equal((1, ResourceState.ENABLED, 2L, 0), (first.Queue.Priority, first.Queue.State, first.Licences, first.Decay));

            var second = await StartAsync(priority: 5, state: ResourceState.DISABLED, licences: 7, decay: 3600);
            Assert.Equal((5, ResourceState.DISABLED, 7L, 3600), (second.Queue.Priority, second.Queue.State, second.Licences, second.Decay));
            Assert.Equal("ops", second.Queue.Tags["team"]);

            // State left out of the configuration: what the engine has is kept (an operator's DISABLED stays).
            var third = await StartAsync(priority: 5, state: null, licences: 7, decay: 3600);
            Assert.Equal(ResourceState.DISABLED, third.Queue.State);

            // The host's capacity alone changed (a local environment sized from another machine): kept, with a warning.
            Assert.Equal(5, (await StartAsync(priority: 5, state: null, licences: 7, decay: 3600, vcpus: 4)).Queue.Priority);

            var e = await Assert.ThrowsAsync<BatchCoreConfigurationException>(() => StartAsync(priority: 9, state: null, licences: 9, decay: 60, driver: "process"));
            Assert.Equal("BatchCore:ComputeEnvironments:0 (computeEnvironmentName local)", e.Path);
            Assert.Contains("hosts", e.Message, StringComparison.Ordinal);

            // The refused start changed nothing, not even what was planned before the compute environment (the
            // consumable resource and the policy). Priority and quantity left out: the recovered values show.
            var after = await StartAsync(priority: null, state: null, licences: null, decay: 3600);
            Assert.Equal((5, 7L, 3600), (after.Queue.Priority, after.Licences, after.Decay));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// AddConfigurationSecrets: a definition's secrets come from the app's configuration (here an in-memory source; user
    /// secrets or a vault provider in an app), keyed by the ARN's secret name; a missing key fails the job unstarted.
    /// </summary>
    [Fact]
    public async Task Secrets_FromConfiguration_ReachTheHandler()
    {
        var config = new Dictionary<string, string?> { ["Secrets:db-password"] = "hunter2" };
        string? seen = null;
        using var host = Build(
            b =>
            {
                b.AddJobHandler("read", (context, _) =>
                {
                    seen = context.Environment.GetValueOrDefault("DB_PASSWORD");
                    return Task.FromResult(0);
                });
                b.AddConfigurationSecrets(new ConfigurationBuilder().AddInMemoryCollection(config).Build().GetSection("Secrets"));
            },
            o =>
            {
                LocalQueue(o);
                foreach (var (name, valueFrom) in new[] { ("read", "arn:aws:secretsmanager:local:000000000000:secret:db-password"), ("missing", "arn:aws:ssm:local:000000000000:parameter/nope") })
                {
                    o.AddHandlerJobDefinition(name, "read");
                    o.JobDefinitions[^1] = o.JobDefinitions[^1] with
                    {
                        ContainerProperties = o.JobDefinitions[^1].ContainerProperties! with { Secrets = [new() { Name = "DB_PASSWORD", ValueFrom = valueFrom }] },
                    };
                }
            });
        using var guard = new CancellationTokenSource(HangGuard);
        await host.StartAsync(guard.Token);
        var engine = host.Services.GetRequiredService<BatchEngine>();

        var read = await engine.WaitForJobAsync((await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "a", JobQueue = "q", JobDefinition = "read" }, guard.Token)).JobId, guard.Token);
        var missing = await engine.WaitForJobAsync((await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "b", JobQueue = "q", JobDefinition = "missing" }, guard.Token)).JobId, guard.Token);
        await host.StopAsync(guard.Token);

        Assert.Equal((JobStatus.SUCCEEDED, "hunter2"), (read.Status, seen));
        Assert.Equal(JobStatus.FAILED, missing.Status);
        Assert.Contains("no configuration value at Secrets:nope", missing.Attempts.Single().Container!.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("db-password", "db-password")]
    [InlineData("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-password", "db-password")]
    [InlineData("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-password:username::", "db-password")]
    [InlineData("arn:aws:ssm:us-east-1:123456789012:parameter/prod/db", "prod/db")]
    public void ConfigurationSecrets_KeyOfValueFrom(string valueFrom, string key) =>
        Assert.Equal(key, ConfigurationSecretResolver.KeyOf(valueFrom));

    /// <summary>
    /// BatchCore:Engine binds the engine's values (here the region in every ARN, a quota, a launch bucket) — onto this
    /// host's options only: the bucket's default is a shared instance, which binding must not change.
    /// </summary>
    [Fact]
    public async Task Configuration_EngineSection_BindsTheEnginesValues()
    {
        var config = new Dictionary<string, string?>
        {
            ["BatchCore:Engine:Region"] = "eu-west-1",
            ["BatchCore:Engine:Quotas:MaxJobQueues"] = "1",
            ["BatchCore:Engine:Provisioning:Ec2LaunchBucket:Capacity"] = "7",
        };
        using var host = Build(_ => { }, o => LocalQueue(o), config);
        using var guard = new CancellationTokenSource(HangGuard);
        await host.StartAsync(guard.Token);
        var engine = host.Services.GetRequiredService<BatchEngine>();

        var queue = (await engine.DescribeJobQueuesAsync(new() { JobQueues = ["q"] }, guard.Token)).JobQueues.Single();
        var second = await Assert.ThrowsAsync<BatchClientException>(() => engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "q2", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "local" }],
        }, guard.Token));
        var bound = host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<BatchCoreOptions>>().Value.Engine;
        await host.StopAsync(guard.Token);

        Assert.StartsWith("arn:aws:batch:eu-west-1:", queue.JobQueueArn, StringComparison.Ordinal);
        Assert.Contains("the quota of 1 is reached", second.Message, StringComparison.Ordinal);
        Assert.Equal(7, bound.Provisioning.Ec2LaunchBucket.Capacity);
        Assert.Equal(1_000, BatchCore.Provisioning.ProvisioningDefaults.Ec2LaunchBucket.Capacity);
    }

    /// <summary>The engine's objects and delegates are code only: a key for one fails the start naming it.</summary>
    [Theory]
    [InlineData("BatchCore:Engine:TimeProvider")]
    [InlineData("BatchCore:Engine:LogStore")]
    [InlineData("BatchCore:Engine:DriverFactories:docker")]
    [InlineData("BatchCore:Engine:HostProviders:slurm")]
    [InlineData("BatchCore:Engine:SecretResolver")]
    [InlineData("BatchCore:Engine:UnexpectedError")]
    [InlineData("BatchCore:Engine:Provisioning:Catalog")]
    public async Task Configuration_EnginesCodeOnlyOptions_FailTheStartNamingTheKey(string key)
    {
        using var host = Build(_ => { }, config: new Dictionary<string, string?> { [key] = "x" });

        var e = await Assert.ThrowsAsync<BatchCoreConfigurationException>(() => host.StartAsync());

        Assert.Contains($"'{key}'", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// The virtual clock (the simulator's and the tests') is code only, whatever the value: from configuration a hosted
    /// engine would run on a clock only code moves. The error names the key as the configuration wrote it.
    /// </summary>
    [Theory]
    [InlineData("BatchCore:Engine:VirtualTime", "true")]
    [InlineData("BatchCore:Engine:VirtualTime", "false")]
    [InlineData("BatchCore:Engine:virtualTime", "true")]
    [InlineData("BatchCore:Engine:VirtualStart", "2026-01-01T00:00:00Z")]
    public async Task Configuration_VirtualClock_FailsTheStartNamingTheKey(string key, string value)
    {
        using var host = Build(_ => { }, config: new Dictionary<string, string?> { [key] = value });

        var e = await Assert.ThrowsAsync<BatchCoreConfigurationException>(() => host.StartAsync());

        Assert.Equal(key, e.Path);
        Assert.StartsWith(key + ": code only: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(key.EndsWith("Start", StringComparison.Ordinal) ? "VirtualTime" : "BatchEngineOptions.VirtualTime", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Configuration_MissingPriority_FailsTheStartNamingThePath()
    {
        var config = new Dictionary<string, string?>
        {
            ["BatchCore:ComputeEnvironments:0:ComputeEnvironmentName"] = "ce",
            ["BatchCore:ComputeEnvironments:0:Type"] = "UNMANAGED",
            ["BatchCore:JobQueues:0:JobQueueName"] = "nopriority",
            ["BatchCore:JobQueues:0:ComputeEnvironmentOrder:0:Order"] = "1",
            ["BatchCore:JobQueues:0:ComputeEnvironmentOrder:0:ComputeEnvironment"] = "ce",
        };
        using var host = Build(_ => { }, config: config);

        var e = await Assert.ThrowsAsync<BatchCoreConfigurationException>(() => host.StartAsync());

        Assert.Equal("BatchCore:JobQueues:0 (jobQueueName nopriority)", e.Path);
        Assert.StartsWith("BatchCore:JobQueues:0 (jobQueueName nopriority): ", e.Message, StringComparison.Ordinal);
        Assert.Contains("priority", e.Message, StringComparison.Ordinal);
        Assert.IsType<BatchClientException>(e.InnerException);
    }

    [Fact]
    public async Task Configuration_ValueThatDoesNotConvert_FailsNamingTheKey()
    {
        var config = new Dictionary<string, string?> { ["BatchCore:JobQueues:0:Priority"] = "high" };
        using var host = Build(_ => { }, config: config);

        var e = await Assert.ThrowsAsync<BatchCoreConfigurationException>(() => host.StartAsync());

        Assert.Equal("BatchCore", e.Path);
        Assert.Contains("BatchCore:JobQueues:0:Priority", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Configuration_UnknownKey_FailsNamingIt()
    {
        var config = new Dictionary<string, string?> { ["BatchCore:JobQueues:0:Priorty"] = "1" };
        using var host = Build(_ => { }, config: config);

        var e = await Assert.ThrowsAsync<BatchCoreConfigurationException>(() => host.StartAsync());

        Assert.Contains("Priorty", e.Message, StringComparison.Ordinal);
    }

    /// <summary>An unknown key is named by its full path, list indices included, as a value that does not convert is.</summary>
    [Theory]
    [InlineData("BatchCore:ComputeEnvironments:0:hosts:1:bogus", "HostSpec")]
    [InlineData("BatchCore:JobQueues:1:ComputeEnvironmentOrder:0:Ordr", "ComputeEnvironmentOrder")]
    [InlineData("BatchCore:JobDefinitions:0:ContainerProperties:ResourceRequirements:1:Valu", "ResourceRequirement")]
    [InlineData("BatchCore:DrainTimeout:Seconds2", "TimeSpan")]
    [InlineData("BatchCore:Bogus", "BatchCoreOptions")]
    public async Task Configuration_UnknownKeyInAListItem_FailsNamingItsPath(string key, string type)
    {
        var config = new Dictionary<string, string?>
        {
            ["BatchCore:ComputeEnvironments:0:ComputeEnvironmentName"] = "ce",
            ["BatchCore:ComputeEnvironments:0:hosts:0:HostName"] = "h0",
            ["BatchCore:ComputeEnvironments:0:hosts:1:HostName"] = "h1",
            ["BatchCore:JobQueues:0:JobQueueName"] = "q",
            ["BatchCore:JobQueues:0:ComputeEnvironmentOrder:0:Order"] = "1",
            ["BatchCore:JobQueues:1:JobQueueName"] = "q1",
            ["BatchCore:JobQueues:1:ComputeEnvironmentOrder:0:Order"] = "1",
            ["BatchCore:JobDefinitions:0:ContainerProperties:ResourceRequirements:0:Type"] = "VCPU",
            ["BatchCore:JobDefinitions:0:ContainerProperties:ResourceRequirements:1:Type"] = "MEMORY",
            [key] = "1",
        };
        using var host = Build(_ => { }, config: config);

        var e = await Assert.ThrowsAsync<BatchCoreConfigurationException>(() => host.StartAsync());

        Assert.Equal(key, e.Path);
        Assert.Equal($"{key}: unknown key: {type} has no option '{key.Split(':')[^1]}'", e.Message);
    }

    [Fact]
    public async Task HealthCheck_IsHealthyWhileRunning_AndUnhealthyAfterStop()
    {
        using var host = Build(_ => { }, o => LocalQueue(o));
        using var guard = new CancellationTokenSource(HangGuard);
        await host.StartAsync(guard.Token);
        var health = host.Services.GetRequiredService<HealthCheckService>();

        var running = await health.CheckHealthAsync(guard.Token);
        await host.StopAsync(guard.Token);
        var stopped = await health.CheckHealthAsync(guard.Token);

        Assert.Equal(HealthStatus.Healthy, running.Status);
        Assert.Equal(1, running.Entries[BatchCoreHostingDefaults.HealthCheckName].Data["jobQueues"]);
        Assert.Equal(HealthStatus.Unhealthy, stopped.Status);
        Assert.Contains("stopped", stopped.Entries[BatchCoreHostingDefaults.HealthCheckName].Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task JobStateChanges_AreLogged()
    {
        var (jobId, lines) = await RunOneLoggedJobAsync(LogLevel.Trace);

        Assert.Contains(lines, l => l.Contains($"Job {jobId} (logged) RUNNABLE -> STARTING", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith($"Information: Job {jobId} (logged) SUCCEEDED", StringComparison.Ordinal));
    }

    [Fact]
    public async Task JobStateChanges_AtInformation_OnlyEndedJobsAreLogged()
    {
        var (jobId, lines) = await RunOneLoggedJobAsync(LogLevel.Information);

        Assert.Contains(lines, l => l.StartsWith($"Information: Job {jobId} (logged) SUCCEEDED", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains(" -> ", StringComparison.Ordinal)); // no transition watched, none logged
    }

    /// <summary>
    /// The ended-job line of a failed job carries its container's reason, which the generic "Essential container in task
    /// exited" hides (here a definition naming a handler nobody registered).
    /// </summary>
    [Fact]
    public async Task JobStateChanges_AFailedJobsLine_NamesItsContainersReason()
    {
        var (jobId, lines) = await RunOneLoggedJobAsync(LogLevel.Information, handler: "absent");

        Assert.Contains(lines, l => l == $"Information: Job {jobId} (logged) FAILED: {StatusReasons.Essential}: CannotStartContainerError: no handler named absent");
    }

    [Fact]
    public async Task JobStateChanges_AnArrayJobsLine_HasNoNullReason()
    {
        var (jobId, lines) = await RunOneLoggedJobAsync(LogLevel.Information, arraySize: 2);

        Assert.Contains($"Information: Job {jobId} (logged) SUCCEEDED", lines);
        Assert.Contains(lines, l => l.StartsWith($"Information: Job {jobId}:1 (logged) SUCCEEDED: ", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("(null)", StringComparison.Ordinal));
    }

    /// <summary>
    /// A host logging at <paramref name="minimum"/> runs one job of a definition naming <paramref name="handler"/> to its
    /// end (only <c>ok</c> is registered); returns the job and the log.
    /// </summary>
    private static async Task<(string JobId, IReadOnlyCollection<string> Lines)> RunOneLoggedJobAsync(LogLevel minimum, string handler = "ok", int arraySize = 0)
    {
        var provider = new ListLoggerProvider();
        using var host = Build(b => b.AddJobHandler("ok", (_, _) => Task.FromResult(0)), o =>
        {
            LocalQueue(o);
            o.AddHandlerJobDefinition("ok", handler);
        }, services: s => s.AddLogging(l => l.AddProvider(provider).SetMinimumLevel(minimum)));
        using var guard = new CancellationTokenSource(HangGuard);
        await host.StartAsync(guard.Token);
        var engine = host.Services.GetRequiredService<BatchEngine>();

        var job = await engine.SubmitJobAsync(new SubmitJobRequest
        {
            JobName = "logged", JobQueue = "q", JobDefinition = "ok", ArrayProperties = arraySize > 0 ? new ArrayProperties { Size = arraySize } : null,
        }, guard.Token);
        await engine.WaitForJobAsync(job.JobId, guard.Token);
        await WaitUntilAsync(() => Task.FromResult(provider.Lines.Any(l => l.Contains($"Job {job.JobId} (", StringComparison.Ordinal)
            && (l.Contains("SUCCEEDED", StringComparison.Ordinal) || l.Contains("FAILED", StringComparison.Ordinal)))), guard.Token);
        await host.StopAsync(guard.Token);
        return (job.JobId, provider.Lines);
    }

    /// <summary>
    /// An error the scheduling loop survives (here a driver whose Terminate throws on a job's timeout) is logged, and the
    /// health check turns Degraded, naming it.
    /// </summary>
    [Fact]
    public async Task UnexpectedLoopErrors_AreLogged_AndDegradeTheHealthCheck()
    {
        var provider = new ListLoggerProvider();
        using var host = Build(_ => { }, o =>
        {
            o.Engine = new BatchEngineOptions
            {
                AllowShortTimeouts = true,
                DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>> { ["faulty"] = _ => new TerminateThrowingDriver() },
            };
            o.ComputeEnvironments.Add(new CreateComputeEnvironmentRequest
            {
                ComputeEnvironmentName = "faulty",
                Type = CEType.UNMANAGED,
                Hosts = [new HostSpec { HostName = "f0", Driver = "faulty", Vcpus = 1, MemoryMiB = 1024 }],
            });
            o.AddJobQueue("q", 1, "faulty");
            o.JobDefinitions.Add(new RegisterJobDefinitionRequest
            {
                JobDefinitionName = "slow",
                Type = JobDefinitionType.container,
                ContainerProperties = new ContainerProperties
                {
                    Command = ["run"], ResourceRequirements = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, "128")],
                },
                Timeout = new JobTimeout { AttemptDurationSeconds = 1 },
            });
            o.DrainTimeout = TimeSpan.Zero;
            o.TerminateTimeout = TimeSpan.Zero;
        }, services: s => s.AddLogging(l => l.AddProvider(provider)));
        using var guard = new CancellationTokenSource(HangGuard);
        await host.StartAsync(guard.Token);
        var engine = host.Services.GetRequiredService<BatchEngine>();

        await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "slow" }, guard.Token);
        await WaitUntilAsync(() => Task.FromResult(provider.Lines.Any(l => l.Contains("terminate broke", StringComparison.Ordinal))), guard.Token);
        var health = (await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(guard.Token))
            .Entries[BatchCoreHostingDefaults.HealthCheckName];
        await host.StopAsync(guard.Token);

        Assert.Equal(HealthStatus.Degraded, health.Status);
        Assert.Equal("the BatchCore scheduling loop survived an unexpected error: terminate broke", health.Description);

        Assert.Contains(provider.Lines, l => l.StartsWith("Error: BatchCore: the scheduling loop survived an unexpected error", StringComparison.Ordinal)
            && l.EndsWith("| terminate broke", StringComparison.Ordinal));
    }

    /// <summary>Starts every attempt at once; its Terminate throws (a driver bug).</summary>
    private sealed class TerminateThrowingDriver : HostDriver
    {
        public override string Kind => "faulty";

        public override void Launch(AttemptLaunch launch, IAttemptEventSink sink) => sink.Started(launch.Token);

        public override void Terminate(AttemptToken token, TimeSpan gracePeriod) => throw new InvalidOperationException("terminate broke");
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, CancellationToken guard)
    {
        while (!await condition())
        {
            await Task.Delay(10, guard);
        }
    }

    /// <summary>A scoped handler that counts its runs and its scope's disposals.</summary>
    private sealed class CountingHandler(CountingHandler.Tally tally) : IBatchJobHandler, IDisposable
    {
        public Task<int> RunAsync(BatchJobContext context, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref tally.RunCount);
            return Task.FromResult(0);
        }

        public void Dispose() => Interlocked.Increment(ref tally.DisposeCount);

        public sealed class Tally
        {
            public int RunCount;
            public int DisposeCount;

            public int Runs => Volatile.Read(ref RunCount);

            public int Disposed => Volatile.Read(ref DisposeCount);
        }
    }

    private sealed class ListLoggerProvider : ILoggerProvider
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Lines { get; } = new();

        public ILogger CreateLogger(string categoryName) => new ListLogger(this);

        public void Dispose()
        {
        }

        private sealed class ListLogger(ListLoggerProvider owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Lines.Enqueue(logLevel + ": " + formatter(state, exception) + (exception is null ? "" : " | " + exception.Message));
        }
    }
}
