using System.Globalization;
using BatchCore.Hosts;
using BatchCore.Jobs;
using BatchCore.Model;
using BatchCore.Placement;
using BatchCore.Validation;

namespace BatchCore.Dispatch;

internal sealed partial class EngineCore
{
    // ---- compute environments ---------------------------------------------------------------------------------------

    public ComputeEnvironmentResponse CreateComputeEnvironment(CreateComputeEnvironmentRequest r)
    {
        var p = new Problems();
        ResourceValidation.ValidateCreateComputeEnvironment(r, p, Catalog, _options.HostProviders?.Keys as ICollection<string> ?? _options.HostProviders?.Keys.ToList(), recovering: _replaying,
            maxTags: _options.Quotas.MaxTags);
        if (r.ComputeEnvironmentName is { } n && _ces.ContainsKey(n))
        {
            p.Add($"Object already exists: computeEnvironmentName {n}");
        }

        if (_ces.Count >= _options.Quotas.MaxComputeEnvironments)
        {
            p.Add($"compute environments: the quota of {_options.Quotas.MaxComputeEnvironments} is reached");
        }

        var drivers = new List<HostDriver>();
        if (!p.Any && r.Hosts is { } hosts)
        {
            for (var i = 0; i < hosts.Count; i++)
            {
                try
                {
                    drivers.Add(CreateDriver(hosts[i], $"hosts[{i}]"));
                }
                catch (BatchClientException e)
                {
                    p.Add(e.Message);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    DisposeUnused(drivers); // a factory's bug: the create fails, and what it built goes
                    throw;
                }
            }

            // Placement judges an environment's driver kind as a whole (ComputeEnvironmentState.RunsKindOf): hosts that run
            // in-process handlers and hosts that run commands belong in two environments of the same queue. (A journal
            // written before this rule replays as it was.)
            if (!p.Any && !_replaying && drivers.Any(d => HostKinds.Of(d) == HostKind.Handlers)
                && drivers.FirstOrDefault(d => HostKinds.Of(d) == HostKind.Commands) is { } command)
            {
                p.Add("hosts", $"must all run in-process handlers (driver {Hosts.InProcess.InProcessHostDriverDefaults.Kind}) or all run commands (driver {command.Kind}), not both: put them in two compute environments of the same job queue");
            }
        }

        // A managed EC2 environment launches its hosts with the engine's managed (or local) driver: an unknown kind is
        // refused here, not found when the first job needs a host (a failure in every scheduling cycle).
        if (!p.Any && !_replaying && r.Type == CEType.MANAGED && r.ComputeResources?.Type is CRType.EC2 or CRType.SPOT)
        {
            var (kind, option) = r.Provider == "local"
                ? (_options.Provisioning.LocalHostDriver, "LocalHostDriver")
                : (_options.Provisioning.ManagedHostDriver, "ManagedHostDriver");
            if (kind != "simulated" && !_sharedDrivers.ContainsKey(kind) && _options.DriverFactories?.ContainsKey(kind) != true)
            {
                p.Add("computeResources", $"its hosts would use driver {kind} (BatchEngineOptions.Provisioning.{option}), which is not available in this engine (known: simulated{(_options.DriverFactories is { } k ? ", " + string.Join(", ", k.Keys) : "")})");
            }
        }

        HostProvider? provider = null;
        if (!p.Any && r.Provider is { } providerName && _options.HostProviders is { } providers
            && providers.TryGetValue(providerName, out var providerFactory))
        {
            try
            {
                provider = providerFactory(r);
            }
            catch (BatchClientException e)
            {
                p.Add(e.Message);
            }
        }

        if (p.Any)
        {
            DisposeUnused(drivers); // built for the hosts of an environment that is refused: nothing ever ran on them
        }

        p.ThrowIfAny();

        var name = r.ComputeEnvironmentName!;
        var ce = new ComputeEnvironmentState
        {
            Name = name,
            Arn = Arn("compute-environment", name),
            Type = r.Type!,
            State = r.State ?? ResourceState.ENABLED,
            Resources = r.ComputeResources,
            UnmanagedvCpus = r.UnmanagedvCpus,
            ServiceRole = r.ServiceRole,
            Tags = new(r.Tags ?? new Dictionary<string, string>(), StringComparer.Ordinal),
            HostSpecs = r.Hosts,
            Provider = r.Provider,
            ProviderSettings = r.ProviderSettings,
            HostProvider = provider,
            CreatedOrder = ++_resourceOrder,
        };
        ce.Architecture = ArchitectureOf(ce);
        ce.MaxHostShape = MaxShapeOf(ce);
        ce.ProvisionedDriverKind = !ce.IsManaged ? null
            : ce.Provider == "local" ? _options.Provisioning.LocalHostDriver
            : ce.IsFargate ? "simulated"
            : _options.Provisioning.ManagedHostDriver;
        _ces[name] = ce;
        Telemetry.SetResources(_queues.Values, _ces.Values);
        if (r.Hosts is { } hs)
        {
            for (var i = 0; i < hs.Count; i++)
            {
                var spec = hs[i];
                AddHost(ce, spec.HostName ?? $"{name}-host-{i}", new ResourceVector(
                    ResourceVector.ToMilli(spec.Vcpus), spec.MemoryMiB - _options.HostMemoryReserveMiB, spec.Gpus),
                    drivers[i], spec.Architecture ?? "x86_64", instanceType: null, spot: false, price: 0, nominalVcpus: (int)Math.Ceiling(spec.Vcpus));
            }

            ce.MaxHostShape = MaxShapeOf(ce);
        }

        EnsureMinCapacity(ce, r.ComputeResources?.DesiredvCpus);
        _dirty = true;
        provider?.Start(new MembershipSink(this, ce));
        return new ComputeEnvironmentResponse(name, ce.Arn);
    }

    /// <summary>A host provider's view of the engine: its reports become events the loop handles in order.</summary>
    private sealed class MembershipSink(EngineCore core, ComputeEnvironmentState ce) : IHostMembershipSink
    {
        public void HostAvailable(ProvidedHost host)
        {
            ArgumentNullException.ThrowIfNull(host);
            core._events.Writer.TryWrite(HostEvent.HostChange(new MembershipChange(ce, host, null, null)));
        }

        public void HostLost(string hostName, string reason)
        {
            ArgumentException.ThrowIfNullOrEmpty(hostName);
            core._events.Writer.TryWrite(HostEvent.HostChange(new MembershipChange(ce, null, hostName, reason)));
        }
    }

    /// <summary>
    /// A host provider's change, on the loop. A new host joins like a listed one. A lost host leaves at once (drained:
    /// nothing new is placed there, removed when its last attempt ended); its attempts are terminated and end as host
    /// failures with the provider's reason, retried per retryStrategy (AWS: a terminated instance's jobs).
    /// </summary>
    private void OnMembershipChange(MembershipChange change)
    {
        var ce = change.ComputeEnvironment;
        if (!_ces.TryGetValue(ce.Name, out var live) || !ReferenceEquals(live, ce))
        {
            return; // the CE was deleted meanwhile
        }

        if (change.Available is { } provided)
        {
            var problems = new Problems();
            ResourceValidation.ValidateProvidedHost(provided, problems);
            if (problems.Any)
            {
                // A provider is code, not a user's request: no caller waits to be told, and throwing into it (the sink is
                // called from its discovery loop) could stop its discovery of every other host. The report is refused
                // here on the loop: reported as an unexpected error (a bug in the provider, or what it read) and the
                // host ignored, as if never reported (a stand-in for it then expires as a host not reported again).
                // Taken as it is, a value out of range would wrap the host's int counts (thousandths of a vCPU).
                ReportUnexpected(new InvalidOperationException(
                    $"host provider {ce.HostProvider?.Kind} of compute environment {ce.Name} reported host {provided.HostName}, which is ignored: {string.Join("; ", problems.Items)}"));
                return;
            }

            if (ce.Hosts.TryGetValue(provided.HostName, out var existing))
            {
                if (existing.AwaitingReport)
                {
                    AdoptReportedHost(existing, provided); // re-attached attempts ran on it across a restart
                }
                else if (existing.Draining && ce.Status != ResourceStatus.DELETED)
                {
                    // Back before its last attempt ended: usable again (its lost attempts still end as host failures).
                    existing.Draining = false;
                    ce.Index.Update(existing);
                    _capacityVersion++;
                    _dirty = true;
                }

                return;
            }

            AddHost(ce, provided.HostName, new ResourceVector(ResourceVector.ToMilli(provided.Vcpus), provided.MemoryMiB, provided.Gpus),
                provided.Driver, provided.Architecture, instanceType: null, spot: false, price: 0, nominalVcpus: (int)Math.Ceiling(provided.Vcpus));
            ce.MaxHostShape = MaxShapeOf(ce);
            return;
        }

        if (change.LostHost is not { } lostName || !ce.Hosts.TryGetValue(lostName, out var host) || (host.Draining && !host.AwaitingReport))
        {
            return;
        }

        host.AwaitingReport = false;
        host.Draining = true;
        ce.Index.Update(host);
        var reason = change.Reason ?? StatusReasons.HostTerminated;
        foreach (var job in AttemptsOn(host))
        {
            job.HostLostReason = reason;
            TerminateAttempt(job, TimeSpan.Zero);
        }

        if (host.RunningAttempts == 0)
        {
            RemoveHost(host);
        }

        ce.MaxHostShape = MaxShapeOf(ce);
        _capacityVersion++;
        _dirty = true;
    }

    /// <summary>
    /// Disposes drivers a refused CreateComputeEnvironment built (not the engine's own simulated one, nor a shared one),
    /// off the loop: a disposal that throws is reported, never thrown.
    /// </summary>
    private void DisposeUnused(List<HostDriver> drivers)
    {
        foreach (var d in drivers)
        {
            if (d is not SimulatedHostDriver && !_sharedDrivers.Values.Contains(d))
            {
                _ = DisposeQuietlyAsync(d);
            }
        }

        async Task DisposeQuietlyAsync(HostDriver driver)
        {
            try
            {
                await driver.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                ReportUnexpected(e);
            }
        }
    }

    private HostDriver CreateDriver(HostSpec spec, string field)
    {
        var kind = spec.Driver ?? "simulated";
        if (kind == "simulated")
        {
            return _simulatedDriver;
        }

        if (_options.DriverFactories is { } f && f.TryGetValue(kind, out var factory))
        {
            return factory(spec);
        }

        throw new BatchClientException($"{field}.driver {kind} is not available in this engine (known: simulated{(_options.DriverFactories is { } k ? ", " + string.Join(", ", k.Keys) : "")})");
    }

    internal Host AddHost(ComputeEnvironmentState ce, string name, ResourceVector capacity, HostDriver driver, string arch,
        string? instanceType, bool spot, double price, int nominalVcpus, bool singleUse = false, bool ready = true)
    {
        var host = new Host(++_hostSeq, name, ce, capacity, driver)
        {
            Platform = ce.Platform,
            Architecture = string.Intern(arch),
            InstanceType = instanceType,
            Spot = spot,
            PricePerHour = price,
            NominalVcpus = nominalVcpus,
            SingleUse = singleUse,
            Ready = ready,
            LaunchedAtMs = NowMs,
            IdleSinceMs = NowMs,
        };
        ce.Hosts[name] = host;
        ce.Index.Add(host);
        ce._hostCount++;
        CountKind(ce, driver, +1);
        ce._capacityVcpuMilli += capacity.VcpuMilli;
        ce.ProvisionedVcpus += nominalVcpus;
        ce.PeakHosts = Math.Max(ce.PeakHosts, ce.Hosts.Count);
        _capacityVersion++;
        _dirty = true;
        Statistics.HostsLaunched++;
        return host;
    }

    /// <summary>
    /// AWS's infrastructure fields (instance types, strategy, bid, image, role, key pair, type, subnets, security groups,
    /// EC2 tags, placement group, launch template, EC2 configuration; updateToLatestImageVersion): an update that changes
    /// any of them replaces the instances.
    /// </summary>
    private static bool IsInfrastructureChange(ComputeResourceUpdate u, ComputeResource cur) =>
        (u.AllocationStrategy is { } a && a != cur.AllocationStrategy) ||
        (u.InstanceTypes is { } t && !t.SequenceEqual(cur.InstanceTypes ?? [])) ||
        (u.BidPercentage is { } b && b != cur.BidPercentage) ||
        (u.ImageId is { } i && i != cur.ImageId) ||
        (u.InstanceRole is { } role && role != cur.InstanceRole) ||
        (u.Ec2KeyPair is { } k && k != cur.Ec2KeyPair) ||
        (u.Type is { } type && type != cur.Type) ||
        (u.Subnets is { } s && !s.SequenceEqual(cur.Subnets ?? [])) ||
        (u.SecurityGroupIds is { } g && !g.SequenceEqual(cur.SecurityGroupIds ?? [])) ||
        (u.Tags is { } tags && !(cur.Tags is { } now && tags.Count == now.Count && tags.All(t => now.TryGetValue(t.Key, out var v) && v == t.Value))) ||
        (u.PlacementGroup is { } pg && pg != cur.PlacementGroup) ||
        (u.LaunchTemplate is { } lt && lt != cur.LaunchTemplate) ||
        (u.Ec2Configuration is { } ec2 && !ec2.SequenceEqual(cur.Ec2Configuration ?? [])) ||
        u.UpdateToLatestImageVersion == true;

    /// <summary>
    /// An infrastructure update (AWS): the CE is UPDATING while its current instances drain — they take no new jobs, go
    /// as soon as they are idle, and new jobs land on instances launched with the new settings. Jobs still running on
    /// the old instances are terminated at once (<c>terminateJobsOnUpdate</c>) or after
    /// <c>jobExecutionTimeoutMinutes</c> (30 by default); the CE is VALID again once the last old instance is gone.
    /// </summary>
    private void BeginInfrastructureUpdate(ComputeEnvironmentState ce, UpdatePolicy? policy)
    {
        // Each replaced instance keeps the deadline of the update that replaced it: a later update neither extends nor
        // shortens an earlier one's, and instances draining for other reasons (a spot interruption) are not its to end.
        var now = NowMs;
        var deadline = policy?.TerminateJobsOnUpdate == true ? now : now + ((policy?.JobExecutionTimeoutMinutes ?? 30) * 60_000);
        var replaced = 0;
        foreach (var h in ce.Hosts.Values.ToList())
        {
            if (h.Draining)
            {
                continue;
            }

            replaced++;
            h.Draining = true;
            h.ReplacedDeadlineMs = deadline;
            if (h.RunningAttempts == 0)
            {
                RemoveHost(h);
            }
            else
            {
                ce.Index.Update(h);
            }
        }

        if (replaced == 0)
        {
            return;
        }

        if (HasReplacedHosts(ce))
        {
            ce.Status = ResourceStatus.UPDATING;
            ce.StatusReason = "Infrastructure update: replacing instances";
            TerminateOnReplacedHosts(ce);
        }

        _capacityVersion++;
        _dirty = true;
    }

    private static bool HasReplacedHosts(ComputeEnvironmentState ce)
    {
        foreach (var h in ce.Hosts.Values)
        {
            if (h.ReplacedDeadlineMs >= 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The earliest deadline of the replaced instances has come.</summary>
    private void OnUpdateTimeout(ComputeEnvironmentState ce)
    {
        ce.UpdateTimer = null;
        if (_ces.ContainsKey(ce.Name) && ce.Status == ResourceStatus.UPDATING)
        {
            TerminateOnReplacedHosts(ce);
        }
    }

    /// <summary>
    /// Terminates what runs on replaced instances whose deadline has come, and arms the update timer for the next
    /// deadline (if any instance is still waiting for its own).
    /// </summary>
    private void TerminateOnReplacedHosts(ComputeEnvironmentState ce)
    {
        var now = NowMs;
        var next = long.MaxValue;
        foreach (var h in ce.Hosts.Values.ToList())
        {
            if (h.ReplacedDeadlineMs < 0)
            {
                continue;
            }

            if (h.ReplacedDeadlineMs > now)
            {
                next = Math.Min(next, h.ReplacedDeadlineMs);
                continue;
            }

            foreach (var job in AttemptsOn(h).ToList())
            {
                if (job.IsTerminated && job.TerminateReason == UpdateTerminatedReason)
                {
                    continue; // already told to stop; ending within its grace period
                }

                job.IsTerminated = true;
                job.TerminateReason = UpdateTerminatedReason;
                TerminateAttempt(job, _options.TerminationGracePeriod);
            }
        }

        CancelUpdateTimer(ce);
        if (next != long.MaxValue)
        {
            ce.UpdateTimer = AddTimer(new TimerEntry { Kind = TimerKind.UpdateTimeout, DueMs = next, Target = ce });
        }
    }

    /// <summary>The statusReason of a job terminated by an infrastructure update.</summary>
    internal const string UpdateTerminatedReason = "Terminated by an infrastructure update of the compute environment";

    private static void CancelUpdateTimer(ComputeEnvironmentState ce)
    {
        ce.UpdateTimer?.Cancelled = true;
        ce.UpdateTimer = null;
    }

    /// <summary>The last replaced instance left: the update is done.</summary>
    private void EndInfrastructureUpdateIfDone(ComputeEnvironmentState ce)
    {
        if (ce.Status != ResourceStatus.UPDATING || HasReplacedHosts(ce))
        {
            return;
        }

        ce.Status = ResourceStatus.VALID;
        ce.StatusReason = null;
        CancelUpdateTimer(ce);
        EnsureMinCapacity(ce); // the replaced instances counted against minvCpus until now
    }

    internal void RemoveHost(Host host)
    {
        var ce = host.ComputeEnvironment;
        if (!ce.Hosts.Remove(host.Name))
        {
            return;
        }

        ce.Index.Remove(host);
        ce._hostCount--;
        CountKind(ce, host.Driver, -1);
        ce._capacityVcpuMilli -= host.Capacity.VcpuMilli;
        ce.ProvisionedVcpus -= host.NominalVcpus;
        ce.AccruedCostUsd += BilledHours(host, NowMs) * host.PricePerHour;
        HostLifetimes?.Add(HostLifetime.Of(host, NowMs));
        Statistics.HostsTerminated++;
        OnHostRemoved(host);
        EndInfrastructureUpdateIfDone(ce);
    }

    /// <summary>Counts a host's kind for <see cref="ComputeEnvironmentState.RunsKindOf"/> (simulated hosts count as neither: they run both).</summary>
    private static void CountKind(ComputeEnvironmentState ce, HostDriver driver, int delta)
    {
        switch (HostKinds.Of(driver))
        {
            case HostKind.Handlers:
                ce._handlerHosts += delta;
                break;
            case HostKind.Commands:
                ce._commandHosts += delta;
                break;
        }
    }

    private static string? ArchitectureOf(ComputeEnvironmentState ce)
    {
        if (ce.IsFargate)
        {
            return "x86_64";
        }

        return ArchitectureOfTypes(ce.Resources?.InstanceTypes, ce.IsManaged);
    }

    private static string? ArchitectureOfTypes(IReadOnlyList<string>? types, bool managed)
    {
        if (types is null || types.Count == 0)
        {
            return managed ? "x86_64" : null;
        }

        return types.Any(t => t == "default_arm64" || t.Contains('g', StringComparison.Ordinal) && IsArmFamily(t)) ? "arm64" : "x86_64";
    }

    private static bool IsArmFamily(string t)
    {
        var fam = t.Split('.')[0];
        return fam.Length >= 3 && fam.EndsWith('g') && fam != "g5" && !fam.StartsWith('p');
    }

    private ResourceVector? MaxShapeOf(ComputeEnvironmentState ce)
    {
        if (ce.IsFargate)
        {
            return new ResourceVector(16_000, 122_880, 0);
        }

        if (!ce.IsManaged)
        {
            if (ce.Hosts.Count == 0)
            {
                return null;
            }

            var best = new ResourceVector(0, 0, 0);
            foreach (var h in ce.Hosts.Values)
            {
                best = new ResourceVector(Math.Max(best.VcpuMilli, h.Capacity.VcpuMilli), Math.Max(best.MemoryMiB, h.Capacity.MemoryMiB), Math.Max(best.Gpus, h.Capacity.Gpus));
            }

            return best;
        }

        var max = new ResourceVector(0, 0, 0);
        foreach (var t in AllowedTypes(ce))
        {
            max = new ResourceVector(Math.Max(max.VcpuMilli, t.Vcpus * 1000), Math.Max(max.MemoryMiB, t.MemoryMiB - _options.HostMemoryReserveMiB), Math.Max(max.Gpus, t.Gpus));
        }

        return max;
    }

    public ComputeEnvironmentResponse UpdateComputeEnvironment(UpdateComputeEnvironmentRequest r)
    {
        var p = new Problems();
        p.Required(r.ComputeEnvironment, "computeEnvironment");
        p.ThrowIfAny();
        var ce = FindCe(r.ComputeEnvironment!) ?? throw new BatchClientException($"computeEnvironment {r.ComputeEnvironment} does not exist");
        ResourceValidation.ValidateUpdateComputeEnvironment(r, ce, p, Catalog, recovering: _replaying);
        if (!p.Any && !_replaying && !ce.IsFargate && r.ComputeResources?.InstanceTypes is { } newTypes &&
            ArchitectureOfTypes(newTypes, ce.IsManaged) is { } arch && arch != ce.Architecture)
        {
            // A job queue's environments share one architecture (CreateJobQueue's rule): an update may not split one.
            foreach (var q in ce.Queues)
            {
                if (q.ComputeEnvironments.FirstOrDefault(o => !ReferenceEquals(o, ce) && o.Architecture is { } other && other != arch) is { } mixed)
                {
                    p.Add("computeResources.instanceTypes", $"would make {ce.Name} {arch}, but job queue {q.Name} also uses {mixed.Name} ({mixed.Architecture}): the compute environments of a job queue share one architecture");
                }
            }
        }

        p.ThrowIfAny();

        // Everything validated: apply.
        if (r.State is { } st)
        {
            ce.State = st;
        }

        if (r.ServiceRole is { } role)
        {
            ce.ServiceRole = role;
        }

        if (r.UnmanagedvCpus is { } u)
        {
            ce.UnmanagedvCpus = u;
        }

        var infrastructure = false;
        if (r.ComputeResources is { } cr && ce.Resources is { } cur)
        {
            infrastructure = IsInfrastructureChange(cr, cur);
            ce.Resources = cur with
            {
                MinvCpus = cr.MinvCpus ?? cur.MinvCpus,
                MaxvCpus = cr.MaxvCpus ?? cur.MaxvCpus,
                DesiredvCpus = cr.DesiredvCpus ?? cur.DesiredvCpus,
                AllocationStrategy = cr.AllocationStrategy ?? cur.AllocationStrategy,
                InstanceTypes = cr.InstanceTypes ?? cur.InstanceTypes,
                Subnets = cr.Subnets ?? cur.Subnets,
                SecurityGroupIds = cr.SecurityGroupIds ?? cur.SecurityGroupIds,
                // A bid belongs to SPOT: a change to EC2 drops it (AWS has no way to clear it otherwise).
                BidPercentage = (cr.Type ?? cur.Type) == CRType.SPOT ? cr.BidPercentage ?? cur.BidPercentage : null,
                ImageId = cr.ImageId ?? cur.ImageId,
                InstanceRole = cr.InstanceRole ?? cur.InstanceRole,
                Ec2KeyPair = cr.Ec2KeyPair ?? cur.Ec2KeyPair,
                Type = cr.Type ?? cur.Type,
                ScalingPolicy = cr.ScalingPolicy ?? cur.ScalingPolicy,
                Tags = cr.Tags ?? cur.Tags,
                PlacementGroup = cr.PlacementGroup ?? cur.PlacementGroup,
                LaunchTemplate = cr.LaunchTemplate ?? cur.LaunchTemplate,
                Ec2Configuration = cr.Ec2Configuration ?? cur.Ec2Configuration,
            };
            ce.Architecture = ArchitectureOf(ce);
            ce.MaxHostShape = MaxShapeOf(ce);
        }

        if (infrastructure && ce.IsManaged && !ce.IsFargate)
        {
            BeginInfrastructureUpdate(ce, r.UpdatePolicy);
        }

        EnsureMinCapacity(ce, r.ComputeResources?.DesiredvCpus);
        ScheduleScaleIn(ce);
        _capacityVersion++;
        _dirty = true;
        return new ComputeEnvironmentResponse(ce.Name, ce.Arn);
    }

    public void DeleteComputeEnvironment(string? nameOrArn)
    {
        if (string.IsNullOrEmpty(nameOrArn))
        {
            throw new BatchClientException("computeEnvironment is required");
        }

        var ce = FindCe(nameOrArn) ?? throw new BatchClientException($"computeEnvironment {nameOrArn} does not exist");
        if (ce.State != ResourceState.DISABLED)
        {
            throw new BatchClientException($"computeEnvironment {ce.Name} must be DISABLED before it is deleted, was {ce.State}");
        }

        if (ce.Queues.Count > 0)
        {
            throw new BatchClientException($"computeEnvironment {ce.Name} is in job queue {ce.Queues[0].Name}: remove it from every queue before deleting it");
        }

        foreach (var h in ce.Hosts.Values.ToList())
        {
            if (h.RunningAttempts == 0)
            {
                RemoveHost(h);
            }
            else
            {
                h.Draining = true;
                ce.Index.Update(h);
            }
        }

        _ces.Remove(ce.Name);
        Telemetry.SetResources(_queues.Values, _ces.Values);
        ce.Status = ResourceStatus.DELETED;
        CancelUpdateTimer(ce); // an infrastructure update ends with the environment

        if (ce.HostProvider is { } provider)
        {
            // Its drivers may still end running attempts: kept until the engine stops, which disposes the provider.
            _retiredProviders.Add(provider);
        }
    }

    public DescribeComputeEnvironmentsResponse DescribeComputeEnvironments(DescribeComputeEnvironmentsRequest r)
    {
        var p = DescribeProblems(r.ComputeEnvironments, "computeEnvironments", r.MaxResults);
        p.ThrowIfAny();
        IEnumerable<ComputeEnvironmentState> ces = r.ComputeEnvironments is { Count: > 0 } names
            ? names.Select(FindCe).OfType<ComputeEnvironmentState>().Distinct()
            : _ces.Values;
        var page = ByCreation(ces, c => c.CreatedOrder, r.NextToken, r.MaxResults, "DescribeComputeEnvironments", out var next);
        return new DescribeComputeEnvironmentsResponse(page.ConvertAll(ce => new ComputeEnvironmentDetail
        {
            ComputeEnvironmentName = ce.Name,
            ComputeEnvironmentArn = ce.Arn,
            Type = ce.Type,
            State = ce.State,
            Status = ce.Status,
            StatusReason = ce.StatusReason ?? "ComputeEnvironment Healthy",
            ComputeResources = ce.Resources is null ? null : ce.Resources with
            {
                // Fargate: the tasks' vCPUs (0.25 and 0.5 count as such), rounded up once for the whole environment.
                // AWS's field is an int; the sums are longs (ProvisionedVcpus), clamped rather than wrapped.
                DesiredvCpus = (int)Math.Min(int.MaxValue, ce.IsFargate ? (ce.CapacityVcpuMilli + 999) / 1000 : ce.ProvisionedVcpus),
            },
            UnmanagedvCpus = ce.UnmanagedvCpus,
            ServiceRole = ce.ServiceRole,
            EcsClusterArn = $"arn:{BatchEngineDefaults.Partition(_options.Region)}:ecs:{_options.Region}:{_options.AccountId}:cluster/{ce.Name}",
            Tags = new Dictionary<string, string>(ce.Tags),
            Hosts = ce.HostSpecs,
            Provider = ce.Provider,
            ProviderSettings = ce.ProviderSettings,
        }), next);
    }

    private ComputeEnvironmentState? FindCe(string nameOrArn) =>
        _ces.GetValueOrDefault(NameOf(nameOrArn, "compute-environment"));

    // ---- job queues --------------------------------------------------------------------------------------------------

    public JobQueueResponse CreateJobQueue(CreateJobQueueRequest r)
    {
        var p = new Problems();
        Names.Check(p, r.JobQueueName, "jobQueueName", firstAlphanumeric: false);
        p.OneOf(r.State, "state", ResourceState.ENABLED, ResourceState.DISABLED);
        if (r.Priority is null)
        {
            p.Add("priority", "is required");
        }

        p.Range(r.Priority, 0, 1000, "priority");
        Names.CheckTags(p, r.Tags, "tags", _options.Quotas.MaxTags, recovering: _replaying);
        if (r.JobQueueName is { } n && _queues.ContainsKey(n))
        {
            p.Add($"Job queue {n} already exists");
        }

        if (_queues.Count >= _options.Quotas.MaxJobQueues)
        {
            p.Add($"job queues: the quota of {_options.Quotas.MaxJobQueues} is reached");
        }

        var ces = ResolveCeOrder(r.ComputeEnvironmentOrder, p);
        var policy = r.SchedulingPolicyArn is { } arn ? ResolvePolicy(arn, p) : null;
        ValidateTimeLimitActions(r.JobStateTimeLimitActions, p);
        ValidateQueueExtensions(r.Extensions, p);
        var type = r.JobQueueType ?? (ces.Length > 0 && ces[0].IsFargate ? JobQueueType.ECS_FARGATE : JobQueueType.ECS);
        if (r.JobQueueType is JobQueueType.EKS or JobQueueType.SAGEMAKER_TRAINING)
        {
            p.Add("jobQueueType", $"{r.JobQueueType} job queues are not supported by BatchCore (it runs container jobs: ECS or ECS_FARGATE)");
        }
        else
        {
            p.OneOf(r.JobQueueType, "jobQueueType", JobQueueType.ECS, JobQueueType.ECS_FARGATE, JobQueueType.EKS, JobQueueType.SAGEMAKER_TRAINING);
            CheckQueueType(type, ces, p);
        }

        p.ThrowIfAny();

        var q = new JobQueueState
        {
            Name = r.JobQueueName!,
            Arn = Arn("job-queue", r.JobQueueName!),
            Priority = r.Priority!.Value,
            State = r.State ?? ResourceState.ENABLED,
            CreatedOrder = ++_resourceOrder,
            ComputeEnvironments = ces,
            ComputeEnvironmentOrder = r.ComputeEnvironmentOrder!.OrderBy(o => o.Order).Select(o => o with { ComputeEnvironment = FindCe(o.ComputeEnvironment!)!.Arn }).ToList(),
            Policy = policy,
            TimeLimitActions = r.JobStateTimeLimitActions ?? [],
            Extensions = r.Extensions,
            Type = type,
            Tags = new(r.Tags ?? new Dictionary<string, string>(), StringComparer.Ordinal),
        };
        _queues[q.Name] = q;
        foreach (var ce in ces)
        {
            ce.Queues.Add(q);
        }

        SortQueues();
        Telemetry.SetResources(_queues.Values, _ces.Values);
        _dirty = true;
        return new JobQueueResponse(q.Name, q.Arn);
    }

    /// <summary>AWS: an ECS job queue takes EC2 and Spot compute environments (here also UNMANAGED), ECS_FARGATE Fargate ones.</summary>
    private static void CheckQueueType(string type, ComputeEnvironmentState[] ces, Problems p)
    {
        var fargate = type == JobQueueType.ECS_FARGATE;
        foreach (var ce in ces)
        {
            if (ce.IsFargate != fargate)
            {
                p.Add("computeEnvironmentOrder", $"compute environment {ce.Name} is {(ce.IsFargate ? "FARGATE" : "EC2/SPOT")}, which a jobQueueType {type} job queue cannot use");
                return;
            }
        }
    }

    /// <param name="order">The requested order.</param>
    /// <param name="p">Where problems go.</param>
    /// <param name="current">An updated queue's compute environments: already associated, they need not be VALID again.</param>
    private ComputeEnvironmentState[] ResolveCeOrder(IReadOnlyList<ComputeEnvironmentOrder>? order, Problems p, ComputeEnvironmentState[]? current = null)
    {
        if (order is null || order.Count == 0)
        {
            p.Add("computeEnvironmentOrder: At least 1 compute environment must be provided");
            return [];
        }

        if (order.Count > _options.Quotas.MaxComputeEnvironmentsPerQueue)
        {
            p.Add("computeEnvironmentOrder", $"must have at most {_options.Quotas.MaxComputeEnvironmentsPerQueue} entries, had {order.Count}");
        }

        var list = new List<ComputeEnvironmentState>();
        var seenOrders = new HashSet<int>();
        foreach (var (o, i) in order.Select((o, i) => (o, i)))
        {
            if (p.NullEntry(o, $"computeEnvironmentOrder[{i}]"))
            {
                continue;
            }

            if (!seenOrders.Add(o.Order))
            {
                p.Add($"computeEnvironmentOrder[{i}].order", $"must be unique, {o.Order} appears twice");
            }

            if (string.IsNullOrEmpty(o.ComputeEnvironment))
            {
                p.Add($"computeEnvironmentOrder[{i}].computeEnvironment", "is required");
                continue;
            }

            var ce = FindCe(o.ComputeEnvironment);
            if (ce is null)
            {
                p.Add($"computeEnvironmentOrder is malformed: computeEnvironment {o.ComputeEnvironment} does not exist");
                continue;
            }

            if (list.Contains(ce))
            {
                p.Add($"computeEnvironmentOrder[{i}].computeEnvironment", $"lists {ce.Name} twice");
            }

            if (ce.Status != ResourceStatus.VALID && !_replaying && (current is null || Array.IndexOf(current, ce) < 0))
            {
                // AWS: a compute environment joins a job queue only when VALID (one being updated is not, yet).
                p.Add($"computeEnvironmentOrder[{i}].computeEnvironment", $"{ce.Name} is {ce.Status}; a job queue takes only VALID compute environments");
            }

            list.Add(ce);
        }

        if (list.Count > 1)
        {
            var fargate = list.Count(c => c.IsFargate);
            if (fargate != 0 && fargate != list.Count)
            {
                p.Add("computeEnvironmentOrder", "cannot mix EC2/SPOT and FARGATE/FARGATE_SPOT compute environments in one job queue");
            }

            var archs = list.Select(c => c.Architecture).Where(a => a is not null).Distinct().Count();
            if (archs > 1)
            {
                p.Add("computeEnvironmentOrder", "cannot mix compute environments of different architectures (x86_64 and arm64) in one job queue");
            }
        }

        if (p.Any)
        {
            return [.. list]; // refused anyway (and a null entry has no order)
        }

        var sorted = order.Select((o, i) => (o.Order, i)).OrderBy(x => x.Order).Select(x => x.i).ToList();
        return [.. sorted.Where(i => i < list.Count && FindCe(order[i].ComputeEnvironment ?? "") is not null).Select(i => FindCe(order[i].ComputeEnvironment!)!).Distinct()];
    }

    private SchedulingPolicyState? ResolvePolicy(string arn, Problems p)
    {
        var policy = _policies.GetValueOrDefault(NameOf(arn, "scheduling-policy"));
        if (policy is null)
        {
            p.Add("schedulingPolicyArn", $"does not name an existing scheduling policy: {arn}");
        }

        return policy;
    }

    private static void ValidateTimeLimitActions(IReadOnlyList<JobStateTimeLimitAction>? actions, Problems p)
    {
        if (actions is null)
        {
            return;
        }

        for (var i = 0; i < actions.Count; i++)
        {
            var a = actions[i];
            var f = $"jobStateTimeLimitActions[{i}]";
            if (p.NullEntry(a, f))
            {
                continue;
            }

            p.Required(a.Reason, f + ".reason");
            p.MaxLength(a.Reason, 1024, f + ".reason");
            if (a.State != JobStateTimeLimitActionsValues.RUNNABLE)
            {
                p.Add(f + ".state", $"must be RUNNABLE, was {a.State ?? "null"}");
            }

            if (a.Action != JobStateTimeLimitActionsValues.CANCEL)
            {
                p.Add(f + ".action", $"must be CANCEL, was {a.Action ?? "null"}");
            }

            p.Range(a.MaxTimeSeconds, 600, 86_400, f + ".maxTimeSeconds");
        }
    }

    private static void ValidateQueueExtensions(JobQueueExtensions? e, Problems p)
    {
        if (e?.MaxRunningJobs is { } m && m < 1)
        {
            p.Add("extensions.maxRunningJobs", $"must be at least 1, was {m}");
        }
    }

    private void SortQueues()
    {
        _queuesByPriority.Clear();
        _queuesByPriority.AddRange(_queues.Values.OrderByDescending(q => q.Priority).ThenBy(q => q.CreatedOrder));
    }

    public JobQueueResponse UpdateJobQueue(UpdateJobQueueRequest r)
    {
        var p = new Problems();
        p.Required(r.JobQueue, "jobQueue");
        p.ThrowIfAny();
        var q = FindQueue(r.JobQueue!) ?? throw new BatchClientException($"jobQueue {r.JobQueue} does not exist");
        p.OneOf(r.State, "state", ResourceState.ENABLED, ResourceState.DISABLED);
        p.Range(r.Priority, 0, 1000, "priority");
        var ces = r.ComputeEnvironmentOrder is null ? null : ResolveCeOrder(r.ComputeEnvironmentOrder, p, q.ComputeEnvironments);
        if (ces is not null && !_replaying)
        {
            CheckQueueType(q.Type, ces, p); // a journal written before jobQueueType existed may switch platforms
        }

        SchedulingPolicyState? policy = null;
        if (r.SchedulingPolicyArn is { } arn)
        {
            if (q.Policy is null)
            {
                // AWS: a FIFO queue cannot get a scheduling policy later.
                p.Add("schedulingPolicyArn", $"cannot be added to job queue {q.Name}: it was created without a scheduling policy (FIFO)");
            }
            else if (arn.Length == 0)
            {
                p.Add("schedulingPolicyArn", "cannot be removed from a job queue; it can only be replaced");
            }
            else
            {
                policy = ResolvePolicy(arn, p);
            }
        }

        ValidateTimeLimitActions(r.JobStateTimeLimitActions, p);
        ValidateQueueExtensions(r.Extensions, p);
        p.ThrowIfAny();

        if (r.State is { } st)
        {
            q.State = st;
        }

        if (r.Priority is { } prio)
        {
            q.Priority = prio;
            SortQueues();
        }

        if (ces is not null)
        {
            foreach (var ce in q.ComputeEnvironments)
            {
                ce.Queues.Remove(q);
            }

            q.ComputeEnvironments = ces;
            q.ComputeEnvironmentOrder = r.ComputeEnvironmentOrder!.OrderBy(o => o.Order).Select(o => o with { ComputeEnvironment = FindCe(o.ComputeEnvironment!)!.Arn }).ToList();
            if (_replaying && ces.Length > 0)
            {
                q.Type = ces[0].IsFargate ? JobQueueType.ECS_FARGATE : JobQueueType.ECS; // an older journal's platform move
            }
            foreach (var ce in ces)
            {
                ce.Queues.Add(q);
            }
        }

        if (policy is not null)
        {
            q.Policy = policy;
            foreach (var s in q.Shares.Values)
            {
                s.Weight = policy.WeightOf(s.Id);
            }
        }

        if (r.JobStateTimeLimitActions is { } actions)
        {
            q.TimeLimitActions = actions;
            // The head already waiting is timed by the new actions: forget its timer; the next cycle arms it again.
            q.HeadTimer?.Cancelled = true;
            q.HeadTimer = null;
            q.TimedHead = null;
            q.BlockedHead = null;
            _dirty = true;
        }

        if (r.Extensions is { } ext)
        {
            q.Extensions = ext;
        }

        _capacityVersion++;
        _dirty = true;
        return new JobQueueResponse(q.Name, q.Arn);
    }

    private const string QueueDeletedReason = "Job queue deleted";

    public void DeleteJobQueue(string? nameOrArn)
    {
        if (string.IsNullOrEmpty(nameOrArn))
        {
            throw new BatchClientException("jobQueue is required");
        }

        var q = FindQueue(nameOrArn) ?? throw new BatchClientException($"jobQueue {nameOrArn} does not exist");
        if (q.State != ResourceState.DISABLED)
        {
            throw new BatchClientException($"jobQueue {q.Name} must be DISABLED before it is deleted, was {q.State}");
        }

        // AWS: "All jobs in the queue are eventually terminated." Not while replaying: every job is still SUBMITTED then,
        // and its own records (journaled after this deletion) say how it ended; recovery ends any the records leave open.
        foreach (var job in _replaying ? [] : q.AllJobs.ToList())
        {
            if (!job.State.IsTerminal() && job.Parent is null)
            {
                Terminate(job.Id, QueueDeletedReason);
            }
        }

        foreach (var ce in q.ComputeEnvironments)
        {
            ce.Queues.Remove(q);
        }

        _queues.Remove(q.Name);
        q.Status = ResourceStatus.DELETED;
        SortQueues();
        Telemetry.SetResources(_queues.Values, _ces.Values);
    }

    public DescribeJobQueuesResponse DescribeJobQueues(DescribeJobQueuesRequest r)
    {
        var p = DescribeProblems(r.JobQueues, "jobQueues", r.MaxResults);
        p.ThrowIfAny();
        IEnumerable<JobQueueState> qs = r.JobQueues is { Count: > 0 } names
            ? names.Select(FindQueue).OfType<JobQueueState>().Distinct()
            : _queues.Values;
        var page = ByCreation(qs, q => q.CreatedOrder, r.NextToken, r.MaxResults, "DescribeJobQueues", out var next);
        return new DescribeJobQueuesResponse(page.ConvertAll(q => new JobQueueDetail
        {
            JobQueueName = q.Name,
            JobQueueArn = q.Arn,
            State = q.State,
            Status = q.Status,
            StatusReason = "JobQueue Healthy",
            SchedulingPolicyArn = q.Policy?.Arn,
            Priority = q.Priority,
            ComputeEnvironmentOrder = q.ComputeEnvironmentOrder,
            JobStateTimeLimitActions = q.TimeLimitActions,
            Tags = new Dictionary<string, string>(q.Tags),
            JobQueueType = q.Type,
            Extensions = q.Extensions,
        }), next);
    }

    private JobQueueState? FindQueue(string nameOrArn) => _queues.GetValueOrDefault(NameOf(nameOrArn, "job-queue"));

    // ---- job definitions ---------------------------------------------------------------------------------------------

    public RegisterJobDefinitionResponse RegisterJobDefinition(RegisterJobDefinitionRequest r)
    {
        var p = new Problems();
        ResourceValidation.ValidateJobDefinition(r, p, _options, recovering: _replaying);
        if (!_replaying && r.ConsumableResourceProperties?.ConsumableResourceList is { } consumables)
        {
            // Resolved only when a job is submitted, where a definition's reference resolves whatever its ARN's region
            // (one replayed may have been written by an engine with other options): another region's or account's is
            // refused here instead.
            for (var i = 0; i < consumables.Count; i++)
            {
                if (consumables[i]?.ConsumableResource is { } c && NameOf(c, "consumable-resource") == c && c.StartsWith("arn:", StringComparison.Ordinal))
                {
                    p.Add(string.Create(CultureInfo.InvariantCulture, $"consumableResourceProperties.consumableResourceList[{i}].consumableResource"),
                        $"must be a name or an ARN of this engine's region and account ({OwnArnPrefix}consumable-resource/NAME), was {c}");
                }
            }
        }

        p.ThrowIfAny();
        var name = r.JobDefinitionName!;
        if (!_definitions.TryGetValue(name, out var revisions))
        {
            _definitions[name] = revisions = [];
        }

        var rev = revisions.Count + 1;
        var def = new JobDefinition
        {
            JobDefinitionName = name,
            JobDefinitionArn = Arn("job-definition", name + ":" + rev.ToString(CultureInfo.InvariantCulture)),
            Revision = rev,
            Status = "ACTIVE",
            Type = r.Type!,
            Parameters = r.Parameters is null ? new Dictionary<string, string>() : new Dictionary<string, string>(r.Parameters),
            SchedulingPriority = r.SchedulingPriority,
            RetryStrategy = r.RetryStrategy,
            ContainerProperties = r.ContainerProperties is { } cp ? cp with { Command = cp.Command ?? [] } : null,
            Timeout = r.Timeout,
            Tags = r.Tags is null ? new Dictionary<string, string>() : new Dictionary<string, string>(r.Tags),
            PropagateTags = r.PropagateTags,
            PlatformCapabilities = r.PlatformCapabilities is { Count: > 0 } pc ? pc : [PlatformCapability.EC2],
            ConsumableResourceProperties = r.ConsumableResourceProperties,
            Extensions = r.Extensions,
        };
        revisions.Add(def);
        _registeredFrom[name] = System.Text.Json.JsonSerializer.Serialize(r, Journal.JournalCodec.Json);
        return new RegisterJobDefinitionResponse(name, def.JobDefinitionArn, rev);
    }

    /// <summary>Per definition name: the request its latest revision was registered from (JSON), for <see cref="RegisterJobDefinitionIfChanged"/>.</summary>
    private readonly Dictionary<string, string> _registeredFrom = new(StringComparer.Ordinal);

    /// <summary>
    /// The latest revision when it is ACTIVE and was registered from an identical request; otherwise a new revision (and
    /// whether one was registered, so the caller journals it).
    /// </summary>
    public (RegisterJobDefinitionResponse Response, bool Registered) RegisterJobDefinitionIfChanged(RegisterJobDefinitionRequest r)
    {
        if (r.JobDefinitionName is { } name && _definitions.TryGetValue(name, out var revisions) && revisions.Count > 0 &&
            revisions[^1] is { Status: "ACTIVE" } latest && _registeredFrom.TryGetValue(name, out var from) &&
            from == System.Text.Json.JsonSerializer.Serialize(r, Journal.JournalCodec.Json))
        {
            return (new RegisterJobDefinitionResponse(name, latest.JobDefinitionArn, latest.Revision), false);
        }

        return (RegisterJobDefinition(r), true);
    }

    /// <summary>Marks a revision INACTIVE at <paramref name="atMs"/> (engine ms; replay passes the journaled time).</summary>
    public void DeregisterJobDefinition(string? jobDefinition, long atMs)
    {
        if (string.IsNullOrEmpty(jobDefinition))
        {
            throw new BatchClientException("jobDefinition is required");
        }

        var (name, rev) = ParseDefinitionRef(jobDefinition);
        if (rev is null)
        {
            throw new BatchClientException($"jobDefinition must be name:revision or an ARN, was {jobDefinition}");
        }

        PurgeDeregisteredDefinitions();
        if (!_definitions.TryGetValue(name, out var revisions) || rev < 1 || rev > revisions.Count || revisions[rev.Value - 1] is not { } def)
        {
            throw new BatchClientException($"jobDefinition {jobDefinition} does not exist");
        }

        if (def.Status != "ACTIVE")
        {
            return; // deregistered before: its 180 days run from then
        }

        _plainSpecs.Remove(def);
        revisions[rev.Value - 1] = def with { Status = "INACTIVE" };
        if (!KeepsInactiveDefinitionsForever)
        {
            _deregistered.Enqueue((name, rev.Value, atMs));
        }
    }

    public DescribeJobDefinitionsResponse DescribeJobDefinitions(DescribeJobDefinitionsRequest r)
    {
        var p = DescribeProblems(r.JobDefinitions, "jobDefinitions", r.MaxResults);
        if (r.Status is not null and not "ACTIVE" and not "INACTIVE")
        {
            p.Add("status", $"must be one of ACTIVE | INACTIVE, was {r.Status}");
        }

        (string Name, int Revision)? after = null;
        if (r.NextToken is { } token)
        {
            var colon = token.LastIndexOf(':');
            if (colon > 0 && int.TryParse(token.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var rev))
            {
                after = (token[..colon], rev);
            }
            else
            {
                p.Add("nextToken", $"is not a token returned by DescribeJobDefinitions: '{token}'");
            }
        }

        p.ThrowIfAny();
        PurgeDeregisteredDefinitions();
        IEnumerable<JobDefinition> matching;
        if (r.JobDefinitions is { Count: > 0 } refs)
        {
            var found = new List<JobDefinition>();
            foreach (var reference in refs)
            {
                var (name, rev) = ParseDefinitionRef(reference);
                if (!_definitions.TryGetValue(name, out var revisions))
                {
                    continue;
                }

                if (rev is { } v)
                {
                    if (v >= 1 && v <= revisions.Count && revisions[v - 1] is { } def)
                    {
                        found.Add(def);
                    }
                }
                else
                {
                    found.AddRange(revisions.OfType<JobDefinition>());
                }
            }

            matching = found.Distinct();
        }
        else if (r.JobDefinitionName is { } n)
        {
            matching = _definitions.GetValueOrDefault(n)?.OfType<JobDefinition>() ?? [];
        }
        else
        {
            matching = _definitions.Values.SelectMany(revisions => revisions.OfType<JobDefinition>());
        }

        if (r.Status is { } status)
        {
            matching = matching.Where(d => d.Status == status);
        }

        // One order whatever was asked: name (ordinal), then revision; the token is the last definition's name:revision,
        // so registering or deregistering between pages neither repeats nor skips the others.
        if (after is var (afterName, afterRevision))
        {
            matching = matching.Where(d => string.CompareOrdinal(d.JobDefinitionName, afterName) is var c && (c > 0 || (c == 0 && d.Revision > afterRevision)));
        }

        var size = r.MaxResults ?? ListPageMax;
        var page = matching.OrderBy(d => d.JobDefinitionName, StringComparer.Ordinal).ThenBy(d => d.Revision).Take(size + 1).ToList();
        string? next = null;
        if (page.Count > size)
        {
            page.RemoveAt(size);
            next = page[^1].JobDefinitionName + ":" + page[^1].Revision.ToString(CultureInfo.InvariantCulture);
        }

        return new DescribeJobDefinitionsResponse(page, next);
    }

    private (string Name, int? Revision) ParseDefinitionRef(string reference)
    {
        var s = NameOf(reference, "job-definition");
        var colon = s.LastIndexOf(':');
        if (colon > 0 && int.TryParse(s.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var rev))
        {
            return (s[..colon], rev);
        }

        return (s, null);
    }

    private JobDefinition? ResolveDefinitionForSubmit(string reference, Problems p)
    {
        var (name, rev) = ParseDefinitionRef(reference);
        PurgeDeregisteredDefinitions();
        if (!_definitions.TryGetValue(name, out var revisions))
        {
            p.Add("jobDefinition", $"{reference} does not exist");
            return null;
        }

        if (rev is { } v)
        {
            if (v < 1 || v > revisions.Count || revisions[v - 1] is not { } d)
            {
                p.Add("jobDefinition", $"{reference} does not exist");
                return null;
            }

            if (d.Status != "ACTIVE" && !_replaying)
            {
                p.Add("jobDefinition", $"{reference} is INACTIVE");
                return null;
            }

            return d;
        }

        for (var i = revisions.Count - 1; i >= 0; i--)
        {
            if (revisions[i] is { Status: "ACTIVE" } active)
            {
                return active;
            }
        }

        p.Add("jobDefinition", $"{reference} has no ACTIVE revision");
        return null;
    }

    // ---- scheduling policies ------------------------------------------------------------------------------------------

    public SchedulingPolicyResponse CreateSchedulingPolicy(CreateSchedulingPolicyRequest r)
    {
        var p = new Problems();
        Names.Check(p, r.Name, "name", firstAlphanumeric: false);
        ResourceValidation.ValidateFairshare(r.FairsharePolicy, p, recovering: _replaying);
        Names.CheckTags(p, r.Tags, "tags", _options.Quotas.MaxTags, recovering: _replaying);
        if (r.Name is { } n && _policies.ContainsKey(n))
        {
            p.Add($"Object already exists: scheduling policy {n}");
        }

        p.ThrowIfAny();
        var policy = new SchedulingPolicyState
        {
            Name = r.Name!,
            Arn = Arn("scheduling-policy", r.Name!),
            Policy = r.FairsharePolicy ?? new FairsharePolicy(),
            Tags = new(r.Tags ?? new Dictionary<string, string>(), StringComparer.Ordinal),
        };
        _policies[policy.Name] = policy;
        return new SchedulingPolicyResponse(policy.Name, policy.Arn);
    }

    public void UpdateSchedulingPolicy(UpdateSchedulingPolicyRequest r)
    {
        var p = new Problems();
        p.Required(r.Arn, "arn");
        ResourceValidation.ValidateFairshare(r.FairsharePolicy, p, recovering: _replaying);
        p.ThrowIfAny();
        var policy = _policies.GetValueOrDefault(NameOf(r.Arn!, "scheduling-policy")) ?? throw new BatchClientException($"arn {r.Arn} does not name an existing scheduling policy");
        policy.Policy = r.FairsharePolicy ?? new FairsharePolicy();
        foreach (var q in _queues.Values)
        {
            if (q.Policy == policy)
            {
                foreach (var s in q.Shares.Values)
                {
                    s.Weight = policy.WeightOf(s.Id);
                }
            }
        }

        _dirty = true;
    }

    public void DeleteSchedulingPolicy(string? arn)
    {
        if (string.IsNullOrEmpty(arn))
        {
            throw new BatchClientException("arn is required");
        }

        var policy = _policies.GetValueOrDefault(NameOf(arn, "scheduling-policy")) ?? throw new BatchClientException($"arn {arn} does not name an existing scheduling policy");
        if (_queues.Values.FirstOrDefault(q => q.Policy == policy) is { } used)
        {
            throw new BatchClientException($"scheduling policy {policy.Name} is used by job queue {used.Name}");
        }

        _policies.Remove(policy.Name);
    }

    public IReadOnlyList<SchedulingPolicyDetail> DescribeSchedulingPolicies(IReadOnlyList<string>? arns)
    {
        DescribeProblems(arns, "arns", null).ThrowIfAny();
        IEnumerable<SchedulingPolicyState> ps = arns is { Count: > 0 }
            ? arns.Select(a => _policies.GetValueOrDefault(NameOf(a, "scheduling-policy"))).OfType<SchedulingPolicyState>()
            : _policies.Values;
        return ps.Select(x => new SchedulingPolicyDetail { Name = x.Name, Arn = x.Arn, FairsharePolicy = x.Policy, Tags = new Dictionary<string, string>(x.Tags) }).ToList();
    }

    // ---- consumable resources ----------------------------------------------------------------------------------------

    public ConsumableResourceResponse CreateConsumableResource(CreateConsumableResourceRequest r)
    {
        var p = new Problems();
        Names.Check(p, r.ConsumableResourceName, "consumableResourceName", firstAlphanumeric: false);
        if (r.TotalQuantity is null)
        {
            p.Add("totalQuantity", "is required");
        }

        p.Range(r.TotalQuantity, 1, ResourceValidation.MaxConsumableQuantity, "totalQuantity");
        p.OneOf(r.ResourceType, "resourceType", ConsumableResourceType.REPLENISHABLE, ConsumableResourceType.NON_REPLENISHABLE);
        Names.CheckTags(p, r.Tags, "tags", _options.Quotas.MaxTags, recovering: _replaying);
        if (r.ConsumableResourceName is { } n && _consumables.ContainsKey(n))
        {
            p.Add($"Object already exists: consumable resource {n}");
        }

        if (_consumables.Count >= _options.Quotas.MaxConsumableResources)
        {
            p.Add($"consumable resources: the quota of {_options.Quotas.MaxConsumableResources} is reached");
        }

        p.ThrowIfAny();
        var c = new ConsumableResourceState
        {
            Name = r.ConsumableResourceName!,
            Arn = Arn("consumable-resource", r.ConsumableResourceName!),
            Replenishable = r.ResourceType != ConsumableResourceType.NON_REPLENISHABLE,
            TotalQuantity = r.TotalQuantity!.Value,
            CreatedAt = NowMs,
            Tags = new(r.Tags ?? new Dictionary<string, string>(), StringComparer.Ordinal),
        };
        _consumables[c.Name] = c;
        return new ConsumableResourceResponse(c.Name, c.Arn);
    }

    public ConsumableResourceResponse UpdateConsumableResource(UpdateConsumableResourceRequest r)
    {
        var p = new Problems();
        p.Required(r.ConsumableResource, "consumableResource");
        p.OneOf(r.Operation, "operation", "SET", "ADD", "REMOVE");
        p.Required(r.Quantity, "quantity");
        p.Range(r.Quantity, 0, ResourceValidation.MaxConsumableQuantity, "quantity");
        p.ThrowIfAny();
        var c = FindConsumable(r.ConsumableResource!) ?? throw new BatchClientException($"consumableResource {r.ConsumableResource} does not exist");
        // Both at most MaxConsumableQuantity (long.MaxValue / 2): the sum cannot overflow.
        var total = (r.Operation ?? "SET") switch
        {
            "ADD" => c.TotalQuantity + r.Quantity!.Value,
            "REMOVE" => c.TotalQuantity - r.Quantity!.Value,
            _ => r.Quantity!.Value,
        };
        if (total < 0)
        {
            throw new BatchClientException($"quantity: removing {r.Quantity} would make totalQuantity negative ({total})");
        }

        if (total > ResourceValidation.MaxConsumableQuantity)
        {
            // The cap CreateConsumableResource puts on totalQuantity holds for the result of ADD too.
            throw new BatchClientException(string.Create(CultureInfo.InvariantCulture,
                $"quantity: adding {r.Quantity} to totalQuantity {c.TotalQuantity} would make it {total}, above the maximum {ResourceValidation.MaxConsumableQuantity}"));
        }

        // Below what running jobs hold is accepted, as AWS accepts it: nothing is available until they have released
        // enough, and the total reported shrinks to the new one as they end (ConsumableResourceState.TotalQuantity).
        c.TotalQuantity = total;
        _capacityVersion++;
        _dirty = true;
        return new ConsumableResourceResponse(c.Name, c.Arn);
    }

    public void DeleteConsumableResource(string? nameOrArn)
    {
        if (string.IsNullOrEmpty(nameOrArn))
        {
            throw new BatchClientException("consumableResource is required");
        }

        var c = FindConsumable(nameOrArn) ?? throw new BatchClientException($"consumableResource {nameOrArn} does not exist");
        if (!_replaying && FirstJobNeeding(c) is var (job, count) && job is not null)
        {
            // AWS is silent. Deleting it would leave a waiting job RUNNABLE for good (a resource created again under the
            // name is another resource) and a running one holding a quantity of nothing: refused, as a compute
            // environment in a queue is.
            throw new BatchClientException($"consumableResource {c.Name} is needed by job {job.Id} ({job.State.ToAws()})" +
                (count > 1 ? $" and {count - 1} other job(s)" : "") + " that have not ended: delete it once they have ended, or cancel or terminate them");
        }

        _consumables.Remove(c.Name);
    }

    /// <summary>The first retained job that has not ended and needs <paramref name="resource"/>, and how many there are.</summary>
    private (Job? Job, int Count) FirstJobNeeding(ConsumableResourceState resource)
    {
        Job? first = null;
        var count = 0;
        foreach (var q in _queues.Values)
        {
            foreach (var job in q.AllJobs)
            {
                if (!job.Forgotten && !job.State.IsTerminal() && QuantityOf(job.Spec, resource) > 0)
                {
                    first ??= job;
                    count++;
                }
            }
        }

        return (first, count);
    }

    public ConsumableResourceDetail DescribeConsumableResource(string? nameOrArn)
    {
        if (string.IsNullOrEmpty(nameOrArn))
        {
            throw new BatchClientException("consumableResource is required");
        }

        var c = FindConsumable(nameOrArn) ?? throw new BatchClientException($"consumableResource {nameOrArn} does not exist");
        return Describe(c);
    }

    private static ConsumableResourceDetail Describe(ConsumableResourceState c) => new()
    {
        ConsumableResourceName = c.Name,
        ConsumableResourceArn = c.Arn,
        TotalQuantity = c.ReportedTotal,
        InUseQuantity = c.InUse,
        AvailableQuantity = c.Available,
        ResourceType = c.Replenishable ? ConsumableResourceType.REPLENISHABLE : ConsumableResourceType.NON_REPLENISHABLE,
        CreatedAt = c.CreatedAt,
        Tags = new Dictionary<string, string>(c.Tags),
    };

    private ConsumableResourceState? FindConsumable(string nameOrArn, bool anyRegion = false) =>
        _consumables.GetValueOrDefault(NameOf(nameOrArn, "consumable-resource", anyRegion));

    // ---- tags --------------------------------------------------------------------------------------------------------

    private Dictionary<string, string>? TagsOf(string arn)
    {
        if (arn.Contains(":compute-environment/", StringComparison.Ordinal))
        {
            return FindCe(arn)?.Tags;
        }

        if (arn.Contains(":job-queue/", StringComparison.Ordinal))
        {
            return FindQueue(arn)?.Tags;
        }

        if (arn.Contains(":scheduling-policy/", StringComparison.Ordinal))
        {
            return _policies.GetValueOrDefault(NameOf(arn, "scheduling-policy"))?.Tags;
        }

        if (arn.Contains(":consumable-resource/", StringComparison.Ordinal))
        {
            return FindConsumable(arn)?.Tags;
        }

        if (arn.Contains(":job/", StringComparison.Ordinal))
        {
            // Tags change the job: a folded child is taken back as a live one first.
            return TryGetJob(NameOf(arn, "job"), out var job) ? JobTags(job.Parent?.Children!.Unfold(job.ArrayIndex) ?? job) : null;
        }

        return null;
    }

    public IReadOnlyDictionary<string, string> ListTagsForResource(string? arn)
    {
        if (string.IsNullOrEmpty(arn))
        {
            throw new BatchClientException("resourceArn is required");
        }

        if (arn.Contains(":job-definition/", StringComparison.Ordinal))
        {
            var (name, rev) = ParseDefinitionRef(arn);
            PurgeDeregisteredDefinitions();
            var def = _definitions.GetValueOrDefault(name) is { } revs && rev is { } v && v >= 1 && v <= revs.Count ? revs[v - 1] : null;
            return def is null ? throw new BatchClientException($"resourceArn {arn} does not exist") : new Dictionary<string, string>(def.Tags);
        }

        if (arn.Contains(":job/", StringComparison.Ordinal))
        {
            // A read: the job's tags as they are (no copy-on-write dictionary made, a folded child left folded).
            return TryGetJob(NameOf(arn, "job"), out var job)
                ? new Dictionary<string, string>(job.MutableTags ?? job.Spec.Tags)
                : throw new BatchClientException($"resourceArn {arn} does not exist");
        }

        return TagsOf(arn) is { } t ? new Dictionary<string, string>(t) : throw new BatchClientException($"resourceArn {arn} does not exist");
    }

    public void TagResource(string? arn, IReadOnlyDictionary<string, string>? tags)
    {
        var p = new Problems();
        p.Required(arn, "resourceArn");
        Names.CheckTags(p, tags, "tags", _options.Quotas.MaxTags, recovering: _replaying);
        p.ThrowIfAny();
        if (arn!.Contains(":job-definition/", StringComparison.Ordinal))
        {
            var (name, rev) = ParseDefinitionRef(arn);
            PurgeDeregisteredDefinitions();
            if (_definitions.GetValueOrDefault(name) is not { } revs || rev is not { } v || v < 1 || v > revs.Count || revs[v - 1] is not { } def)
            {
                throw new BatchClientException($"resourceArn {arn} does not exist");
            }

            var merged = new Dictionary<string, string>(def.Tags);
            foreach (var (k, val) in tags ?? new Dictionary<string, string>())
            {
                merged[k] = val;
            }

            if (merged.Count > _options.Quotas.MaxTags && !_replaying) // as for every other resource; nothing applied
            {
                throw new BatchClientException($"tags: Member must have length less than or equal to {_options.Quotas.MaxTags}");
            }

            revs[v - 1] = def with { Tags = merged };
            return;
        }

        var target = TagsOf(arn) ?? throw new BatchClientException($"resourceArn {arn} does not exist");
        if (target.Count + (tags?.Keys.Count(k => !target.ContainsKey(k)) ?? 0) > _options.Quotas.MaxTags)
        {
            throw new BatchClientException($"tags: Member must have length less than or equal to {_options.Quotas.MaxTags}");
        }

        foreach (var (k, v) in tags ?? new Dictionary<string, string>())
        {
            target[k] = v;
        }
    }

    public void UntagResource(string? arn, IReadOnlyList<string>? keys)
    {
        var p = new Problems();
        p.Required(arn, "resourceArn");
        if (!_replaying)
        {
            // AWS: tagKeys is required, 1-50 keys (no key would otherwise remove every tag of a job definition).
            if (keys is not { Count: > 0 })
            {
                p.Add("tagKeys", "is required (1 to 50 tag keys)");
            }
            else if (keys.Count > _options.Quotas.MaxTags)
            {
                p.Add("tagKeys", $"must have at most {_options.Quotas.MaxTags} keys, had {keys.Count}");
            }
        }

        // Every key is checked before any tag goes: a bad key must not leave some removed (and the removal unjournaled).
        for (var i = 0; i < (keys?.Count ?? 0); i++)
        {
            if (string.IsNullOrEmpty(keys![i]))
            {
                p.Add(string.Create(CultureInfo.InvariantCulture, $"tagKeys[{i}]"), "must be 1 to 128 characters, was " + (keys[i] is null ? "null" : "empty"));
            }
        }

        p.ThrowIfAny();

        if (arn!.Contains(":job-definition/", StringComparison.Ordinal))
        {
            var (name, rev) = ParseDefinitionRef(arn);
            PurgeDeregisteredDefinitions();
            if (_definitions.GetValueOrDefault(name) is not { } revs || rev is not { } v || v < 1 || v > revs.Count || revs[v - 1] is not { } def)
            {
                throw new BatchClientException($"resourceArn {arn} does not exist");
            }

            var kept = def.Tags.Where(kv => keys is null || !keys.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
            revs[v - 1] = def with { Tags = kept };
            return;
        }

        var target = TagsOf(arn) ?? throw new BatchClientException($"resourceArn {arn} does not exist");
        foreach (var k in keys ?? [])
        {
            target.Remove(k);
        }
    }
}
