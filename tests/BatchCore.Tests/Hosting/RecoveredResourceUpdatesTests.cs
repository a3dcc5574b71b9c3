using BatchCore.Hosting;
using BatchCore.Model;
using BatchCore.Tests.Provisioning;

namespace BatchCore.Tests.Hosting;

/// <summary>
/// What a restart of the Generic Host applies to resources recovered from the journal: compared against what the engine
/// describes (defaults filled in, names turned into ARNs), an unchanged configuration is no update at all.
/// </summary>
public sealed class RecoveredResourceUpdatesTests
{
    private static CreateComputeEnvironmentRequest Managed(ComputeResource resources) => new()
    {
        ComputeEnvironmentName = "ce",
        Type = CEType.MANAGED,
        ComputeResources = resources with { Subnets = ["subnet-1"], SecurityGroupIds = ["sg-1"], InstanceRole = "ecsInstanceRole" },
    };

    private static async Task<(ComputeEnvironmentDetail Ce, JobQueueDetail Queue)> DescribeAsync(BatchEngine engine) =>
        ((await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments.Single(), (await engine.DescribeJobQueuesAsync()).JobQueues.Single());

    private static CreateJobQueueRequest Queue() => new()
    {
        JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
    };

    [Fact]
    public async Task UnchangedConfiguration_IsNoUpdate()
    {
        var resources = ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, max: 64, min: 2);
        await using var engine = await ManagedCe.CreateAsync(resources);
        var (ce, queue) = await DescribeAsync(engine);

        Assert.Null(RecoveredResourceUpdates.ComputeEnvironment(Managed(resources), ce, out _));
        Assert.Null(RecoveredResourceUpdates.JobQueue(Queue(), queue));
        Assert.Null(RecoveredResourceUpdates.JobQueue(Queue() with { ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = ce.ComputeEnvironmentArn }] }, queue));
        Assert.Null(RecoveredResourceUpdates.Tags(null, ce.Tags));
    }

    [Fact]
    public async Task ChangedFields_AreTheOnlyOnesInTheUpdate()
    {
        var resources = ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, max: 64, min: 2);
        await using var engine = await ManagedCe.CreateAsync(resources);
        var (ce, queue) = await DescribeAsync(engine);

        var ceUpdate = RecoveredResourceUpdates.ComputeEnvironment(Managed(resources with { MaxvCpus = 128 }) with { State = ResourceState.DISABLED }, ce, out _);
        var queueUpdate = RecoveredResourceUpdates.JobQueue(Queue() with { Priority = 7, Extensions = new JobQueueExtensions { Backfill = true } }, queue);

        Assert.NotNull(ceUpdate);
        Assert.Equal(ce.ComputeEnvironmentArn, ceUpdate.ComputeEnvironment);
        Assert.Equal(ResourceState.DISABLED, ceUpdate.State);
        Assert.Equal(new ComputeResourceUpdate { MaxvCpus = 128 }, ceUpdate.ComputeResources);
        Assert.NotNull(queueUpdate);
        Assert.Equal(new UpdateJobQueueRequest { JobQueue = queue.JobQueueArn, Priority = 7, Extensions = new JobQueueExtensions { Backfill = true } }, queueUpdate);

        // Applied, the engine agrees with the configuration: nothing further to update.
        await engine.UpdateComputeEnvironmentAsync(ceUpdate);
        await engine.UpdateJobQueueAsync(queueUpdate);
        var (ce2, queue2) = await DescribeAsync(engine);
        Assert.Null(RecoveredResourceUpdates.ComputeEnvironment(Managed(resources with { MaxvCpus = 128 }) with { State = ResourceState.DISABLED }, ce2, out _));
        Assert.Null(RecoveredResourceUpdates.JobQueue(Queue() with { Priority = 7, Extensions = new JobQueueExtensions { Backfill = true } }, queue2));
    }

    [Fact]
    public async Task ChangedType_IsRefusedNamingTheField()
    {
        var resources = ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE);
        await using var engine = await ManagedCe.CreateAsync(resources);
        var (ce, _) = await DescribeAsync(engine);

        var type = Assert.Throws<BatchClientException>(() => RecoveredResourceUpdates.ComputeEnvironment(Managed(resources) with { Type = CEType.UNMANAGED }, ce, out _));
        var fleetRole = Assert.Throws<BatchClientException>(() => RecoveredResourceUpdates.ComputeEnvironment(Managed(resources with { SpotIamFleetRole = "arn:aws:iam::1:role/fleet" }), ce, out _));

        Assert.StartsWith("type differs", type.Message, StringComparison.Ordinal);
        var (_, queue) = await DescribeAsync(engine);
        var fifo = Assert.Throws<BatchClientException>(() => RecoveredResourceUpdates.JobQueue(Queue() with { SchedulingPolicyArn = "arn:aws:batch:local:000000000000:scheduling-policy/p" }, queue));
        Assert.StartsWith("schedulingPolicyArn differs", fifo.Message, StringComparison.Ordinal);
        Assert.StartsWith("computeResources.spotIamFleetRole differs", fleetRole.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// UNMANAGED hosts: a capacity change alone keeps the recovered hosts with a warning (a local environment sized from
    /// the machine it first ran on); any other change cannot be applied. A provider's environment with unchanged
    /// settings is no update.
    /// </summary>
    [Fact]
    public async Task UnmanagedHostsAndProviders()
    {
        await using var engine = TestEngine.Create(new BatchEngineOptions
        {
            HostProviders = new Dictionary<string, Func<CreateComputeEnvironmentRequest, BatchCore.Hosts.HostProvider>> { ["manual"] = _ => new NoHosts() },
        });
        CreateComputeEnvironmentRequest Local(double vcpus, string name = "h") => new()
        {
            ComputeEnvironmentName = "local", Type = CEType.UNMANAGED, Hosts = [new() { HostName = name, Vcpus = vcpus, MemoryMiB = 4096 }],
        };
        var provided = new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "provided", Type = CEType.UNMANAGED, Provider = "manual", ProviderSettings = new Dictionary<string, string> { ["partition"] = "debug" },
        };
        await engine.CreateComputeEnvironmentAsync(Local(2));
        await engine.CreateComputeEnvironmentAsync(provided);
        var described = (await engine.DescribeComputeEnvironmentsAsync()).ComputeEnvironments.ToDictionary(c => c.ComputeEnvironmentName);

        Assert.Null(RecoveredResourceUpdates.ComputeEnvironment(Local(2), described["local"], out var none));
        Assert.Null(none);
        Assert.Null(RecoveredResourceUpdates.ComputeEnvironment(Local(8), described["local"], out var warning));
        Assert.Contains("capacity", warning, StringComparison.Ordinal);
        Assert.Throws<BatchClientException>(() => RecoveredResourceUpdates.ComputeEnvironment(Local(2, name: "other"), described["local"], out _));
        Assert.Null(RecoveredResourceUpdates.ComputeEnvironment(provided, described["provided"], out _));
        Assert.Throws<BatchClientException>(() => RecoveredResourceUpdates.ComputeEnvironment(
            provided with { ProviderSettings = new Dictionary<string, string> { ["partition"] = "batch" } }, described["provided"], out _));
    }

    private sealed class NoHosts : BatchCore.Hosts.HostProvider
    {
        public override string Kind => "manual";

        public override void Start(BatchCore.Hosts.IHostMembershipSink membership)
        {
        }
    }

    [Fact]
    public void Tags_OnlyAddedOrChanged()
    {
        var had = new Dictionary<string, string> { ["a"] = "1", ["b"] = "2", ["kept"] = "x" };

        var tags = RecoveredResourceUpdates.Tags(new Dictionary<string, string> { ["a"] = "1", ["b"] = "3", ["c"] = "4" }, had);

        Assert.Equal(new Dictionary<string, string> { ["b"] = "3", ["c"] = "4" }, tags);
    }
}
