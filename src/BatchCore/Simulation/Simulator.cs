using System.Diagnostics;
using System.Globalization;
using BatchCore.Dispatch;
using BatchCore.Model;
using BatchCore.Placement;
using BatchCore.Validation;

namespace BatchCore.Simulation;

/// <summary>
/// Replays a workload on the real engine — the same dispatcher, placement and provisioning — on virtual time, once
/// per profile, and reports cost, wait and makespan. Deterministic: the same options and seed give the same report
/// (wall-clock fields aside).
/// </summary>
public static class Simulator
{
    private const string DefaultQueue = "sim";
    private const string DefaultShare = "default";

    /// <summary>
    /// The drain gives up on jobs that cannot start when nothing has run and no job has ended for this long (virtual
    /// time): they count as never started. Nothing legitimate waits that long with the environment idle.
    /// </summary>
    private const long StallLimitMs = 24 * 3_600_000L;

    /// <summary>
    /// The drain stops at most this long after the last job ended, whatever scale-in still has to do: longer than the
    /// longest scale-down delay AWS allows (minScaleDownDelayMinutes 10,080, a week) plus boots and spot notices.
    /// </summary>
    private const long ScaleInLimitMs = 8 * 24 * 3_600_000L;

    /// <summary>Runs the replay of <paramref name="options"/> on each profile, one after the other.</summary>
    /// <param name="options">Workload, profiles, seed, time scale.</param>
    /// <param name="progress">Receives 0..1 as the replays go.</param>
    /// <param name="ct">Cancels the replay.</param>
    /// <exception cref="BatchClientException">The options or the workload are invalid.</exception>
    public static async Task<SimulationReport> RunAsync(SimulationOptions options, IProgress<double>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var profiles = ResolveProfiles(options);
        var workload = options.Workload
            ?? (options.WorkloadPath is { } path ? Workload.Load(path, options.WorkloadFormat) : throw new BatchClientException("workloadPath or workload is required"));
        if (options.MaxJobs is { } max)
        {
            workload = workload.Take(max);
        }

        var reports = new List<ProfileReport>(profiles.Count);
        for (var i = 0; i < profiles.Count; i++)
        {
            var slice = progress is null ? null : new SliceProgress(progress, i, profiles.Count);
            reports.Add(await RunProfileAsync(workload, profiles[i], options, slice, ct).ConfigureAwait(false));
        }

        progress?.Report(1);
        return new SimulationReport { Profiles = reports, Workload = workload.Source, Seed = options.Seed, TimeScale = options.TimeScale };
    }

    private static List<SimulationProfile> ResolveProfiles(SimulationOptions o)
    {
        if (!(o.TimeScale > 0) || double.IsInfinity(o.TimeScale))
        {
            throw new BatchClientException($"timeScale must be positive, was {o.TimeScale}");
        }

        if (o.MaxvCpus <= 0)
        {
            throw new BatchClientException($"maxvCpus must be positive, was {o.MaxvCpus}");
        }

        if (o.Attempts is < 1 or > 10)
        {
            throw new BatchClientException($"attempts must be 1..10 (AWS retryStrategy), was {o.Attempts}");
        }

        if (o.MaxSeriesPoints < 2)
        {
            throw new BatchClientException($"maxSeriesPoints must be at least 2, was {o.MaxSeriesPoints}");
        }

        var names = o.Profiles;
        var onlyCustom = o.CustomProfiles is { Count: > 0 } && names.Count == 1 && names[0] == "all";
        var list = new List<SimulationProfile>();
        if (!onlyCustom)
        {
            foreach (var n in names)
            {
                if (n == "all")
                {
                    foreach (var b in SimulationProfile.BuiltInNames)
                    {
                        if (!list.Any(p => p.Name == b))
                        {
                            list.Add(SimulationProfile.BuiltIn(b, o.MaxvCpus));
                        }
                    }
                }
                else if (!list.Any(p => p.Name == n))
                {
                    list.Add(SimulationProfile.BuiltIn(n, o.MaxvCpus));
                }
            }
        }

        list.AddRange(o.CustomProfiles ?? []);
        if (list.Count == 0)
        {
            throw new BatchClientException("profiles must name at least one profile (ec2, spot, fargate, all) or give custom profiles");
        }

        return list;
    }

    private static async Task<ProfileReport> RunProfileAsync(Workload workload, SimulationProfile profile, SimulationOptions o, IProgress<double>? progress, CancellationToken ct)
    {
        var baseOptions = o.Engine ?? new BatchEngineOptions();
        var engineOptions = baseOptions with
        {
            VirtualTime = true,
            Seed = o.Seed,
            TerminalJobRetention = Timeout.InfiniteTimeSpan, // the report reads every job of the replay
            Quotas = baseOptions.Quotas with { MaxSubmittedJobs = int.MaxValue },
            Provisioning = baseOptions.Provisioning with
            {
                Ec2BootTime = o.Ec2BootTime,
                Ec2BootJitter = o.Ec2BootJitter,
                FargateStartTime = o.FargateStartTime,
                SimulateSpotInterruptions = o.SpotInterruptions,
            },
        };
        var engine = new BatchEngine(engineOptions);
        await using (engine.ConfigureAwait(false))
        {
            var ce = await engine.CreateComputeEnvironmentAsync(profile.ComputeEnvironment, ct).ConfigureAwait(false);
            var queues = await CreateQueuesAsync(engine, workload, ce.ComputeEnvironmentName, ct).ConfigureAwait(false);
            await engine.RegisterJobDefinitionAsync(Definition(profile.IsFargate, o.Attempts), ct).ConfigureAwait(false);
            var stopwatch = Stopwatch.StartNew();
            var replay = await engine.Run(core => Replay(core, workload, ce.ComputeEnvironmentName, queues, o, progress, ct), ct).ConfigureAwait(false);
            stopwatch.Stop();
            var stats = engine.Statistics;
            var t = replay.Totals;
            var wall = stopwatch.Elapsed.TotalSeconds;
            var makespan = t.LastStoppedMs > t.FirstCreatedMs ? (t.LastStoppedMs - t.FirstCreatedMs) / 1000.0 : 0;
            return new ProfileReport
            {
                Profile = profile.Name,
                Jobs = t.JobsRun,
                Unrunnable = replay.Unrunnable.Values.Sum(),
                MakespanSeconds = makespan,
                Wait = Percentiles(t.WaitSeconds),
                Utilization = t.ProvisionedVcpuSeconds > 0 ? t.UsedVcpuSeconds / t.ProvisionedVcpuSeconds : 0,
                PeakHosts = t.PeakHosts,
                CostUsd = t.CostUsd,
                CostLowerBoundUsd = replay.LowerBoundUsd,
                CostRatio = replay.LowerBoundUsd > 0 ? t.CostUsd / replay.LowerBoundUsd : 0,
                DispatchedPerWallSecond = wall > 0 ? t.JobsRun / wall : 0,
                DispatchedPerVirtualSecond = makespan > 0 ? t.JobsRun / makespan : 0,
                WallSeconds = wall,
                Submitted = replay.Submitted,
                Failed = t.JobsFailed,
                NeverStarted = t.JobsNeverStarted,
                Attempts = t.Attempts,
                SpotInterruptions = stats.SpotInterruptions,
                HostsLaunched = stats.HostsLaunched,
                UsedVcpuSeconds = t.UsedVcpuSeconds,
                ProvisionedVcpuSeconds = t.ProvisionedVcpuSeconds,
                UnrunnableReasons = replay.Unrunnable,
                Skipped = workload.Skipped,
                Series = replay.Series,
                CostBreakdown = replay.Breakdown,
            };
        }
    }

    /// <summary>One job queue per queue name of the workload, over the profile's CE; fair share where jobs carry share identifiers.</summary>
    private static async Task<Dictionary<string, bool>> CreateQueuesAsync(BatchEngine engine, Workload workload, string ce, CancellationToken ct)
    {
        var queues = new SortedDictionary<string, bool>(StringComparer.Ordinal);
        foreach (var j in workload.Jobs)
        {
            var q = j.JobQueue ?? DefaultQueue;
            queues[q] = (queues.TryGetValue(q, out var fs) && fs) || j.ShareIdentifier is not null;
        }

        if (queues.Count == 0)
        {
            queues[DefaultQueue] = false;
        }

        var priority = queues.Count;
        foreach (var (name, fairShare) in queues)
        {
            string? policy = null;
            if (fairShare)
            {
                policy = (await engine.CreateSchedulingPolicyAsync(new CreateSchedulingPolicyRequest
                {
                    Name = "fs-" + name,
                    FairsharePolicy = new FairsharePolicy { ShareDecaySeconds = 3_600 },
                }, ct).ConfigureAwait(false)).Arn;
            }

            await engine.CreateJobQueueAsync(new CreateJobQueueRequest
            {
                JobQueueName = name,
                Priority = priority--,
                SchedulingPolicyArn = policy,
                ComputeEnvironmentOrder = [new ComputeEnvironmentOrder { Order = 1, ComputeEnvironment = ce }],
            }, ct).ConfigureAwait(false);
        }

        return new Dictionary<string, bool>(queues, StringComparer.Ordinal);
    }

    private static RegisterJobDefinitionRequest Definition(bool fargate, int attempts) => new()
    {
        JobDefinitionName = "sim",
        Type = JobDefinitionType.container,
        PlatformCapabilities = fargate ? [PlatformCapability.FARGATE] : [PlatformCapability.EC2],
        ContainerProperties = new ContainerProperties
        {
            Image = "public.ecr.aws/amazonlinux/amazonlinux:2023",
            Command = ["simulated"],
            ExecutionRoleArn = fargate ? "arn:aws:iam::000000000000:role/ecsTaskExecutionRole" : null,
            ResourceRequirements = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, "2048")],
        },
        // Interrupted spot attempts retry; nothing else fails in a replay.
        RetryStrategy = new RetryStrategy { Attempts = attempts },
    };

    private sealed record ReplayResult(SimulationTotals Totals, Dictionary<string, int> Unrunnable, double LowerBoundUsd, int Submitted, SimulationSeries Series,
        CostBreakdown? Breakdown);

    /// <summary>
    /// On the scheduling loop: advance virtual time to each submit second (sampling the series on the way), submit the
    /// jobs of that second, then drain (<see cref="Drain"/>).
    /// </summary>
    private static ReplayResult Replay(EngineCore core, Workload workload, string ce, Dictionary<string, bool> queues, SimulationOptions o,
        IProgress<double>? progress, CancellationToken ct)
    {
        var jobs = workload.Jobs;
        var t0 = core.NowMs;
        var fargate = core.IsFargateComputeEnvironment(ce);
        var scale = o.TimeScale;
        var unrunnable = new SortedDictionary<string, int>(StringComparer.Ordinal);
        if (fargate)
        {
            core.AskedRequests = [];
        }

        var verdicts = new Dictionary<ResourceVector, (string? Why, double PerVcpuHour)>();
        var lowerBound = 0.0;
        var submitted = 0;
        var span = jobs.Count == 0 ? 0 : (jobs[^1].SubmitTimeSeconds - jobs[0].SubmitTimeSeconds) / scale;
        var series = new SeriesRecorder(Math.Max(60_000, (long)Math.Ceiling(span * 1000 / (o.MaxSeriesPoints / 2.0))), o.MaxSeriesPoints, t0);
        if (o.IncludeCostBreakdown)
        {
            core.HostLifetimes = [];
        }

        var i = 0;
        var reportEvery = Math.Max(1, jobs.Count / 200);
        var nextReport = reportEvery;
        while (i < jobs.Count)
        {
            ct.ThrowIfCancellationRequested();
            var second = (long)Math.Floor(jobs[i].SubmitTimeSeconds / scale);
            var at = t0 + (second * 1000);
            series.RunTo(core, at);
            core.RunVirtual(at);
            for (; i < jobs.Count && (long)Math.Floor(jobs[i].SubmitTimeSeconds / scale) == second; i++)
            {
                var j = jobs[i];
                if (WhyInvalid(j) is { } invalid)
                {
                    unrunnable[invalid] = unrunnable.GetValueOrDefault(invalid) + 1;
                    continue;
                }

                var req = new ResourceVector(ResourceVector.ToMilli(j.Vcpus), j.MemoryMiB, j.Gpus);
                if (!verdicts.TryGetValue(req, out var verdict))
                {
                    var why = core.WhyUnrunnable(ce, req);
                    verdict = (why, why is null ? core.CheapestPricePerVcpuHour(ce, req) ?? 0 : 0);
                    verdicts[req] = verdict;
                }

                if (verdict.Why is { } reason)
                {
                    unrunnable[reason] = unrunnable.GetValueOrDefault(reason) + 1;
                    continue;
                }

                // A job runs at most its timeout (the engine stops it there), so the bound counts no more.
                var runs = j.TimeoutSeconds is { } limit ? Math.Min(j.RuntimeSeconds, limit) : j.RuntimeSeconds;
                lowerBound += j.Vcpus * runs / 3_600.0 * verdict.PerVcpuHour;
                var padded = false;
                if (fargate && FargateSizes.SmallestCovering(req.Vcpus, req.MemoryMiB) is { } size
                    && (ResourceVector.ToMilli(size.Vcpus) != req.VcpuMilli || size.MemoryMiB != req.MemoryMiB))
                {
                    // AWS accepts only valid Fargate sizes: the job asks for the smallest that covers it. The report
                    // counts what it asked for as used, the rest of the task as size rounding.
                    j = j with { Vcpus = size.Vcpus, MemoryMiB = size.MemoryMiB };
                    padded = true;
                }

                var id = core.SubmitJob(Request(j, i, queues)).JobId;
                Debug.Assert(core.RequestOf(id) == new ResourceVector(ResourceVector.ToMilli(j.Vcpus), j.MemoryMiB, j.Gpus),
                    "the engine runs the job with what it was submitted with, never the definition's values (WhyInvalid filters what SubmitJob refuses)");
                if (padded)
                {
                    core.AskedRequests![id] = req;
                }

                submitted++;
            }

            if (progress is not null && i >= nextReport)
            {
                nextReport = i + reportEvery;
                progress.Report(0.9 * i / jobs.Count);
            }
        }

        Drain(core, submitted, series, ct);
        series.Record(core);
        return new ReplayResult(core.CollectSimulationTotals(), new Dictionary<string, int>(unrunnable, StringComparer.Ordinal), lowerBound, submitted, series.ToSeries(),
            o.IncludeCostBreakdown ? core.CollectCostBreakdown() : null);
    }

    /// <summary>
    /// Runs virtual time, timer by timer (sampling the series on the way), until every submitted job ended and scale-in
    /// removed every host above minvCpus (<see cref="EngineCore.ScaleInPending"/>): the replay ends at the last job's
    /// end or the last scale-in, whichever is later, and hosts kept for minvCpus are billed up to then. Not until no
    /// timer is left: a SPOT environment with minvCpus replaces interrupted instances, each with a new interruption
    /// timer, for ever. Also stops when nothing can move any more (no timer, no change), when jobs wait with nothing
    /// running and nothing ending for <see cref="StallLimitMs"/>, and <see cref="ScaleInLimitMs"/> after the last job.
    /// </summary>
    private static void Drain(EngineCore core, int submitted, SeriesRecorder series, CancellationToken ct)
    {
        var lastTerminal = core.TerminalJobs;
        var progressAt = core.NowMs;
        long? endedAt = null;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var terminal = core.TerminalJobs;
            if (terminal != lastTerminal || core.SampleForSimulation().RunningVcpus > 0)
            {
                lastTerminal = terminal;
                progressAt = core.NowMs;
            }

            if (terminal >= submitted)
            {
                endedAt ??= core.NowMs;
                if (!core.ScaleInPending())
                {
                    return;
                }

                if (core.NowMs - endedAt.Value > ScaleInLimitMs)
                {
                    Debug.Fail("scale-in removes every host above minvCpus within its delay");
                    return;
                }
            }
            else if (core.NowMs - progressAt > StallLimitMs)
            {
                return; // jobs no capacity the environment can reach will ever start
            }

            var next = core.NextTimerDue();
            if (next is null && !core.Dirty)
            {
                return; // nothing left that could move (a job that can never start)
            }

            // To the next timer exactly (a job's end, a scale-in), not past it: the end of the replay is one of those.
            core.RunVirtual(Math.Min(next ?? long.MaxValue, series.NextDueMs));
            if (core.NowMs >= series.NextDueMs)
            {
                series.Record(core); // on the series' grid; the caller records the end
            }
        }
    }

    /// <summary>
    /// Why SubmitJob would refuse the job's request (AWS's rules; a constant reason), or null. Such a job counts as
    /// unrunnable: submitted anyway, an invalid override would leave the job definition's values in its place.
    /// </summary>
    private static string? WhyInvalid(WorkloadJob j)
    {
        if (!(j.Vcpus > 0))
        {
            return "vCPUs not a positive number";
        }

        if (j.Vcpus > Validation.ResourceValidation.MaxVcpus)
        {
            return "vCPUs above 1,000,000 (the engine's maximum)";
        }

        if (j.MemoryMiB < 4)
        {
            return "memory below 4 MiB (AWS minimum)";
        }

        if (j.Gpus < 0)
        {
            return "GPUs below 0";
        }

        if (j.TimeoutSeconds is < 60)
        {
            return "timeout below 60 s (AWS minimum attemptDurationSeconds)";
        }

        return j.RuntimeSeconds is >= 0 and <= Validation.ResourceValidation.MaxSimulatedRunTimeSeconds ? null : "run time not a number of seconds from 0 to 10^9";
    }

    private static SubmitJobRequest Request(WorkloadJob j, int index, Dictionary<string, bool> queues)
    {
        var queue = j.JobQueue ?? DefaultQueue;
        var requirements = new List<ResourceRequirement>(3)
        {
            new(ResourceType.VCPU, j.Vcpus.ToString(CultureInfo.InvariantCulture)),
            new(ResourceType.MEMORY, j.MemoryMiB.ToString(CultureInfo.InvariantCulture)),
        };
        if (j.Gpus > 0)
        {
            requirements.Add(new(ResourceType.GPU, j.Gpus.ToString(CultureInfo.InvariantCulture)));
        }

        return new SubmitJobRequest
        {
            JobName = "job-" + index.ToString(CultureInfo.InvariantCulture),
            JobQueue = queue,
            JobDefinition = "sim",
            ShareIdentifier = queues[queue] ? j.ShareIdentifier ?? DefaultShare : null,
            ContainerOverrides = new ContainerOverrides { ResourceRequirements = requirements },
            Timeout = j.TimeoutSeconds is { } timeout ? new JobTimeout { AttemptDurationSeconds = timeout } : null,
            Extensions = new SubmitJobExtensions { SimulatedRunTimeSeconds = j.RuntimeSeconds },
        };
    }

    /// <summary>Nearest-rank percentiles of sorted values.</summary>
    internal static WaitPercentiles Percentiles(double[] sorted)
    {
        if (sorted.Length == 0)
        {
            return new WaitPercentiles(0, 0, 0, 0, 0);
        }

        double At(double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
        var sum = 0.0;
        foreach (var v in sorted)
        {
            sum += v;
        }

        return new WaitPercentiles(At(0.50), At(0.95), At(0.99), sum / sorted.Length, sorted[^1]);
    }

    /// <summary>Samples at a fixed virtual interval; when there are too many points, every other one is dropped and the interval doubles.</summary>
    private sealed class SeriesRecorder(long intervalMs, int maxPoints, long t0)
    {
        private readonly List<SimulationSample> _samples = [];
        private readonly long _t0 = t0;
        private long _interval = intervalMs;

        public long NextDueMs { get; private set; } = t0;

        public void RunTo(EngineCore core, long untilMs)
        {
            while (NextDueMs <= untilMs)
            {
                core.RunVirtual(NextDueMs);
                Record(core);
            }
        }

        public void Record(EngineCore core)
        {
            var s = core.SampleForSimulation();
            if (_samples.Count > 0 && _samples[^1].TimeMs == s.TimeMs)
            {
                _samples[^1] = s;
            }
            else
            {
                _samples.Add(s);
            }

            while (NextDueMs <= s.TimeMs)
            {
                NextDueMs += _interval;
            }

            if (_samples.Count > maxPoints)
            {
                var kept = 0;
                for (var k = 0; k < _samples.Count; k += 2)
                {
                    _samples[kept++] = _samples[k];
                }

                _samples.RemoveRange(kept, _samples.Count - kept);
                _interval *= 2;
            }
        }

        public SimulationSeries ToSeries()
        {
            var n = _samples.Count;
            var time = new double[n];
            var queued = new int[n];
            var running = new double[n];
            var provisioned = new double[n];
            var hosts = new int[n];
            for (var k = 0; k < n; k++)
            {
                var s = _samples[k];
                time[k] = (s.TimeMs - _t0) / 1000.0;
                queued[k] = s.QueuedJobs;
                running[k] = s.RunningVcpus;
                provisioned[k] = s.ProvisionedVcpus;
                hosts[k] = s.Hosts;
            }

            return new SimulationSeries(time, queued, running, provisioned, hosts);
        }
    }

    private sealed class SliceProgress(IProgress<double> inner, int index, int count) : IProgress<double>
    {
        public void Report(double value) => inner.Report((index + Math.Clamp(value, 0, 1)) / count);
    }
}
