using BatchCore.Model;

namespace BatchCore.Tests.Provisioning;

/// <summary>
/// AWS's desiredvCpus: launched when a create or an update gives it, then moved with demand (idle instances above
/// minvCpus are scaled in); an update may not lower it ("the updated desiredvCpus value must be greater than or equal
/// to the current desiredvCpus value"). Virtual clock.
/// </summary>
public sealed class DesiredvCpusTests
{
    private static readonly CancellationToken Ct = TestContext.Current.CancellationToken;

    [Fact]
    public async Task Create_WithDesiredvCpus_LaunchesThem_AndScalesTheIdleOnesInToMinvCpus()
    {
        await using var engine = await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, max: 64, min: 2, types: ["c6i.large"]) with { DesiredvCpus = 8 });

        Assert.Equal(8, await ManagedCe.ProvisionedAsync(engine)); // four 2-vCPU instances
        Assert.Equal(8, (await engine.DescribeComputeEnvironmentsAsync(ct: Ct)).ComputeEnvironments.Single().ComputeResources!.DesiredvCpus);

        await engine.AdvanceTimeAsync(TimeSpan.FromMinutes(30), Ct); // never used: they go after their idle minute
        Assert.Equal(2, await ManagedCe.ProvisionedAsync(engine));
    }

    [Fact]
    public async Task Update_RaisingDesiredvCpus_LaunchesUpToIt()
    {
        await using var engine = await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, max: 64, types: ["c6i.large"]));
        Assert.Equal(0, await ManagedCe.ProvisionedAsync(engine));

        await engine.UpdateComputeEnvironmentAsync(new UpdateComputeEnvironmentRequest { ComputeEnvironment = "ce", ComputeResources = new() { DesiredvCpus = 6 } }, Ct);

        Assert.Equal(6, await ManagedCe.ProvisionedAsync(engine));
    }

    [Fact]
    public async Task Update_LoweringDesiredvCpus_IsRefused_AndNothingIsApplied()
    {
        await using var engine = await ManagedCe.CreateAsync(ManagedCe.Ec2(CRAllocationStrategy.BEST_FIT_PROGRESSIVE, max: 64, types: ["c6i.large"]) with { DesiredvCpus = 4 });

        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.UpdateComputeEnvironmentAsync(new UpdateComputeEnvironmentRequest
        {
            ComputeEnvironment = "ce",
            ComputeResources = new() { MaxvCpus = 32, DesiredvCpus = 2 },
        }, Ct));

        Assert.Contains("computeResources.desiredvCpus", e.Message, StringComparison.Ordinal);
        Assert.Contains("current desiredvCpus (4)", e.Message, StringComparison.Ordinal);
        var ce = (await engine.DescribeComputeEnvironmentsAsync(ct: Ct)).ComputeEnvironments.Single();
        Assert.Equal(64, ce.ComputeResources!.MaxvCpus);
        Assert.Equal(4, await ManagedCe.ProvisionedAsync(engine));
    }
}
