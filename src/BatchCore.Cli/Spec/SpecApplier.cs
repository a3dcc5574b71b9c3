using System.Globalization;
using System.Reflection;
using System.Text.Json;
using BatchCore.Model;

namespace BatchCore.Cli.Spec;

/// <summary>A job of the spec the engine accepted.</summary>
internal sealed record SubmittedJob(string Path, string JobName, string JobId, int? ArraySize);

/// <summary>
/// Creates a spec's resources in an engine and submits its jobs, in dependency order (compute environments,
/// scheduling policies, consumable resources, queues, definitions, jobs). Names are resolved on the way: a queue's
/// <c>schedulingPolicyArn</c> may be a policy name of the spec, a <c>dependsOn</c> entry may name an earlier job by
/// <c>jobName</c>. Every rejected entry is a problem with its path; application goes on after one.
/// </summary>
internal sealed class SpecApplier(BatchEngine engine)
{
    private readonly Dictionary<string, string> _policyArns = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _failedPolicies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _jobIds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _failedJobs = new(StringComparer.Ordinal);

    public List<SpecProblem> Problems { get; } = [];

    public List<SubmittedJob> Jobs { get; } = [];

    /// <summary>Applies the spec; <paramref name="prepareCe"/> adjusts each compute environment (e.g. the default provider).</summary>
    public async Task ApplyAsync(SpecDocument spec, Func<CreateComputeEnvironmentRequest, CreateComputeEnvironmentRequest> prepareCe, CancellationToken ct, bool skipDockerEntries = false)
    {
        bool Skipped(string path) => skipDockerEntries && spec.RequiresDocker.Contains(path);

        foreach (var e in spec.ComputeEnvironments)
        {
            if (Skipped(e.Path))
            {
                continue;
            }

            if (e.Request is { } r)
            {
                await TryAsync(e.Path, () => engine.CreateComputeEnvironmentAsync(prepareCe(r), ct), typeof(CreateComputeEnvironmentRequest));
            }
        }

        foreach (var e in spec.SchedulingPolicies)
        {
            if (Skipped(e.Path))
            {
                continue;
            }

            if (e.Request is not { } r)
            {
                continue;
            }

            var response = await TryAsync(e.Path, () => engine.CreateSchedulingPolicyAsync(r, ct), typeof(CreateSchedulingPolicyRequest));
            if (r.Name is { } name)
            {
                if (response is not null)
                {
                    _policyArns[name] = response.Arn;
                }
                else
                {
                    _failedPolicies[name] = e.Path;
                }
            }
        }

        foreach (var e in spec.ConsumableResources)
        {
            if (Skipped(e.Path))
            {
                continue;
            }

            if (e.Request is { } r)
            {
                await TryAsync(e.Path, () => engine.CreateConsumableResourceAsync(r, ct), typeof(CreateConsumableResourceRequest));
            }
        }

        foreach (var e in spec.JobQueues)
        {
            if (Skipped(e.Path))
            {
                continue;
            }

            if (e.Request is not { } r)
            {
                continue;
            }

            if (r.SchedulingPolicyArn is { } policy && !policy.StartsWith("arn:", StringComparison.Ordinal))
            {
                if (_policyArns.TryGetValue(policy, out var arn))
                {
                    r = r with { SchedulingPolicyArn = arn };
                }
                else if (_failedPolicies.TryGetValue(policy, out var where))
                {
                    Problems.Add(new SpecProblem(e.Path + ".schedulingPolicyArn", $"scheduling policy {policy} was not created: {where} is invalid"));
                    continue;
                }
            }

            await TryAsync(e.Path, () => engine.CreateJobQueueAsync(r, ct), typeof(CreateJobQueueRequest));
        }

        foreach (var e in spec.JobDefinitions)
        {
            if (Skipped(e.Path))
            {
                continue;
            }

            if (e.Request is { } r)
            {
                await TryAsync(e.Path, () => engine.RegisterJobDefinitionAsync(r, ct), typeof(RegisterJobDefinitionRequest));
            }
        }

        for (var i = 0; i < spec.Jobs.Count; i++)
        {
            var e = spec.Jobs[i];
            if (e.Request is not { } r || Skipped(e.Path))
            {
                continue;
            }

            var resolved = ResolveDependencies(e.Path, r, spec.DependsOnNames.GetValueOrDefault(i), out var ok);
            var response = await TryAsync(e.Path, () => engine.SubmitJobAsync(resolved, ct), typeof(SubmitJobRequest));
            if (r.JobName is not { } name)
            {
                continue;
            }

            if (response is not null && ok)
            {
                _jobIds[name] = response.JobId;
                _failedJobs.Remove(name);
                Jobs.Add(new SubmittedJob(e.Path, name, response.JobId, r.ArrayProperties?.Size));
            }
            else
            {
                _failedJobs[name] = e.Path;
            }
        }
    }

    /// <summary>
    /// Turns <c>{"jobName": "x"}</c> (and a <c>jobId</c> that is the name of an earlier spec job) into the submitted job's
    /// id. An unresolvable entry is a problem and is left out, so the rest of the job is still checked.
    /// </summary>
    private SubmitJobRequest ResolveDependencies(string path, SubmitJobRequest r, Dictionary<int, string>? names, out bool ok)
    {
        ok = true;
        if (r.DependsOn is not { Count: > 0 } deps)
        {
            return r;
        }

        var list = new List<JobDependency>(deps.Count);
        for (var d = 0; d < deps.Count; d++)
        {
            var dep = deps[d];
            if (names is not null && names.TryGetValue(d, out var name))
            {
                if (dep.JobId is not null)
                {
                    Problems.Add(new SpecProblem(Fmt($"{path}.dependsOn[{d}]"), "give jobId or jobName, not both"));
                    ok = false;
                }
                else if (_jobIds.TryGetValue(name, out var id))
                {
                    list.Add(dep with { JobId = id });
                }
                else
                {
                    Problems.Add(new SpecProblem(Fmt($"{path}.dependsOn[{d}].jobName"), _failedJobs.TryGetValue(name, out var where)
                        ? $"job {name} was not submitted: {where} is invalid"
                        : $"no earlier job of the spec is named {name}"));
                    ok = false;
                }

                continue;
            }

            if (dep.JobId is { } jobId && _jobIds.TryGetValue(jobId, out var byName))
            {
                list.Add(dep with { JobId = byName });
            }
            else if (dep.JobId is { } failed && _failedJobs.TryGetValue(failed, out var where))
            {
                Problems.Add(new SpecProblem(Fmt($"{path}.dependsOn[{d}].jobId"), $"job {failed} was not submitted: {where} is invalid"));
                ok = false;
            }
            else
            {
                list.Add(dep);
            }
        }

        return r with { DependsOn = list };
    }

    private async Task<T?> TryAsync<T>(string path, Func<Task<T>> create, Type requestType)
        where T : class
    {
        try
        {
            return await create();
        }
        catch (BatchClientException e)
        {
            foreach (var p in e.Problems)
            {
                Problems.Add(Prefix(path, p, requestType));
            }

            return null;
        }
    }

    /// <summary>
    /// The engine's problems read "&lt;field&gt; &lt;rule&gt;" (e.g. <c>arrayProperties.size must be between 2 and 10000, was 10001</c>):
    /// when the first word is a field of the request, it joins the entry's path; other messages keep the entry's path only.
    /// </summary>
    internal static SpecProblem Prefix(string path, string problem, Type requestType)
    {
        var space = problem.IndexOf(' ', StringComparison.Ordinal);
        if (space > 0)
        {
            var field = problem[..space];
            var end = field.IndexOfAny(['.', '[']);
            var root = end < 0 ? field : field[..end];
            if (root.Length > 0 && char.IsAsciiLetterLower(root[0]) && !field.EndsWith(':')
                && requestType.GetProperty(root, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase) is { } prop
                && JsonNamingPolicy.CamelCase.ConvertName(prop.Name) == root)
            {
                return new SpecProblem(path + "." + field, problem[(space + 1)..]);
            }
        }

        return new SpecProblem(path, problem);
    }

    private static string Fmt(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
