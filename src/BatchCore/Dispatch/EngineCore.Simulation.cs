using System.Diagnostics;
using System.Runtime.CompilerServices;
using BatchCore.Jobs;
using BatchCore.Placement;
using BatchCore.Validation;

namespace BatchCore.Dispatch;

/// <summary>One sample of the simulator's time series.</summary>
internal readonly record struct SimulationSample(long TimeMs, int QueuedJobs, double RunningVcpus, double ProvisionedVcpus, int Hosts);

/// <summary>What the simulator reads back from the engine after a replay.</summary>
internal sealed class SimulationTotals
{
    public int JobsRun { get; set; }
    public int JobsSucceeded { get; set; }
    public int JobsFailed { get; set; }
    public int JobsNeverStarted { get; set; }
    public int Attempts { get; set; }
    public double[] WaitSeconds { get; set; } = [];
    public double UsedVcpuSeconds { get; set; }
    public double ProvisionedVcpuSeconds { get; set; }
    public double CostUsd { get; set; }
    public int PeakHosts { get; set; }
    public long FirstCreatedMs { get; set; }
    public long LastStoppedMs { get; set; }
}

internal sealed partial class EngineCore
{
    /// <summary>
    /// The queue depth (SUBMITTED..RUNNABLE), running vCPUs — what the running jobs asked for (<see cref="AskedRequests"/>),
    /// as utilization counts them, not a Fargate task's padded size —, provisioned vCPUs (hosts' real capacities: a
    /// 0.25-vCPU Fargate task is 0.25, a 3-vCPU job's task 4) and hosts, now.
    /// </summary>
    internal SimulationSample SampleForSimulation()
    {
        var queued = _submitted.Count;
        foreach (var q in _queuesByPriority)
        {
            queued += q.RunnableCount;
        }

        long used = 0;
        long provisioned = 0;
        var hosts = 0;
        foreach (var ce in _ces.Values)
        {
            used += ce.UsedVcpuMilli;
            provisioned += ce.CapacityVcpuMilli;
            hosts += ce.Hosts.Count;
        }

        Debug.Assert(_paddingRunningVcpuMilli >= 0 && _paddingRunningVcpuMilli <= used, "padding is part of what running jobs hold");
        return new SimulationSample(NowMs, queued, (used - _paddingRunningVcpuMilli) / 1000.0, provisioned / 1000.0, hosts);
    }

    /// <summary>The vCPUs running jobs hold beyond what they asked for (Fargate padding, <see cref="AskedRequests"/>).</summary>
    private long _paddingRunningVcpuMilli;

    /// <summary>
    /// A job's attempt took (<paramref name="sign"/> 1) or gave back (-1) its resources: counts its padding. The
    /// engine itself (placement, <c>UsedVcpuMilli</c>) keeps the padded size, which is what the task really holds.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void TrackPadding(Job job, int sign)
    {
        if (AskedRequests!.TryGetValue(job.Id, out var asked))
        {
            _paddingRunningVcpuMilli += sign * (job.Spec.Request.VcpuMilli - asked.VcpuMilli);
        }
    }

    /// <summary>Whether the named CE runs Fargate tasks.</summary>
    internal bool IsFargateComputeEnvironment(string ceName) => _ces[ceName].IsFargate;

    /// <summary>Jobs that reached SUCCEEDED or FAILED.</summary>
    internal long TerminalJobs => Statistics.Succeeded + Statistics.Failed;

    /// <summary>
    /// Whether scale-in will still remove a host once its jobs are done: an instance of a managed EC2/Spot environment
    /// above minvCpus (AWS scales idle instances in down to minvCpus), or a Fargate task (it ends with its job).
    /// Instances kept for minvCpus are not: they stay as long as the environment does, and a SPOT environment replaces
    /// an interrupted one for ever — the simulator's drain ends when this is false and every job ended.
    /// </summary>
    internal bool ScaleInPending()
    {
        foreach (var ce in _ces.Values)
        {
            if (!ce.IsManaged)
            {
                continue;
            }

            foreach (var h in ce.Hosts.Values)
            {
                // OnScaleInCheck's rule: a host goes when the environment keeps minvCpus without it.
                if (ce.IsFargate || ce.ProvisionedVcpus - h.NominalVcpus >= ce.MinvCpus)
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>
    /// What the simulator's jobs asked for where it submitted something else (a Fargate job padded to a valid task
    /// size), by job id; null or absent: the job's own request. Used vCPU-seconds and the cost breakdown count what the
    /// job asked for, so the padding shows as size rounding (as an instance size rounded up to does on EC2).
    /// </summary>
    internal Dictionary<string, ResourceVector>? AskedRequests { get; set; }

    private ResourceVector AskedRequest(Job job) =>
        AskedRequests is { Count: > 0 } asked && asked.TryGetValue(job.Id, out var r) ? r : job.Spec.Request;

    /// <summary>The resources the engine resolved for a job (tests and the simulator's invariant checks).</summary>
    internal ResourceVector? RequestOf(string jobId) => TryGetJob(jobId, out var job) ? job.Spec.Request : null;

    /// <summary>
    /// Why no host the CE can ever offer holds <paramref name="req"/> (a constant reason), or null when one can:
    /// the simulator counts such jobs as unrunnable instead of submitting them.
    /// </summary>
    internal string? WhyUnrunnable(string ceName, ResourceVector req)
    {
        var ce = _ces[ceName];
        if (ce.IsFargate)
        {
            if (req.Gpus > 0)
            {
                return "GPU requested; Fargate has no GPUs";
            }

            var largest = FargateSizes.All[^1];
            if (req.Vcpus > largest.Vcpus)
            {
                return "vCPUs exceed the largest Fargate size (16 vCPU)";
            }

            return FargateSizes.SmallestCovering(req.Vcpus, req.MemoryMiB) is null ? "memory exceeds the largest Fargate size (120 GiB)" : null;
        }

        if (req.VcpuMilli < 1000)
        {
            return "vCPUs below 1 (AWS minimum on EC2)"; // AWS: fractional VCPU values are for Fargate only
        }

        var shape = ce.MaxHostShape ?? default;
        if (req.VcpuMilli > shape.VcpuMilli)
        {
            return "vCPUs exceed the largest instance type of the CE";
        }

        if (req.MemoryMiB > shape.MemoryMiB)
        {
            return "memory exceeds the largest instance type of the CE";
        }

        if (req.Gpus > shape.Gpus)
        {
            return "GPUs exceed the largest instance type of the CE";
        }

        return CheapestPricePerVcpuHour(ceName, req) is null ? "no instance type of the CE holds the request" : null;
    }

    /// <summary>
    /// The cheapest price per vCPU-hour of any host the CE could run <paramref name="req"/> on: an allowed instance type
    /// that fits (on-demand or spot price; spot within bidPercentage), or for Fargate a valid task size that covers it.
    /// </summary>
    internal double? CheapestPricePerVcpuHour(string ceName, ResourceVector req)
    {
        var ce = _ces[ceName];
        double? best = null;
        if (ce.IsFargate)
        {
            foreach (var (v, m) in FargateSizes.All)
            {
                if (v + 1e-9 >= req.Vcpus && m >= req.MemoryMiB)
                {
                    var perVcpu = Catalog.Fargate.PricePerHour(v, m, ce.IsSpot) / v;
                    best = best is null ? perVcpu : Math.Min(best.Value, perVcpu);
                }
            }

            return best;
        }

        var bid = (ce.Resources?.BidPercentage ?? 100) / 100.0;
        foreach (var t in AllowedTypes(ce))
        {
            if (t.Vcpus * 1000 < req.VcpuMilli || t.MemoryMiB - _options.HostMemoryReserveMiB < req.MemoryMiB || t.Gpus < req.Gpus
                || (ce.IsSpot && t.SpotPriceRatio > bid + 1e-9))
            {
                continue;
            }

            var perVcpu = PriceOf(t, ce.IsSpot) / t.Vcpus;
            best = best is null ? perVcpu : Math.Min(best.Value, perVcpu);
        }

        return best;
    }

    /// <summary>
    /// Reads the replay's outcome: per job, wait = createdAt → startedAt of the first attempt that reached RUNNING;
    /// used vCPU-seconds = Σ attempts' RUNNING time × the vCPUs the job asked for (<see cref="AskedRequests"/>); cost
    /// and provisioned vCPU-seconds (host lifetime × real capacity) of every host, live hosts counted up to now.
    /// </summary>
    internal SimulationTotals CollectSimulationTotals()
    {
        var totals = new SimulationTotals { FirstCreatedMs = long.MaxValue };
        var waits = new List<double>(_jobs.Count);
        foreach (var job in AllJobsAndChildren())
        {
            if (job.IsArrayParent)
            {
                continue;
            }

            totals.FirstCreatedMs = Math.Min(totals.FirstCreatedMs, job.CreatedAt);
            if (job.State == JobState.Succeeded)
            {
                totals.JobsSucceeded++;
            }
            else if (job.State == JobState.Failed)
            {
                totals.JobsFailed++;
            }

            long? firstStart = null;
            var vcpus = AskedRequest(job).Vcpus;
            foreach (var a in job.Attempts)
            {
                totals.Attempts++;
                if (a.StartedAt is { } s)
                {
                    firstStart ??= s;
                    totals.UsedVcpuSeconds += (a.StoppedAt - s) / 1000.0 * vcpus;
                }
            }

            if (job.State is JobState.Running && job.Host is not null)
            {
                firstStart ??= job.AttemptStartedAt;
                totals.UsedVcpuSeconds += (NowMs - job.AttemptStartedAt) / 1000.0 * vcpus;
            }

            if (firstStart is { } start)
            {
                totals.JobsRun++;
                waits.Add((start - job.CreatedAt) / 1000.0);
            }
            else
            {
                totals.JobsNeverStarted++;
            }

            if (job.StoppedAt is { } stopped)
            {
                totals.LastStoppedMs = Math.Max(totals.LastStoppedMs, stopped);
            }
        }

        if (totals.FirstCreatedMs == long.MaxValue)
        {
            totals.FirstCreatedMs = NowMs;
        }

        foreach (var ce in _ces.Values)
        {
            totals.CostUsd += ce.AccruedCostUsd;
            totals.ProvisionedVcpuSeconds += ce.ProvisionedVcpuSeconds;
            totals.PeakHosts += ce.PeakHosts;
            foreach (var h in ce.Hosts.Values)
            {
                totals.CostUsd += BilledHours(h, NowMs) * h.PricePerHour;
                totals.ProvisionedVcpuSeconds += (NowMs - h.LaunchedAtMs) / 1000.0 * h.Capacity.Vcpus;
            }
        }

        var array = waits.ToArray();
        Array.Sort(array);
        totals.WaitSeconds = array;
        return totals;
    }

    /// <summary>Hosts removed so far, recorded while not null (the simulator sets it for a cost breakdown).</summary>
    internal List<HostLifetime>? HostLifetimes { get; set; }

    /// <summary>
    /// Where the cost went (<see cref="Simulation.CostBreakdown"/>), from <see cref="HostLifetimes"/>, the live hosts
    /// and the attempts' host names: per host, its boot, its billing minimum, and a sweep over its attempts that splits
    /// its ready time into idle (between jobs, before scale-in) and busy; busy time is the jobs' vCPUs (what they asked
    /// for: <see cref="AskedRequests"/>) at the cheapest price per vCPU that fits them, the host type's premium over that,
    /// and the unused vCPUs of the host's real capacity (size rounding when the host runs one job and is the smallest
    /// size that fits it — a Fargate task padded to a valid size is one; one job on a larger host; otherwise unused).
    /// </summary>
    internal Simulation.CostBreakdown CollectCostBreakdown()
    {
        var hosts = new List<HostLifetime>(HostLifetimes ?? []);
        foreach (var ce in _ces.Values)
        {
            foreach (var h in ce.Hosts.Values)
            {
                hosts.Add(HostLifetime.Of(h, NowMs));
            }
        }

        var cheapest = new Dictionary<(string, ResourceVector), (double PerVcpuHour, long SmallestMilli)>();
        var byHost = new Dictionary<string, List<(long Start, long Stop, long Milli, long Smallest, double Cheapest)>>(StringComparer.Ordinal);
        foreach (var job in AllJobsAndChildren())
        {
            var attempts = job.Attempts;
            if (job.IsArrayParent || attempts.Count == 0)
            {
                continue;
            }

            var req = AskedRequest(job);
            foreach (var a in attempts)
            {
                if (a.StartedAt is not { } s || !_ces.TryGetValue(a.CeName, out var ce))
                {
                    continue;
                }

                if (!cheapest.TryGetValue((ce.Name, req), out var c))
                {
                    c = (CheapestPricePerVcpuHour(ce.Name, req) ?? 0, SmallestFittingVcpuMilli(ce, req));
                    cheapest[(ce.Name, req)] = c;
                }

                if (!byHost.TryGetValue(a.HostName, out var list))
                {
                    byHost[a.HostName] = list = [];
                }

                list.Add((s, a.StoppedAt, req.VcpuMilli, c.SmallestMilli, c.PerVcpuHour));
            }
        }

        double atCheapest = 0, premium = 0, rounding = 0, oversized = 0, unused = 0, idleBetween = 0, idleEnd = 0, boot = 0, minimum = 0;
        var types = new SortedDictionary<string, (int Hosts, double Hours, double Cost, double VcpuHours, double Used)>(StringComparer.Ordinal);
        var events = new List<(long At, int Delta, long Milli, long Smallest)>();
        foreach (var h in hosts)
        {
            var lifeMs = h.RemovedAtMs - h.LaunchedAtMs;
            var billedMs = Math.Max(MinimumBilledMs, lifeMs);
            minimum += (billedMs - lifeMs) / 3_600_000.0 * h.PricePerHour;
            boot += (h.ReadyAtMs - h.LaunchedAtMs) / 3_600_000.0 * h.PricePerHour;
            // The host's real capacity, not its nominal vCPUs: a 0.25-vCPU Fargate task costs its price per 0.25 vCPU.
            var capacityMilli = h.CapacityVcpuMilli;
            var perVcpuHour = capacityMilli > 0 ? h.PricePerHour * 1000 / capacityMilli : 0;
            events.Clear();
            long lastStop = h.ReadyAtMs;
            double usedHours = 0;
            if (byHost.TryGetValue(h.Name, out var runs))
            {
                foreach (var (start, stop, milli, smallest, cheap) in runs)
                {
                    var s = Math.Max(start, h.ReadyAtMs);
                    var e = Math.Min(stop, h.RemovedAtMs);
                    if (e <= s)
                    {
                        continue;
                    }

                    var vcpuHours = milli / 1000.0 * (e - s) / 3_600_000.0;
                    usedHours += vcpuHours;
                    atCheapest += vcpuHours * cheap;
                    premium += vcpuHours * (perVcpuHour - cheap);
                    events.Add((s, 1, milli, smallest));
                    events.Add((e, -1, milli, smallest));
                    lastStop = Math.Max(lastStop, e);
                }
            }

            // Stops before starts at the same instant: a host handing over from one job to the next is not idle.
            events.Sort(static (a, b) => a.At != b.At ? a.At.CompareTo(b.At) : a.Delta.CompareTo(b.Delta));
            var t = h.ReadyAtMs;
            var running = 0;
            long usedMilli = 0;
            long smallestSum = 0;
            for (var k = 0; k <= events.Count; k++)
            {
                var at = k < events.Count ? events[k].At : h.RemovedAtMs;
                if (at > t)
                {
                    var hours = (at - t) / 3_600_000.0;
                    if (running == 0)
                    {
                        if (t >= lastStop)
                        {
                            idleEnd += hours * h.PricePerHour;
                        }
                        else
                        {
                            idleBetween += hours * h.PricePerHour;
                        }
                    }
                    else
                    {
                        var share = Math.Max(0, capacityMilli - usedMilli) / 1000.0 * hours * perVcpuHour;
                        if (running == 1 && smallestSum == capacityMilli)
                        {
                            rounding += share;
                        }
                        else if (running == 1)
                        {
                            oversized += share;
                        }
                        else
                        {
                            unused += share;
                        }
                    }

                    t = at;
                }

                if (k < events.Count)
                {
                    running += events[k].Delta;
                    usedMilli += events[k].Delta * events[k].Milli;
                    smallestSum += events[k].Delta * events[k].Smallest;
                }
            }

            var key = h.Type ?? "fargate";
            var agg = types.GetValueOrDefault(key);
            types[key] = (agg.Hosts + 1, agg.Hours + (lifeMs / 3_600_000.0), agg.Cost + (billedMs / 3_600_000.0 * h.PricePerHour),
                agg.VcpuHours + (lifeMs / 3_600_000.0 * capacityMilli / 1000.0), agg.Used + usedHours);
        }

        var byType = new List<Simulation.InstanceTypeCost>(types.Count);
        foreach (var (name, v) in types)
        {
            byType.Add(new Simulation.InstanceTypeCost(name, v.Hosts, v.Hours, v.Cost, v.VcpuHours, v.Used));
        }

        return new Simulation.CostBreakdown
        {
            JobsAtCheapestUsd = atCheapest,
            TypePremiumUsd = premium,
            SizeRoundingUsd = rounding,
            OneJobOnLargerHostUsd = oversized,
            UnusedOnBusyHostsUsd = unused,
            IdleBetweenJobsUsd = idleBetween,
            IdleBeforeScaleInUsd = idleEnd,
            BootUsd = boot,
            MinimumBillingUsd = minimum,
            ByInstanceType = byType,
        };
    }

    /// <summary>Milli-vCPUs of the smallest allowed instance type (or Fargate size) that fits <paramref name="req"/>; 0 when none.</summary>
    private long SmallestFittingVcpuMilli(ComputeEnvironmentState ce, ResourceVector req)
    {
        if (ce.IsFargate)
        {
            return FargateSizes.SmallestCovering(req.Vcpus, req.MemoryMiB) is { } size ? ResourceVector.ToMilli(size.Vcpus) : 0;
        }

        var best = 0;
        foreach (var t in AllowedTypes(ce))
        {
            if (t.Vcpus * 1000 >= req.VcpuMilli && t.MemoryMiB - _options.HostMemoryReserveMiB >= req.MemoryMiB && t.Gpus >= req.Gpus
                && (best == 0 || t.Vcpus < best))
            {
                best = t.Vcpus;
            }
        }

        return best * 1000L;
    }

    /// <summary>The name of the host a job's current attempt runs on; null when it runs nowhere (tests and tools).</summary>
    internal string? HostOfJob(string jobId) => TryGetJob(jobId, out var job) ? job.Host?.Name : null;

    /// <summary>A compute environment's provisioned (nominal) vCPUs; null when there is none of that name (tests and tools).</summary>
    internal long? ProvisionedVcpusOf(string computeEnvironment) => _ces.TryGetValue(computeEnvironment, out var ce) ? ce.ProvisionedVcpus : null;

    /// <summary>Every host: name, instance type, nominal vCPUs, ready, spot (tests and tools).</summary>
    internal List<(string Name, string? Type, int Vcpus, bool Ready, bool Spot)> SimulationHosts()
    {
        var list = new List<(string, string?, int, bool, bool)>();
        foreach (var ce in _ces.Values)
        {
            foreach (var h in ce.Hosts.Values)
            {
                list.Add((h.Name, h.InstanceType, h.NominalVcpus, h.Ready, h.Spot));
            }
        }

        return list;
    }
}

/// <summary>A host's life as the cost breakdown needs it (ready is clamped to the removal of a host that never booted).</summary>
internal readonly record struct HostLifetime(string Name, string? Type, long CapacityVcpuMilli, double PricePerHour,
    long LaunchedAtMs, long ReadyAtMs, long RemovedAtMs)
{
    public static HostLifetime Of(Host h, long nowMs) =>
        new(h.Name, h.InstanceType, h.Capacity.VcpuMilli, h.PricePerHour, h.LaunchedAtMs, Math.Min(h.Ready ? h.ReadyAtMs : nowMs, nowMs), nowMs);
}
