using BatchCore;
using BatchCore.Journal;
using BatchCore.Model;

// The crash test's child: runs an engine with a journal in the given directory and submits jobs in a tight loop,
// printing each acknowledged job id (one per line, flushed) — the parent kills it with SIGKILL at random moments.
// "reattach <dir> <process|docker> <endpoint|-> <image|-> <command...>": runs one job on a real host, prints
// "running <jobId>" once it is RUNNING (journaled), then waits to be killed.
if (args[0] == "reattach")
{
    await ReattachChild.RunAsync(args[1..]);
    return;
}

var dir = args[0];
var engine = new BatchEngine(new BatchEngineOptions
{
    Journal = new JournalOptions { Durability = Durability.Journal, StateDirectory = dir },
});
Console.WriteLine($"recovered {engine.Recovery?.Jobs ?? 0}");
if ((await engine.DescribeJobQueuesAsync(new() { JobQueues = ["q"] })).JobQueues.Count == 0)
{
    await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
    {
        ComputeEnvironmentName = "ce",
        Type = CEType.UNMANAGED,
        Hosts = [new HostSpec { HostName = "h", Vcpus = 4, MemoryMiB = 8192 }],
    });
    await engine.CreateJobQueueAsync(new CreateJobQueueRequest { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
    await engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
    {
        JobDefinitionName = "d",
        Type = "container",
        ContainerProperties = new() { Image = "x", ResourceRequirements = [new("VCPU", "1"), new("MEMORY", "512")] },
        RetryStrategy = new RetryStrategy { Attempts = 3 },
    });
    Console.WriteLine("created");
}

var i = 0;
var stdout = Console.Out;
while (true)
{
    var r = await engine.SubmitJobAsync(new SubmitJobRequest
    {
        JobName = "j" + i++,
        JobQueue = "q",
        JobDefinition = "d",
        Extensions = new SubmitJobExtensions { SimulatedRunTimeSeconds = i % 3 == 0 ? 0.05 : 0 },
    });
    stdout.WriteLine("ack " + r.JobId);
    stdout.Flush();
}
