using System.Diagnostics;
using BatchCore.Hosts;
using BatchCore.Hosts.InProcess;
using BatchCore.Logs;
using BatchCore.Model;

namespace BatchCore.Benchmarks.Peers;

/// <summary>
/// <c>peers-profile [rounds]</c>: where the time of an in-process array job goes. Runs the same 10,000-child array job
/// on an in-process host and on a simulated host (same engine, no driver work), and times submit → all SUCCEEDED.
/// </summary>
public static class PeerProfile
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rounds = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 5;
        foreach (var driver in new[] { "inprocess", "simulated" })
        {
            foreach (var threshold in new[] { 32, 0 })
            {
                var engine = await CreateAsync(driver, threshold);
                for (var r = 0; r < rounds; r++)
                {
                    var sw = Stopwatch.StartNew();
                    var parent = await engine.SubmitJobAsync(new SubmitJobRequest
                    {
                        JobName = "a", JobQueue = "q", JobDefinition = "noop", ArrayProperties = new ArrayProperties { Size = PeerThroughputBenchmarks.Jobs },
                    });
                    var done = await engine.WaitForJobAsync(parent.JobId);
                    sw.Stop();
                    Console.WriteLine($"{driver,-10} batchThreshold={threshold,-3} round {r}: {done.Status} {PeerThroughputBenchmarks.Jobs / sw.Elapsed.TotalSeconds,10:N0} jobs/s ({sw.Elapsed.TotalMilliseconds:N0} ms)");
                }

                await engine.StopAsync(TimeSpan.FromSeconds(5));
            }
        }

        // The engine alone: virtual clock, simulated host, one thread, no driver and no thread hops.
        for (var r = 0; r < rounds; r++)
        {
            var engine = new BatchEngine(new BatchEngineOptions { VirtualTime = true, Quotas = new BatchQuotas { MaxSubmittedJobs = int.MaxValue } });
            await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
            {
                ComputeEnvironmentName = "local",
                Type = CEType.UNMANAGED,
                Hosts = [new HostSpec { HostName = "local", Vcpus = 10_000, MemoryMiB = 10_000 * 128 + 64 }],
            });
            await engine.CreateJobQueueAsync(new CreateJobQueueRequest
            {
                JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "local" }],
            });
            await engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
            {
                JobDefinitionName = "noop",
                Type = JobDefinitionType.container,
                ContainerProperties = new ContainerProperties { Image = "x", ResourceRequirements = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, "128")] },
            });
            var sw = Stopwatch.StartNew();
            var parent = await engine.SubmitJobAsync(new SubmitJobRequest
            {
                JobName = "a", JobQueue = "q", JobDefinition = "noop", ArrayProperties = new ArrayProperties { Size = PeerThroughputBenchmarks.Jobs },
            });
            var submitted = sw.Elapsed;
            await engine.RunUntilIdleAsync();
            sw.Stop();
            var status = (await engine.DescribeJobsAsync([parent.JobId])).Single().Status;
            Console.WriteLine($"engine only (virtual time, simulated) round {r}: {status} {PeerThroughputBenchmarks.Jobs / sw.Elapsed.TotalSeconds,10:N0} jobs/s ({sw.Elapsed.TotalMilliseconds:N0} ms, submit {submitted.TotalMilliseconds:N1} ms)");
            await engine.StopAsync(TimeSpan.FromSeconds(5));
        }

        return 0;
    }

    private static async Task<BatchEngine> CreateAsync(string driver, int threshold)
    {
        var logs = new InMemoryLogStore();
        var handlers = new InProcessHandlerRegistry().Add("noop", static (_, _) => Task.FromResult(0));
        var engine = new BatchEngine(new BatchEngineOptions
        {
            LogStore = logs,
            BatchPlacementThreshold = threshold,
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
            Hosts = [new HostSpec { HostName = "local", Driver = driver, Vcpus = 10_000, MemoryMiB = 10_000 * 128 + 64 }],
        });
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "local" }],
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
}
