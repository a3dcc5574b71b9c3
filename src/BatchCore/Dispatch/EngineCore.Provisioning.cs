using System.Globalization;
using BatchCore.Jobs;
using BatchCore.Model;
using BatchCore.Placement;
using BatchCore.Provisioning;
using BatchCore.Validation;

namespace BatchCore.Dispatch;

internal sealed partial class EngineCore
{
    private readonly List<Host> _booting = [];

    /// <summary>The instance types a managed EC2/Spot CE may launch (instanceTypes expanded; default <c>optimal</c>).</summary>
    private List<InstanceType> AllowedTypes(ComputeEnvironmentState ce)
    {
        var entries = ce.Resources?.InstanceTypes is { Count: > 0 } t ? t : ["optimal"];
        var list = new List<InstanceType>();
        foreach (var e in entries)
        {
            foreach (var it in Catalog.Expand(e))
            {
                if (!list.Contains(it))
                {
                    list.Add(it);
                }
            }
        }

        return list;
    }

    private void ResetPlannedCapacity()
    {
        for (var i = _booting.Count - 1; i >= 0; i--)
        {
            var h = _booting[i];
            if (h.Ready || !h.ComputeEnvironment.Hosts.ContainsKey(h.Name))
            {
                _booting.RemoveAt(i);
                continue;
            }

            h.PlannedFree = h.Capacity;
        }
    }

    /// <summary>Fargate: every job gets its own host, the smallest valid Fargate size that covers it.</summary>
    private Host? LaunchFargateHost(ComputeEnvironmentState ce, ResourceVector req)
    {
        if (FargateSizes.SmallestCovering(req.Vcpus, req.MemoryMiB) is not { } size)
        {
            return null;
        }

        var vcpus = (int)Math.Ceiling(size.Vcpus);
        if (ce.ProvisionedVcpus + size.Vcpus > ce.MaxvCpus)
        {
            return null;
        }

        var price = Catalog.Fargate.PricePerHour(size.Vcpus, size.MemoryMiB, ce.IsSpot);
        var driver = ce.Provider == "local" ? ManagedDriver(ce) : _fargateDriver;
        var host = AddHost(ce, "fargate-" + (_hostSeq + 1).ToString(CultureInfo.InvariantCulture),
            new ResourceVector(ResourceVector.ToMilli(size.Vcpus), size.MemoryMiB, 0), driver, "x86_64",
            instanceType: null, spot: ce.IsSpot, price: price, nominalVcpus: vcpus, singleUse: true);
        MaybeScheduleInterruption(host, Catalog.Fargate.SpotInterruptionRatePerHour);
        return host;
    }

    /// <summary>
    /// Scale out a managed EC2/Spot CE for a job no host fits: reuse capacity a booting host has not promised yet,
    /// else launch the instance type the allocation strategy picks, within maxvCpus (AWS: all strategies but
    /// BEST_FIT may go at most one instance over).
    /// </summary>
    private Host? Provision(ComputeEnvironmentState ce, Job job, out bool atMax)
    {
        atMax = false;
        var req = job.Spec.Request;
        foreach (var h in _booting)
        {
            if (h.ComputeEnvironment == ce && !h.Ready && h.PlannedFree.Fits(req))
            {
                h.PlannedFree = h.PlannedFree - req;
                return h;
            }
        }

        var type = ChooseInstanceType(ce, req);
        if (type is null)
        {
            return null;
        }

        var strategy = ce.Resources?.AllocationStrategy ?? CRAllocationStrategy.BEST_FIT;
        var overAllowed = strategy != CRAllocationStrategy.BEST_FIT || ce.IsSpot;
        var fits = overAllowed ? ce.ProvisionedVcpus < ce.MaxvCpus : ce.ProvisionedVcpus + type.Vcpus <= ce.MaxvCpus;
        if (!fits)
        {
            atMax = true;
            return null;
        }

        if (ce.Provider == "local" && !LocalMachineHasRoom(ce, type))
        {
            return null; // the local provider carves only this machine's capacity into instances
        }

        return LaunchInstance(ce, type, req);
    }

    private Host LaunchInstance(ComputeEnvironmentState ce, InstanceType type, ResourceVector planned)
    {
        var boot = _options.Provisioning.Ec2BootTime;
        if (_options.Provisioning.Ec2BootJitter > TimeSpan.Zero)
        {
            boot += TimeSpan.FromMilliseconds(_random.NextDouble() * _options.Provisioning.Ec2BootJitter.TotalMilliseconds);
        }

        var spot = ce.IsSpot;
        var price = spot ? type.SpotPricePerHour : type.OnDemandPricePerHour;
        var ready = boot <= TimeSpan.Zero;
        var host = AddHost(ce, type.Name + "-" + (_hostSeq + 1).ToString(CultureInfo.InvariantCulture),
            new ResourceVector(type.Vcpus * 1000, type.MemoryMiB - _options.HostMemoryReserveMiB, type.Gpus),
            ManagedDriver(ce), type.Architecture, type.Name, spot, price, type.Vcpus, ready: ready);
        if (!ready)
        {
            host.PlannedFree = host.Capacity - planned;
            _booting.Add(host);
            AddTimer(new TimerEntry { Kind = TimerKind.HostReady, DueMs = NowMs + (long)boot.TotalMilliseconds, Target = host });
        }

        if (spot)
        {
            MaybeScheduleInterruption(host, type.SpotInterruptionRatePerHour);
        }

        return host;
    }

    /// <summary>
    /// The <c>local</c> provider: instance-sized slices of this machine (an m6i.large is 2 vCPU / 8 GiB, enforced by
    /// the process driver's cgroup limits), never more in total than the machine's processors and memory.
    /// </summary>
    private bool LocalMachineHasRoom(ComputeEnvironmentState ce, InstanceType type)
    {
        long vcpus = type.Vcpus;
        long memory = type.MemoryMiB;
        foreach (var c in _ces.Values)
        {
            if (c.Provider != "local")
            {
                continue;
            }

            foreach (var h in c.Hosts.Values)
            {
                vcpus += h.NominalVcpus;
                memory += h.Capacity.MemoryMiB;
            }
        }

        var machineVcpus = _options.Provisioning.LocalVcpus ?? Environment.ProcessorCount;
        var machineMemory = _options.Provisioning.LocalMemoryMiB ?? (GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024 * 1024));
        _ = ce;
        return vcpus <= Math.Max(machineVcpus, type.Vcpus) && memory <= Math.Max(machineMemory, type.MemoryMiB);
    }

    private Hosts.HostDriver ManagedDriver(ComputeEnvironmentState ce)
    {
        var kind = ce.Provider == "local" ? _options.Provisioning.LocalHostDriver : _options.Provisioning.ManagedHostDriver;
        if (kind == "simulated")
        {
            return _simulatedDriver;
        }

        if (!_sharedDrivers.TryGetValue(kind, out var driver))
        {
            driver = CreateDriver(new HostSpec { Driver = kind, HostName = "managed" }, "provisioning.managedHostDriver");
            _sharedDrivers[kind] = driver;
        }

        return driver;
    }

    /// <summary>The allocation strategies of AWS §2.5, over the catalog's types that can hold the request.</summary>
    private InstanceType? ChooseInstanceType(ComputeEnvironmentState ce, ResourceVector req)
    {
        var strategy = ce.Resources?.AllocationStrategy ?? CRAllocationStrategy.BEST_FIT;
        var spot = ce.IsSpot;
        var bid = (ce.Resources?.BidPercentage ?? 100) / 100.0;
        InstanceType? best = null;
        var bestScore = double.MaxValue;
        var order = 0;
        foreach (var t in AllowedTypes(ce))
        {
            order++;
            if (t.Vcpus * 1000 < req.VcpuMilli || t.MemoryMiB - _options.HostMemoryReserveMiB < req.MemoryMiB || t.Gpus < req.Gpus)
            {
                continue;
            }

            if (spot && t.SpotPriceRatio > bid)
            {
                continue; // bidPercentage: the spot price must not exceed this share of on-demand
            }

            var price = spot ? t.SpotPricePerHour : t.OnDemandPricePerHour;
            var score = strategy switch
            {
                // Cheapest single type that fits.
                CRAllocationStrategy.BEST_FIT => price,
                // Lower cost per vCPU first; smaller instances break ties.
                CRAllocationStrategy.BEST_FIT_PROGRESSIVE => (price / t.Vcpus * 1e6) + t.Vcpus,
                // The list order, best-fitting size of a family first.
                CRAllocationStrategy.BEST_FIT_PROGRESSIVE_ORDERED or CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED_PRIORITIZED =>
                    (order * 1e6) + (strategy == CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED_PRIORITIZED ? t.SpotInterruptionRatePerHour * 1e5 : 0) + t.Vcpus,
                // Pools least likely to be interrupted.
                CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED => (t.SpotInterruptionRatePerHour * 1e9) + price,
                // Low interruption and low price together.
                CRAllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED => price / t.Vcpus * (1 + (t.SpotInterruptionRatePerHour * 720 * 10)),
                _ => price,
            };
            if (score < bestScore)
            {
                bestScore = score;
                best = t;
            }
        }

        return best;
    }

    private void OnHostReady(Host host)
    {
        if (!host.ComputeEnvironment.Hosts.ContainsKey(host.Name))
        {
            return;
        }

        host.Ready = true;
        host.IdleSinceMs = NowMs;
        host.ComputeEnvironment.Index.Update(host);
        _capacityVersion++;
        _dirty = true;
        ScheduleScaleIn(host.ComputeEnvironment);
    }

    /// <summary>Managed EC2 CEs keep at least minvCpus of instances, even when DISABLED (AWS).</summary>
    private void EnsureMinCapacity(ComputeEnvironmentState ce)
    {
        if (!ce.IsManaged || ce.IsFargate)
        {
            return;
        }

        var guard = 0;
        while (ce.ProvisionedVcpus < ce.MinvCpus && guard++ < 100_000)
        {
            var types = AllowedTypes(ce);
            if (types.Count == 0)
            {
                return;
            }

            var smallest = types.MinBy(t => (t.Vcpus, t.OnDemandPricePerHour))!;
            LaunchInstance(ce, smallest, default);
        }
    }

    private void ScheduleScaleIn(ComputeEnvironmentState ce)
    {
        if (!ce.IsManaged || ce.IsFargate || ce.ScaleInTimerArmed)
        {
            return;
        }

        ce.ScaleInTimerArmed = true;
        AddTimer(new TimerEntry { Kind = TimerKind.ScaleIn, DueMs = NowMs + (long)ScaleDownDelay(ce).TotalMilliseconds, Target = ce });
    }

    private TimeSpan ScaleDownDelay(ComputeEnvironmentState ce) =>
        ce.Resources?.ScalingPolicy?.MinScaleDownDelayMinutes is { } m ? TimeSpan.FromMinutes(m) : _options.Provisioning.DefaultScaleDownDelay;

    /// <summary>Scale-in: instances idle longer than the delay go, down to minvCpus; sizes never change (AWS).</summary>
    private void OnScaleInCheck(ComputeEnvironmentState ce)
    {
        ce.ScaleInTimerArmed = false;
        if (!_ces.ContainsKey(ce.Name))
        {
            return;
        }

        var now = NowMs;
        var delayMs = (long)ScaleDownDelay(ce).TotalMilliseconds;
        long? nextCheck = null;
        foreach (var h in ce.Hosts.Values.OrderBy(h => h.IdleSinceMs).ToList())
        {
            if (h.RunningAttempts > 0 || !h.Ready)
            {
                continue;
            }

            if (now - h.IdleSinceMs >= delayMs)
            {
                if (ce.ProvisionedVcpus - h.NominalVcpus >= ce.MinvCpus)
                {
                    RemoveHost(h);
                }
            }
            else
            {
                var due = h.IdleSinceMs + delayMs;
                nextCheck = nextCheck is null ? due : Math.Min(nextCheck.Value, due);
            }
        }

        if (nextCheck is { } next)
        {
            ce.ScaleInTimerArmed = true;
            AddTimer(new TimerEntry { Kind = TimerKind.ScaleIn, DueMs = next, Target = ce });
        }
    }

    private void MaybeScheduleInterruption(Host host, double ratePerHour)
    {
        if (!host.Spot || !_options.Provisioning.SimulateSpotInterruptions || ratePerHour <= 0)
        {
            return;
        }

        // Exponential time to interruption; the seeded Random keeps replays identical.
        var hours = -Math.Log(1 - _random.NextDouble()) / ratePerHour;
        var due = NowMs + (long)Math.Min(hours * 3_600_000, 365L * 24 * 3_600_000);
        host.InterruptionTimer = AddTimer(new TimerEntry { Kind = TimerKind.SpotInterruption, DueMs = due, Target = host });
    }

    /// <summary>
    /// A spot interruption: the 2-minute notice drains the host (no new attempts), then its attempts end as host
    /// failures and retry per retryStrategy.
    /// </summary>
    private void OnSpotInterruption(Host host)
    {
        var ce = host.ComputeEnvironment;
        if (!ce.Hosts.ContainsKey(host.Name))
        {
            return;
        }

        if (!host.Draining)
        {
            host.Draining = true;
            Statistics.SpotInterruptions++;
            AddTimer(new TimerEntry { Kind = TimerKind.SpotInterruption, DueMs = NowMs + 120_000, Target = host });
            _capacityVersion++;
            _dirty = true;
            return;
        }

        foreach (var job in _attempts.Values.Where(j => j.Host == host).ToList())
        {
            job.HostLostReason = StatusReasons.SpotInterrupted;
            TerminateAttempt(job, TimeSpan.Zero);
        }

        if (host.RunningAttempts == 0)
        {
            RemoveHost(host);
        }
    }
}
