using BatchCore.Model;

namespace BatchCore.Tests.Dispatch;

/// <summary>ListSchedulingPolicies, ListConsumableResources and ListJobsByConsumableResource (AWS's shapes, paging and filters).</summary>
public sealed class ListTests
{
    private static readonly CancellationToken Ct = TestContext.Current.CancellationToken;

    [Fact]
    public async Task ListSchedulingPolicies_PagesByName_AndANewPolicyBehindTheTokenIsNeitherRepeatedNorSkipped()
    {
        await using var engine = TestEngine.Create();
        foreach (var name in new[] { "c", "a", "b" })
        {
            await engine.CreateSchedulingPolicyAsync(new() { Name = name }, Ct);
        }

        var first = await engine.ListSchedulingPoliciesAsync(new() { MaxResults = 2 }, Ct);
        Assert.Equal(["a", "b"], first.SchedulingPolicies.Select(p => p.Arn.Split('/')[^1]));
        Assert.EndsWith(":scheduling-policy/a", first.SchedulingPolicies[0].Arn, StringComparison.Ordinal);
        Assert.NotNull(first.NextToken);

        await engine.CreateSchedulingPolicyAsync(new() { Name = "aa" }, Ct); // sorts before the token: not on the next page
        await engine.CreateSchedulingPolicyAsync(new() { Name = "d" }, Ct); // after it: on the next page
        var second = await engine.ListSchedulingPoliciesAsync(new() { MaxResults = 2, NextToken = first.NextToken }, Ct);
        Assert.Equal(["c", "d"], second.SchedulingPolicies.Select(p => p.Arn.Split('/')[^1]));
        Assert.Null(second.NextToken);

        var all = await engine.ListSchedulingPoliciesAsync(ct: Ct);
        Assert.Equal(5, all.SchedulingPolicies.Count);
        Assert.Null(all.NextToken);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(101)]
    public async Task ListSchedulingPolicies_RejectsAPageSizeOutsideAwsRange(int maxResults)
    {
        await using var engine = TestEngine.Create();
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.ListSchedulingPoliciesAsync(new() { MaxResults = maxResults }, Ct));
        Assert.Contains($"maxResults must be between 1 and 100, was {maxResults}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListConsumableResources_FiltersByNameCaseInsensitivelyWithAPrefix_AndReportsUse()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 2);
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "licence-b", TotalQuantity = 5 }, Ct);
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "licence-a", TotalQuantity = 3, ResourceType = ConsumableResourceType.NON_REPLENISHABLE }, Ct);
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "gpu-slot", TotalQuantity = 1 }, Ct);
        await engine.SubmitJobAsync(TestEngine.Job("x", runSeconds: 100) with
        {
            ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = [new() { ConsumableResource = "licence-a", Quantity = 2 }] },
        }, Ct);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1), Ct);

        var listed = await engine.ListConsumableResourcesAsync(new()
        {
            Filters = [new() { Name = ListConsumableResourcesFilterName.CONSUMABLE_RESOURCE_NAME, Values = ["LICENCE*"] }],
        }, Ct);
        Assert.Null(listed.NextToken);
        Assert.Equal(["licence-a", "licence-b"], listed.ConsumableResources.Select(c => c.ConsumableResourceName));
        var a = listed.ConsumableResources[0];
        Assert.Equal((3L, 2L, ConsumableResourceType.NON_REPLENISHABLE), (a.TotalQuantity, a.InUseQuantity, a.ResourceType));
        Assert.EndsWith(":consumable-resource/licence-a", a.ConsumableResourceArn, StringComparison.Ordinal);

        var exact = await engine.ListConsumableResourcesAsync(new()
        {
            Filters = [new() { Name = ListConsumableResourcesFilterName.CONSUMABLE_RESOURCE_NAME, Values = ["GPU-SLOT"] }],
        }, Ct);
        Assert.Equal("gpu-slot", Assert.Single(exact.ConsumableResources).ConsumableResourceName);

        var paged = await engine.ListConsumableResourcesAsync(new() { MaxResults = 1 }, Ct);
        Assert.Equal("gpu-slot", Assert.Single(paged.ConsumableResources).ConsumableResourceName);
        var rest = await engine.ListConsumableResourcesAsync(new() { MaxResults = 5, NextToken = paged.NextToken }, Ct);
        Assert.Equal(["licence-a", "licence-b"], rest.ConsumableResources.Select(c => c.ConsumableResourceName));
    }

    [Fact]
    public async Task ListConsumableResources_NamesTheFieldOfABadFilter_AndChangesNothing()
    {
        await using var engine = TestEngine.Create();
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.ListConsumableResourcesAsync(new()
        {
            Filters = [new() { Name = "NAME", Values = [] }],
        }, Ct));
        Assert.Contains("filters[0].name must be one of CONSUMABLE_RESOURCE_NAME, was NAME", e.Message, StringComparison.Ordinal);
        Assert.Contains("filters[0].values must have at least 1 value", e.Message, StringComparison.Ordinal);

        e = await Assert.ThrowsAsync<BatchClientException>(() => engine.ListConsumableResourcesAsync(new()
        {
            Filters = [new() { Name = ListConsumableResourcesFilterName.CONSUMABLE_RESOURCE_NAME, Values = ["a"] }, new() { Name = ListConsumableResourcesFilterName.CONSUMABLE_RESOURCE_NAME, Values = ["b"] }],
        }, Ct));
        Assert.Contains("filters must have at most 1 entry, had 2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListJobsByConsumableResource_ListsTheJobsAndChildrenThatNeedIt_NewestFirst_WithTheirQuantity()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4);
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "licence", TotalQuantity = 2 }, Ct);
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "other", TotalQuantity = 10 }, Ct);
        var needs = (string name, long quantity) => new ConsumableResourceProperties
        {
            ConsumableResourceList = [new() { ConsumableResource = name, Quantity = quantity }],
        };

        var single = await engine.SubmitJobAsync(TestEngine.Job("single", runSeconds: 100) with { ConsumableResourcePropertiesOverride = needs("licence", 2) }, Ct);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1), Ct);
        var array = await engine.SubmitJobAsync(TestEngine.Job("Array", runSeconds: 100, arraySize: 3) with { ConsumableResourcePropertiesOverride = needs("licence", 1) }, Ct);
        await engine.SubmitJobAsync(TestEngine.Job("unrelated", runSeconds: 100) with { ConsumableResourcePropertiesOverride = needs("other", 1) }, Ct);
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1), Ct);

        var all = await engine.ListJobsByConsumableResourceAsync(new() { ConsumableResource = "licence" }, Ct);
        Assert.Null(all.NextToken);
        Assert.Equal(
            [array.JobId, array.JobId + ":0", array.JobId + ":1", array.JobId + ":2", single.JobId],
            all.Jobs.Select(j => j.JobArn.Split('/')[^1]));
        var first = all.Jobs[^1];
        Assert.Equal((JobStatus.RUNNING, 2L, "single"), (first.JobStatus, first.Quantity, first.JobName));
        Assert.EndsWith(":job-queue/q", first.JobQueueArn, StringComparison.Ordinal);
        Assert.NotNull(first.StartedAt);
        Assert.Equal("licence", Assert.Single(first.ConsumableResourceProperties.ConsumableResourceList).ConsumableResource);
        Assert.All(all.Jobs.Skip(1).Take(3), c => Assert.Equal((JobStatus.RUNNABLE, 1L), (c.JobStatus, c.Quantity))); // the licence is taken

        var byArn = await engine.ListJobsByConsumableResourceAsync(new()
        {
            ConsumableResource = (await engine.DescribeConsumableResourceAsync("licence", Ct)).ConsumableResourceArn,
            Filters = [new() { Name = ListJobsByConsumableResourceFilterName.JOB_STATUS, Values = [JobStatus.RUNNING, JobStatus.SUCCEEDED] }],
        }, Ct);
        Assert.Equal([single.JobId], byArn.Jobs.Select(j => j.JobArn.Split('/')[^1]));

        var byName = await engine.ListJobsByConsumableResourceAsync(new()
        {
            ConsumableResource = "licence",
            Filters =
            [
                new() { Name = ListJobsByConsumableResourceFilterName.JOB_NAME, Values = ["arr*"] },
                new() { Name = ListJobsByConsumableResourceFilterName.JOB_STATUS, Values = [JobStatus.RUNNABLE] },
            ],
        }, Ct);
        Assert.Equal([array.JobId + ":0", array.JobId + ":1", array.JobId + ":2"], byName.Jobs.Select(j => j.JobArn.Split('/')[^1]));

        var page1 = await engine.ListJobsByConsumableResourceAsync(new() { ConsumableResource = "licence", MaxResults = 3 }, Ct);
        var page2 = await engine.ListJobsByConsumableResourceAsync(new() { ConsumableResource = "licence", MaxResults = 3, NextToken = page1.NextToken }, Ct);
        Assert.Null(page2.NextToken);
        Assert.Equal(all.Jobs, page1.Jobs.Concat(page2.Jobs));

        // Once everything ran, the folded children are listed as SUCCEEDED like the live ones.
        await engine.RunUntilIdleAsync(Ct);
        var done = await engine.ListJobsByConsumableResourceAsync(new()
        {
            ConsumableResource = "licence",
            Filters = [new() { Name = ListJobsByConsumableResourceFilterName.JOB_STATUS, Values = [JobStatus.SUCCEEDED] }],
        }, Ct);
        Assert.Equal(5, done.Jobs.Count);
        Assert.Empty((await engine.ListJobsByConsumableResourceAsync(new()
        {
            ConsumableResource = "licence",
            Filters = [new() { Name = ListJobsByConsumableResourceFilterName.JOB_STATUS, Values = [JobStatus.RUNNING] }],
        }, Ct)).Jobs);
    }

    /// <summary>
    /// An array's children page by index (all of them, once); a token from another array's listing, or from a queue's, is
    /// refused rather than skipping children.
    /// </summary>
    [Fact]
    public async Task ListJobs_ArrayChildrenPages_AndAForeignTokenIsRefused()
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 4, vcpus: 4);
        var a = (await engine.SubmitJobAsync(TestEngine.Job("a", arraySize: 5, runSeconds: 100), Ct)).JobId;
        var b = (await engine.SubmitJobAsync(TestEngine.Job("b", arraySize: 3, runSeconds: 100), Ct)).JobId;
        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1), Ct);

        var listed = new List<string>();
        string? token = null;
        do
        {
            var page = await engine.ListJobsAsync(new ListJobsRequest { ArrayJobId = a, JobStatus = JobStatus.RUNNING, MaxResults = 2, NextToken = token }, Ct);
            listed.AddRange(page.JobSummaryList.Select(j => j.JobId));
            token = page.NextToken;
            if (token is not null)
            {
                var foreign = await Assert.ThrowsAsync<BatchClientException>(() =>
                    engine.ListJobsAsync(new ListJobsRequest { ArrayJobId = b, JobStatus = JobStatus.RUNNING, NextToken = token }, Ct));
                Assert.Contains($"nextToken is not a token of the listing of array job {b}", foreign.Message, StringComparison.Ordinal);
            }
        }
        while (token is not null);

        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"{a}:{i}"), listed);
        var queueToken = (await engine.ListJobsAsync(new ListJobsRequest { JobQueue = "q", Filters = [new() { Name = ListJobsFilterName.JOB_NAME, Values = ["*"] }], MaxResults = 1 }, Ct)).NextToken;
        await Assert.ThrowsAsync<BatchClientException>(() => engine.ListJobsAsync(new ListJobsRequest { ArrayJobId = a, JobStatus = JobStatus.RUNNING, NextToken = queueToken }, Ct));
    }

    [Fact]
    public async Task ListJobsByConsumableResource_NamesEveryBrokenRule()
    {
        await using var engine = TestEngine.Create();
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.ListJobsByConsumableResourceAsync(new()
        {
            MaxResults = 500,
            NextToken = "x",
            Filters =
            [
                new() { Name = ListJobsByConsumableResourceFilterName.JOB_STATUS, Values = ["DONE"] },
                new() { Name = ListJobsByConsumableResourceFilterName.JOB_STATUS, Values = [JobStatus.RUNNING] },
                new() { Name = "JOB_QUEUE", Values = ["q"] },
            ],
        }, Ct));
        Assert.Contains("consumableResource is required", e.Message, StringComparison.Ordinal);
        Assert.Contains("maxResults must be between 1 and 100, was 500", e.Message, StringComparison.Ordinal);
        Assert.Contains("filters[0].values must be job statuses", e.Message, StringComparison.Ordinal);
        Assert.Contains("filters[1].name must not repeat an earlier filter", e.Message, StringComparison.Ordinal);
        Assert.Contains("filters[2].name must be one of JOB_STATUS | JOB_NAME, was JOB_QUEUE", e.Message, StringComparison.Ordinal);
        Assert.Contains("nextToken is not a token returned by ListJobsByConsumableResource", e.Message, StringComparison.Ordinal);

        e = await Assert.ThrowsAsync<BatchClientException>(() => engine.ListJobsByConsumableResourceAsync(new() { ConsumableResource = "nope" }, Ct));
        Assert.Contains("consumableResource nope does not exist", e.Message, StringComparison.Ordinal);
    }
}
