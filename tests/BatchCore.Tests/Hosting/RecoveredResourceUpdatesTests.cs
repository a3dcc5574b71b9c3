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
        ((await engine.DescribeComputeEnvironmentsAsync()).Single(), (await engine.DescribeJobQueuesAsync()).Single());

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

        Assert.Null(RecoveredResourceUpdates.ComputeEnvironment(Managed(resources), ce));
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

        var ceUpdate = RecoveredResourceUpdates.ComputeEnvironment(Managed(resources with { MaxvCpus = 128 }) with { State = ResourceState.DISABLED }, ce);
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
        Assert.Null(RecoveredResourceUpdates.ComputeEnvironment(Managed(resources with { MaxvCpus = 128 }) with { State = ResourceState.DISABLED }, ce2));
        Assert.Null(RecoveredResourceUpdates.JobQueue(Queue() with { Priority = 7, Extensions = new JobQueueExtensions { Backfill = true } }, queue2));
    }

    [Fact]
    public async Task ChangedType_IsRefusedNamingTheField()
    {
        var resources = ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE);
        await using var engine = await ManagedCe.CreateAsync(resources);
        var (ce, _) = await DescribeAsync(engine);

        var type = Assert.Throws<BatchClientException>(() => RecoveredResourceUpdates.ComputeEnvironment(Managed(resources) with { Type = CEType.UNMANAGED }, ce));
        var fleetRole = Assert.Throws<BatchClientException>(() => RecoveredResourceUpdates.ComputeEnvironment(Managed(resources with { SpotIamFleetRole = "arn:aws:iam::1:role/fleet" }), ce));

        Assert.StartsWith("type differs", type.Message, StringComparison.Ordinal);
        Assert.StartsWith("computeResources.spotIamFleetRole differs", fleetRole.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tags_OnlyAddedOrChanged()
    {
        var had = new Dictionary<string, string> { ["a"] = "1", ["b"] = "2", ["kept"] = "x" };

        var tags = RecoveredResourceUpdates.Tags(new Dictionary<string, string> { ["a"] = "1", ["b"] = "3", ["c"] = "4" }, had);

        Assert.Equal(new Dictionary<string, string> { ["b"] = "3", ["c"] = "4" }, tags);
    }
}
