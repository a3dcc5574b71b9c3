using System.Globalization;
using BatchCore.Hosts;
using BatchCore.Hosts.Slurm;
using BatchCore.Logs;
using BatchCore.Model;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using CliWrap;
using CliWrap.Buffered;

namespace BatchCore.Benchmarks.Slurm;

/// <summary>
/// Jobs per second onto a 4-node Slurm cluster: <see cref="Jobs"/> trivial jobs (<c>true</c>, 1 CPU, 128 MiB) through
/// BatchCore (one array job on an UNMANAGED CE with <c>provider: slurm</c>; each child is an sbatch pinned to the node
/// BatchCore chose) against plain <c>sbatch</c> of the same jobs, submitted 4 at a time (the driver's command
/// concurrency) and waited for with squeue (baseline). Needs a cluster at SLURM_CONF:
/// <c>eval "$(sudo bench/slurm-cluster.sh start /tmp/bcbench)"</c>, then
/// <c>dotnet run -c Release --project bench/BatchCore.Benchmarks -- --filter '*SlurmThroughputBenchmarks*'</c>.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(InProcessMonitoring))]
public class SlurmThroughputBenchmarks
{
    /// <summary>
    /// In process (no generated project to build: a loaded 2-core machine timed out building it), whole invocations
    /// measured (Monitoring: each one is seconds of real cluster work).
    /// </summary>
    private sealed class InProcessMonitoring : ManualConfig
    {
        public InProcessMonitoring() => AddJob(Job.Default.WithStrategy(RunStrategy.Monitoring).WithLaunchCount(1)
            .WithWarmupCount(1).WithIterationCount(3).WithToolchain(InProcessEmitToolchain.Instance));
    }

    /// <summary>Jobs per invocation.</summary>
    public const int Jobs = 100;

    /// <summary>Quick mode (CI): skipped unless SLURM_CONF names a running benchmark cluster's slurm.conf.</summary>
    public static string? QuickSkipReason =>
        Environment.GetEnvironmentVariable("SLURM_CONF") is { } conf && File.Exists(conf)
            ? null
            : "no Slurm cluster: SLURM_CONF must name its slurm.conf (bench/slurm-cluster.sh start DIR)";

    private static readonly string SlurmConf = Environment.GetEnvironmentVariable("SLURM_CONF")
        ?? throw new InvalidOperationException("SLURM_CONF must name the benchmark cluster's slurm.conf (bench/slurm-cluster.sh start DIR)");

    private readonly InMemoryLogStore _logs = new();
    private BatchEngine _engine = null!;
    private string _shared = "";

    [GlobalSetup]
    public void Setup()
    {
        _shared = Directory.CreateTempSubdirectory("bc-slurm-bench-").FullName;
        _engine = new BatchEngine(new BatchEngineOptions
        {
            LogStore = _logs,
            HostProviders = new Dictionary<string, Func<CreateComputeEnvironmentRequest, HostProvider>>
            {
                [SlurmHostProvider.Name] = SlurmHostProvider.Factory(_logs),
            },
        });
        Run(async () =>
        {
            await _engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
            {
                ComputeEnvironmentName = "slurm",
                Type = CEType.UNMANAGED,
                Provider = SlurmHostProvider.Name,
                ProviderSettings = new Dictionary<string, string> { ["slurmConf"] = SlurmConf, ["sharedDirectory"] = _shared },
            });
            await _engine.CreateJobQueueAsync(new CreateJobQueueRequest
            {
                JobQueueName = "q",
                Priority = 1,
                ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "slurm" }],
            });
            await _engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
            {
                JobDefinitionName = "noop",
                Type = JobDefinitionType.container,
                ContainerProperties = new ContainerProperties
                {
                    Command = ["true"],
                    ResourceRequirements = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, "128")],
                },
            });
            while ((await _engine.Run(c => c.AcceptingHostNames("slurm"), CancellationToken.None)).Count < 4)
            {
                await Task.Delay(100);
            }
        });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _engine.StopAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        Directory.Delete(_shared, recursive: true);
    }

    private static void Run(Func<Task> body) => body().GetAwaiter().GetResult();

    [Benchmark(Baseline = true, Description = "plain sbatch + squeue")]
    public async Task PlainSbatch()
    {
        var ids = new List<string>(Jobs);
        using var gate = new SemaphoreSlim(SlurmDefaults.MaxConcurrentCommands);
        var submits = new Task<string>[Jobs];
        for (var i = 0; i < Jobs; i++)
        {
            submits[i] = SubmitAsync(gate);
        }

        ids.AddRange(await Task.WhenAll(submits));
        var list = string.Join(',', ids);
        while (true)
        {
            var left = await Slurm("squeue", "--noheader", "--states=PENDING,RUNNING,COMPLETING,CONFIGURING", "--jobs=" + list, "--format=%i");
            if (left.Trim().Length == 0)
            {
                return;
            }

            await Task.Delay(SlurmDefaults.PollInterval);
        }
    }

    private static async Task<string> SubmitAsync(SemaphoreSlim gate)
    {
        await gate.WaitAsync();
        try
        {
            return (await Slurm("sbatch", "--parsable", "--cpus-per-task=1", "--mem=128", "--output=/dev/null", "--wrap=true")).Trim();
        }
        finally
        {
            gate.Release();
        }
    }

    private static async Task<string> Slurm(string command, params string[] args)
    {
        var result = await Cli.Wrap(Path.Combine(SlurmDefaults.BinDirectory, command)).WithArguments(args)
            .WithEnvironmentVariables(e => e.Set("SLURM_CONF", SlurmConf)).ExecuteBufferedAsync();
        return result.StandardOutput;
    }

    [Benchmark(Description = "BatchCore array job on provider: slurm")]
    public async Task BatchCoreArray()
    {
        var job = await _engine.SubmitJobAsync(new SubmitJobRequest
        {
            JobName = "bench",
            JobQueue = "q",
            JobDefinition = "noop",
            ArrayProperties = new() { Size = Jobs },
        });
        var done = await _engine.WaitForJobAsync(job.JobId);
        if (done.Status != JobStatus.SUCCEEDED)
        {
            throw new InvalidOperationException("benchmark job " + done.Status + ": " + done.StatusReason
                + string.Create(CultureInfo.InvariantCulture, $" ({done.ArrayProperties?.StatusSummary?.Count})"));
        }
    }
}
