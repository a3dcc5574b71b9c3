using BatchCore.Hosts;
using BatchCore.Hosts.InProcess;
using BatchCore.Model;
using BatchCore.Provisioning;

namespace BatchCore.Tests.Placement;

/// <summary>
/// The driver-kind filter on managed environments: judged by the driver they launch hosts with, before they have any
/// (a handler job must not make an environment of process hosts scale out, nor a command job one of in-process hosts).
/// </summary>
public sealed class DriverKindTests
{
    private static async Task<BatchEngine> ManagedAsync(string managedDriver)
    {
        var engine = TestEngine.Create(new BatchEngineOptions
        {
            Provisioning = new ProvisioningOptions { ManagedHostDriver = managedDriver },
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>
            {
                [InProcessHostDriverDefaults.Kind] = InProcessHostDriver.SharedFactory(new InProcessHostDriverOptions { HandlerResolver = _ => null, LogStore = new BatchCore.Logs.InMemoryLogStore() }),
            },
        });
        await engine.CreateComputeEnvironmentAsync(TestEngine.ManagedEc2());
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "m" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        return engine;
    }

    [Fact]
    public async Task ManagedEnvironmentOfInProcessHosts_LaunchesNothingForACommandJob_WhichWaitsWithTheReason()
    {
        await using var engine = await ManagedAsync(InProcessHostDriverDefaults.Kind);

        var job = await engine.SubmitJobAsync(TestEngine.Job());
        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(5));

        var detail = await engine.DescribeAsync(job.JobId);
        Assert.Equal(JobStatus.RUNNABLE, detail.Status);
        Assert.StartsWith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT", detail.StatusReason, StringComparison.Ordinal);
        Assert.Equal(0, engine.Statistics.HostsLaunched);
    }

    [Fact]
    public async Task ManagedEnvironmentOfSimulatedHosts_RunsTheSameJob()
    {
        await using var engine = await ManagedAsync("simulated");

        var job = await engine.SubmitJobAsync(TestEngine.Job());
        await engine.RunUntilIdleAsync();

        Assert.Equal(JobStatus.SUCCEEDED, (await engine.DescribeAsync(job.JobId)).Status);
        Assert.True(engine.Statistics.HostsLaunched > 0);
    }

    /// <summary>
    /// An unmanaged environment whose hosts mix in-process handlers and commands is refused, naming the field and the way
    /// out (two environments in one queue, as in <c>MixedQueue_HandlerJobsRunOnInProcessHosts_CommandJobsOnProcessHosts</c>):
    /// placement judges an environment's kind as a whole. Simulated hosts run both and mix with either.
    /// </summary>
    [Fact]
    public async Task UnmanagedEnvironmentMixingInProcessAndCommandHosts_IsRefused_AndNothingIsCreated()
    {
        var logs = new BatchCore.Logs.InMemoryLogStore();
        await using var process = new BatchCore.Hosts.Process.ProcessHostDriver(new BatchCore.Hosts.Process.ProcessHostDriverOptions { LogStore = logs });
        await using var engine = TestEngine.Create(new BatchEngineOptions
        {
            LogStore = logs,
            DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>
            {
                [InProcessHostDriverDefaults.Kind] = InProcessHostDriver.SharedFactory(new InProcessHostDriverOptions { HandlerResolver = _ => null, LogStore = logs }),
                ["process"] = _ => process,
            },
        });
        var ct = TestContext.Current.CancellationToken;
        CreateComputeEnvironmentRequest Request(string name, params string[] drivers) => new()
        {
            ComputeEnvironmentName = name,
            Type = CEType.UNMANAGED,
            Hosts = [.. drivers.Select((d, i) => new HostSpec { HostName = name + "-" + i, Driver = d, Vcpus = 1, MemoryMiB = 1024 })],
        };

        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.CreateComputeEnvironmentAsync(Request("mixed", InProcessHostDriverDefaults.Kind, "process"), ct));
        Assert.Contains("hosts must all run in-process handlers (driver inprocess) or all run commands (driver process), not both", e.Message, StringComparison.Ordinal);
        Assert.Empty((await engine.DescribeComputeEnvironmentsAsync(ct: ct)).ComputeEnvironments);

        await engine.CreateComputeEnvironmentAsync(Request("handlers", InProcessHostDriverDefaults.Kind, "simulated"), ct);
        await engine.CreateComputeEnvironmentAsync(Request("commands", "process", "simulated", "process"), ct);
        Assert.Equal(2, (await engine.DescribeComputeEnvironmentsAsync(ct: ct)).ComputeEnvironments.Count);
    }
}
