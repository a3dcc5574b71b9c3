using System.Globalization;
using BatchCore.Jobs;
using BatchCore.Model;
using BatchCore.Placement;
using BatchCore.Validation;

namespace BatchCore.Dispatch;

internal sealed partial class EngineCore
{
    /// <summary>Rules of SubmitJob that need no engine state; run on the caller's thread, off the loop.</summary>
    public static void ValidateSubmitStateless(SubmitJobRequest r, BatchEngineOptions options, Problems p)
    {
        Names.Check(p, r.JobName, "jobName", firstAlphanumeric: true);
        p.Required(r.JobQueue, "jobQueue");
        p.Required(r.JobDefinition, "jobDefinition");
        p.MaxLength(r.ShareIdentifier, 255, "shareIdentifier");
        p.Range(r.SchedulingPriorityOverride, 0, 9999, "schedulingPriorityOverride");
        if (r.ArrayProperties is { } ap)
        {
            if (ap.Size is null)
            {
                p.Add("arrayProperties.size", "is required");
            }

            p.Range(ap.Size, 2, options.Quotas.MaxArraySize, "arrayProperties.size");
        }

        if (r.DependsOn is { } deps)
        {
            if (deps.Count > options.Quotas.MaxDependencies)
            {
                p.Add("dependsOn", $"must have at most {options.Quotas.MaxDependencies} entries, had {deps.Count}");
            }

            for (var i = 0; i < deps.Count; i++)
            {
                var d = deps[i];
                var f = $"dependsOn[{i}]";
                if (p.NullEntry(d, f))
                {
                    continue;
                }

                p.OneOf(d.Type, f + ".type", ArrayJobDependency.N_TO_N, ArrayJobDependency.SEQUENTIAL);
                if (d.Type == ArrayJobDependency.SEQUENTIAL)
                {
                    if (d.JobId is not null)
                    {
                        p.Add(f + ".jobId", "must not be set for a SEQUENTIAL dependency (it orders the job's own children)");
                    }

                    if (r.ArrayProperties is null)
                    {
                        p.Add(f + ".type", "SEQUENTIAL applies only to array jobs");
                    }
                }
                else if (string.IsNullOrEmpty(d.JobId))
                {
                    p.Add(f + ".jobId", "is required");
                }

                if (d.Type == ArrayJobDependency.N_TO_N && r.ArrayProperties is null)
                {
                    p.Add(f + ".type", "N_TO_N applies only to array jobs");
                }

                p.OneOf(d.Extensions?.Condition, f + ".extensions.condition", "SUCCEEDED", "ANY");
            }
        }

        if (r.ContainerOverrides is { } co)
        {
            ResourceValidation.ValidateCommand(co.Command, p, "containerOverrides.command");
            ResourceValidation.ValidateEnvironment(co.Environment, p, "containerOverrides.environment");
            ResourceValidation.ValidateResourceRequirements(co.ResourceRequirements, p, "containerOverrides.resourceRequirements");
            p.Range(co.Vcpus, 1, 10_000, "containerOverrides.vcpus");
            p.Range(co.Memory, 4, int.MaxValue, "containerOverrides.memory");
        }

        // AWS's overrides for job definitions BatchCore does not register (multinode, EKS, ecsProperties): whatever
        // definition the job names, AWS would refuse them against it.
        if (r.NodeOverrides is not null)
        {
            p.Add("nodeOverrides", "applies only to multi-node parallel jobs (job definition type multinode), which BatchCore does not support");
        }

        if (r.EksPropertiesOverride is not null)
        {
            p.Add("eksPropertiesOverride", "applies only to EKS job definitions (eksProperties), which BatchCore does not support");
        }

        if (r.EcsPropertiesOverride is not null)
        {
            p.Add("ecsPropertiesOverride", "applies only to job definitions with ecsProperties, which BatchCore does not support: use containerOverrides");
        }

        ResourceValidation.ValidateRetryStrategy(r.RetryStrategy, p, "retryStrategy");
        ResourceValidation.ValidateTimeout(r.Timeout, p, "timeout", options);
        ResourceValidation.ValidateParameters(r.Parameters, p); // as RegisterJobDefinition: a null value would be a null argument
        ResourceValidation.ValidateConsumables(r.ConsumableResourcePropertiesOverride, p, "consumableResourcePropertiesOverride");
        Names.CheckTags(p, r.Tags, "tags", options.Quotas.MaxTags, recovering: false); // never replayed: the journal replays through SubmitJob
        RequestSize.CheckSubmit(r, options.Quotas.MaxSubmitJobPayloadBytes, p);
        if (r.Extensions is { } e)
        {
            if (e.ArrayMaxConcurrency is { } c && c < 1)
            {
                p.Add("extensions.arrayMaxConcurrency", $"must be at least 1, was {c}");
            }

            if (e.ArrayMaxConcurrency is not null && r.ArrayProperties is null)
            {
                p.Add("extensions.arrayMaxConcurrency", "applies only to array jobs");
            }

            if (e.SimulatedRunTimeSeconds is { } s && (s < 0 || double.IsNaN(s)))
            {
                p.Add("extensions.simulatedRunTimeSeconds", $"must be at least 0, was {s}");
            }
            else if (e.SimulatedRunTimeSeconds > ResourceValidation.MaxSimulatedRunTimeSeconds)
            {
                // The attempt's timer counts milliseconds in a long: an infinite or huge run time would wrap it.
                p.Add("extensions.simulatedRunTimeSeconds", string.Create(CultureInfo.InvariantCulture,
                    $"must be at most {ResourceValidation.MaxSimulatedRunTimeSeconds} seconds, was {e.SimulatedRunTimeSeconds}"));
            }
        }
    }

    /// <summary>SubmitJob, on the loop: resolves names, checks the rules that need state, then accepts the job.</summary>
    public SubmitJobResponse SubmitJob(SubmitJobRequest r, System.Diagnostics.ActivityContext? submitter = null, string? fixedId = null, long? fixedCreatedAt = null)
    {
        // One instance for every submission (the loop runs one at a time; ThrowIfAny copies what it found).
        var p = _submitProblems;
        p.Clear();
        var q = FindQueue(r.JobQueue!);
        if (Draining && !_replaying)
        {
            p.Add("the engine is stopping and takes no new jobs (StopTakingJobsAsync)");
        }

        if (q is null)
        {
            p.Add("jobQueue", $"{r.JobQueue} does not exist");
        }
        else if (q.State != ResourceState.ENABLED && !_replaying)
        {
            p.Add("jobQueue", $"{q.Name} is DISABLED and takes no new jobs");
        }

        var def = ResolveDefinitionForSubmit(r.JobDefinition!, p);
        if (_submittedCount >= _options.Quotas.MaxSubmittedJobs && !_replaying)
        {
            p.Add($"jobs in SUBMITTED: the quota of {_options.Quotas.MaxSubmittedJobs} is reached");
        }

        List<(Job Dep, bool Any, string? Type)>? deps = null;
        if (r.DependsOn is { } dependsOn)
        {
            foreach (var (d, i) in dependsOn.Select((d, i) => (d, i)))
            {
                if (d?.JobId is null)
                {
                    continue;
                }

                if (!TryGetJob(d.JobId, out var depJob))
                {
                    // Replay: a dependency a snapshot no longer has ended with its deleted queue before the snapshot was
                    // written (its dependents were told then; their own records say how they stand).
                    if (!_replaying)
                    {
                        p.Add($"dependsOn[{i}].jobId", $"{d.JobId} does not exist");
                    }

                    continue;
                }

                if (d.Type == ArrayJobDependency.N_TO_N)
                {
                    if (depJob.ArraySize == 0)
                    {
                        p.Add($"dependsOn[{i}]", $"N_TO_N needs an array job to depend on; {d.JobId} is not one");
                    }
                    else if (r.ArrayProperties?.Size is { } size && size != depJob.ArraySize)
                    {
                        p.Add($"dependsOn[{i}]", $"N_TO_N needs arrays of the same size: {size} and {depJob.ArraySize}");
                    }
                }

                (deps ??= []).Add((depJob, d.Extensions?.Condition == "ANY", d.Type));
            }
        }

        JobSpec? spec = null;
        if (q is not null && def is not null)
        {
            spec = ResolveSpec(r, q, def, p);
        }

        p.ThrowIfAny();

        // Accepted: nothing above changed any state.
        var id = fixedId ?? NewId();
        var job = AcceptJob(id, r.JobName!, q!, spec!, fixedCreatedAt ?? NowMs, r.ArrayProperties?.Size ?? 0, deps, submitter);
        JournalSubmit(job, r);
        return SubmitJobResponse.WithArnPrefix(job.Name, id, JobArnPrefix); // the ARN is formatted only if the caller reads it
    }

    /// <summary>A validated job joins the engine: SUBMITTED, dependencies wired, evaluated by the next cycle. Recovery
    /// calls it directly for a journaled submission (validated before it was journaled).</summary>
    private Job AcceptJob(string id, string name, JobQueueState q, JobSpec spec, long createdAt, int arraySize, List<(Job Dep, bool Any, string? Type)>? deps, System.Diagnostics.ActivityContext? submitter)
    {
        var job = new TopJob(id, name, q, spec, ++_seq, createdAt) { SubmitterContext = submitter };
        if (arraySize > 0)
        {
            job.ArraySize = arraySize;
        }

        _jobs[id] = job;
        q.AllJobs.Add(job);
        RecordSubmission(job);
        SetState(job, JobState.Submitted, null, initial: true);
        if (deps is not null)
        {
            foreach (var (dep, any, type) in deps)
            {
                Pin(job, dep, +1);
                if (type == ArrayJobDependency.N_TO_N)
                {
                    continue; // wired child-to-child when the children are created
                }

                WireDependency(job, dep, any);
            }
        }

        _submitted.Add(job);
        _dirty = true;
        Statistics.Submitted++;
        if (job.ArraySize == 0 && !_replaying)
        {
            Telemetry.Submitted(job, 1); // a replayed submission was counted by the run that accepted it
        }

        return job;
    }

    private void WireDependency(Job job, Job dep, bool any)
    {
        if (dep.State.IsTerminal())
        {
            if (dep.State == JobState.Failed && !any)
            {
                job.DependencyFailed = true;
            }

            return;
        }

        (dep.Dependents ??= []).Add(new Dependent(job, any));
        job.UnmetDependencies++;
    }

    private JobSpec? ResolveSpec(SubmitJobRequest r, JobQueueState q, JobDefinition def, Problems p)
    {
        var cp = def.ContainerProperties ?? new ContainerProperties();
        var fargate = def.PlatformCapabilities.Contains(PlatformCapability.FARGATE);
        if (q.ComputeEnvironments.Length > 0 && !HasPlatform(q, fargate))
        {
            p.Add("jobDefinition", $"{def.JobDefinitionName}:{def.Revision} needs platform {(fargate ? "FARGATE" : "EC2")}, but job queue {q.Name} has only {(fargate ? "EC2/SPOT" : "FARGATE")} compute environments");
        }

        // A request without overrides resolves to the same spec every time: build it once per definition revision.
        var plain = IsPlain(r) && def.ConsumableResourceProperties is null;
        if (plain && !p.Any && !q.IsFairShare && r.ShareIdentifier is null && _plainSpecs.TryGetValue(def, out var cached))
        {
            return cached;
        }

        // Resources: definition, then overrides by type.
        var (dv, dm, dg) = ResourceValidation.ValidateResourceRequirements(cp.ResourceRequirements, new Problems(), "");
        var (ov, om, og) = ResourceValidation.ValidateResourceRequirements(r.ContainerOverrides?.ResourceRequirements, new Problems(), "");
        // AWS: the legacy vcpus / memory overrides replace only the definition's legacy values, never its resource requirements.
        var co = r.ContainerOverrides;
        if (co?.Vcpus is not null && dv is not null)
        {
            p.Add("containerOverrides.vcpus", "cannot override a VCPU given in the job definition's resourceRequirements (use containerOverrides.resourceRequirements)");
        }

        if (co?.Memory is not null && dm is not null)
        {
            p.Add("containerOverrides.memory", "cannot override a MEMORY given in the job definition's resourceRequirements (use containerOverrides.resourceRequirements)");
        }

        var vcpus = ov ?? dv ?? co?.Vcpus ?? cp.Vcpus ?? 1;
        var memory = om ?? dm ?? co?.Memory ?? cp.Memory ?? 2048;
        var gpus = og ?? dg ?? 0;
        ResourceValidation.ValidatePlatformResources(vcpus, memory, gpus, fargate, p, "containerOverrides.resourceRequirements");

        if (q.IsFairShare)
        {
            if (string.IsNullOrEmpty(r.ShareIdentifier))
            {
                p.Add("shareIdentifier", $"is required: job queue {q.Name} has a fair-share scheduling policy");
            }
            else if (!_replaying && !(q.Shares.TryGetValue(r.ShareIdentifier, out var share) && share.ActiveJobs > 0) &&
                     q.Shares.Values.Count(s => s.ActiveJobs > 0) >= _options.Quotas.MaxActiveShareIdentifiers)
            {
                p.Add("shareIdentifier", $"job queue {q.Name} already has {_options.Quotas.MaxActiveShareIdentifiers} active share identifiers");
            }
        }
        else if (r.ShareIdentifier is not null)
        {
            p.Add("shareIdentifier", $"must not be set: job queue {q.Name} has no fair-share scheduling policy");
        }

        var consumables = new List<(ConsumableResourceState, long)>();
        var crp = r.ConsumableResourcePropertiesOverride ?? def.ConsumableResourceProperties;
        if (crp is not null)
        {
            foreach (var (c, i) in crp.ConsumableResourceList.Select((c, i) => (c, i)))
            {
                // A definition's reference was checked when it was registered (RegisterJobDefinition), an override's is now.
                var res = FindConsumable(c.ConsumableResource ?? "", anyRegion: r.ConsumableResourcePropertiesOverride is null);
                if (res is null)
                {
                    // Replay: a snapshot replays the resources as they are now, then the jobs; a resource deleted after
                    // the job ended is gone (and the job's record says it ended).
                    if (!_replaying)
                    {
                        p.Add($"consumableResourceProperties.consumableResourceList[{i}].consumableResource", $"{c.ConsumableResource} does not exist");
                    }
                }
                else if (!_replaying && consumables.Exists(x => x.Item1 == res))
                {
                    // Checked without state too (ValidateConsumables); this catches any other spelling of the resource.
                    p.Add($"consumableResourceProperties.consumableResourceList[{i}].consumableResource", $"names consumable resource {res.Name} again; list each resource once");
                }
                else
                {
                    consumables.Add((res, c.Quantity));
                }
            }
        }

        var retry = r.RetryStrategy ?? def.RetryStrategy;
        var timeout = r.Timeout?.AttemptDurationSeconds ?? def.Timeout?.AttemptDurationSeconds;
        var parameters = MergeParameters(def.Parameters, r.Parameters);
        var command = SubstituteParameters(r.ContainerOverrides?.Command ?? cp.Command ?? [], parameters);
        var env = MergeEnvironment(cp.Environment, r.ContainerOverrides?.Environment);
        var reqs = new List<ResourceRequirement>
        {
            new(ResourceType.VCPU, vcpus.ToString(CultureInfo.InvariantCulture)),
            new(ResourceType.MEMORY, memory.ToString(CultureInfo.InvariantCulture)),
        };
        if (gpus > 0)
        {
            reqs.Add(new(ResourceType.GPU, gpus.ToString(CultureInfo.InvariantCulture)));
        }

        var arch = cp.RuntimePlatform?.CpuArchitecture switch
        {
            "ARM64" => "arm64",
            "X86_64" => "x86_64",
            _ => null,
        };
        var ext = r.Extensions;
        var spec = new JobSpec
        {
            Definition = def,
            Request = new ResourceVector(ResourceVector.ToMilli(vcpus), memory, gpus),
            Command = command,
            Environment = env,
            Image = cp.Image,
            Parameters = parameters,
            MaxAttempts = retry?.Attempts ?? 1,
            EvaluateOnExit = retry?.EvaluateOnExit,
            RetryStrategy = retry,
            TimeoutSeconds = timeout,
            Fargate = fargate,
            Architecture = arch is null ? null : string.Intern(arch),
            ShareIdentifier = r.ShareIdentifier,
            SchedulingPriority = r.SchedulingPriorityOverride ?? def.SchedulingPriority ?? 0,
            Tags = MergeTags(r.Tags, def, r.PropagateTags),
            PropagateTags = r.PropagateTags ?? def.PropagateTags,
            Consumables = [.. consumables],
            ConsumableResourceProperties = crp,
            ResourceRequirements = reqs,
            SimulatedRunTimeSeconds = ext?.SimulatedRunTimeSeconds ?? 0,
            SimulatedExitCode = ext?.SimulatedExitCode ?? 0,
            SimulatedFailingAttempts = ext?.SimulatedFailingAttempts ?? (ext?.SimulatedExitCode is > 0 ? int.MaxValue : 0),
            ArrayMaxConcurrency = ext?.ArrayMaxConcurrency,
            DependsOn = r.DependsOn ?? [],
        };
        if (plain && !p.Any && !q.IsFairShare)
        {
            spec.Plain = true;
            _plainSpecs[def] = spec;
        }

        return spec;
    }

    /// <summary>
    /// Specs of requests that override nothing, per definition revision (definitions are immutable records, compared by
    /// reference). Such a spec depends on the definition alone, so SubmitJob's common case allocates no spec.
    /// </summary>
    private readonly Dictionary<JobDefinition, JobSpec> _plainSpecs = new(ReferenceEqualityComparer.Instance);

    private static bool HasPlatform(JobQueueState q, bool fargate)
    {
        foreach (var ce in q.ComputeEnvironments)
        {
            if (ce.IsFargate == fargate)
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsPlain(SubmitJobRequest r) =>
        r.ContainerOverrides is null && r.RetryStrategy is null && r.Timeout is null && r.Parameters is null or { Count: 0 } &&
        r.Tags is null or { Count: 0 } && r.ShareIdentifier is null && r.SchedulingPriorityOverride is null &&
        r.ConsumableResourcePropertiesOverride is null && r.PropagateTags is null && r.DependsOn is null or { Count: 0 } &&
        r.Extensions is null;

    private static IReadOnlyDictionary<string, string> MergeTags(IReadOnlyDictionary<string, string>? jobTags, JobDefinition def, bool? propagate)
    {
        if (jobTags is null or { Count: 0 })
        {
            return EmptyTags;
        }

        return new Dictionary<string, string>(jobTags);
    }

    private static readonly IReadOnlyDictionary<string, string> EmptyTags = new Dictionary<string, string>();

    private static IReadOnlyDictionary<string, string> MergeParameters(IReadOnlyDictionary<string, string> defaults, IReadOnlyDictionary<string, string>? submitted)
    {
        if (submitted is null || submitted.Count == 0)
        {
            return defaults;
        }

        var merged = new Dictionary<string, string>(defaults);
        foreach (var (k, v) in submitted)
        {
            merged[k] = v;
        }

        return merged;
    }

    /// <summary>
    /// AWS's <c>Ref::name</c> substitution, token by token: a command token that is exactly <c>Ref::name</c> becomes the
    /// parameter's value as one argument; nothing is ever passed through a shell. Unknown references stay literal.
    /// </summary>
    public static IReadOnlyList<string> SubstituteParameters(IReadOnlyList<string> command, IReadOnlyDictionary<string, string> parameters)
    {
        string[]? result = null;
        for (var i = 0; i < command.Count; i++)
        {
            var token = command[i];
            if (token.StartsWith("Ref::", StringComparison.Ordinal) && parameters.TryGetValue(token[5..], out var value))
            {
                result ??= [.. command];
                result[i] = value;
            }
        }

        return result ?? command;
    }

    /// <summary>Definition environment, then overrides (an override wins by name, new names are added).</summary>
    public static IReadOnlyList<Model.KeyValuePair> MergeEnvironment(IReadOnlyList<Model.KeyValuePair>? defined, IReadOnlyList<Model.KeyValuePair>? overrides)
    {
        if (overrides is null || overrides.Count == 0)
        {
            return defined ?? [];
        }

        var list = new List<Model.KeyValuePair>();
        foreach (var kv in defined ?? [])
        {
            if (!overrides.Any(o => o.Name == kv.Name))
            {
                list.Add(kv);
            }
        }

        list.AddRange(overrides);
        return list;
    }

    private Dictionary<string, string> JobTags(Job job) => job.MutableTags ??= new Dictionary<string, string>(job.Spec.Tags);
}
