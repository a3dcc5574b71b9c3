using BatchCore.Model;

namespace BatchCore.Tests.Dispatch;

/// <summary>DescribeComputeEnvironments, DescribeJobQueues and DescribeJobDefinitions: AWS's maxResults / nextToken paging.</summary>
public sealed class DescribePagingTests
{
    private static readonly CancellationToken Ct = TestContext.Current.CancellationToken;

    private static Task CreateQueueAsync(BatchEngine engine, string name) =>
        engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = name, Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
        }, Ct);

    [Fact]
    public async Task DescribeJobQueues_PagesOldestFirst_AndQueuesCreatedOrDeletedBetweenPagesSkipNothing()
    {
        await using var engine = await TestEngine.WithQueueAsync(queue: "q0");
        foreach (var name in new[] { "q1", "q2", "q3" })
        {
            await CreateQueueAsync(engine, name);
        }

        var first = await engine.DescribeJobQueuesAsync(new() { MaxResults = 2 }, Ct);
        Assert.Equal(["q0", "q1"], first.JobQueues.Select(q => q.JobQueueName));
        Assert.NotNull(first.NextToken);

        // q0 (already listed) goes, q4 arrives: the next page still starts at q2 and ends with q4.
        await engine.UpdateJobQueueAsync(new() { JobQueue = "q0", State = ResourceState.DISABLED }, Ct);
        await engine.DeleteJobQueueAsync("q0", Ct);
        await CreateQueueAsync(engine, "q4");
        var second = await engine.DescribeJobQueuesAsync(new() { MaxResults = 2, NextToken = first.NextToken }, Ct);
        Assert.Equal(["q2", "q3"], second.JobQueues.Select(q => q.JobQueueName));
        var third = await engine.DescribeJobQueuesAsync(new() { MaxResults = 2, NextToken = second.NextToken }, Ct);
        Assert.Equal(["q4"], third.JobQueues.Select(q => q.JobQueueName));
        Assert.Null(third.NextToken);
    }

    [Fact]
    public async Task DescribeJobQueues_WithoutMaxResults_ReturnsAwsDefaultPageOf100AndAToken()
    {
        await using var engine = await TestEngine.WithQueueAsync(queue: "q000", options: new() { Quotas = new() { MaxJobQueues = 200 } });
        for (var i = 1; i <= 100; i++)
        {
            await CreateQueueAsync(engine, "q" + i.ToString("000", System.Globalization.CultureInfo.InvariantCulture));
        }

        var first = await engine.DescribeJobQueuesAsync(ct: Ct);
        Assert.Equal(100, first.JobQueues.Count);
        Assert.Equal("q099", first.JobQueues[^1].JobQueueName);
        var rest = await engine.DescribeJobQueuesAsync(new() { NextToken = first.NextToken }, Ct);
        Assert.Equal("q100", Assert.Single(rest.JobQueues).JobQueueName);
        Assert.Null(rest.NextToken);
    }

    [Fact]
    public async Task DescribeComputeEnvironments_ByName_ListsEachOnceInCreationOrder_AndPages()
    {
        await using var engine = await TestEngine.WithQueueAsync(ce: "a");
        foreach (var name in new[] { "c", "b" })
        {
            await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = name, Type = CEType.UNMANAGED, Hosts = [new() { HostName = name + "-h", Vcpus = 2, MemoryMiB = 4096 }] }, Ct);
        }

        var arnOfB = (await engine.DescribeComputeEnvironmentsAsync(new() { ComputeEnvironments = ["b"] }, Ct)).ComputeEnvironments.Single().ComputeEnvironmentArn;
        var named = await engine.DescribeComputeEnvironmentsAsync(new() { ComputeEnvironments = [arnOfB, "a", "missing", "b", "c"], MaxResults = 2 }, Ct);
        Assert.Equal(["a", "c"], named.ComputeEnvironments.Select(c => c.ComputeEnvironmentName));
        var rest = await engine.DescribeComputeEnvironmentsAsync(new() { ComputeEnvironments = [arnOfB, "a", "missing", "b", "c"], MaxResults = 2, NextToken = named.NextToken }, Ct);
        Assert.Equal(["b"], rest.ComputeEnvironments.Select(c => c.ComputeEnvironmentName));
        Assert.Null(rest.NextToken);
    }

    [Fact]
    public async Task DescribeJobDefinitions_PagesByNameThenRevision_AfterTheStatusFilter()
    {
        await using var engine = TestEngine.Create();
        foreach (var name in new[] { "b", "a", "b", "a", "c" })
        {
            await engine.RegisterJobDefinitionAsync(TestEngine.Definition(name), Ct);
        }

        await engine.DeregisterJobDefinitionAsync("a:1", Ct);
        var first = await engine.DescribeJobDefinitionsAsync(new() { Status = "ACTIVE", MaxResults = 2 }, Ct);
        Assert.Equal(["a:2", "b:1"], first.JobDefinitions.Select(Key));
        Assert.NotNull(first.NextToken);

        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("a"), Ct); // a:3 sorts before the token: not on the next page
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("b"), Ct); // b:3 after it: on the next page
        var second = await engine.DescribeJobDefinitionsAsync(new() { Status = "ACTIVE", MaxResults = 2, NextToken = first.NextToken }, Ct);
        Assert.Equal(["b:2", "b:3"], second.JobDefinitions.Select(Key));
        var third = await engine.DescribeJobDefinitionsAsync(new() { Status = "ACTIVE", MaxResults = 2, NextToken = second.NextToken }, Ct);
        Assert.Equal(["c:1"], third.JobDefinitions.Select(Key));
        Assert.Null(third.NextToken);

        var byName = await engine.DescribeJobDefinitionsAsync(new() { JobDefinitionName = "a" }, Ct);
        Assert.Equal(["a:1", "a:2", "a:3"], byName.JobDefinitions.Select(Key));
        var byRef = await engine.DescribeJobDefinitionsAsync(new() { JobDefinitions = ["c", "a:2", "a", "nope:1"] }, Ct);
        Assert.Equal(["a:1", "a:2", "a:3", "c:1"], byRef.JobDefinitions.Select(Key)); // each once, in the one order

        static string Key(JobDefinition d) => d.JobDefinitionName + ":" + d.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(101)]
    public async Task Describe_RejectsAPageSizeOutsideAwsRange_NamingTheField(int maxResults)
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var expected = $"maxResults must be between 1 and 100, was {maxResults}";
        Assert.Contains(expected, (await Assert.ThrowsAsync<BatchClientException>(() => engine.DescribeJobQueuesAsync(new() { MaxResults = maxResults }, Ct))).Message, StringComparison.Ordinal);
        Assert.Contains(expected, (await Assert.ThrowsAsync<BatchClientException>(() => engine.DescribeComputeEnvironmentsAsync(new() { MaxResults = maxResults }, Ct))).Message, StringComparison.Ordinal);
        Assert.Contains(expected, (await Assert.ThrowsAsync<BatchClientException>(() => engine.DescribeJobDefinitionsAsync(new() { MaxResults = maxResults }, Ct))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Describe_RejectsATokenItDidNotReturn()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var q = await Assert.ThrowsAsync<BatchClientException>(() => engine.DescribeJobQueuesAsync(new() { NextToken = "q" }, Ct));
        Assert.Contains("nextToken is not a token returned by DescribeJobQueues: 'q'", q.Message, StringComparison.Ordinal);
        var ce = await Assert.ThrowsAsync<BatchClientException>(() => engine.DescribeComputeEnvironmentsAsync(new() { NextToken = "-1" }, Ct));
        Assert.Contains("nextToken is not a token returned by DescribeComputeEnvironments: '-1'", ce.Message, StringComparison.Ordinal);
        var def = await Assert.ThrowsAsync<BatchClientException>(() => engine.DescribeJobDefinitionsAsync(new() { NextToken = "def" }, Ct));
        Assert.Contains("nextToken is not a token returned by DescribeJobDefinitions: 'def'", def.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Describe_RejectsMoreThan100Names()
    {
        await using var engine = await TestEngine.WithQueueAsync();
        var names = Enumerable.Range(0, 101).Select(i => "n" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var e = await Assert.ThrowsAsync<BatchClientException>(() => engine.DescribeJobQueuesAsync(new() { JobQueues = names }, Ct));
        Assert.Contains("jobQueues must have at most 100 entries, had 101", e.Message, StringComparison.Ordinal);
        e = await Assert.ThrowsAsync<BatchClientException>(() => engine.DescribeComputeEnvironmentsAsync(new() { ComputeEnvironments = names }, Ct));
        Assert.Contains("computeEnvironments must have at most 100 entries, had 101", e.Message, StringComparison.Ordinal);
        e = await Assert.ThrowsAsync<BatchClientException>(() => engine.DescribeJobDefinitionsAsync(new() { JobDefinitions = names }, Ct));
        Assert.Contains("jobDefinitions must have at most 100 entries, had 101", e.Message, StringComparison.Ordinal);
    }
}
