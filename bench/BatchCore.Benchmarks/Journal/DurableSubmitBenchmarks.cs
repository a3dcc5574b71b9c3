using BatchCore.Journal;
using BatchCore.Model;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;

namespace BatchCore.Benchmarks.Journal;

/// <summary>
/// Durable submissions per second: <see cref="Submissions"/> SubmitJob calls from <see cref="Submitters"/> concurrent submitters with the journal
/// (group commit, fsync per loop batch) against durability None (baseline). Jobs never run (no host fits them), so the
/// measurement is submission and journaling only.
/// Enough warm-up iterations for steady state: tiered compilation leaves a method at tier 0 until it has been called
/// 30 times and no new method was compiled for 100 ms, so the first second of a fresh process runs unoptimised code
/// (the engine's per-cycle loops most of all). Every system measured here gets the same warm-up.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 6, iterationCount: 8, invocationCount: 1)]
public class DurableSubmitBenchmarks
{
    private BatchEngine _engine = null!;
    private string? _dir;

    [Params(200_000)]
    public int Submissions { get; set; }

    /// <summary>Concurrent submitters: group commit shares one fsync among the submissions waiting together.</summary>
    [Params(8, 512)]
    public int Submitters { get; set; }

    [IterationSetup(Target = nameof(InMemory))]
    public void SetupInMemory() => _engine = Create(null);

    [IterationSetup(Target = nameof(Journaled))]
    public void SetupJournaled()
    {
        _dir = Path.Combine(Path.GetTempPath(), "bc-bench-journal-" + Guid.NewGuid().ToString("N"));
        _engine = Create(_dir);
    }

    [IterationCleanup]
    public void Cleanup()
    {
        _engine.StopAsync(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
        if (_dir is not null && Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }

        _dir = null;
    }

    [Benchmark(Baseline = true, Description = "SubmitJob, durability None")]
    public Task InMemory() => SubmitAll();

    [Benchmark(Description = "SubmitJob, journal (fsync per group commit)")]
    public Task Journaled() => SubmitAll();

    private async Task SubmitAll()
    {
        var per = Submissions / Submitters;
        var tasks = new Task[Submitters];
        for (var s = 0; s < Submitters; s++)
        {
            tasks[s] = Task.Run(async () =>
            {
                for (var i = 0; i < per; i++)
                {
                    await _engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "d" });
                }
            });
        }

        await Task.WhenAll(tasks);
    }

    private static BatchEngine Create(string? dir)
    {
        var engine = new BatchEngine(new BatchEngineOptions
        {
            Journal = dir is null ? new() : new JournalOptions { Durability = Durability.Journal, StateDirectory = dir },
            Quotas = new BatchQuotas { MaxSubmittedJobs = int.MaxValue },
        });
        engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.UNMANAGED,
            Hosts = [new HostSpec { HostName = "h", Vcpus = 1, MemoryMiB = 1024 }],
        }).GetAwaiter().GetResult();
        engine.CreateJobQueueAsync(new CreateJobQueueRequest { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] }).GetAwaiter().GetResult();
        engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "d",
            Type = "container",
            // 64 vCPUs: no host fits, so jobs stay RUNNABLE and only submission is measured.
            ContainerProperties = new ContainerProperties { Image = "x", ResourceRequirements = [new("VCPU", "64"), new("MEMORY", "512")] },
        }).GetAwaiter().GetResult();
        return engine;
    }
}
