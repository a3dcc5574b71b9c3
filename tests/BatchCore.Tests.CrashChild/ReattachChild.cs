using BatchCore;
using BatchCore.Hosts;
using BatchCore.Hosts.Docker;
using BatchCore.Hosts.Process;
using BatchCore.Journal;
using BatchCore.Logs;
using BatchCore.Model;

/// <summary>The re-attach crash tests' child: one job on a real host, killed while it runs.</summary>
internal static class ReattachChild
{
    public static async Task RunAsync(string[] args)
    {
        var (dir, kind, endpoint, image, command) = (args[0], args[1], args[2], args[3], args[4..]);
        await using var engine = new BatchEngine(Options(dir, endpoint));
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.UNMANAGED,
            Hosts = [new HostSpec { HostName = "h", Driver = kind, Vcpus = 2, MemoryMiB = 4096 }],
        });
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "d",
            Type = "container",
            ContainerProperties = new() { Image = image == "-" ? null : image, Command = command, ResourceRequirements = [new("VCPU", "1"), new("MEMORY", "256")] },
            RetryStrategy = new RetryStrategy { Attempts = 2 },
        });
        var job = await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "d" });
        while ((await engine.DescribeJobsAsync([job.JobId]))[0].Status != JobStatus.RUNNING)
        {
            await Task.Delay(20);
        }

        Console.WriteLine("running " + job.JobId);
        Console.Out.Flush();
        await Task.Delay(Timeout.Infinite);
    }

    /// <summary>The engine options the child and the restarted engine share: a journal and real host drivers.</summary>
    public static BatchEngineOptions Options(string dir, string dockerEndpoint)
    {
        var logs = new InMemoryLogStore();
        return new BatchEngineOptions
        {
            LogStore = logs,
            Journal = new JournalOptions { Durability = Durability.Journal, StateDirectory = dir },
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>(StringComparer.Ordinal)
            {
                ["process"] = _ => new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = logs }),
                ["docker"] = _ => new DockerHostDriver(new DockerHostDriverOptions { LogStore = logs, Endpoint = dockerEndpoint, PullMissingImages = false }),
            },
        };
    }
}
