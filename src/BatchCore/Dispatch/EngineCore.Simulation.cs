using BatchCore.Jobs;
using BatchCore.Placement;
using BatchCore.Validation;

namespace BatchCore.Dispatch;

/// <summary>One sample of the simulator's time series.</summary>
internal readonly record struct SimulationSample(long TimeMs, int QueuedJobs, double RunningVcpus, int ProvisionedVcpus, int Hosts);

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
    /// <summary>The queue depth (SUBMITTED..RUNNABLE), running vCPUs, provisioned vCPUs and hosts, now.</summary>
    internal SimulationSample SampleForSimulation()
    {
        var queued = _submitted.Count;
        foreach (var q in _queuesByPriority)
        {
            queued += q.RunnableCount;
        }

        long used = 0;
        var provisioned = 0;
        var hosts = 0;
        foreach (var ce in _ces.Values)
        {
            used += ce.UsedVcpuMilli;
            provisioned += ce.ProvisionedVcpus;
            hosts += ce.Hosts.Count;
        }

        return new SimulationSample(NowMs, queued, used / 1000.0, provisioned, hosts);
    }

    /// <summary>Whether the named CE runs Fargate tasks.</summary>
    internal bool IsFargateComputeEnvironment(string ceName) => _ces[ceName].IsFargate;

    /// <summary>Jobs that reached SUCCEEDED or FAILED.</summary>
    internal long TerminalJobs => Statistics.Succeeded + Statistics.Failed;

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
    /// used vCPU-seconds = Σ attempts' RUNNING time × vCPUs; cost and provisioned vCPU-seconds of every host, live
    /// hosts counted up to now.
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
            var vcpus = job.Spec.Request.Vcpus;
            if (job.Attempts is { } attempts)
            {
                foreach (var a in attempts)
                {
                    totals.Attempts++;
                    if (a.StartedAt is { } s)
                    {
                        firstStart ??= s;
                        totals.UsedVcpuSeconds += (a.StoppedAt - s) / 1000.0 * vcpus;
                    }
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
                totals.ProvisionedVcpuSeconds += (NowMs - h.LaunchedAtMs) / 1000.0 * h.NominalVcpus;
            }
        }

        var array = waits.ToArray();
        Array.Sort(array);
        totals.WaitSeconds = array;
        return totals;
    }

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
