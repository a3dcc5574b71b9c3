using System.Globalization;
using BatchCore.Jobs;
using BatchCore.Model;

namespace BatchCore.Dispatch;

internal sealed partial class EngineCore
{
    public IReadOnlyList<JobDetail> DescribeJobs(IReadOnlyList<string>? jobIds)
    {
        if (jobIds is null)
        {
            throw new BatchClientException("jobs is required");
        }

        if (jobIds.Count > 100)
        {
            throw new BatchClientException($"jobs must have at most 100 entries, had {jobIds.Count}");
        }

        var list = new List<JobDetail>(jobIds.Count);
        foreach (var id in jobIds)
        {
            if (id is not null && TryGetJob(id, out var job))
            {
                list.Add(Describe(job));
            }
        }

        return list;
    }

    /// <summary>How many of an array job's children are folded (<see cref="ArrayChildren"/>); 0 for another job.</summary>
    internal int FoldedChildren(string arrayJobId) => TryGetJob(arrayJobId, out var job) && job.Children is { } c ? c.FoldedCount : 0;

    public JobDetail Describe(Job job)
    {
        var spec = job.Spec;
        ArrayPropertiesDetail? array = null;
        if (job.IsArrayParent)
        {
            array = new ArrayPropertiesDetail
            {
                Size = job.ArraySize,
                StatusSummary = job.StatusSummary is { } s ? Summary(s) : Summary(new int[7]),
                StatusSummaryLastUpdatedAt = job.StatusSummary is null ? null : job.StatusSummaryLastUpdatedAt,
            };
        }
        else if (job.Parent is not null)
        {
            array = new ArrayPropertiesDetail { Index = job.ArrayIndex };
        }

        var attempts = job.Attempts;
        var details = attempts.Count == 0 ? [] : new AttemptDetail[attempts.Count];
        for (var i = 0; i < details.Length; i++)
        {
            details[i] = attempts[i].ToDetail(job, _options.Region, _options.AccountId);
        }

        var last = details.Length > 0 ? details[^1]?.Container : null;
        string? logStream = last?.LogStreamName, instance = last?.ContainerInstanceArn, task = last?.TaskArn;
        if (job.State is JobState.Starting or JobState.Running && job.Host is { } host)
        {
            // The attempt under way (AWS: the job's container is its current attempt's): its stream can be tailed now.
            var number = details.Length + 1;
            logStream = AttemptRecord.LogStreamName(spec.Definition.JobDefinitionName, job.Id, number);
            instance = AttemptRecord.ContainerInstanceArn(_options.Region, _options.AccountId, host.ComputeEnvironment.Name, host.Name);
            task = AttemptRecord.TaskArn(_options.Region, _options.AccountId, host.ComputeEnvironment.Name, job.Id, number);
            last = null; // no exit code or reason yet
        }

        return new JobDetail
        {
            JobArn = JobArn(job.Id),
            JobName = job.Name,
            JobId = job.Id,
            JobQueue = job.Queue.Arn,
            Status = job.State.ToAws(),
            ShareIdentifier = spec.ShareIdentifier,
            SchedulingPriority = job.Queue.IsFairShare ? spec.SchedulingPriority : null,
            Attempts = details,
            StatusReason = job.StatusReason,
            CreatedAt = job.CreatedAt,
            RetryStrategy = spec.RetryStrategy,
            StartedAt = job.StartedAt,
            StoppedAt = job.State.IsTerminal() ? job.StoppedAt : null,
            DependsOn = job.Parent is null ? spec.DependsOn : [],
            JobDefinition = spec.Definition.JobDefinitionArn,
            Parameters = spec.Parameters,
            Container = job.IsArrayParent ? null : new ContainerDetail
            {
                Image = spec.Image,
                Command = spec.Command,
                Environment = spec.Environment,
                ResourceRequirements = spec.ResourceRequirements,
                ExitCode = last?.ExitCode,
                Reason = last?.Reason,
                LogStreamName = logStream,
                ContainerInstanceArn = instance,
                TaskArn = task,
                LinuxParameters = spec.Definition.ContainerProperties?.LinuxParameters,
                Privileged = spec.Definition.ContainerProperties?.Privileged,
            },
            ArrayProperties = array,
            Timeout = spec.TimeoutSeconds is { } t ? new JobTimeout { AttemptDurationSeconds = t } : null,
            Tags = job.MutableTags is { } mt ? new Dictionary<string, string>(mt) : spec.Tags,
            PropagateTags = spec.PropagateTags,
            PlatformCapabilities = spec.Definition.PlatformCapabilities,
            IsCancelled = job.IsCancelled,
            IsTerminated = job.IsTerminated,
            ConsumableResourceProperties = spec.ConsumableResourceProperties,
        };
    }

    private static Dictionary<string, int> Summary(int[] counts)
    {
        var d = new Dictionary<string, int>(7, StringComparer.Ordinal);
        for (var i = 0; i < counts.Length; i++)
        {
            d[((JobState)i).ToAws()] = counts[i];
        }

        return d;
    }

    /// <summary>
    /// AWS ListJobs: by queue or by array parent; without a filter only the given status (default RUNNING); with a
    /// filter the status is ignored (except SHARE_IDENTIFIER) and results are newest first.
    /// </summary>
    public ListJobsResponse ListJobs(ListJobsRequest r)
    {
        var p = new Validation.Problems();
        if ((r.JobQueue is null) == (r.ArrayJobId is null))
        {
            p.Add("exactly one of jobQueue and arrayJobId must be given");
        }

        JobState? status = null;
        if (r.JobStatus is { } js)
        {
            if (JobStateExtensions.TryParse(js, out var st))
            {
                status = st;
            }
            else
            {
                p.Add("jobStatus", $"must be one of {string.Join(" | ", JobStatus.All.Order(StringComparer.Ordinal))}, was {js}");
            }
        }

        if (r.Filters is { Count: > 1 })
        {
            p.Add("filters", $"must have at most 1 entry, had {r.Filters.Count}");
        }

        var filter = r.Filters is { Count: 1 } fl ? fl[0] : null;
        var maxPage = filter is null ? 1000 : 100;
        p.Range(r.MaxResults, 1, maxPage, "maxResults");
        if (r.Filters is { Count: 1 } && filter is null)
        {
            p.Add("filters[0]", "must not be null");
        }

        if (filter is not null)
        {
            p.OneOf(filter.Name, "filters[0].name", ListJobsFilterName.JOB_NAME, ListJobsFilterName.JOB_DEFINITION, ListJobsFilterName.BEFORE_CREATED_AT, ListJobsFilterName.AFTER_CREATED_AT, ListJobsFilterName.SHARE_IDENTIFIER);
            if (filter.Values is not { Count: 1 })
            {
                p.Add("filters[0].values", "must have exactly 1 value");
            }
            else if (string.IsNullOrEmpty(filter.Values[0]))
            {
                p.Add("filters[0].values[0]", "must not be " + (filter.Values[0] is null ? "null" : "empty"));
            }
        }

        ListCursor? after = null;
        if (r.NextToken is not null)
        {
            after = ListCursor.Parse(r.NextToken);
            if (after is null)
            {
                p.Add("nextToken", $"is not a token returned by ListJobs: '{r.NextToken}'");
            }
        }

        p.ThrowIfAny();
        // Without a filter only one status is listed: folded children (all SUCCEEDED) are viewed only when it is that one.
        JobState? only = filter is null ? status ?? JobState.Running : null;
        IEnumerable<Job> source;
        if (r.JobQueue is { } qn)
        {
            var q = FindQueue(qn) ?? throw new BatchClientException($"jobQueue {qn} does not exist");
            // AWS: "The filter doesn't apply to child jobs in an array": a filtered listing of a queue has no children.
            // Unfiltered, the listing is in submission order and the next page starts right after the job that ended the
            // last one (by its place, even if it has left the listing since), so nothing is listed twice or skipped.
            source = filter is null ? WithChildren(q.AllJobs, only, after: after) : WithChildren(q.AllJobs, only, children: false);
        }
        else
        {
            source = TryGetJob(r.ArrayJobId!, out var parent) && parent.Children is { } c ? c.InState(only) : [];
            if (after is { } a && (parent is null || a.TopId != (parent.Parent ?? parent).Id || a.ChildIndex < 0))
            {
                throw new BatchClientException($"nextToken is not a token of the listing of array job {r.ArrayJobId}: '{r.NextToken}'");
            }

            if (filter is null && after is { } from)
            {
                source = source.Where(j => j.ArrayIndex > from.ChildIndex);
            }
        }

        IEnumerable<Job> selected;
        if (filter is null)
        {
            var wanted = only!.Value;
            selected = source.Where(j => j.State == wanted);
        }
        else
        {
            var value = filter.Values![0];
            selected = filter.Name switch
            {
                ListJobsFilterName.JOB_NAME => source.Where(j => Matches(j.Name, value, ignoreCase: true)),
                ListJobsFilterName.JOB_DEFINITION => value.StartsWith("arn:", StringComparison.Ordinal)
                    ? source.Where(j => j.Spec.Definition.JobDefinitionArn == value)
                    : source.Where(j => Matches(j.Spec.Definition.JobDefinitionName, value, ignoreCase: false)),
                ListJobsFilterName.BEFORE_CREATED_AT => source.Where(j => j.CreatedAt < ParseMs(value)),
                ListJobsFilterName.AFTER_CREATED_AT => source.Where(j => j.CreatedAt > ParseMs(value)),
                _ => source.Where(j => j.Spec.ShareIdentifier == value && (status is null || j.State == status)),
            };
            selected = selected.OrderByDescending(j => j.CreatedAt);
            if (after is { } a)
            {
                selected = AfterInNewestFirst(selected.ToList(), a);
            }
        }

        var page = r.MaxResults ?? maxPage;
        var items = selected.Take(page + 1).ToList();
        var more = items.Count > page;
        if (more)
        {
            items.RemoveAt(items.Count - 1);
        }

        var summaries = items.Select(Summarize).ToList();
        return new ListJobsResponse(summaries, more ? ListCursor.Of(items[^1]) : null);
    }

    /// <summary>
    /// A ListJobs page token: the job that ended the page (its createdAt, its top-level job's id and, for an array
    /// child, its index). The next page starts after that job's place, found by id, or by createdAt once the job has
    /// gone (retention): pages neither repeat nor skip jobs when jobs change state or are submitted between them.
    /// </summary>
    private readonly record struct ListCursor(long CreatedAt, string TopId, int ChildIndex)
    {
        private const string Prefix = "j1:";

        /// <summary>The token of <paramref name="job"/>: its top-level job's createdAt (children spawn later), id and its index.</summary>
        public static string Of(Job job) => string.Create(CultureInfo.InvariantCulture,
            $"{Prefix}{(job.Parent ?? job).CreatedAt}:{(job.Parent ?? job).Id}:{(job.Parent is null ? -1 : job.ArrayIndex)}");

        public static ListCursor? Parse(string token)
        {
            if (!token.StartsWith(Prefix, StringComparison.Ordinal))
            {
                return null;
            }

            var rest = token[Prefix.Length..];
            var first = rest.IndexOf(':', StringComparison.Ordinal);
            var last = rest.LastIndexOf(':');
            return first > 0 && last > first + 1 &&
                   long.TryParse(rest[..first], NumberStyles.Integer, CultureInfo.InvariantCulture, out var created) &&
                   int.TryParse(rest[(last + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var index) && index >= -1
                ? new ListCursor(created, rest[(first + 1)..last], index)
                : null;
        }

        /// <summary>Whether <paramref name="job"/> is the job the cursor names.</summary>
        public bool Names(Job job) =>
            (job.Parent is null ? ChildIndex == -1 : ChildIndex == job.ArrayIndex) && (job.Parent ?? job).Id == TopId;
    }

    /// <summary>Newest first: the jobs after the cursor's job, or, once it has left the listing, those created before it.</summary>
    private static IEnumerable<Job> AfterInNewestFirst(List<Job> sorted, ListCursor after)
    {
        var at = sorted.FindIndex(after.Names);
        if (at >= 0)
        {
            return sorted.Skip(at + 1);
        }

        return sorted.Where(j => j.Parent is { } p && p.Id == after.TopId
            ? j.ArrayIndex > after.ChildIndex
            : (j.Parent ?? j).CreatedAt < after.CreatedAt);
    }

    /// <summary>
    /// A queue's jobs in submission order, each array job followed by its children; with <paramref name="after"/>, from
    /// the place after that cursor's job (top-level jobs are in createdAt order: found by a binary search).
    /// </summary>
    private static IEnumerable<Job> WithChildren(JobList jobs, JobState? only, bool children = true, ListCursor? after = null)
    {
        var i = 0;
        var skipTop = false;
        var childFrom = 0;
        if (after is { } c)
        {
            // The first top-level job created at the cursor's time, then the cursor's own among those of that time.
            int lo = 0, hi = jobs.Count;
            while (lo < hi)
            {
                var mid = (lo + hi) >>> 1;
                if (jobs[mid].CreatedAt < c.CreatedAt)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            i = lo;
            while (i < jobs.Count && jobs[i].CreatedAt == c.CreatedAt && jobs[i].Id != c.TopId)
            {
                i++;
            }

            if (i < jobs.Count && jobs[i].CreatedAt == c.CreatedAt)
            {
                skipTop = true; // the cursor's top-level job: it was listed (or its children from ChildIndex were)
                childFrom = c.ChildIndex + 1;
            }
        }

        for (; i < jobs.Count; i++, skipTop = false, childFrom = 0)
        {
            var job = jobs[i];
            if (!skipTop)
            {
                yield return job;
            }

            if (children && job.Children is { } kids)
            {
                foreach (var child in kids.InState(only))
                {
                    if (child.ArrayIndex >= childFrom)
                    {
                        yield return child;
                    }
                }
            }
        }
    }

    private static long ParseMs(string value) =>
        long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms)
            ? ms
            : throw new BatchClientException($"filters[0].values must be epoch milliseconds, was '{value}'");

    private static bool Matches(string name, string pattern, bool ignoreCase)
    {
        var cmp = ignoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return pattern.EndsWith('*') ? name.StartsWith(pattern[..^1], cmp) : string.Equals(name, pattern, cmp);
    }

    private JobSummary Summarize(Job job)
    {
        var last = job.Attempts.Last;
        return new JobSummary
        {
            JobArn = JobArn(job.Id),
            JobId = job.Id,
            JobName = job.Name,
            CreatedAt = job.CreatedAt,
            Status = job.State.ToAws(),
            StatusReason = job.StatusReason,
            StartedAt = job.StartedAt,
            StoppedAt = job.State.IsTerminal() ? job.StoppedAt : null,
            ScheduledAt = job.ScheduledAt,
            // Under way: no exit yet (a retried job's earlier exit is its attempt's, not the job's now).
            Container = job.State is JobState.Starting or JobState.Running ? null
                : last is { } c ? new AttemptContainerDetail { ExitCode = c.ExitCode, Reason = c.Reason } : null,
            ArrayProperties = job.IsArrayParent
                ? new ArrayPropertiesDetail { Size = job.ArraySize, StatusSummary = job.StatusSummary is { } s ? Summary(s) : null }
                : job.Parent is not null ? new ArrayPropertiesDetail { Index = job.ArrayIndex } : null,
            JobDefinition = job.Spec.Definition.JobDefinitionArn,
            ShareIdentifier = job.Spec.ShareIdentifier,
            CapacityUsage = [new JobCapacityUsageSummary(ResourceType.VCPU, job.Spec.Request.Vcpus)],
        };
    }

    /// <summary>
    /// AWS GetJobQueueSnapshot: the first 100 RUNNABLE jobs in dispatch order, and the vCPUs the queue's STARTING and
    /// RUNNING jobs hold (per share identifier too, fair share). A fair-share queue's order is the dispatcher's: the
    /// share of lowest <see cref="ShareState.Score"/> gives its next job, which counts as running for the next pick.
    /// </summary>
    public JobQueueSnapshot GetJobQueueSnapshot(string? jobQueue)
    {
        if (string.IsNullOrEmpty(jobQueue))
        {
            throw new BatchClientException("jobQueue is required");
        }

        var q = FindQueue(jobQueue) ?? throw new BatchClientException($"jobQueue {jobQueue} does not exist");
        const int Front = 100;
        var now = NowMs;
        var front = new List<FrontOfQueueJobSummary>();
        FairshareUtilizationDetail? fairshare = null;
        if (q.IsFairShare)
        {
            var decay = q.Policy!.DecaySeconds;
            var shares = q.Shares.Values.Where(s => s.Ready.Count > 0)
                .Select(s => (Share: s, Usage: s.DecayedUsageAt(now, decay), Running: s.RunningVcpuMilli, Next: s.Ready.GetEnumerator())).ToArray();
            var left = new bool[shares.Length];
            for (var k = 0; k < shares.Length; k++)
            {
                left[k] = shares[k].Next.MoveNext();
            }

            while (front.Count < Front)
            {
                var best = -1;
                var bestScore = double.MaxValue;
                for (var k = 0; k < shares.Length; k++)
                {
                    if (!left[k])
                    {
                        continue;
                    }

                    var (share, usage, running, _) = shares[k];
                    var score = share.Score(usage, running, decay);
                    if (best < 0 || score < bestScore || (score == bestScore && string.CompareOrdinal(share.Id, shares[best].Share.Id) < 0))
                    {
                        best = k;
                        bestScore = score;
                    }
                }

                if (best < 0)
                {
                    break;
                }

                var job = shares[best].Next.Current;
                front.Add(new FrontOfQueueJobSummary(JobArn(job.Id), job.RunnableSince));
                shares[best].Running += job.Spec.Request.VcpuMilli;
                left[best] = shares[best].Next.MoveNext();
            }

            var holding = q.Shares.Values.Where(s => s.RunningVcpuMilli > 0).ToList();
            fairshare = new FairshareUtilizationDetail(holding.Count, holding
                .OrderByDescending(s => s.RunningVcpuMilli).ThenBy(s => s.Id, StringComparer.Ordinal).Take(20)
                .Select(s => new FairshareCapacityUtilization(s.Id, [new FairshareCapacityUsage(ResourceType.VCPU, s.RunningVcpuMilli / 1000.0)]))
                .ToList());
        }
        else
        {
            for (var i = 0; i < q.Fifo.RawCount && front.Count < Front; i++)
            {
                if (q.Fifo.RawAt(i) is not { InReadyQueue: true } j)
                {
                    continue;
                }

                if (j is TopJob { Children.Virtual: { } v } array)
                {
                    // An array's virtual RUNNABLE children, in index order (ids built, no objects).
                    for (var c = v.RunnableFrom; c < v.RunnableTo && front.Count < Front; c++)
                    {
                        front.Add(new FrontOfQueueJobSummary(JobArn(array.Children!.IdOf(c)), v.RunnableSince));
                    }
                }
                else
                {
                    front.Add(new FrontOfQueueJobSummary(JobArn(j.Id), j.RunnableSince));
                }
            }
        }

        return new JobQueueSnapshot
        {
            FrontOfQueue = new FrontOfQueueDetail(front, now),
            QueueUtilization = new QueueSnapshotUtilizationDetail
            {
                TotalCapacityUsage = [new QueueSnapshotCapacityUsage(ResourceType.VCPU, q.RunningVcpuMilli / 1000.0)],
                FairshareUtilization = fairshare,
                LastUpdatedAt = now,
            },
        };
    }

    /// <summary>For tests and the simulator: fair-share usage per share identifier (undecayed vCPU-seconds).</summary>
    public IReadOnlyDictionary<string, double> ShareUsage(string jobQueue)
    {
        var q = FindQueue(jobQueue) ?? throw new BatchClientException($"jobQueue {jobQueue} does not exist");
        var now = NowMs;
        var d = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var s in q.Shares.Values)
        {
            s.Accrue(now, q.Policy!.DecaySeconds);
            d[s.Id] = s.TotalUsage;
        }

        return d;
    }

    /// <summary>The names of a compute environment's hosts that accept placements (tests, tools); empty when unknown.</summary>
    internal List<string> AcceptingHostNames(string computeEnvironment)
    {
        var names = new List<string>();
        if (FindCe(computeEnvironment) is { } ce)
        {
            foreach (var h in ce.Hosts.Values)
            {
                if (h.Accepts)
                {
                    names.Add(h.Name);
                }
            }
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }
}
