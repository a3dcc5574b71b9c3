using System.Globalization;
using BatchCore.Jobs;
using BatchCore.Model;
using BatchCore.Validation;

namespace BatchCore.Dispatch;

/// <summary>
/// AWS's paginated List* calls for scheduling policies, consumable resources and the jobs that need a consumable resource.
/// Policies and resources are listed by name and paged by name (the token is the last name returned), so creating or
/// deleting one between pages neither repeats nor skips the others; jobs are paged by position, like ListJobs.
/// </summary>
internal sealed partial class EngineCore
{
    /// <summary>AWS's page size (and maximum) for these calls.</summary>
    private const int ListPageMax = 100;

    public ListSchedulingPoliciesResponse ListSchedulingPolicies(ListSchedulingPoliciesRequest r)
    {
        var p = new Problems();
        p.Range(r.MaxResults, 1, ListPageMax, "maxResults");
        p.ThrowIfAny();
        var page = ByName(_policies.Values, x => x.Name, r.NextToken, r.MaxResults, out var next);
        return new ListSchedulingPoliciesResponse(page.ConvertAll(x => new SchedulingPolicyListingDetail(x.Arn)), next);
    }

    public ListConsumableResourcesResponse ListConsumableResources(ListConsumableResourcesRequest r)
    {
        var p = new Problems();
        p.Range(r.MaxResults, 1, ListPageMax, "maxResults");
        var names = SingleFilter(p, r.Filters, ListConsumableResourcesFilterName.CONSUMABLE_RESOURCE_NAME);
        p.ThrowIfAny();
        var source = names is null ? _consumables.Values : _consumables.Values.Where(c => names.Any(n => Matches(c.Name, n, ignoreCase: true)));
        var page = ByName(source, c => c.Name, r.NextToken, r.MaxResults, out var next);
        return new ListConsumableResourcesResponse(page.ConvertAll(c => new ConsumableResourceSummary
        {
            ConsumableResourceArn = c.Arn,
            ConsumableResourceName = c.Name,
            TotalQuantity = c.ReportedTotal,
            InUseQuantity = c.InUse,
            ResourceType = c.Replenishable ? ConsumableResourceType.REPLENISHABLE : ConsumableResourceType.NON_REPLENISHABLE,
        }), next);
    }

    /// <summary>
    /// AWS ListJobsByConsumableResource: the retained jobs (array parents followed by their children) whose definition or
    /// overrides name the resource, newest first.
    /// </summary>
    public ListJobsByConsumableResourceResponse ListJobsByConsumableResource(ListJobsByConsumableResourceRequest r)
    {
        var p = new Problems();
        p.Required(r.ConsumableResource, "consumableResource");
        p.Range(r.MaxResults, 1, ListPageMax, "maxResults");
        HashSet<JobState>? statuses = null;
        string[]? names = null;
        for (var i = 0; i < (r.Filters?.Count ?? 0); i++)
        {
            var f = r.Filters![i];
            var field = string.Create(CultureInfo.InvariantCulture, $"filters[{i}]");
            if (p.NullEntry(f, field))
            {
                continue;
            }

            p.Required(f.Name, field + ".name");
            p.OneOf(f.Name, field + ".name", ListJobsByConsumableResourceFilterName.JOB_STATUS, ListJobsByConsumableResourceFilterName.JOB_NAME);
            if (f.Values is not { Count: > 0 } values || values.Any(string.IsNullOrEmpty))
            {
                p.Add(field + ".values", "must have at least 1 value, none empty");
                continue;
            }

            if ((f.Name == ListJobsByConsumableResourceFilterName.JOB_STATUS && statuses is not null) ||
                (f.Name == ListJobsByConsumableResourceFilterName.JOB_NAME && names is not null))
            {
                p.Add(field + ".name", $"must not repeat an earlier filter, was {f.Name} again");
            }
            else if (f.Name == ListJobsByConsumableResourceFilterName.JOB_STATUS)
            {
                statuses = [];
                foreach (var v in values)
                {
                    if (JobStateExtensions.TryParse(v, out var st))
                    {
                        statuses.Add(st);
                    }
                    else
                    {
                        p.Add(field + ".values", $"must be job statuses ({string.Join(" | ", JobStatus.All)}), was {v}");
                    }
                }
            }
            else if (f.Name == ListJobsByConsumableResourceFilterName.JOB_NAME)
            {
                names = [.. values];
            }
        }

        var start = 0;
        if (r.NextToken is not null && !int.TryParse(r.NextToken, NumberStyles.None, CultureInfo.InvariantCulture, out start))
        {
            p.Add("nextToken", $"is not a token returned by ListJobsByConsumableResource: '{r.NextToken}'");
        }

        p.ThrowIfAny();
        var resource = FindConsumable(r.ConsumableResource!) ?? throw new BatchClientException($"consumableResource {r.ConsumableResource} does not exist");
        var tops = new List<Job>();
        foreach (var q in _queues.Values)
        {
            foreach (var job in q.AllJobs)
            {
                if (!job.Forgotten && QuantityOf(job.Spec, resource) > 0 &&
                    (names is null || names.Any(n => Matches(job.Name, n, ignoreCase: true))))
                {
                    tops.Add(job);
                }
            }
        }

        // Newest first; a stable sort keeps submission order among jobs created at once (an array's children).
        // Ties by id, which never changes (a retry rewrites its submission order): pages stay stable.
        tops.Sort(static (a, b) => b.CreatedAt.CompareTo(a.CreatedAt) is var c && c != 0 ? c : string.CompareOrdinal(a.Id, b.Id));
        // Folded children are all SUCCEEDED: a status filter without SUCCEEDED reads the live children only (no views).
        var folded = statuses is null || statuses.Contains(JobState.Succeeded);
        var page = r.MaxResults ?? ListPageMax;
        var items = new List<ListJobsByConsumableResourceSummary>(Math.Min(page, 16));
        var seen = 0;
        var more = false;
        foreach (var job in tops.SelectMany(t => WithItsChildren(t, folded)))
        {
            if (statuses is not null && !statuses.Contains(job.State))
            {
                continue;
            }

            if (seen++ < start)
            {
                continue;
            }

            if (items.Count == page)
            {
                more = true;
                break;
            }

            items.Add(SummarizeFor(job, resource));
        }

        return new ListJobsByConsumableResourceResponse(items, more ? (start + page).ToString(CultureInfo.InvariantCulture) : null);
    }

    private static IEnumerable<Job> WithItsChildren(Job job, bool folded)
    {
        yield return job;
        if (job.Children is not { } children)
        {
            yield break;
        }

        if (folded)
        {
            foreach (var child in children)
            {
                yield return child;
            }
        }
        else
        {
            foreach (var child in children.Live)
            {
                yield return child;
            }
        }
    }

    private static long QuantityOf(JobSpec spec, ConsumableResourceState resource)
    {
        foreach (var (res, qty) in spec.Consumables)
        {
            if (ReferenceEquals(res, resource))
            {
                return qty;
            }
        }

        return 0;
    }

    private ListJobsByConsumableResourceSummary SummarizeFor(Job job, ConsumableResourceState resource)
    {
        var spec = job.Spec;
        return new ListJobsByConsumableResourceSummary
        {
            JobArn = JobArn(job.Id),
            JobQueueArn = job.Queue.Arn,
            JobName = job.Name,
            JobDefinitionArn = spec.Definition.JobDefinitionArn,
            ShareIdentifier = spec.ShareIdentifier,
            JobStatus = job.State.ToAws(),
            Quantity = QuantityOf(spec, resource),
            StatusReason = job.StatusReason,
            StartedAt = job.StartedAt,
            CreatedAt = job.CreatedAt,
            ConsumableResourceProperties = spec.ConsumableResourceProperties!, // a job that needs a resource was given these
        };
    }

    /// <summary>The values of the one filter these calls take (<paramref name="name"/>), or null when none is given.</summary>
    private static string[]? SingleFilter(Problems p, IReadOnlyList<KeyValuesPair>? filters, string name)
    {
        if (filters is not { Count: > 0 })
        {
            return null;
        }

        if (filters.Count > 1)
        {
            p.Add("filters", $"must have at most 1 entry, had {filters.Count}");
            return null;
        }

        var f = filters[0];
        if (f is null)
        {
            p.Add("filters[0]", "must not be null");
            return null;
        }

        p.Required(f.Name, "filters[0].name");
        p.OneOf(f.Name, "filters[0].name", name);
        if (f.Values is not { Count: > 0 } values || values.Any(string.IsNullOrEmpty))
        {
            p.Add("filters[0].values", "must have at least 1 value, none empty");
            return null;
        }

        return [.. values];
    }

    /// <summary>What every Describe* call checks first: at most 100 names, a page of 1–100.</summary>
    private static Problems DescribeProblems(IReadOnlyList<string>? names, string field, int? maxResults)
    {
        var p = new Problems();
        if (names is { Count: > 100 })
        {
            p.Add(field, string.Create(CultureInfo.InvariantCulture, $"must have at most 100 entries, had {names.Count}"));
        }

        for (var i = 0; i < (names?.Count ?? 0); i++)
        {
            if (string.IsNullOrEmpty(names![i]))
            {
                p.Add(string.Create(CultureInfo.InvariantCulture, $"{field}[{i}]"), "must be a name or an ARN, was " + (names[i] is null ? "null" : "empty"));
            }
        }

        p.Range(maxResults, 1, ListPageMax, "maxResults");
        return p;
    }

    /// <summary>
    /// One page of <paramref name="source"/> (compute environments, job queues) in creation order, after the creation
    /// number <paramref name="token"/>: resources created or deleted between pages neither repeat nor skip the others.
    /// </summary>
    private static List<T> ByCreation<T>(IEnumerable<T> source, Func<T, long> order, string? token, int? maxResults, string call, out string? next)
    {
        var after = long.MinValue;
        if (token is not null && !long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out after))
        {
            throw new BatchClientException($"nextToken is not a token returned by {call}: '{token}'");
        }

        var page = maxResults ?? ListPageMax;
        var sorted = source.Where(x => order(x) > after).OrderBy(order).Take(page + 1).ToList();
        next = null;
        if (sorted.Count > page)
        {
            sorted.RemoveAt(page);
            next = order(sorted[^1]).ToString(CultureInfo.InvariantCulture);
        }

        return sorted;
    }

    /// <summary>One page of <paramref name="source"/> in ordinal name order, after the name <paramref name="token"/>.</summary>
    private static List<T> ByName<T>(IEnumerable<T> source, Func<T, string> name, string? token, int? maxResults, out string? next)
    {
        var page = maxResults ?? ListPageMax;
        var sorted = (token is null ? source : source.Where(x => string.CompareOrdinal(name(x), token) > 0))
            .OrderBy(name, StringComparer.Ordinal)
            .Take(page + 1)
            .ToList();
        next = null;
        if (sorted.Count > page)
        {
            sorted.RemoveAt(page);
            next = name(sorted[^1]);
        }

        return sorted;
    }
}
