using BatchCore.Hosts;
using BatchCore.Hosts.InProcess;
using BatchCore.Logs;
using BatchCore.Model;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Hangfire;
using Hangfire.InMemory;
using Quartz;

namespace BatchCore.Benchmarks.Peers;

/// <summary>
/// No-op jobs per second, end to end, against the peers: <see cref="Jobs"/> no-op jobs submitted and awaited to
/// completion per operation.
/// <list type="bullet">
/// <item>BatchCore: in-process handlers (<see cref="InProcessHostDriver"/>) on an UNMANAGED compute environment, through
/// the whole engine (SUBMITTED → … → SUCCEEDED): one array job of <see cref="Jobs"/> children, or <see cref="Jobs"/>
/// individual SubmitJob calls. Two host shapes: 2 vCPU (this VM's cores: 2 one-vCPU jobs at a time, like the peers' 2
/// workers) and 10,000 vCPU (admission is not the limit).</item>
/// <item>Quartz.NET 4.7.3, RAMJobStore, maxConcurrency 2: one durable job, <see cref="Jobs"/> × TriggerJob (its fastest
/// path in <c>shared/notes/limits-measured.md</c>).</item>
/// <item>Hangfire 1.8.25 + Hangfire.InMemory 1.0.0, WorkerCount 2: <see cref="Jobs"/> × Enqueue.</item>
/// </list>
/// Run: <c>dotnet run -c Release --project bench/BatchCore.Benchmarks -- --filter '*PeerThroughputBenchmarks*'</c>
/// Enough warm-up iterations for steady state: tiered compilation leaves a method at tier 0 until it has been called
/// 30 times and no new method was compiled for 100 ms, so the first second of a fresh process runs unoptimised code
/// (the engine's per-cycle loops most of all). Every system measured here gets the same warm-up.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 150, iterationCount: 20, invocationCount: 1)]
public class PeerThroughputBenchmarks
{
    /// <summary>Jobs per operation (AWS's largest array).</summary>
    public const int Jobs = 10_000;

    private static readonly Dictionary<string, string> NoParameters = new();

    private BatchEngine _narrow = null!;
    private BatchEngine _wide = null!;
    private IScheduler _quartz = null!;
    private JobKey _quartzJob = null!;
    private BackgroundJobServer _hangfireServer = null!;
    private BackgroundJobClient _hangfireClient = null!;
    private InMemoryStorage _hangfireStorage = null!;

    // Each system is set up only for its own benchmarks: on 2 cores, an idle peer's threads would tax the others.

    [GlobalSetup(Targets = [nameof(BatchCoreArrayNarrow), nameof(BatchCoreSubmitsNarrow)])]
    public async Task SetupNarrow() => _narrow = await CreateEngineAsync(vcpus: 2);

    [GlobalCleanup(Targets = [nameof(BatchCoreArrayNarrow), nameof(BatchCoreSubmitsNarrow)])]
    public Task CleanupNarrow() => _narrow.StopAsync(TimeSpan.FromSeconds(10));

    [GlobalSetup(Targets = [nameof(BatchCoreArrayWide), nameof(BatchCoreSubmitsWide)])]
    public async Task SetupWide() => _wide = await CreateEngineAsync(vcpus: 10_000);

    [GlobalCleanup(Targets = [nameof(BatchCoreArrayWide), nameof(BatchCoreSubmitsWide)])]
    public Task CleanupWide() => _wide.StopAsync(TimeSpan.FromSeconds(10));

    [GlobalSetup(Target = nameof(Quartz))]
    public async Task SetupQuartz()
    {
        _quartz = await QuartzSchedulerBuilder.Create().UseProperties(new System.Collections.Specialized.NameValueCollection
        {
            ["quartz.scheduler.instanceName"] = "bench",
            ["quartz.threadPool.maxConcurrency"] = "2",
            ["quartz.jobStore.type"] = "Quartz.Simpl.RAMJobStore, Quartz",
        }).BuildScheduler();
        var job = JobBuilder.Create<QuartzNoOp>().WithIdentity("noop").StoreDurably().Build();
        _quartzJob = job.Key;
        await _quartz.AddJob(job, AddJobOptions.Replacing);
        await _quartz.Start();
    }

    [GlobalCleanup(Target = nameof(Quartz))]
    public Task CleanupQuartz() => _quartz.Shutdown(waitForJobsToComplete: true).AsTask();

    [GlobalSetup(Target = nameof(Hangfire))]
    public void SetupHangfire()
    {
        _hangfireStorage = new InMemoryStorage();
        _hangfireClient = new BackgroundJobClient(_hangfireStorage);
        _hangfireServer = new BackgroundJobServer(new BackgroundJobServerOptions { WorkerCount = 2 }, _hangfireStorage);
    }

    [GlobalCleanup(Target = nameof(Hangfire))]
    public void CleanupHangfire()
    {
        _hangfireServer.Dispose();
        _hangfireStorage.Dispose();
    }

    private static async Task<BatchEngine> CreateEngineAsync(double vcpus)
    {
        var logs = new InMemoryLogStore();
        var handlers = new InProcessHandlerRegistry().Add("noop", static (_, _) => Task.FromResult(0));
        var engine = new BatchEngine(new BatchEngineOptions
        {
            LogStore = logs,
            Quotas = new BatchQuotas { MaxSubmittedJobs = int.MaxValue },
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>
            {
                [InProcessHostDriverDefaults.Kind] = InProcessHostDriver.SharedFactory(new InProcessHostDriverOptions { HandlerResolver = handlers.Resolve, LogStore = logs }),
            },
        });
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "local",
            Type = CEType.UNMANAGED,
            Hosts = [new HostSpec { HostName = "local", Driver = InProcessHostDriverDefaults.Kind, Vcpus = vcpus, MemoryMiB = (int)Math.Min(int.MaxValue / 2, vcpus * 128 + 64) }],
        });
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "q",
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "local" }],
        });
        await engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "noop",
            Type = JobDefinitionType.container,
            ContainerProperties = new ContainerProperties { ResourceRequirements = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, "128")] },
            Extensions = new JobDefinitionExtensions { Handler = "noop" },
        });
        return engine;
    }

    // ---- peers ----------------------------------------------------------------------------------------------------

    [Benchmark(Baseline = true, Description = "Quartz.NET: 1 durable job + N × TriggerJob, 2 threads")]
    public async Task Quartz()
    {
        var done = QuartzNoOp.Expect(Jobs);
        for (var i = 0; i < Jobs; i++)
        {
            await _quartz.TriggerJob(_quartzJob);
        }

        await done;
    }

    [Benchmark(Description = "Hangfire+InMemory: N × Enqueue, 2 workers")]
    public async Task Hangfire()
    {
        var done = HangfireNoOp.Expect(Jobs);
        for (var i = 0; i < Jobs; i++)
        {
            _hangfireClient.Enqueue(() => HangfireNoOp.Run());
        }

        await done;
    }

    // ---- BatchCore --------------------------------------------------------------------------------------------------

    [Benchmark(Description = "BatchCore: array job of N, host 2 vCPU")]
    public Task BatchCoreArrayNarrow() => ArrayAsync(_narrow);

    [Benchmark(Description = "BatchCore: array job of N, host 10k vCPU")]
    public Task BatchCoreArrayWide() => ArrayAsync(_wide);

    [Benchmark(Description = "BatchCore: N × SubmitJob, host 2 vCPU")]
    public Task BatchCoreSubmitsNarrow() => SubmitsAsync(_narrow);

    [Benchmark(Description = "BatchCore: N × SubmitJob, host 10k vCPU")]
    public Task BatchCoreSubmitsWide() => SubmitsAsync(_wide);

    private static async Task ArrayAsync(BatchEngine engine)
    {
        var parent = await engine.SubmitJobAsync(new SubmitJobRequest
        {
            JobName = "array",
            JobQueue = "q",
            JobDefinition = "noop",
            ArrayProperties = new ArrayProperties { Size = Jobs },
        });
        var done = await engine.WaitForJobAsync(parent.JobId);
        if (done.Status != JobStatus.SUCCEEDED)
        {
            throw new InvalidOperationException("array job " + done.Status);
        }
    }

    private static async Task SubmitsAsync(BatchEngine engine)
    {
        var target = engine.Statistics.Succeeded + Jobs;
        var request = new SubmitJobRequest { JobName = "single", JobQueue = "q", JobDefinition = "noop", Parameters = NoParameters };
        var submits = new Task[Jobs];
        for (var i = 0; i < Jobs; i++)
        {
            submits[i] = engine.SubmitJobAsync(request);
        }

        await Task.WhenAll(submits);
        // Every job SUCCEEDED once the engine counted them; poll the counter rather than add a waiter per job.
        while (engine.Statistics.Succeeded < target)
        {
            await Task.Delay(1);
        }
    }

    /// <summary>Quartz's no-op job: counts itself.</summary>
    public sealed class QuartzNoOp : IJob
    {
        private static Counter s_counter = new(0);

        public static Task Expect(int n) => (s_counter = new Counter(n)).Done;

        public ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
        {
            s_counter.Hit();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>Hangfire's no-op job: counts itself.</summary>
    public static class HangfireNoOp
    {
        private static Counter s_counter = new(0);

        public static Task Expect(int n) => (s_counter = new Counter(n)).Done;

        public static void Run() => s_counter.Hit();
    }

    private sealed class Counter(int target)
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _count;

        public Task Done => _done.Task;

        public void Hit()
        {
            if (Interlocked.Increment(ref _count) == target)
            {
                _done.TrySetResult();
            }
        }
    }
}
