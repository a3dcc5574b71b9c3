using System.Diagnostics;
using System.Globalization;
using BatchCore.Jobs;
using BatchCore.Model;
using BatchCore.Placement;
using BatchCore.Placement.Packing;
using BatchCore.Provisioning;
using BatchCore.Validation;

namespace BatchCore.Dispatch;

/// <summary>
/// Managed compute environments (AWS §2.5): scale-out from RUNNABLE demand within minvCpus..maxvCpus by the CE's
/// allocation strategy, launch rate limits, boot delays, scale-in of idle instances, spot interruptions.
/// </summary>
internal sealed partial class EngineCore
{
    /// <summary>ECS's stoppedReason for an interrupted Fargate Spot task.</summary>
    internal const string FargateSpotInterrupted = "Your Spot Task was interrupted.";

    /// <summary>At most this many RUNNABLE jobs are looked at when a scale-out is sized.</summary>
    private const int MaxDemandWindow = 50_000;

    /// <summary>A scale-out uses a larger size of the chosen family only when its demand fills that size this many times.</summary>
    private const int SizeUpMinFill = 4;

    /// <summary>Scale-outs of up to this many jobs of one type are packed by the optimizing packer (the greedy above).</summary>
    private const int OptimizedScaleOutLimit = 2_000;

    private PackingOptions? _scaleOutPacking;

    /// <summary>
    /// The packer's budget for sizing a scale-out: 20,000 improvement iterations, and the default wall-clock budget
    /// (50 ms per 1,000 jobs) on a real clock; none in virtual time, so simulations do not depend on the machine.
    /// </summary>
    private PackingOptions ScaleOutPacking => _scaleOutPacking ??= new PackingOptions
    {
        TimeProvider = _time,
        MaxIterations = 20_000,
        TimeBudget = _virtual is null ? null : Timeout.InfiniteTimeSpan,
    };

    /// <summary>Rate-limited launches wait for at most this many tokens before the next try (batches the retries).</summary>
    private const int MaxTokensPerWake = 60;


    private readonly List<Host> _booting = [];
    private readonly Dictionary<string, int> _liveByType = new(StringComparer.Ordinal);
    private TokenBucket? _ec2Bucket;
    private TokenBucket? _fargateBucket;
    private bool _launchWakeArmed;
    private long _provisionCycle;

    // Scratch of SizeScaleOut, reused (no allocation per cycle once warm).
    private readonly List<Job> _demand = [];

    /// <summary>
    /// Jobs an environment's sizing in this cycle took (a ready host fits them, or a booting or new instance is planned
    /// for them): a later environment of their queue does not size for them too.
    /// </summary>
    private readonly HashSet<Job> _sizedJobs = new(ReferenceEqualityComparer.Instance);

    /// <summary>Environments already sized in this cycle (they are visited in queue order).</summary>
    private readonly HashSet<ComputeEnvironmentState> _sizedEnvironments = new(ReferenceEqualityComparer.Instance);
    private readonly List<(Host Host, ResourceVector Req)> _tentative = [];
    private readonly Dictionary<ResourceVector, InstanceType?> _typeMemo = [];
    private readonly List<InstanceType> _groupTypes = [];
    private readonly Dictionary<InstanceType, List<int>> _groups = [];
    private readonly List<Host> _scaleInCandidates = [];

    private TokenBucket Ec2Bucket => _ec2Bucket ??= new TokenBucket(_options.Provisioning.Ec2LaunchBucket, NowMs);

    private TokenBucket FargateBucket => _fargateBucket ??= new TokenBucket(_options.Provisioning.FargateLaunchBucket, NowMs);

    /// <summary>
    /// The instance types a managed EC2/Spot CE may launch, in strategy order: <c>instanceTypes</c> entries in list
    /// order, a family expanded smallest size first (best fit first, larger sizes as fallback); an explicitly listed
    /// type keeps its own position and is left out of its family's expansion (AWS BEST_FIT_PROGRESSIVE_ORDERED).
    /// The default is <c>optimal</c>. Cached per <see cref="ComputeResource"/> value.
    /// </summary>
    private List<InstanceType> AllowedTypes(ComputeEnvironmentState ce)
    {
        if (ce.AllowedTypesCache is { } cached && ReferenceEquals(ce.AllowedTypesFor, ce.Resources))
        {
            return cached;
        }

        var entries = ce.Resources?.InstanceTypes is { Count: > 0 } t ? t : ["optimal"];
        var explicitTypes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            if (Catalog.Find(e) is not null)
            {
                explicitTypes.Add(e);
            }
        }

        var list = new List<InstanceType>();
        foreach (var e in entries)
        {
            var isExplicit = explicitTypes.Contains(e);
            foreach (var it in Catalog.Expand(e))
            {
                if ((!isExplicit && explicitTypes.Contains(it.Name)) || list.Contains(it))
                {
                    continue;
                }

                list.Add(it);
            }
        }

        ce.AllowedTypesCache = list;
        ce.AllowedTypesFor = ce.Resources;
        return list;
    }

    private void ResetPlannedCapacity()
    {
        _provisionCycle++;
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

        if (!_options.Provisioning.DemandSizedScaleOut)
        {
            return;
        }

        // New demand is sized at once, even while a FIFO head waits for a booting instance (which keeps the queue
        // from being visited until capacity changes). Environments are sized in the order queues use them (priority,
        // then computeEnvironmentOrder), so a queue's first environment takes its jobs before a fallback sizes for them.
        _sizedJobs.Clear();
        _sizedEnvironments.Clear();
        foreach (var queue in _queuesByPriority)
        {
            foreach (var ce in queue.ComputeEnvironments)
            {
                if (_sizedEnvironments.Add(ce))
                {
                    SizeIfNewDemand(ce);
                }
            }
        }
    }

    private void SizeIfNewDemand(ComputeEnvironmentState ce)
    {
        if (!ce.IsManaged || ce.IsFargate || ce.Provider == "local" || ce.Queues.Count == 0)
        {
            return;
        }

        var runnable = 0;
        foreach (var q in ce.Queues)
        {
            runnable += q.RunnableCount;
        }

        if (runnable > ce.LastSizedRunnable && ce.AcceptsPlacements)
        {
            ce.ScaleOutCycle = _provisionCycle;
            SizeScaleOut(ce);
        }

        ce.LastSizedRunnable = runnable;
    }

    // ---- Fargate -------------------------------------------------------------------------------------------------------

    /// <summary>
    /// Fargate: every job gets its own task, the smallest valid Fargate size that covers it, within maxvCpus and the
    /// Fargate launch rate (token bucket).
    /// </summary>
    /// <param name="ce">The FARGATE or FARGATE_SPOT environment.</param>
    /// <param name="req">The job's request.</param>
    /// <param name="throttled">Set when the launch rate, not maxvCpus, held the task back: it waits for a token.</param>
    private Host? LaunchFargateHost(ComputeEnvironmentState ce, ResourceVector req, out bool throttled)
    {
        throttled = false;
        if (FargateSizes.SmallestCovering(req.Vcpus, req.MemoryMiB) is not { } size)
        {
            return null;
        }

        // maxvCpus counts the tasks' own vCPUs: four 0.25-vCPU tasks fit in 1 (their hosts' capacities, in milli-vCPUs).
        var vcpus = (int)Math.Ceiling(size.Vcpus);
        if (ce.CapacityVcpuMilli + ResourceVector.ToMilli(size.Vcpus) > ce.MaxvCpus * 1000L)
        {
            return null;
        }

        if (!TakeLaunchToken(fargate: true, wanted: 1))
        {
            throttled = true;
            return null;
        }

        var price = Catalog.Fargate.PricePerHour(size.Vcpus, size.MemoryMiB, ce.IsSpot);
        var driver = ce.Provider == "local" ? ManagedDriver(ce) : _fargateDriver;
        var host = AddHost(ce, "fargate-" + (_hostSeq + 1).ToString(CultureInfo.InvariantCulture),
            new ResourceVector(ResourceVector.ToMilli(size.Vcpus), size.MemoryMiB, 0), driver, "x86_64",
            instanceType: null, spot: ce.IsSpot, price: price, nominalVcpus: vcpus, singleUse: true);
        // The task's start (the driver's start delay) is its boot: billed, but not idle time between jobs. The host takes
        // its job at once (Ready), the job starts after the delay.
        host.ReadyAtMs = NowMs + (ReferenceEquals(driver, _fargateDriver) ? (long)_options.Provisioning.FargateStartTime.TotalMilliseconds : 0);
        MaybeScheduleInterruption(host, Catalog.Fargate.SpotInterruptionRatePerHour);
        return host;
    }

    // ---- EC2 / Spot scale-out ------------------------------------------------------------------------------------------

    /// <summary>
    /// Scale out a managed EC2/Spot CE for a job no host fits:
    /// 1. reuse capacity a booting host has not promised yet;
    /// 2. once per cycle, size a scale-out for the CE's waiting demand (<see cref="SizeScaleOut"/>);
    /// 3. else launch the instance type the allocation strategy picks for this job, within maxvCpus (AWS: all
    ///    strategies but BEST_FIT on-demand may go at most one instance over), type availability and the launch rate.
    /// </summary>
    private Host? Provision(ComputeEnvironmentState ce, Job job, out bool atMax)
    {
        atMax = false;
        var req = job.Spec.Request;
        if (ReserveOnBooting(ce, req) is { } booting)
        {
            return booting;
        }

        if (_options.Provisioning.DemandSizedScaleOut && ce.ScaleOutCycle != _provisionCycle && ce.Provider != "local")
        {
            ce.ScaleOutCycle = _provisionCycle;
            SizeScaleOut(ce);
            if (ReserveOnBooting(ce, req) is { } planned)
            {
                return planned;
            }

            if (FindManagedHost(ce, job.Spec, _options.PlacementStrategy) is { } ready)
            {
                return ready; // instant boots: the new instances are ready already
            }
        }

        var type = ChooseInstanceType(ce, req);
        if (type is null)
        {
            return null; // no type fits, or BEST_FIT waits for its type to become available
        }

        if (!WithinMaxvCpus(ce, type))
        {
            atMax = true;
            return null;
        }

        if (ce.Provider == "local" && !LocalMachineHasRoom(ce, type))
        {
            return null; // the local provider carves only this machine's capacity into instances
        }

        if (ce.Provider != "local" && !TakeLaunchToken(fargate: false, wanted: 1))
        {
            return null;
        }

        return LaunchInstance(ce, type, req);
    }

    /// <summary>
    /// Drain-aware placement (<see cref="ProvisioningOptions.RightSizePlacement"/>): in a managed EC2/Spot CE, a ready
    /// host found for a job is passed over — the job goes to scale-out instead — when the host
    /// 1. has run jobs before (an instance launched for the waiting demand is always used for it),
    /// 2. has at least twice the vCPUs of the type the allocation strategy launches for the job,
    /// 3. the job would keep it up longer than it is kept anyway: with a declared timeout (attemptDurationSeconds) on
    ///    the job and on every attempt running there, the job's end by its timeout is later than the latest end the
    ///    host's attempts declare (<see cref="Host.DeclaredBusyUntilMs"/>); without them, the host is at most a
    ///    quarter allocated, and
    /// 4. that type can be launched now (within maxvCpus, available, a launch token left).
    /// Why: a small job started on a large instance keeps the whole instance billed once the instance's other jobs
    /// end (scale-in waits for the last job, and AWS does not move running jobs); a right-sized instance costs a boot,
    /// and the large one scales in. A job that declares it ends before the host's own jobs do fills a hole for free.
    /// </summary>
    private bool PassOver(ComputeEnvironmentState ce, Host host, ResourceVector req, int? timeoutSeconds)
    {
        // Cheapest tests first: most hosts are small, or fresh instances launched for the demand.
        if (!_options.Provisioning.RightSizePlacement || host.InstanceType is null || (host.RunningAttempts == 0 && host.IdleSinceMs == host.ReadyAtMs)
            || !ce.IsManaged || ce.IsFargate || ce.Provider == "local" || !ce.AcceptsPlacements)
        {
            return false;
        }

        var extends = timeoutSeconds is { } t && host.DeclaredBusyUntilMs != long.MaxValue
            ? NowMs + (t * 1000L) > host.DeclaredBusyUntilMs
            : (host.Capacity.VcpuMilli - host.Free.VcpuMilli) * 4 <= host.Capacity.VcpuMilli;
        if (!extends)
        {
            return false;
        }

        var type = ChooseInstanceType(ce, req);
        return type is not null && host.NominalVcpus >= 2 * type.Vcpus && WithinMaxvCpus(ce, type) && IsAvailable(type)
            && (!_options.Provisioning.EnforceLaunchRateLimits || Ec2Bucket.Available(NowMs) >= 1);
    }

    /// <summary>
    /// The dispatcher's host for a job in a managed CE. A job with a declared timeout gets the best fit over the hosts
    /// not passed over (<see cref="PassOver"/>): it may fill the hole of a host whose own jobs outlast it while the
    /// best-fitting host is one it would keep up. Otherwise, the strategy's pick unless it is passed over (measured on
    /// KTH without timeouts: searching on past a passed-over host lands more jobs on other large hosts, 1.54 × the
    /// bound instead of 1.50).
    /// </summary>
    private Host? FindManagedHost(ComputeEnvironmentState ce, JobSpec spec, PlacementStrategy strategy)
    {
        if (spec.TimeoutSeconds is not null && strategy == PlacementStrategy.BestFit && _options.Provisioning.RightSizePlacement && !ce.IsFargate)
        {
            _passCe = ce;
            _passReq = spec.Request;
            _passTimeout = spec.TimeoutSeconds;
            var found = ce.Index.FindBestFit(spec.Request, spec.Architecture, _acceptForPlacement ??= h => !PassOver(_passCe!, h, _passReq, _passTimeout));
            _passCe = null;
            return found;
        }

        return ce.Index.Find(spec.Request, spec.Architecture, strategy) is { } host && !PassOver(ce, host, spec.Request, spec.TimeoutSeconds) ? host : null;
    }

    // The job FindManagedHost asks for, read by its cached filter (no closure per call).
    private ComputeEnvironmentState? _passCe;
    private ResourceVector _passReq;
    private int? _passTimeout;
    private Func<Host, bool>? _acceptForPlacement;

    private Host? ReserveOnBooting(ComputeEnvironmentState ce, ResourceVector req)
    {
        foreach (var h in _booting)
        {
            if (h.ComputeEnvironment == ce && !h.Ready && !h.Draining && h.PlannedFree.Fits(req))
            {
                h.PlannedFree = h.PlannedFree - req;
                return h;
            }
        }

        return null;
    }

    /// <summary>AWS: all strategies except BEST_FIT on On-Demand may exceed maxvCpus by at most one instance.</summary>
    private bool WithinMaxvCpus(ComputeEnvironmentState ce, InstanceType type)
    {
        var strategy = ce.Resources?.AllocationStrategy ?? CRAllocationStrategy.BEST_FIT;
        var overAllowed = strategy != CRAllocationStrategy.BEST_FIT || ce.IsSpot;
        return overAllowed ? ce.ProvisionedVcpus < ce.MaxvCpus : ce.ProvisionedVcpus + type.Vcpus <= ce.MaxvCpus;
    }

    /// <summary>
    /// Sizes one scale-out for the waiting demand instead of one instance per job and cycle:
    /// 1. gather the CE's RUNNABLE jobs (queue order) up to the vCPUs the CE could still add plus what is booting;
    /// 2. drop those a ready host could take now (tentative best fit, undone afterwards);
    /// 3. group the rest by the instance type the strategy picks for each;
    /// 4. per type, pack the group onto the booting instances and new ones of that type (best fit, then first fit
    ///    decreasing), and launch the new ones within the limits.
    /// </summary>
    private void SizeScaleOut(ComputeEnvironmentState ce)
    {
        if (!ce.AcceptsPlacements || ce.ProvisionedVcpus >= ce.MaxvCpus || ce.MaxHostShape is not { } shape)
        {
            return;
        }

        if (_options.Provisioning.EnforceLaunchRateLimits && Ec2Bucket.Available(NowMs) < 1)
        {
            ArmLaunchWake(Ec2Bucket, 1);
            return;
        }

        // 1.+2. The waiting demand that no ready host takes: at most what the CE may still add plus what is booting.
        long budget = (long)(ce.MaxvCpus - ce.ProvisionedVcpus) * 1000;
        foreach (var h in _booting)
        {
            if (h.ComputeEnvironment == ce && !h.Ready)
            {
                budget += h.PlannedFree.VcpuMilli;
            }
        }

        _demand.Clear();
        _tentative.Clear();
        long gathered = 0;
        foreach (var q in ce.Queues)
        {
            if (q.RunnableCount == 0)
            {
                continue;
            }

            if (q.IsFairShare)
            {
                foreach (var s in q.Shares.Values)
                {
                    foreach (var job in s.Ready)
                    {
                        if (!Gather(q, job))
                        {
                            goto gatheredAll;
                        }
                    }
                }
            }
            else
            {
                var fifo = q.Fifo;
                for (var i = 0; i < fifo.RawCount; i++)
                {
                    if (fifo.RawAt(i) is not { InReadyQueue: true } job)
                    {
                        continue;
                    }

                    if (job.IsArrayParent)
                    {
                        Materialize((TopJob)job); // its virtual children are demand, each with its own request
                        job = fifo.RawAt(i)!;
                    }

                    if (!Gather(q, job))
                    {
                        goto gatheredAll;
                    }
                }
            }
        }

    gatheredAll:
        for (var i = _tentative.Count - 1; i >= 0; i--)
        {
            var (h, r) = _tentative[i];
            h.Free = h.Free + r;
            ce.Index.Update(h);
        }

        _tentative.Clear();
        if (_demand.Count == 0)
        {
            return;
        }

        // 3. Group by the strategy's type for each request shape.
        _typeMemo.Clear();
        _groupTypes.Clear();
        foreach (var list in _groups.Values)
        {
            list.Clear();
        }

        for (var i = 0; i < _demand.Count; i++)
        {
            var req = _demand[i].Spec.Request;
            if (!_typeMemo.TryGetValue(req, out var type))
            {
                type = ChooseInstanceType(ce, req);
                _typeMemo[req] = type;
            }

            if (type is null)
            {
                continue;
            }

            if (!_groups.TryGetValue(type, out var members))
            {
                _groups[type] = members = [];
            }

            if (members.Count == 0)
            {
                _groupTypes.Add(type);
            }

            members.Add(i);
        }

        // 4. Pack each group onto booting + new instances, launch the new ones.
        var reserve = _options.HostMemoryReserveMiB;
        foreach (var chosen in _groupTypes)
        {
            var members = _groups[chosen];
            var type = SizeUp(ce, chosen, members);
            var bins = new List<Host>();
            foreach (var h in _booting)
            {
                if (h.ComputeEnvironment == ce && !h.Ready && !h.Draining && h.PlannedFree.VcpuMilli > 0)
                {
                    bins.Add(h);
                }
            }

            // Dimensions: vCPU, memory, and GPUs only when the type has some (the packer wants positive capacities).
            var dims = type.Gpus > 0 ? 3 : 2;
            var residuals = new long[bins.Count * dims];
            for (var b = 0; b < bins.Count; b++)
            {
                var f = bins[b].PlannedFree;
                residuals[b * dims] = Math.Max(0, f.VcpuMilli);
                residuals[(b * dims) + 1] = Math.Max(0, f.MemoryMiB);
                if (dims == 3)
                {
                    residuals[(b * dims) + 2] = Math.Max(0, f.Gpus);
                }
            }

            var demands = new long[members.Count * dims];
            for (var k = 0; k < members.Count; k++)
            {
                var r = _demand[members[k]].Spec.Request;
                demands[k * dims] = r.VcpuMilli;
                demands[(k * dims) + 1] = r.MemoryMiB;
                if (dims == 3)
                {
                    demands[(k * dims) + 2] = r.Gpus;
                }
            }

            var binOf = new int[members.Count];
            long[] capacity = dims == 3
                ? [type.Vcpus * 1000L, type.MemoryMiB - reserve, type.Gpus]
                : [type.Vcpus * 1000L, type.MemoryMiB - reserve];
            var newBins = PackDecreasing(residuals, dims, demands, capacity, binOf);
            if (newBins >= 2 && members.Count <= OptimizedScaleOutLimit)
            {
                // Issue #8: the window is known, so improve on the greedy count (fewer instances for the same jobs).
                var improved = new int[members.Count];
                var fewer = VectorPacker.PackInto(residuals, dims, demands, capacity, improved, ScaleOutPacking);
                if (fewer < newBins && PlacesSameJobs(binOf, improved))
                {
                    newBins = fewer;
                    binOf = improved;
                }
            }
            for (var k = 0; k < members.Count; k++)
            {
                if (binOf[k] >= 0 && binOf[k] < bins.Count)
                {
                    // Promised to this group: the next group packs into what is left.
                    var h = bins[binOf[k]];
                    var r = _demand[members[k]].Spec.Request;
                    h.PlannedFree = h.PlannedFree - r;
                    _tentative.Add((h, r));
                }
            }

            var launched = 0;
            for (var n = 0; n < newBins; n++)
            {
                if (!WithinMaxvCpus(ce, type) || !IsAvailable(type))
                {
                    break;
                }

                if (!TakeLaunchToken(fargate: false, wanted: newBins - n))
                {
                    break;
                }

                LaunchInstance(ce, type, default);
                launched++;
            }

            // Planned here (a booting instance, or a new one that was launched): not a later environment's demand.
            for (var k = 0; k < members.Count; k++)
            {
                if (binOf[k] >= 0 && binOf[k] < bins.Count + launched)
                {
                    _sizedJobs.Add(_demand[members[k]]);
                }
            }
        }

        // Undo the promises between groups: the dispatcher reserves booting capacity job by job (ReserveOnBooting).
        foreach (var (h, r) in _tentative)
        {
            h.PlannedFree = h.PlannedFree + r;
        }

        _tentative.Clear();
        _demand.Clear();

        bool Gather(JobQueueState q, Job job)
        {
            var spec = job.Spec;
            if (spec.Fargate || (spec.Architecture is { } a && ce.Architecture is { } ca && a != ca) || !shape.Fits(spec.Request) || !ce.RunsKindOf(spec)
                || _sizedJobs.Contains(job) || EarlierEnvironmentTakes(q, ce, spec))
            {
                return true;
            }

            var req = spec.Request;
            if (FindManagedHost(ce, spec, PlacementStrategy.BestFit) is { } fit)
            {
                fit.Free = fit.Free - req;
                ce.Index.Update(fit);
                _tentative.Add((fit, req));
                _sizedJobs.Add(job);
                return true;
            }

            _demand.Add(job);
            gathered += req.VcpuMilli;
            return gathered < budget && _demand.Count < MaxDemandWindow;
        }
    }

    /// <summary>
    /// Whether an environment before <paramref name="ce"/> in <paramref name="q"/>'s order can still take a job of
    /// <paramref name="spec"/> (AWS: the next environment is used only when the ones before it are not VALID and ENABLED or
    /// cannot provide a suitable resource): it could hold the job, takes placements, and has a host for it or room to
    /// launch one. Then the job is that environment's demand, not <paramref name="ce"/>'s — a "Spot first, On-Demand
    /// fallback" queue launched fallback instances on every burst.
    /// </summary>
    private bool EarlierEnvironmentTakes(JobQueueState q, ComputeEnvironmentState ce, JobSpec spec)
    {
        foreach (var earlier in q.ComputeEnvironments)
        {
            if (ReferenceEquals(earlier, ce))
            {
                return false;
            }

            if (!earlier.AcceptsPlacements || earlier.IsFargate != spec.Fargate || earlier.MaxHostShape is not { } shape || !shape.Fits(spec.Request)
                || (spec.Architecture is { } a && earlier.Architecture is { } ea && a != ea) || !earlier.RunsKindOf(spec))
            {
                continue;
            }

            if ((earlier.IsManaged && earlier.ProvisionedVcpus < earlier.MaxvCpus) || earlier.Index.Find(spec.Request, spec.Architecture, PlacementStrategy.FirstFit) is not null
                || BootingFits(earlier, spec.Request))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether an instance of <paramref name="ce"/> that is still booting could hold <paramref name="req"/> (the job waits for it).</summary>
    private bool BootingFits(ComputeEnvironmentState ce, ResourceVector req)
    {
        foreach (var h in _booting)
        {
            if (ReferenceEquals(h.ComputeEnvironment, ce) && !h.Ready && !h.Draining && h.Capacity.Fits(req))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// A scale-out for many jobs may use a larger size of the chosen type's family at the same (or lower) price per
    /// vCPU — what AWS does for a deep queue: fewer, larger instances, no cost difference per vCPU. Not for BEST_FIT
    /// (one best-fitting type) nor BEST_FIT_PROGRESSIVE_ORDERED (best-fit size first, by definition).
    /// </summary>
    private InstanceType SizeUp(ComputeEnvironmentState ce, InstanceType chosen, List<int> members)
    {
        var strategy = ce.Resources?.AllocationStrategy ?? CRAllocationStrategy.BEST_FIT;
        if (strategy is CRAllocationStrategy.BEST_FIT or CRAllocationStrategy.BEST_FIT_PROGRESSIVE_ORDERED || members.Count < 2)
        {
            return chosen;
        }

        long demandMilli = 0;
        long demandMemory = 0;
        foreach (var i in members)
        {
            demandMilli += _demand[i].Spec.Request.VcpuMilli;
            demandMemory += _demand[i].Spec.Request.MemoryMiB;
        }

        var spot = ce.IsSpot;
        var perVcpu = PriceOf(chosen, spot) / chosen.Vcpus;
        var headroom = (long)Math.Max(0, ce.MaxvCpus - ce.ProvisionedVcpus) * 1000;
        var best = chosen;
        foreach (var t in AllowedTypes(ce))
        {
            if (t.Family != chosen.Family || t.Vcpus <= best.Vcpus || !IsAvailable(t) || PriceOf(t, spot) / t.Vcpus > perVcpu * 1.0001)
            {
                continue;
            }

            // Only for a deep queue — the demand fills the larger size at least SizeUpMinFill times (in vCPU and
            // memory) — and within what the CE may still add: a large instance stays billed until its last job ends,
            // so for a few jobs right-sized instances (which scale in one by one) cost less at the same price per vCPU.
            if (t.Vcpus * 1000L * SizeUpMinFill <= demandMilli && t.Vcpus * 1000L <= headroom && t.MemoryMiB * SizeUpMinFill <= demandMemory * 2L)
            {
                best = t;
            }
        }

        return best;
    }

    /// <summary>
    /// Places the items (largest vCPU first) into the existing bins (best fit), then into new bins of
    /// <paramref name="capacity"/> (first fit): deterministic, O(n·bins). Returns the number of new bins.
    /// </summary>
    private static int PackDecreasing(long[] residuals, int dims, long[] demands, long[] capacity, int[] binOf)
    {
        var n = binOf.Length;
        var existing = residuals.Length / dims;
        var order = new int[n];
        for (var i = 0; i < n; i++)
        {
            order[i] = i;
        }

        Array.Sort(order, (a, b) =>
        {
            var c = demands[b * dims].CompareTo(demands[a * dims]);
            return c != 0 ? c : a.CompareTo(b);
        });
        var free = new List<long>(residuals);
        foreach (var item in order)
        {
            var best = -1;
            var bestLeft = long.MaxValue;
            var bins = free.Count / dims;
            for (var b = 0; b < bins; b++)
            {
                var fits = true;
                for (var k = 0; k < dims && fits; k++)
                {
                    fits = free[(b * dims) + k] >= demands[(item * dims) + k];
                }

                if (!fits)
                {
                    continue;
                }

                if (b >= existing)
                {
                    best = b; // first fit among new bins (existing ones were all tried first)
                    break;
                }

                var left = free[b * dims] - demands[item * dims];
                if (left < bestLeft)
                {
                    bestLeft = left;
                    best = b;
                }
            }

            if (best < 0)
            {
                var fitsNew = true;
                for (var k = 0; k < dims && fitsNew; k++)
                {
                    fitsNew = capacity[k] >= demands[(item * dims) + k];
                }

                if (!fitsNew)
                {
                    binOf[item] = -1;
                    continue;
                }

                best = free.Count / dims;
                free.AddRange(capacity);
            }

            for (var k = 0; k < dims; k++)
            {
                free[(best * dims) + k] -= demands[(item * dims) + k];
            }

            binOf[item] = best;
        }

        return (free.Count / dims) - existing;
    }

    /// <summary>
    /// The billed hours of a host up to <paramref name="untilMs"/>: launch → termination (boot and idle included), per
    /// second with a 60-second minimum, as EC2 Linux instances and Fargate tasks are billed.
    /// </summary>
    internal static double BilledHours(Host host, long untilMs) => Math.Max(MinimumBilledMs, untilMs - host.LaunchedAtMs) / 3_600_000.0;

    private const long MinimumBilledMs = 60_000;

    /// <summary>Both packings leave the same jobs unplaced (−1): only then is the one with fewer new bins comparable.</summary>
    private static bool PlacesSameJobs(int[] a, int[] b)
    {
        for (var i = 0; i < a.Length; i++)
        {
            if ((a[i] < 0) != (b[i] < 0))
            {
                return false;
            }
        }

        return true;
    }

    private static double PriceOf(InstanceType t, bool spot) => spot ? t.SpotPricePerHour : t.OnDemandPricePerHour;

    /// <summary>A type at its simulated capacity limit (<see cref="ProvisioningOptions.InstanceTypeCapacity"/>) is unavailable.</summary>
    private bool IsAvailable(InstanceType t) =>
        _options.Provisioning.InstanceTypeCapacity is not { } caps || !caps.TryGetValue(t.Name, out var cap)
        || _liveByType.GetValueOrDefault(t.Name) < cap;

    private bool TakeLaunchToken(bool fargate, int wanted)
    {
        if (!_options.Provisioning.EnforceLaunchRateLimits)
        {
            return true;
        }

        var bucket = fargate ? FargateBucket : Ec2Bucket;
        if (bucket.TryTake(NowMs))
        {
            return true;
        }

        ArmLaunchWake(bucket, wanted);
        return false;
    }

    /// <summary>Runs a scheduling cycle again once the bucket has <paramref name="wanted"/> tokens (capped, batched).</summary>
    private void ArmLaunchWake(TokenBucket bucket, int wanted)
    {
        if (_launchWakeArmed)
        {
            return;
        }

        _launchWakeArmed = true;
        var now = NowMs;
        var due = bucket.NextTokenAtMs(now);
        var more = Math.Clamp(wanted, 1, MaxTokensPerWake) - 1;
        var refill = bucket == _ec2Bucket ? _options.Provisioning.Ec2LaunchBucket.RefillPerSecond : _options.Provisioning.FargateLaunchBucket.RefillPerSecond;
        due += (long)Math.Ceiling(more * 1000 / refill);
        AddTimer(new TimerEntry
        {
            Kind = TimerKind.Callback,
            DueMs = Math.Max(due, now + 1),
            Callback = () =>
            {
                _launchWakeArmed = false;
                _capacityVersion++;
                _dirty = true;
            },
        });
    }

    private Host LaunchInstance(ComputeEnvironmentState ce, InstanceType type, ResourceVector planned)
    {
        var boot = _options.Provisioning.Ec2BootTime;
        if (_options.Provisioning.Ec2BootJitter > TimeSpan.Zero)
        {
            boot += TimeSpan.FromMilliseconds(_random.NextDouble() * _options.Provisioning.Ec2BootJitter.TotalMilliseconds);
        }

        var spot = ce.IsSpot;
        var price = PriceOf(type, spot);
        var ready = boot <= TimeSpan.Zero;
        var host = AddHost(ce, type.Name + "-" + (_hostSeq + 1).ToString(CultureInfo.InvariantCulture),
            new ResourceVector(type.Vcpus * 1000, type.MemoryMiB - _options.HostMemoryReserveMiB, type.Gpus),
            ManagedDriver(ce), type.Architecture, type.Name, spot, price, type.Vcpus, ready: ready);
        _liveByType[type.Name] = _liveByType.GetValueOrDefault(type.Name) + 1;
        host.ReadyAtMs = NowMs + (long)boot.TotalMilliseconds;
        if (!ready)
        {
            host.PlannedFree = host.Capacity - planned;
            _booting.Add(host);
            AddTimer(new TimerEntry { Kind = TimerKind.HostReady, DueMs = host.ReadyAtMs, Target = host });
        }
        else
        {
            ScheduleScaleIn(ce); // a new instance no job takes must not stay forever
        }

        if (spot)
        {
            MaybeScheduleInterruption(host, type.SpotInterruptionRatePerHour);
        }

        return host;
    }

    /// <summary>Called by <see cref="RemoveHost"/>: provisioned vCPU-seconds, type availability, timers.</summary>
    private void OnHostRemoved(Host host)
    {
        var ce = host.ComputeEnvironment;
        ce.ProvisionedVcpuSeconds += (NowMs - host.LaunchedAtMs) / 1000.0 * host.Capacity.Vcpus; // a 0.25-vCPU Fargate task is 0.25, not its nominal 1
        if (host.InstanceType is { } t && _liveByType.TryGetValue(t, out var n))
        {
            _liveByType[t] = n - 1;
        }

        if (host.InterruptionTimer is { } timer)
        {
            timer.Cancelled = true;
            host.InterruptionTimer = null;
        }

        _capacityVersion++; // a freed type or vCPU budget may unblock a waiting head
        _dirty = true;
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
            try
            {
                driver = CreateDriver(new HostSpec { Driver = kind, HostName = "managed" }, "provisioning.managedHostDriver");
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // AWS: an environment that cannot launch instances turns INVALID with the reason and gets no placements
                // (its jobs go to the queue's other environments or wait) — not a failure in every scheduling cycle.
                ce.Status = ResourceStatus.INVALID;
                ce.StatusReason = StatusReasons.Cap("CLIENT_ERROR - its hosts' driver " + kind + " could not be created: " + e.Message);
                throw;
            }

            _sharedDrivers[kind] = driver;
        }

        return driver;
    }

    /// <summary>
    /// The allocation strategies of AWS §2.5, over the CE's types that can hold the request (and, for Spot, whose
    /// price is within bidPercentage of On-Demand):
    /// <list type="bullet">
    /// <item>BEST_FIT: the cheapest type that fits; when it is unavailable the job waits (null) — no other type.</item>
    /// <item>BEST_FIT_PROGRESSIVE: the lowest cost per vCPU among available types (smaller first on ties).</item>
    /// <item>BEST_FIT_PROGRESSIVE_ORDERED: the first available type in <see cref="AllowedTypes"/> order.</item>
    /// <item>SPOT_CAPACITY_OPTIMIZED: the available pool least likely to be interrupted (then cost per vCPU).</item>
    /// <item>SPOT_PRICE_CAPACITY_OPTIMIZED: among the pools with the best capacity (interruption rate at most twice the
    ///   lowest), the lowest price per vCPU.</item>
    /// <item>SPOT_CAPACITY_OPTIMIZED_PRIORITIZED: capacity first (interruption tier), list order within a tier.</item>
    /// </list>
    /// </summary>
    internal InstanceType? ChooseInstanceType(ComputeEnvironmentState ce, ResourceVector req)
    {
        var strategy = ce.Resources?.AllocationStrategy ?? CRAllocationStrategy.BEST_FIT;
        var spot = ce.IsSpot;
        var bid = (ce.Resources?.BidPercentage ?? 100) / 100.0;
        var types = AllowedTypes(ce);
        var reserve = _options.HostMemoryReserveMiB;
        var minRate = double.MaxValue;
        if (strategy == CRAllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED)
        {
            foreach (var t in types)
            {
                if (Eligible(t) && IsAvailable(t))
                {
                    minRate = Math.Min(minRate, t.SpotInterruptionRatePerHour);
                }
            }
        }

        InstanceType? best = null;
        (double A, double B, double C) bestScore = (double.MaxValue, double.MaxValue, double.MaxValue);
        for (var order = 0; order < types.Count; order++)
        {
            var t = types[order];
            if (!Eligible(t))
            {
                continue;
            }

            var available = IsAvailable(t);
            if (!available && strategy != CRAllocationStrategy.BEST_FIT)
            {
                continue; // the progressive and spot strategies pick another type
            }

            var perVcpu = PriceOf(t, spot) / t.Vcpus;
            (double, double, double) score = strategy switch
            {
                CRAllocationStrategy.BEST_FIT => (PriceOf(t, spot), t.Vcpus, order),
                CRAllocationStrategy.BEST_FIT_PROGRESSIVE => (perVcpu, t.Vcpus, order),
                CRAllocationStrategy.BEST_FIT_PROGRESSIVE_ORDERED => (order, 0, 0),
                CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED => (t.SpotInterruptionRatePerHour, perVcpu, t.Vcpus),
                CRAllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED =>
                    t.SpotInterruptionRatePerHour <= (minRate * 2) + 1e-12 ? (0, perVcpu, t.Vcpus) : (1, perVcpu, t.Vcpus),
                CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED_PRIORITIZED => (InterruptionTier(t), order, 0),
                _ => (PriceOf(t, spot), t.Vcpus, order),
            };
            if (score.CompareTo(bestScore) < 0)
            {
                bestScore = score;
                best = t;
            }
        }

        // AWS BEST_FIT: "if additional instances of the selected instance type aren't available, AWS Batch waits".
        return best is not null && !IsAvailable(best) ? null : best;

        bool Eligible(InstanceType t) =>
            t.Vcpus * 1000 >= req.VcpuMilli && t.MemoryMiB - reserve >= req.MemoryMiB && t.Gpus >= req.Gpus
            && (!spot || t.SpotPriceRatio <= bid + 1e-9); // bidPercentage: spot price at most this share of on-demand
    }

    /// <summary>The Spot Instance Advisor's buckets: &lt;5 %, 5–10 %, 10–15 %, 15–20 %, &gt;20 % interruptions a month.</summary>
    private static int InterruptionTier(InstanceType t) => Math.Min(4, (int)(t.SpotInterruptionRatePerHour * 730 / 0.05));

    private void OnHostReady(Host host)
    {
        if (!host.ComputeEnvironment.Hosts.ContainsKey(host.Name))
        {
            return;
        }

        host.Ready = true;
        host.IdleSinceMs = NowMs;
        host.ReadyAtMs = NowMs;
        host.ComputeEnvironment.Index.Update(host);
        _capacityVersion++;
        _dirty = true;
        ScheduleScaleIn(host.ComputeEnvironment);
    }

    /// <summary>Managed EC2 CEs keep at least minvCpus of instances, even when DISABLED (AWS).</summary>
    private void EnsureMinCapacity(ComputeEnvironmentState ce, int? desiredvCpus = null)
    {
        if (!ce.IsManaged || ce.IsFargate)
        {
            return;
        }

        // desiredvCpus given by a create or an update (AWS launches it, then moves it with demand: instances above
        // minvCpus that stay idle are scaled in). Not at replay: the hosts a restart starts with are minvCpus's.
        var target = Math.Max(ce.MinvCpus, _replaying ? 0 : desiredvCpus ?? 0);
        var guard = 0;
        while (ce.ProvisionedVcpus < target && guard++ < 100_000)
        {
            var types = AllowedTypes(ce);
            if (types.Count == 0)
            {
                return;
            }

            var smallest = types.MinBy(t => (t.Vcpus, t.OnDemandPricePerHour))!;
            if (!WithinMaxvCpus(ce, smallest))
            {
                return; // BEST_FIT On-Demand never goes over maxvCpus (AWS), not even for minvCpus
            }

            try
            {
                LaunchInstance(ce, smallest, default);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The environment's driver cannot be created (it is INVALID now, with the reason): reported, and whoever
                // asked for the minimum — a create, an update, a host that just ended — completes its own work.
                ReportUnexpected(e);
                return;
            }
        }
    }

    // ---- scale-in -----------------------------------------------------------------------------------------------------

    private void ScheduleScaleIn(ComputeEnvironmentState ce)
    {
        if (!ce.IsManaged || ce.IsFargate)
        {
            return;
        }

        ArmScaleIn(ce, NowMs + Math.Min(NeverUsedDelayMs, (long)ScaleDownDelay(ce).TotalMilliseconds));
    }

    private void ArmScaleIn(ComputeEnvironmentState ce, long due)
    {
        var grid = (long)_options.Provisioning.ScaleInCheckInterval.TotalMilliseconds;
        if (grid > 0)
        {
            due = (due + grid - 1) / grid * grid; // checks on a fixed grid: O(hosts) per interval, not per idle event
        }

        if (ce.ScaleInTimerArmed && ce.ScaleInTimer is { Cancelled: false } armed)
        {
            if (armed.DueMs <= due)
            {
                return; // an earlier check is armed; it re-arms for what is left
            }

            armed.Cancelled = true;
        }

        ce.ScaleInTimerArmed = true;
        ce.ScaleInTimer = AddTimer(new TimerEntry { Kind = TimerKind.ScaleIn, DueMs = due, Target = ce });
    }

    private TimeSpan ScaleDownDelay(ComputeEnvironmentState ce) =>
        ce.Resources?.ScalingPolicy?.MinScaleDownDelayMinutes is { } m ? TimeSpan.FromMinutes(m) : _options.Provisioning.DefaultScaleDownDelay;

    /// <summary>AWS: the scale-down delay is not applied to new instances that never ran a job; they go after a minute idle.</summary>
    private long NeverUsedDelayMs => Math.Max(60_000, (long)_options.Provisioning.ScaleInCheckInterval.TotalMilliseconds);

    /// <summary>
    /// Scale-in: instances idle longer than the delay go, longest idle first, down to minvCpus — ENABLED or DISABLED;
    /// sizes never change (AWS). Instances that never ran a job go after <see cref="NeverUsedDelayMs"/>.
    /// </summary>
    private void OnScaleInCheck(ComputeEnvironmentState ce)
    {
        ce.ScaleInTimerArmed = false;
        ce.ScaleInTimer = null;
        if (!_ces.ContainsKey(ce.Name))
        {
            return;
        }

        var now = NowMs;
        var delayMs = (long)ScaleDownDelay(ce).TotalMilliseconds;
        long? nextCheck = null;
        _scaleInCandidates.Clear();
        foreach (var h in ce.Hosts.Values)
        {
            if (h.RunningAttempts > 0 || !h.Ready || h.Draining)
            {
                continue;
            }

            var neverUsed = h.IdleSinceMs == h.ReadyAtMs;
            var due = h.IdleSinceMs + (neverUsed ? Math.Min(delayMs, NeverUsedDelayMs) : delayMs);
            if (now >= due)
            {
                _scaleInCandidates.Add(h);
            }
            else
            {
                nextCheck = nextCheck is null ? due : Math.Min(nextCheck.Value, due);
            }
        }

        _scaleInCandidates.Sort(static (a, b) =>
        {
            var c = a.IdleSinceMs.CompareTo(b.IdleSinceMs);
            return c != 0 ? c : a.Id.CompareTo(b.Id);
        });
        foreach (var h in _scaleInCandidates)
        {
            if (ce.ProvisionedVcpus - h.NominalVcpus >= ce.MinvCpus)
            {
                RemoveHost(h);
            }
        }

        _scaleInCandidates.Clear();
        if (nextCheck is { } next)
        {
            ArmScaleIn(ce, next);
        }
    }

    // ---- spot interruptions ----------------------------------------------------------------------------------------------

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

    /// <summary>Tests: a spot interruption of <paramref name="host"/> now (a first call gives the notice, a second ends its attempts).</summary>
    internal void InterruptSpotHost(Host host) => OnSpotInterruption(host);

    /// <summary>Tests: the host named in the environment named, or null.</summary>
    internal Host? HostNamed(string ceName, string hostName) =>
        _ces.TryGetValue(ceName, out var ce) && ce.Hosts.TryGetValue(hostName, out var host) ? host : null;

    /// <summary>
    /// A spot interruption (EC2 Spot and Fargate Spot): the 2-minute notice drains the host (no new attempts), then its
    /// attempts end as host failures with a statusReason naming the interruption and retry per retryStrategy. A CE
    /// that would fall below minvCpus gets a replacement instance.
    /// </summary>
    private void OnSpotInterruption(Host host)
    {
        var ce = host.ComputeEnvironment;
        if (!ce.Hosts.ContainsKey(host.Name))
        {
            return;
        }

        // The notice first (2 minutes), also for a host already draining for another reason (an infrastructure update,
        // a deletion, scale-in): its jobs get the same 2 minutes.
        if (!host.SpotNoticeGiven)
        {
            host.SpotNoticeGiven = true;
            host.Draining = true;
            ce.Index.Update(host);
            Statistics.SpotInterruptions++;
            host.InterruptionTimer = AddTimer(new TimerEntry { Kind = TimerKind.SpotInterruption, DueMs = NowMs + 120_000, Target = host });
            _capacityVersion++;
            _dirty = true;
            return;
        }

        host.InterruptionTimer = null;
        var reason = host.Platform == PlatformCapability.FARGATE ? FargateSpotInterrupted : StatusReasons.SpotInterrupted;
        var running = 0;
        foreach (var job in AttemptsOn(host))
        {
            job.HostLostReason = reason;
            TerminateAttempt(job, TimeSpan.Zero);
            running++;
        }

        Debug.Assert(running == host.RunningAttempts, "every attempt on the host is on its list");
        if (host.RunningAttempts == 0)
        {
            RemoveHost(host);
        }

        // AWS keeps minvCpus: the reclaimed instance is replaced, with what the environment launches now (its current
        // instanceTypes: during an infrastructure update not the old type) and only while the environment exists.
        if (!ce.IsFargate && _ces.TryGetValue(ce.Name, out var live) && ReferenceEquals(live, ce) && ce.Status != ResourceStatus.DELETED
            && ce.ProvisionedVcpus - (ce.Hosts.ContainsKey(host.Name) ? host.NominalVcpus : 0) < ce.MinvCpus
            && AllowedTypes(ce) is { Count: > 0 } types)
        {
            var replacement = host.InstanceType is { } name && types.FirstOrDefault(t => t.Name == name) is { } same
                ? same
                : types.MinBy(t => (t.Vcpus, t.OnDemandPricePerHour))!;
            if (WithinMaxvCpus(ce, replacement))
            {
                LaunchInstance(ce, replacement, default);
            }
        }
    }
}
