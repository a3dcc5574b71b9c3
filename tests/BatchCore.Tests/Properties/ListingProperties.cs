using BatchCore.Model;
using FsCheck.Xunit;

namespace BatchCore.Tests.Properties;

/// <summary>Paging of the List* calls over random contents, page sizes and (for name-paged lists) changes between pages.</summary>
public class ListingProperties
{
    private static readonly string[] Pool = [.. Enumerable.Range(0, 24).Select(i => "p" + (char)('a' + i))];

    /// <summary>
    /// ListSchedulingPolicies and ListConsumableResources page by name: walking the pages while policies and resources
    /// are created and deleted between pages lists every one that existed throughout exactly once, never one twice, in
    /// ascending name order, and nothing that did not exist when its page was read.
    /// </summary>
    [Property(MaxTest = 80)]
    public void Name_paged_lists_skip_and_repeat_nothing_that_lives_throughout(int[] initial, int[] changes, byte pageSize) =>
        WalkAsync(initial ?? [], changes ?? [], 1 + (pageSize % 5)).GetAwaiter().GetResult();

    /// <summary>
    /// ListJobsByConsumableResource's pages, walked with any page size and status filter, are together exactly the
    /// one-page answer: the jobs and array children that need the resource, in the same order.
    /// </summary>
    [Property(MaxTest = 60)]
    public void Job_pages_concatenate_to_the_whole_list(int[] jobs, byte pageSize, byte statuses) =>
        JobPagesAsync(jobs ?? [], 1 + (pageSize % 5), statuses).GetAwaiter().GetResult();

    /// <summary>
    /// ListJobs pages, walked while jobs end, start and are submitted between pages (RUNNING by queue; every job by name,
    /// newest first): no job is listed twice, and every job that is in the listing throughout the walk is listed.
    /// </summary>
    [Property(MaxTest = 60)]
    public void ListJobs_pages_skip_and_repeat_nothing_that_lives_throughout(int[] runs, byte pageSize, byte[] steps) =>
        ListJobsWalkAsync(runs ?? [], 1 + (pageSize % 4), steps ?? []).GetAwaiter().GetResult();

    /// <summary>
    /// DescribeJobQueues (oldest first) and DescribeJobDefinitions with status ACTIVE (name, then revision), walked while
    /// queues are created and deleted and revisions registered and deregistered between pages: no queue or revision
    /// twice, in order, each one alive as its page was read, and every one alive throughout listed.
    /// </summary>
    [Property(MaxTest = 60)]
    public void Describe_pages_skip_and_repeat_nothing_that_lives_throughout(byte initial, int[] changes, byte pageSize) =>
        DescribeWalkAsync(initial % 12, (changes ?? []).Take(30).ToArray(), 1 + (pageSize % 5)).GetAwaiter().GetResult();

    private static async Task DescribeWalkAsync(int initial, int[] changes, int page)
    {
        await using var engine = await TestEngine.WithQueueAsync(queue: "q000", options: new() { Quotas = new() { MaxJobQueues = 200 } });
        var queues = new HashSet<string>(StringComparer.Ordinal) { "q000" };
        var created = 0;
        async Task ToggleQueueAsync(int code)
        {
            if (code % 2 == 0 || queues.Count == 0)
            {
                // Names grow with creation, so creation order is name order (and a name is never used twice).
                var name = "q" + (++created).ToString("000", System.Globalization.CultureInfo.InvariantCulture);
                await engine.CreateJobQueueAsync(new CreateJobQueueRequest
                {
                    JobQueueName = name, Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }],
                });
                queues.Add(name);
            }
            else
            {
                var name = queues.Order(StringComparer.Ordinal).ElementAt(code / 2 % queues.Count);
                await engine.UpdateJobQueueAsync(new() { JobQueue = name, State = ResourceState.DISABLED });
                await engine.DeleteJobQueueAsync(name);
                queues.Remove(name);
            }
        }

        for (var i = 0; i < initial; i++)
        {
            await ToggleQueueAsync(0);
        }

        await WalkOneAsync(page, changes, queues, async token =>
        {
            var r = await engine.DescribeJobQueuesAsync(new() { MaxResults = page, NextToken = token });
            return (r.JobQueues.Select(q => q.JobQueueName).ToList(), r.NextToken);
        }, ToggleQueueAsync);

        // Revisions: keys "name:rev" with the revision zero-padded, so ordinal order is AWS's name-then-revision order.
        var active = new HashSet<string>(StringComparer.Ordinal) { Key("def", 1) };
        string[] names = ["da", "db", "dc"];
        async Task ToggleRevisionAsync(int code)
        {
            if (code % 2 == 0 || active.Count == 0)
            {
                var r = await engine.RegisterJobDefinitionAsync(TestEngine.Definition(names[code / 2 % names.Length]));
                active.Add(Key(r.JobDefinitionName, r.Revision));
            }
            else
            {
                var key = active.Order(StringComparer.Ordinal).ElementAt(code / 2 % active.Count);
                var colon = key.LastIndexOf(':');
                await engine.DeregisterJobDefinitionAsync(key[..colon] + ":" + int.Parse(key[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture).ToString(System.Globalization.CultureInfo.InvariantCulture));
                active.Remove(key);
            }
        }

        for (var i = 0; i < initial; i++)
        {
            await ToggleRevisionAsync(2 * i);
        }

        await WalkOneAsync(page, changes, active, async token =>
        {
            var r = await engine.DescribeJobDefinitionsAsync(new() { Status = "ACTIVE", MaxResults = page, NextToken = token });
            return (r.JobDefinitions.Select(d => Key(d.JobDefinitionName, d.Revision)).ToList(), r.NextToken);
        }, ToggleRevisionAsync);

        static string Key(string name, int revision) => name + ":" + revision.ToString("000", System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task ListJobsWalkAsync(int[] runs, int page, byte[] steps)
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 3, vcpus: 4);
        var n = 0;
        foreach (var run in runs.Take(24))
        {
            var size = run % 3 == 0 ? 2 + (run & 3) : (int?)null; // some arrays
            await engine.SubmitJobAsync(TestEngine.Job($"j{n++}", runSeconds: 5 + ((run & int.MaxValue) % 200), arraySize: size));
        }

        await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
        foreach (var filtered in new[] { false, true })
        {
            async Task<HashSet<string>> SnapshotAsync()
            {
                // Every page at once, nothing changing in between.
                var all = new HashSet<string>(StringComparer.Ordinal);
                string? next = null;
                do
                {
                    var r = await engine.ListJobsAsync(filtered
                        ? new ListJobsRequest { JobQueue = "q", Filters = [new() { Name = ListJobsFilterName.JOB_NAME, Values = ["*"] }], NextToken = next }
                        : new ListJobsRequest { JobQueue = "q", JobStatus = JobStatus.RUNNING, MaxResults = 1000, NextToken = next });
                    all.UnionWith(r.JobSummaryList.Select(j => j.JobId));
                    next = r.NextToken;
                }
                while (next is not null);
                return all;
            }

            var throughout = await SnapshotAsync();
            var listed = new List<string>();
            string? token = null;
            var step = 0;
            do
            {
                var r = await engine.ListJobsAsync(filtered
                    ? new ListJobsRequest { JobQueue = "q", Filters = [new() { Name = ListJobsFilterName.JOB_NAME, Values = ["*"] }], MaxResults = page, NextToken = token }
                    : new ListJobsRequest { JobQueue = "q", JobStatus = JobStatus.RUNNING, MaxResults = page, NextToken = token });
                Assert.True(r.JobSummaryList.Count <= page);
                listed.AddRange(r.JobSummaryList.Select(j => j.JobId));
                token = r.NextToken;

                // Between pages: time passes (jobs end, others start) or a job is submitted.
                // (Submissions only in the first steps: the walk must end; a RUNNING listing grows at its end.)
                var change = steps.Length == 0 ? 1 : steps[step % steps.Length];
                if (change % 4 == 0 && step++ < 6)
                {
                    await engine.SubmitJobAsync(TestEngine.Job($"j{n++}", runSeconds: 50));
                }
                else
                {
                    step++;
                    await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(change % 40));
                }

                throughout.IntersectWith(await SnapshotAsync());
            }
            while (token is not null);

            Assert.Equal(listed.Count, listed.Distinct().Count()); // nothing twice
            Assert.Subset(listed.ToHashSet(), throughout); // nothing skipped that was there all along
        }
    }

    private static async Task WalkAsync(int[] initial, int[] changes, int page)
    {
        await using var engine = TestEngine.Create();
        var policies = new HashSet<string>(StringComparer.Ordinal);
        var resources = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in initial)
        {
            await ToggleAsync(engine, policies, resources, raw & int.MaxValue);
        }

        await WalkOneAsync(page, changes, policies, async token =>
        {
            var r = await engine.ListSchedulingPoliciesAsync(new() { MaxResults = page, NextToken = token });
            return (r.SchedulingPolicies.Select(p => p.Arn[(p.Arn.LastIndexOf('/') + 1)..]).ToList(), r.NextToken);
        }, code => ToggleAsync(engine, policies, resources, code & ~1)); // even: a policy

        // Consumable resources, with the name filter matching everything ("P*": case-insensitive prefix).
        await WalkOneAsync(page, changes, resources, async token =>
        {
            var r = await engine.ListConsumableResourcesAsync(new()
            {
                MaxResults = page,
                NextToken = token,
                Filters = [new() { Name = ListConsumableResourcesFilterName.CONSUMABLE_RESOURCE_NAME, Values = ["P*"] }],
            });
            return (r.ConsumableResources.Select(c => c.ConsumableResourceName).ToList(), r.NextToken);
        }, code => ToggleAsync(engine, policies, resources, code | 1)); // odd: a resource
    }

    /// <summary>
    /// Reads every page of one list, applying one change after each, and checks it: no name twice, ascending order, each
    /// one alive as its page was read, every name alive throughout listed.
    /// </summary>
    private static async Task WalkOneAsync(int page, int[] changes, HashSet<string> alive,
        Func<string?, Task<(List<string> Names, string? Next)>> read, Func<int, Task> change)
    {
        var throughout = new HashSet<string>(alive, StringComparer.Ordinal);
        var ever = new HashSet<string>(alive, StringComparer.Ordinal);
        var listed = new List<string>();
        string? token = null;
        var step = 0;
        var pages = 0;
        do
        {
            var (names, next) = await read(token);
            Assert.True(names.Count <= page);
            foreach (var name in names)
            {
                Assert.Contains(name, alive); // it exists as the page is read
                listed.Add(name);
            }

            token = next;
            if (step < changes.Length)
            {
                await change(changes[step++] & int.MaxValue);
                throughout.IntersectWith(alive);
                ever.UnionWith(alive);
            }
        }
        while (token is not null && Guard(ref pages, ever.Count));

        Assert.Equal(listed.Distinct(StringComparer.Ordinal).Count(), listed.Count);
        Assert.Equal(listed.Order(StringComparer.Ordinal), listed);
        Assert.Subset(listed.ToHashSet(StringComparer.Ordinal), throughout);
    }

    /// <summary>Fails a walk that takes more pages than items plus one (a token that does not advance).</summary>
    private static bool Guard(ref int pages, int items)
    {
        Assert.True(++pages <= items + 1, $"{pages} pages for at most {items} items: the token does not advance");
        return true;
    }

    /// <summary>Even codes create or delete a scheduling policy, odd ones a consumable resource (a name from the pool).</summary>
    private static async Task ToggleAsync(BatchEngine engine, HashSet<string> policies, HashSet<string> resources, int code)
    {
        var name = Pool[(code >> 1) % Pool.Length];
        if ((code & 1) == 0)
        {
            if (policies.Add(name))
            {
                await engine.CreateSchedulingPolicyAsync(new() { Name = name });
            }
            else
            {
                var arn = (await engine.DescribeSchedulingPoliciesAsync()).Single(p => p.Name == name).Arn;
                await engine.DeleteSchedulingPolicyAsync(arn);
                policies.Remove(name);
            }
        }
        else if (resources.Add(name))
        {
            await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = name, TotalQuantity = 1 });
        }
        else
        {
            await engine.DeleteConsumableResourceAsync(name);
            resources.Remove(name);
        }
    }

    private static async Task JobPagesAsync(int[] jobs, int page, byte statusBits)
    {
        await using var engine = await TestEngine.WithQueueAsync(hosts: 2, vcpus: 2);
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "licence", TotalQuantity = 3 });
        var needing = 0;
        foreach (var raw in jobs.Take(12))
        {
            var code = raw & int.MaxValue;
            var request = TestEngine.Job("j" + (code % 3), runSeconds: 10 + (code / 3 % 50), arraySize: code / 150 % 3 == 0 ? 2 + (code % 4) : null);
            if (code / 600 % 4 != 0)
            {
                request = request with
                {
                    ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = [new() { ConsumableResource = "licence", Quantity = 1 + (code % 2) }] },
                };
                needing++;
            }

            await engine.SubmitJobAsync(request);
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(code / 7 % 20));
        }

        var statuses = JobStatus.All.Where((_, i) => (statusBits & (1 << i)) != 0).ToList();
        IReadOnlyList<KeyValuesPair>? filters = statuses.Count == 0 ? null : [new() { Name = ListJobsByConsumableResourceFilterName.JOB_STATUS, Values = statuses }];
        var whole = await engine.ListJobsByConsumableResourceAsync(new() { ConsumableResource = "licence", Filters = filters });
        Assert.Null(whole.NextToken); // at most 12 jobs of at most 5 children: under the default page of 100
        Assert.All(whole.Jobs, j => Assert.True(statuses.Count == 0 || statuses.Contains(j.JobStatus)));
        if (statuses.Count == 0)
        {
            Assert.Equal(needing, whole.Jobs.Count(j => !j.JobArn[(j.JobArn.LastIndexOf('/') + 1)..].Contains(':', StringComparison.Ordinal))); // top-level
        }

        var walked = new List<ListJobsByConsumableResourceSummary>();
        string? token = null;
        var pages = 0;
        do
        {
            var r = await engine.ListJobsByConsumableResourceAsync(new() { ConsumableResource = "licence", Filters = filters, MaxResults = page, NextToken = token });
            Assert.True(r.Jobs.Count <= page);
            walked.AddRange(r.Jobs);
            token = r.NextToken;
        }
        while (token is not null && Guard(ref pages, whole.Jobs.Count));

        Assert.Equal(whole.Jobs, walked);
    }
}
