using System.Globalization;
using BatchCore.Dispatch;
using BatchCore.Model;
using BatchCore.Provisioning;

namespace BatchCore.Validation;

/// <summary>The rules of AWS Batch's resource requests (reference §2.1, §2.4, §2.5, §2.6), checked before anything is applied.</summary>
internal static class ResourceValidation
{
    private static readonly string[] Strategies = [.. CRAllocationStrategy.All];

    /// <summary>
    /// The most vCPUs a job asks for or a host offers: 1,000,000. The engine counts vCPUs in thousandths in an
    /// <see cref="int"/> (at most 2,147,483 vCPUs), so a larger (or infinite) value would wrap; the bound leaves room
    /// for sums of a few such values.
    /// </summary>
    public const double MaxVcpus = 1_000_000;

    /// <summary>
    /// The longest extensions.simulatedRunTimeSeconds: 1,000,000,000 seconds (about 31.7 years). The engine's timers count
    /// milliseconds in a <see cref="long"/>; a larger (or infinite) value would wrap them negative.
    /// </summary>
    public const double MaxSimulatedRunTimeSeconds = 1_000_000_000;

    /// <summary>The largest totalQuantity of a consumable resource (Create, and the result of an Update's SET or ADD).</summary>
    public const long MaxConsumableQuantity = long.MaxValue / 2;

    // hostProviders: the names registered in BatchEngineOptions.HostProviders (UNMANAGED CEs whose hosts come from them).
    // recovering: a journal's record is replayed; rules added after it may have been written are not applied (see
    // ValidateJobDefinition).
    public static void ValidateCreateComputeEnvironment(CreateComputeEnvironmentRequest r, Problems p, InstanceCatalog catalog,
        ICollection<string>? hostProviders = null, bool recovering = false, int maxTags = 50)
    {
        Names.Check(p, r.ComputeEnvironmentName, "computeEnvironmentName", firstAlphanumeric: false);
        if (r.Type is null)
        {
            p.Add("type", "is required");
        }

        p.OneOf(r.Type, "type", CEType.MANAGED, CEType.UNMANAGED);
        p.OneOf(r.State, "state", ResourceState.ENABLED, ResourceState.DISABLED);
        if (r.State == ResourceState.DISABLED)
        {
            p.Add("state", "must be ENABLED when a compute environment is created");
        }

        Names.CheckTags(p, r.Tags, "tags", maxTags, recovering);
        var hostProvider = r.Provider is { } pn && hostProviders is not null && hostProviders.Contains(pn);
        if (!hostProvider)
        {
            p.OneOf(r.Provider, "provider", ["simulated", "local", .. hostProviders ?? []]);
        }
        else if (r.Type != CEType.UNMANAGED)
        {
            p.Add("provider", $"{r.Provider} supplies the hosts of an UNMANAGED compute environment; type was {r.Type}");
        }
        else if (r.Hosts is { Count: > 0 })
        {
            p.Add("hosts", $"must be empty when provider {r.Provider} supplies the hosts");
        }

        if (r.ProviderSettings is { Count: > 0 } && !hostProvider)
        {
            p.Add("providerSettings", "can only be set with a host provider of an UNMANAGED compute environment (e.g. provider: slurm)");
        }

        if (r.Type == CEType.UNMANAGED)
        {
            if (r.ComputeResources is not null)
            {
                p.Add("computeResources", "must not be set for an UNMANAGED compute environment");
            }

            p.Range(r.UnmanagedvCpus, 0, int.MaxValue, "unmanagedvCpus");
            ValidateHosts(r.Hosts, p, recovering);
        }
        else if (r.Type == CEType.MANAGED)
        {
            if (r.Hosts is { Count: > 0 })
            {
                p.Add("hosts", "can only be listed for an UNMANAGED compute environment; a MANAGED one provisions its own");
            }

            if (r.UnmanagedvCpus is not null)
            {
                p.Add("unmanagedvCpus", "can only be set for an UNMANAGED compute environment");
            }

            if (r.ComputeResources is not { } cr)
            {
                p.Add("computeResources", "is required for a MANAGED compute environment");
                return;
            }

            ValidateComputeResources(cr, p, catalog);
            if (!recovering)
            {
                Names.CheckReservedTagPrefix(p, cr.Tags, "computeResources.tags"); // EC2 tags: EC2 reserves aws: too
            }

            if (!recovering && cr.Type == CRType.SPOT && cr.AllocationStrategy is (null or CRAllocationStrategy.BEST_FIT) &&
                string.IsNullOrEmpty(cr.SpotIamFleetRole))
            {
                p.Add("computeResources.spotIamFleetRole", "is required for a SPOT compute environment with the BEST_FIT allocation strategy (also the default)");
            }
        }
    }

    private static void ValidateHosts(IReadOnlyList<HostSpec>? hosts, Problems p, bool recovering)
    {
        if (hosts is null)
        {
            return;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < hosts.Count; i++)
        {
            var h = hosts[i];
            var f = $"hosts[{i}]";
            if (p.NullEntry(h, f))
            {
                continue;
            }

            if (h.HostName is { } n && !names.Add(n))
            {
                p.Add(f + ".hostName", $"must be unique, {n} appears twice");
            }

            if (h.Vcpus <= 0 || double.IsNaN(h.Vcpus))
            {
                p.Add(f + ".vcpus", string.Create(CultureInfo.InvariantCulture, $"must be greater than 0, was {h.Vcpus}"));
            }
            else if (h.Vcpus > MaxVcpus && !recovering) // an older journal recovers
            {
                p.Add(f + ".vcpus", string.Create(CultureInfo.InvariantCulture, $"must be at most {MaxVcpus} (the engine counts thousandths of a vCPU in an int), was {h.Vcpus}"));
            }

            if (h.MemoryMiB <= 64)
            {
                p.Add(f + ".memoryMiB", string.Create(CultureInfo.InvariantCulture, $"must be greater than 64, was {h.MemoryMiB}"));
            }

            if (h.Gpus < 0)
            {
                p.Add(f + ".gpus", string.Create(CultureInfo.InvariantCulture, $"must be at least 0, was {h.Gpus}"));
            }

            p.OneOf(h.Architecture, f + ".architecture", "x86_64", "arm64");
        }
    }

    /// <summary>
    /// A host a <see cref="Hosts.HostProvider"/> reported, by the limits a listed <see cref="HostSpec"/> has (the engine
    /// counts its vCPUs in thousandths in an int, and its whole vCPUs in an int). Memory may be as small as 0: a
    /// provider reports what jobs may use (a Slurm node's RealMemory is 1 MiB unless configured), where a listed host's
    /// memory has the engine's reserve taken from it.
    /// </summary>
    public static void ValidateProvidedHost(Hosts.ProvidedHost h, Problems p)
    {
        if (string.IsNullOrEmpty(h.HostName))
        {
            p.Add("hostName", "is required");
        }

        if (!(h.Vcpus > 0)) // NaN too
        {
            p.Add("vcpus", string.Create(CultureInfo.InvariantCulture, $"must be greater than 0, was {h.Vcpus}"));
        }
        else if (h.Vcpus > MaxVcpus) // infinity too
        {
            p.Add("vcpus", string.Create(CultureInfo.InvariantCulture, $"must be at most {MaxVcpus} (the engine counts thousandths of a vCPU in an int), was {h.Vcpus}"));
        }

        if (h.MemoryMiB < 0)
        {
            p.Add("memoryMiB", string.Create(CultureInfo.InvariantCulture, $"must be at least 0, was {h.MemoryMiB}"));
        }

        if (h.Gpus < 0)
        {
            p.Add("gpus", string.Create(CultureInfo.InvariantCulture, $"must be at least 0, was {h.Gpus}"));
        }

        if (h.Architecture is null)
        {
            p.Add("architecture", "is required");
        }

        p.OneOf(h.Architecture, "architecture", "x86_64", "arm64");
        if (h.Driver is null)
        {
            p.Add("driver", "is required");
        }
    }

    private static void ValidateComputeResources(ComputeResource cr, Problems p, InstanceCatalog catalog)
    {
        const string f = "computeResources";
        if (cr.Type is null)
        {
            p.Add(f + ".type", "is required");
        }

        p.OneOf(cr.Type, f + ".type", CRType.EC2, CRType.SPOT, CRType.FARGATE, CRType.FARGATE_SPOT);
        if (cr.MaxvCpus is null)
        {
            p.Add(f + ".maxvCpus", "is required");
        }

        p.Range(cr.MaxvCpus, 0, 10_000_000, f + ".maxvCpus");
        var fargate = cr.Type is CRType.FARGATE or CRType.FARGATE_SPOT;
        if (fargate)
        {
            // AWS: a Fargate CE refuses the EC2-only fields.
            void Refuse(object? value, string field)
            {
                if (value is not null)
                {
                    p.Add($"{f}.{field}", $"is not allowed for a {cr.Type} compute environment");
                }
            }

            Refuse(cr.MinvCpus, "minvCpus");
            Refuse(cr.DesiredvCpus, "desiredvCpus");
            Refuse(cr.InstanceTypes, "instanceTypes");
            Refuse(cr.ImageId, "imageId");
            Refuse(cr.LaunchTemplate, "launchTemplate");
            Refuse(cr.AllocationStrategy, "allocationStrategy");
            Refuse(cr.InstanceRole, "instanceRole");
            Refuse(cr.Ec2KeyPair, "ec2KeyPair");
            Refuse(cr.PlacementGroup, "placementGroup");
            Refuse(cr.BidPercentage, "bidPercentage");
            Refuse(cr.SpotIamFleetRole, "spotIamFleetRole");
            Refuse(cr.Ec2Configuration, "ec2Configuration");
            Refuse(cr.Tags, "tags");
            Refuse(cr.ScalingPolicy, "scalingPolicy");
            if (cr.Subnets is { Count: > 16 })
            {
                p.Add(f + ".subnets", $"must have at most 16 entries on Fargate, had {cr.Subnets.Count}");
            }

            return;
        }

        p.Range(cr.MinvCpus, 0, 10_000_000, f + ".minvCpus");
        p.Range(cr.DesiredvCpus, 0, 10_000_000, f + ".desiredvCpus");
        if (cr.MinvCpus is { } min && cr.MaxvCpus is { } max && min > max)
        {
            p.Add(f + ".minvCpus", $"must not exceed maxvCpus ({max}), was {min}");
        }

        if (cr.DesiredvCpus is { } d && ((cr.MinvCpus is { } mn && d < mn) || (cr.MaxvCpus is { } mx && d > mx)))
        {
            p.Add(f + ".desiredvCpus", $"must be between minvCpus and maxvCpus, was {d}");
        }

        p.OneOf(cr.AllocationStrategy, f + ".allocationStrategy", Strategies);
        CheckSpotRules(cr.Type, cr.AllocationStrategy, cr.BidPercentage, p, f);

        if (cr.ScalingPolicy?.MinScaleDownDelayMinutes is { } delay)
        {
            p.Range(delay, 20, 10_080, f + ".scalingPolicy.minScaleDownDelayMinutes");
        }

        ValidateInstanceTypes(cr.InstanceTypes, p, catalog, f + ".instanceTypes");
    }

    /// <summary>The rules tying allocationStrategy and bidPercentage to EC2 or SPOT (create, and an update's result).</summary>
    private static void CheckSpotRules(string? type, string? strategy, int? bidPercentage, Problems p, string f)
    {
        var spot = type == CRType.SPOT;
        if (strategy is CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED or CRAllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED or CRAllocationStrategy.SPOT_CAPACITY_OPTIMIZED_PRIORITIZED && !spot)
        {
            p.Add(f + ".allocationStrategy", $"{strategy} is for SPOT compute environments only");
        }

        if (strategy == CRAllocationStrategy.BEST_FIT_PROGRESSIVE_ORDERED && spot)
        {
            p.Add(f + ".allocationStrategy", "BEST_FIT_PROGRESSIVE_ORDERED is for On-Demand (EC2) compute environments only");
        }

        p.Range(bidPercentage, 0, 100, f + ".bidPercentage");
        if (bidPercentage is not null && !spot)
        {
            p.Add(f + ".bidPercentage", "can only be set for a SPOT compute environment");
        }
    }

    public static void ValidateInstanceTypes(IReadOnlyList<string>? types, Problems p, InstanceCatalog catalog, string field)
    {
        if (types is null)
        {
            return;
        }

        var archs = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < types.Count; i++)
        {
            var t = types[i];
            if (string.IsNullOrEmpty(t))
            {
                p.Add(string.Create(CultureInfo.InvariantCulture, $"{field}[{i}]"), "must be an instance type, was " + (t is null ? "null" : "empty"));
                continue;
            }

            var expanded = catalog.Expand(t);
            if (expanded.Count == 0)
            {
                p.Add(field, $"Instance type {t} does not exist");
                continue;
            }

            foreach (var e in expanded)
            {
                archs.Add(e.Architecture);
            }
        }

        if (archs.Count > 1)
        {
            p.Add(field, "cannot mix x86_64 and arm64 instance types");
        }
    }

    // recovering: a journal's record is replayed; rules added after it may have been written are not applied.
    public static void ValidateUpdateComputeEnvironment(UpdateComputeEnvironmentRequest r, ComputeEnvironmentState ce, Problems p, InstanceCatalog catalog,
        bool recovering = false)
    {
        p.Range(r.UpdatePolicy?.JobExecutionTimeoutMinutes, 1, 7_200, "updatePolicy.jobExecutionTimeoutMinutes");
        p.OneOf(r.State, "state", ResourceState.ENABLED, ResourceState.DISABLED);
        if (r.UnmanagedvCpus is not null && !recovering)
        {
            // As at creation: only an UNMANAGED compute environment has it, and it is a vCPU count.
            p.Range(r.UnmanagedvCpus, 0, int.MaxValue, "unmanagedvCpus");
            if (ce.IsManaged)
            {
                p.Add("unmanagedvCpus", "can only be set for an UNMANAGED compute environment");
            }
        }

        if (r.ComputeResources is not { } cr)
        {
            return;
        }

        const string f = "computeResources";
        if (!ce.IsManaged)
        {
            p.Add(f, "cannot be updated on an UNMANAGED compute environment");
            return;
        }

        var cur = ce.Resources!;
        if (ce.IsFargate)
        {
            // AWS: Fargate CEs can update only maxvCpus, subnets and security groups.
            if (cr.MinvCpus is not null || cr.DesiredvCpus is not null || cr.AllocationStrategy is not null || cr.InstanceTypes is not null ||
                cr.BidPercentage is not null || cr.ImageId is not null || cr.InstanceRole is not null || cr.Ec2KeyPair is not null || cr.Type is not null ||
                cr.Tags is not null || cr.PlacementGroup is not null || cr.LaunchTemplate is not null || cr.Ec2Configuration is not null ||
                cr.UpdateToLatestImageVersion is not null || (!recovering && cr.ScalingPolicy is not null))
            {
                p.Add(f, "of a Fargate compute environment can only update maxvCpus, subnets and securityGroupIds");
            }
        }

        var min = cr.MinvCpus ?? cur.MinvCpus ?? 0;
        var max = cr.MaxvCpus ?? cur.MaxvCpus ?? 0;
        p.Range(cr.MinvCpus, 0, 10_000_000, f + ".minvCpus");
        p.Range(cr.MaxvCpus, 0, 10_000_000, f + ".maxvCpus");
        if (min > max)
        {
            p.Add(f + ".minvCpus", $"must not exceed maxvCpus ({max}), was {min}");
        }

        if (cr.DesiredvCpus is { } d && (d < min || d > max))
        {
            p.Add(f + ".desiredvCpus", $"must be between minvCpus and maxvCpus, was {d}");
        }
        else if (cr.DesiredvCpus is { } want && !recovering && want < ce.ProvisionedVcpus)
        {
            // AWS: "the updated desiredvCpus value must be greater than or equal to the current desiredvCpus value".
            p.Add(f + ".desiredvCpus", $"must not be lower than the current desiredvCpus ({ce.ProvisionedVcpus}), was {want}: a compute environment is not scaled down by hand (idle instances above minvCpus are scaled in)");
        }

        p.OneOf(cr.AllocationStrategy, f + ".allocationStrategy", Strategies);
        if (!recovering)
        {
            Names.CheckReservedTagPrefix(p, cr.Tags, f + ".tags"); // EC2 tags: EC2 reserves aws: too
        }

        var infrastructure = cr.AllocationStrategy is not null || cr.InstanceTypes is not null || cr.BidPercentage is not null ||
                             cr.ImageId is not null || cr.InstanceRole is not null || cr.Ec2KeyPair is not null || cr.Type is not null ||
                             (!recovering && (cr.Subnets is not null || cr.SecurityGroupIds is not null)) ||
                             cr.Tags is not null || cr.PlacementGroup is not null || cr.LaunchTemplate is not null || cr.Ec2Configuration is not null ||
                             cr.UpdateToLatestImageVersion == true;
        if (infrastructure && !ce.IsFargate && (cur.AllocationStrategy ?? CRAllocationStrategy.BEST_FIT) == CRAllocationStrategy.BEST_FIT)
        {
            // AWS: infrastructure updates need a strategy other than BEST_FIT.
            p.Add(f, "infrastructure updates (allocationStrategy, instanceTypes, bidPercentage, imageId, instanceRole, ec2KeyPair, type, subnets, securityGroupIds, tags, placementGroup, launchTemplate, ec2Configuration, updateToLatestImageVersion) are not allowed on a BEST_FIT compute environment");
        }

        if (cr.AllocationStrategy == CRAllocationStrategy.BEST_FIT && !recovering)
        {
            // AWS ComputeResourceUpdate: "BEST_FIT isn't supported when updating a compute environment".
            p.Add(f + ".allocationStrategy", "BEST_FIT is not supported when updating a compute environment (use BEST_FIT_PROGRESSIVE or a SPOT strategy)");
        }

        if (cr.Type is { } t && !ce.IsFargate)
        {
            p.OneOf(t, f + ".type", CRType.EC2, CRType.SPOT);
        }

        if (!ce.IsFargate && !recovering && (cr.Type is not null || cr.AllocationStrategy is not null || cr.BidPercentage is not null))
        {
            // The creation rules hold for what the update leaves: SPOT strategies need SPOT, and so does a bid it sends
            // (a stored bid goes when the environment becomes EC2).
            CheckSpotRules(cr.Type ?? cur.Type, cr.AllocationStrategy ?? cur.AllocationStrategy, cr.BidPercentage, p, f);
        }

        if (cr.ScalingPolicy?.MinScaleDownDelayMinutes is { } delay)
        {
            p.Range(delay, 20, 10_080, f + ".scalingPolicy.minScaleDownDelayMinutes");
        }

        ValidateInstanceTypes(cr.InstanceTypes, p, catalog, f + ".instanceTypes");
    }

    // recovering: a journal's record is replayed; a policy created before the character rule still recovers.
    public static void ValidateFairshare(FairsharePolicy? fp, Problems p, bool recovering = false)
    {
        if (fp is null)
        {
            return;
        }

        p.Range(fp.ShareDecaySeconds, 0, 604_800, "fairsharePolicy.shareDecaySeconds");
        p.Range(fp.ComputeReservation, 0, 99, "fairsharePolicy.computeReservation");
        if (fp.ShareDistribution is null)
        {
            p.Add("fairsharePolicy.shareDistribution", "must not be null (leave it out or give a list)");
            return;
        }

        var ids = new List<string>();
        for (var i = 0; i < fp.ShareDistribution.Count; i++)
        {
            var s = fp.ShareDistribution[i];
            var f = $"fairsharePolicy.shareDistribution[{i}]";
            if (p.NullEntry(s, f))
            {
                continue;
            }

            if (string.IsNullOrEmpty(s.ShareIdentifier))
            {
                p.Add(f + ".shareIdentifier", "is required");
                continue;
            }

            p.MaxLength(s.ShareIdentifier, 255, f + ".shareIdentifier");
            var star = s.ShareIdentifier.IndexOf('*', StringComparison.Ordinal);
            if (star >= 0 && star != s.ShareIdentifier.Length - 1)
            {
                p.Add(f + ".shareIdentifier", $"may contain * only as its last character, was {s.ShareIdentifier}");
            }
            else if (!recovering && !s.ShareIdentifier.TrimEnd('*').All(char.IsAsciiLetterOrDigit))
            {
                // AWS ShareAttributes: up to 255 alphanumeric characters, optionally followed by *.
                p.Add(f + ".shareIdentifier", $"may contain only letters and digits, optionally followed by *, was '{s.ShareIdentifier}'");
            }

            p.Range(s.WeightFactor, 0.0001, 999.9999, f + ".weightFactor");
            foreach (var other in ids)
            {
                if (Overlaps(other, s.ShareIdentifier))
                {
                    p.Add(f + ".shareIdentifier", $"{s.ShareIdentifier} overlaps {other}");
                }
            }

            ids.Add(s.ShareIdentifier);
        }
    }

    private static bool Overlaps(string a, string b)
    {
        if (a == b)
        {
            return true;
        }

        static string Prefix(string s) => s.EndsWith('*') ? s[..^1] : s;
        var pa = Prefix(a);
        var pb = Prefix(b);
        return (a.EndsWith('*') && pb.StartsWith(pa, StringComparison.Ordinal)) || (b.EndsWith('*') && pa.StartsWith(pb, StringComparison.Ordinal));
    }

    // ---- job definitions -----------------------------------------------------------------------------------------------

    /// <param name="r">The request.</param>
    /// <param name="p">Where problems go.</param>
    /// <param name="options">The engine's options (quotas, short timeouts).</param>
    /// <param name="recovering">
    /// A journal's record is replayed: rules added after it may have been written (a Fargate definition without
    /// executionRoleArn) are not applied, so an older state directory still recovers.
    /// </param>
    public static void ValidateJobDefinition(RegisterJobDefinitionRequest r, Problems p, BatchEngineOptions options, bool recovering = false)
    {
        Names.Check(p, r.JobDefinitionName, "jobDefinitionName", firstAlphanumeric: false);
        if (r.Type is null)
        {
            p.Add("type", "is required");
        }
        else if (r.Type == JobDefinitionType.multinode || r.NodeProperties is not null)
        {
            p.Add("type", "multinode (multi-node parallel) job definitions are not supported by BatchCore yet");
        }
        else
        {
            p.OneOf(r.Type, "type", JobDefinitionType.container);
        }

        if (r.EcsProperties is not null)
        {
            p.Add("ecsProperties", "is not supported by BatchCore: describe the container with containerProperties");
        }

        if (r.EksProperties is not null)
        {
            p.Add("eksProperties", "is not supported by BatchCore (it runs no Kubernetes pods): use containerProperties");
        }

        Names.CheckTags(p, r.Tags, "tags", options.Quotas.MaxTags, recovering);
        p.Range(r.SchedulingPriority, 0, 9999, "schedulingPriority");
        var platforms = r.PlatformCapabilities ?? [];
        if (platforms.Count > 1)
        {
            p.Add("platformCapabilities", $"must have one entry (EC2 or FARGATE), had {platforms.Count}");
        }

        for (var i = 0; i < platforms.Count; i++)
        {
            if (platforms[i] is null)
            {
                p.Add(string.Create(CultureInfo.InvariantCulture, $"platformCapabilities[{i}]"), "must be one of EC2 | FARGATE, was null");
            }

            p.OneOf(platforms[i], "platformCapabilities", PlatformCapability.EC2, PlatformCapability.FARGATE);
        }

        var fargate = platforms.Contains(PlatformCapability.FARGATE);
        if (r.Extensions?.Handler is { } handler && string.IsNullOrWhiteSpace(handler))
        {
            p.Add("extensions.handler", "must not be empty");
        }

        if (r.Type == JobDefinitionType.container && r.ContainerProperties is null && r.EcsProperties is null && r.EksProperties is null)
        {
            p.Add("containerProperties", "is required for a container job definition (containerProperties or eksProperties must be provided)");
        }

        if (r.ContainerProperties is { } cp)
        {
            ValidateContainer(cp, fargate, p, "containerProperties", r.Extensions?.Handler is not null, recovering);
            if (fargate && !recovering && string.IsNullOrEmpty(cp.ExecutionRoleArn))
            {
                p.Add("containerProperties.executionRoleArn", "is required for jobs on Fargate resources (AWS)");
            }
        }

        ValidateRetryStrategy(r.RetryStrategy, p, "retryStrategy", recovering);
        ValidateTimeout(r.Timeout, p, "timeout", options);
        ValidateParameters(r.Parameters, p);
        if (!recovering)
        {
            RequestSize.CheckDefinition(r, options.Quotas.MaxJobDefinitionBytes, p);
        }

        ValidateConsumables(r.ConsumableResourceProperties, p, "consumableResourceProperties", recovering);
    }

    /// <summary>Parameters substitute Ref:: placeholders of the command: a key must be non-empty and a value a string.</summary>
    public static void ValidateParameters(IReadOnlyDictionary<string, string>? parameters, Problems p)
    {
        if (parameters is null)
        {
            return;
        }

        foreach (var (k, v) in parameters)
        {
            if (string.IsNullOrEmpty(k))
            {
                p.Add("parameters", "keys must not be empty");
            }

            if (v is null)
            {
                p.Add($"parameters.{k}", "must not be null");
            }
        }
    }

    // recovering: a journal's record is replayed; a definition registered before the duplicate rule still recovers.
    public static void ValidateConsumables(ConsumableResourceProperties? c, Problems p, string field, bool recovering = false)
    {
        if (c is null)
        {
            return;
        }

        if (c.ConsumableResourceList is null)
        {
            p.Add(field + ".consumableResourceList", "must not be null (give a list)");
            return;
        }

        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < c.ConsumableResourceList.Count; i++)
        {
            var e = c.ConsumableResourceList[i];
            var fi = string.Create(CultureInfo.InvariantCulture, $"{field}.consumableResourceList[{i}]");
            if (p.NullEntry(e, fi))
            {
                continue;
            }

            p.Required(e.ConsumableResource, fi + ".consumableResource");
            if (e.Quantity < 1)
            {
                p.Add(fi + ".quantity", $"must be at least 1, was {e.Quantity}");
            }

            // A resource is named by its name or its ARN: listed twice, the job would hold both quantities of one
            // resource (and a check of each against the total would over-commit it).
            if (!string.IsNullOrEmpty(e.ConsumableResource) && !recovering)
            {
                var name = ConsumableName(e.ConsumableResource);
                if (names.TryGetValue(name, out var first))
                {
                    p.Add(fi + ".consumableResource", string.Create(CultureInfo.InvariantCulture,
                        $"names consumable resource {name} again (entry [{first}]); list each resource once, with its whole quantity"));
                }
                else
                {
                    names[name] = i;
                }
            }
        }
    }

    /// <summary>The name in a consumable resource's ARN (arn:...:consumable-resource/NAME), or the name given.</summary>
    public static string ConsumableName(string nameOrArn)
    {
        const string marker = ":consumable-resource/";
        var i = nameOrArn.StartsWith("arn:", StringComparison.Ordinal) ? nameOrArn.IndexOf(marker, StringComparison.Ordinal) : -1;
        return i < 0 ? nameOrArn : nameOrArn[(i + marker.Length)..];
    }

    // recovering: rules added after a replayed journal record may have been written are not applied.
    /// <summary>A command's arguments are strings: a null one (YAML <c>~</c>, JSON <c>null</c>) is refused, naming its index.</summary>
    public static void ValidateCommand(IReadOnlyList<string>? command, Problems p, string f)
    {
        for (var i = 0; i < (command?.Count ?? 0); i++)
        {
            if (command![i] is null)
            {
                p.Add(f + "[" + i.ToString(CultureInfo.InvariantCulture) + "]", "must be a string, was null");
            }
        }
    }

    public static void ValidateContainer(ContainerProperties cp, bool fargate, Problems p, string f, bool hasHandler = false, bool recovering = false)
    {
        p.MaxLength(cp.Image, 255, f + ".image");
        if (cp.Image is null && (cp.Command is null || cp.Command.Count == 0) && !hasHandler)
        {
            p.Add(f, "needs an image or a command");
        }

        if (!recovering)
        {
            ValidateCommand(cp.Command, p, f + ".command");
        }

        ValidateEnvironment(cp.Environment, p, f + ".environment");
        var req = ValidateResourceRequirements(cp.ResourceRequirements, p, f + ".resourceRequirements");
        if (cp.Vcpus is { } legacyV)
        {
            p.Range(legacyV, 1, 10_000, f + ".vcpus");
        }

        if (cp.Memory is { } legacyM)
        {
            p.Range(legacyM, 4, int.MaxValue, f + ".memory");
        }

        var vcpus = req.Vcpus ?? cp.Vcpus;
        var memory = req.Memory ?? cp.Memory;
        if (vcpus is null)
        {
            p.Add(f + ".resourceRequirements", "must give VCPU (the number of vCPUs is required)");
        }

        if (memory is null)
        {
            p.Add(f + ".resourceRequirements", "must give MEMORY (the memory hard limit in MiB is required)");
        }

        ValidatePlatformResources(vcpus, memory, req.Gpus, fargate, p, f + ".resourceRequirements");
        if (cp.RuntimePlatform?.CpuArchitecture is { } arch)
        {
            p.OneOf(arch, f + ".runtimePlatform.cpuArchitecture", "X86_64", "ARM64");
        }

        ValidateContainerExtras(cp, fargate, p, f, recovering);

        if (fargate)
        {
            if (cp.Privileged == true)
            {
                p.Add(f + ".privileged", "must not be true on Fargate");
            }

            if (cp.LinuxParameters is { } lp)
            {
                if (lp.Devices is { Count: > 0 })
                {
                    p.Add(f + ".linuxParameters.devices", "are not supported on Fargate");
                }

                if (lp.Tmpfs is { Count: > 0 })
                {
                    p.Add(f + ".linuxParameters.tmpfs", "is not supported on Fargate");
                }

                if (lp.MaxSwap is not null || lp.Swappiness is not null)
                {
                    p.Add(f + ".linuxParameters.maxSwap", "swap is not supported on Fargate");
                }

                if (lp.SharedMemorySize is not null)
                {
                    p.Add(f + ".linuxParameters.sharedMemorySize", "is not supported on Fargate");
                }
            }
        }
    }

    /// <summary>Log drivers AWS Batch accepts on EC2; Fargate takes the first two only.</summary>
    private static readonly string[] LogDrivers = ["awslogs", "splunk", "fluentd", "gelf", "journald", "json-file", "syslog", "awsfirelens"];

    /// <summary>Volumes, mount points, ulimits, secrets, logging, networking, storage and credentials (AWS's rules).</summary>
    private static void ValidateContainerExtras(ContainerProperties cp, bool fargate, Problems p, string f, bool recovering)
    {
        if (!recovering)
        {
            ValidateLinuxParameters(cp.LinuxParameters, p, f + ".linuxParameters");
        }

        var volumeNames = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < (cp.Volumes?.Count ?? 0); i++)
        {
            var v = cp.Volumes![i];
            var fi = string.Create(CultureInfo.InvariantCulture, $"{f}.volumes[{i}]");
            if (p.NullEntry(v, fi))
            {
                continue;
            }

            if (string.IsNullOrEmpty(v.Name))
            {
                p.Add(fi + ".name", "is required (mountPoints name it in sourceVolume)");
            }
            else if (v.Name.Length > 255 || !v.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                p.Add(fi + ".name", $"must be 1-255 letters, digits, hyphens or underscores, was '{v.Name}'");
            }
            else if (!volumeNames.Add(v.Name))
            {
                p.Add(fi + ".name", $"{v.Name} is given more than once");
            }

            if (v.Host is not null && v.EfsVolumeConfiguration is not null)
            {
                p.Add(fi, "must have host or efsVolumeConfiguration, not both");
            }

            if (v.Host?.SourcePath is { } source && !source.StartsWith('/'))
            {
                p.Add(fi + ".host.sourcePath", $"must be an absolute path, was '{source}'");
            }

            if (v.EfsVolumeConfiguration is { } efs)
            {
                p.Required(efs.FileSystemId, fi + ".efsVolumeConfiguration.fileSystemId");
                p.OneOf(efs.TransitEncryption, fi + ".efsVolumeConfiguration.transitEncryption", "ENABLED", "DISABLED");
                p.Range(efs.TransitEncryptionPort, 0, 65_535, fi + ".efsVolumeConfiguration.transitEncryptionPort");
                p.OneOf(efs.AuthorizationConfig?.Iam, fi + ".efsVolumeConfiguration.authorizationConfig.iam", "ENABLED", "DISABLED");
                var encrypted = efs.TransitEncryption == "ENABLED";
                if (!encrypted && (efs.AuthorizationConfig?.Iam == "ENABLED" || efs.AuthorizationConfig?.AccessPointId is not null))
                {
                    p.Add(fi + ".efsVolumeConfiguration.transitEncryption", "must be ENABLED when authorizationConfig uses IAM or an access point");
                }

                if (efs.AuthorizationConfig?.AccessPointId is not null && efs.RootDirectory is { } root && root != "/")
                {
                    p.Add(fi + ".efsVolumeConfiguration.rootDirectory", $"must be omitted or / with an access point, was '{root}'");
                }
            }
        }

        for (var i = 0; i < (cp.MountPoints?.Count ?? 0); i++)
        {
            var m = cp.MountPoints![i];
            var fi = string.Create(CultureInfo.InvariantCulture, $"{f}.mountPoints[{i}]");
            if (p.NullEntry(m, fi))
            {
                continue;
            }

            if (string.IsNullOrEmpty(m.ContainerPath) || !m.ContainerPath.StartsWith('/'))
            {
                p.Add(fi + ".containerPath", $"must be an absolute path, was '{m.ContainerPath}'");
            }

            if (string.IsNullOrEmpty(m.SourceVolume))
            {
                p.Add(fi + ".sourceVolume", "is required");
            }
            else if (!volumeNames.Contains(m.SourceVolume))
            {
                p.Add(fi + ".sourceVolume", $"must name one of the volumes, was '{m.SourceVolume}'");
            }
        }

        if (cp.Ulimits is { Count: > 0 } ulimits)
        {
            if (fargate)
            {
                p.Add(f + ".ulimits", "are not supported on Fargate");
            }

            for (var i = 0; i < ulimits.Count; i++)
            {
                var u = ulimits[i];
                var fi = string.Create(CultureInfo.InvariantCulture, $"{f}.ulimits[{i}]");
                p.Required(u?.Name, fi + ".name");
                p.Required(u?.SoftLimit, fi + ".softLimit");
                p.Required(u?.HardLimit, fi + ".hardLimit");
                if (u is { SoftLimit: { } soft, HardLimit: { } hard } && soft > hard)
                {
                    p.Add(fi + ".softLimit", string.Create(CultureInfo.InvariantCulture, $"must not exceed hardLimit {hard}, was {soft}"));
                }
            }
        }

        ValidateSecrets(cp.Secrets, p, f + ".secrets", reservedNames: true);
        if (cp.LogConfiguration is { } log)
        {
            p.Required(log.LogDriver, f + ".logConfiguration.logDriver");
            if (log.LogDriver is not null)
            {
                p.OneOf(log.LogDriver, f + ".logConfiguration.logDriver", fargate ? LogDrivers[..2] : LogDrivers);
            }

            ValidateSecrets(log.SecretOptions, p, f + ".logConfiguration.secretOptions", reservedNames: false);
        }

        if (cp.NetworkConfiguration is { } net)
        {
            if (!fargate)
            {
                p.Add(f + ".networkConfiguration", "is only for jobs on Fargate resources (must not be given on EC2)");
            }

            p.OneOf(net.AssignPublicIp, f + ".networkConfiguration.assignPublicIp", "ENABLED", "DISABLED");
        }

        if (cp.FargatePlatformConfiguration is not null && !fargate && !recovering) // accepted on EC2 before this rule
        {
            p.Add(f + ".fargatePlatformConfiguration", "is only for jobs on Fargate resources (must not be given on EC2)");
        }

        if (cp.EphemeralStorage is { } storage)
        {
            if (!fargate)
            {
                p.Add(f + ".ephemeralStorage", "is only for jobs on Fargate resources (must not be given on EC2)");
            }

            p.Required(storage.SizeInGiB, f + ".ephemeralStorage.sizeInGiB");
            p.Range(storage.SizeInGiB, 21, 200, f + ".ephemeralStorage.sizeInGiB");
        }

        if (cp.RepositoryCredentials is { } creds)
        {
            p.Required(creds.CredentialsParameter, f + ".repositoryCredentials.credentialsParameter");
        }
    }

    /// <summary>AWS's LinuxParameters rules: devices name a host path with READ / WRITE / MKNOD, sizes and swappiness in range.</summary>
    private static void ValidateLinuxParameters(LinuxParameters? lp, Problems p, string f)
    {
        if (lp is null)
        {
            return;
        }

        for (var i = 0; i < (lp.Devices?.Count ?? 0); i++)
        {
            var d = lp.Devices![i];
            var fi = string.Create(CultureInfo.InvariantCulture, $"{f}.devices[{i}]");
            p.Required(d?.HostPath, fi + ".hostPath");
            foreach (var perm in d?.Permissions ?? [])
            {
                p.OneOf(perm ?? "", fi + ".permissions", "READ", "WRITE", "MKNOD");
            }
        }

        for (var i = 0; i < (lp.Tmpfs?.Count ?? 0); i++)
        {
            var t = lp.Tmpfs![i];
            var fi = string.Create(CultureInfo.InvariantCulture, $"{f}.tmpfs[{i}]");
            p.Required(t?.ContainerPath, fi + ".containerPath");
            if (t is { Size: <= 0 })
            {
                p.Add(fi + ".size", string.Create(CultureInfo.InvariantCulture, $"must be a positive number of MiB, was {t.Size}"));
            }
        }

        p.Range(lp.SharedMemorySize, 0, int.MaxValue, f + ".sharedMemorySize");
        p.Range(lp.MaxSwap, 0, int.MaxValue, f + ".maxSwap");
        p.Range(lp.Swappiness, 0, 100, f + ".swappiness");
    }

    private static void ValidateSecrets(IReadOnlyList<Secret>? secrets, Problems p, string f, bool reservedNames)
    {
        for (var i = 0; i < (secrets?.Count ?? 0); i++)
        {
            var s = secrets![i];
            var fi = string.Create(CultureInfo.InvariantCulture, $"{f}[{i}]");
            p.Required(s?.Name, fi + ".name");
            p.Required(s?.ValueFrom, fi + ".valueFrom");
            if (reservedNames && s?.Name is { } name && name.StartsWith("AWS_BATCH", StringComparison.Ordinal))
            {
                p.Add(fi + ".name", $"must not start with AWS_BATCH (reserved), was {name}");
            }
        }
    }

    public static void ValidatePlatformResources(double? vcpus, int? memory, int? gpus, bool fargate, Problems p, string f)
    {
        if (fargate)
        {
            if (gpus is > 0)
            {
                p.Add(f, "GPU resources are not available for jobs that run on Fargate resources");
            }

            if (vcpus is { } v && memory is { } m && !FargateSizes.IsValid(v, m))
            {
                p.Add(f, string.Create(CultureInfo.InvariantCulture, $"VCPU {v} with MEMORY {m} is not a valid Fargate size: {FargateSizes.Describe(v)}"));
            }
        }
        else if (vcpus is { } v && v < 1)
        {
            p.Add(f, string.Create(CultureInfo.InvariantCulture, $"VCPU must be at least 1 for jobs on EC2 resources, was {v}"));
        }
    }

    public static void ValidateEnvironment(IReadOnlyList<Model.KeyValuePair>? env, Problems p, string f)
    {
        if (env is null)
        {
            return;
        }

        for (var i = 0; i < env.Count; i++)
        {
            if (p.NullEntry(env[i], $"{f}[{i}]"))
            {
                continue;
            }

            var name = env[i].Name;
            if (string.IsNullOrEmpty(name))
            {
                p.Add($"{f}[{i}].name", "is required");
            }
            else if (name.StartsWith("AWS_BATCH", StringComparison.Ordinal))
            {
                p.Add($"{f}[{i}].name", $"must not start with AWS_BATCH (reserved), was {name}");
            }
        }
    }

    public static (double? Vcpus, int? Memory, int? Gpus) ValidateResourceRequirements(IReadOnlyList<ResourceRequirement>? reqs, Problems p, string f)
    {
        double? vcpus = null;
        int? memory = null;
        int? gpus = null;
        if (reqs is null)
        {
            return (vcpus, memory, gpus);
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < reqs.Count; i++)
        {
            var r = reqs[i];
            var fi = $"{f}[{i}]";
            if (p.NullEntry(r, fi))
            {
                continue;
            }

            if (r.Type is null)
            {
                p.Add(fi + ".type", "is required");
                continue;
            }

            if (!seen.Add(r.Type))
            {
                p.Add(fi + ".type", $"{r.Type} is given more than once");
            }

            switch (r.Type)
            {
                case ResourceType.VCPU:
                    if (double.TryParse(r.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && v > MaxVcpus)
                    {
                        p.Add(fi + ".value", string.Create(CultureInfo.InvariantCulture, $"VCPU must be at most {MaxVcpus} (the engine counts thousandths of a vCPU in an int), was '{r.Value}'"));
                    }
                    else if (v > 0)
                    {
                        vcpus = v;
                    }
                    else
                    {
                        p.Add(fi + ".value", $"VCPU must be a positive number, was '{r.Value}'");
                    }

                    break;
                case ResourceType.MEMORY:
                    if (int.TryParse(r.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var m) && m >= 4)
                    {
                        memory = m;
                    }
                    else
                    {
                        p.Add(fi + ".value", $"MEMORY must be a whole number of MiB, at least 4, was '{r.Value}'");
                    }

                    break;
                case ResourceType.GPU:
                    if (int.TryParse(r.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var g) && g >= 0)
                    {
                        gpus = g;
                    }
                    else
                    {
                        p.Add(fi + ".value", $"GPU must be a whole number, was '{r.Value}'");
                    }

                    break;
                default:
                    p.Add(fi + ".type", $"must be one of GPU | VCPU | MEMORY, was {r.Type}");
                    break;
            }
        }

        return (vcpus, memory, gpus);
    }

    // recovering: a replayed definition written before the character rules of the globs still recovers.
    public static void ValidateRetryStrategy(RetryStrategy? rs, Problems p, string f, bool recovering = false)
    {
        if (rs is null)
        {
            return;
        }

        if (rs.Attempts is null && rs.EvaluateOnExit is not null)
        {
            p.Add(f + ".attempts", "is required when evaluateOnExit is given");
        }

        p.Range(rs.Attempts, 1, 10, f + ".attempts");
        if (rs.EvaluateOnExit is not { } list)
        {
            return;
        }

        if (list.Count > 5)
        {
            p.Add(f + ".evaluateOnExit", $"must have at most 5 entries, had {list.Count}");
        }

        for (var i = 0; i < list.Count; i++)
        {
            var e = list[i];
            var fi = $"{f}.evaluateOnExit[{i}]";
            if (p.NullEntry(e, fi))
            {
                continue;
            }

            if (e.Action is null)
            {
                p.Add(fi + ".action", "is required");
            }
            else if (!e.Action.Equals(RetryAction.RETRY, StringComparison.OrdinalIgnoreCase) && !e.Action.Equals(RetryAction.EXIT, StringComparison.OrdinalIgnoreCase))
            {
                p.Add(fi + ".action", $"must be one of RETRY | EXIT, was {e.Action}");
            }

            CheckGlob(e.OnStatusReason, fi + ".onStatusReason", p, digitsOnly: false, recovering);
            CheckGlob(e.OnReason, fi + ".onReason", p, digitsOnly: false, recovering);
            CheckGlob(e.OnExitCode, fi + ".onExitCode", p, digitsOnly: true, recovering);
        }
    }

    private static void CheckGlob(string? glob, string f, Problems p, bool digitsOnly, bool recovering)
    {
        if (glob is null)
        {
            return;
        }

        // AWS EvaluateOnExit: 1-512 characters; onStatusReason and onReason letters, digits, periods, colons and white
        // space, onExitCode digits; either may end with * (a prefix match).
        if (glob.Length == 0 && !recovering)
        {
            p.Add(f, "must be 1 to 512 characters, was empty");
            return;
        }

        p.MaxLength(glob, 512, f);
        var star = glob.IndexOf('*', StringComparison.Ordinal);
        if (star >= 0 && star != glob.Length - 1)
        {
            p.Add(f, $"may contain * only at the end, was '{glob}'");
        }

        var body = glob.AsSpan(0, glob.Length - (glob.EndsWith('*') ? 1 : 0));
        if (digitsOnly)
        {
            foreach (var c in body)
            {
                if (!char.IsAsciiDigit(c) && c != '*')
                {
                    p.Add(f, $"may contain only digits (and a trailing *), was '{glob}'");
                    break;
                }
            }
        }
        else if (!recovering)
        {
            foreach (var c in body)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or ':' or '*') && !char.IsWhiteSpace(c))
                {
                    p.Add(f, $"may contain only letters, digits, periods, colons and white space (and a trailing *), was '{glob}'");
                    break;
                }
            }
        }
    }

    public static void ValidateTimeout(JobTimeout? t, Problems p, string f, BatchEngineOptions options)
    {
        if (t?.AttemptDurationSeconds is not { } s)
        {
            return;
        }

        var min = options.AllowShortTimeouts ? 1 : 60;
        if (s < min)
        {
            p.Add(f + ".attemptDurationSeconds", options.AllowShortTimeouts
                ? $"must be at least 1, was {s}"
                : $"must be at least 60 (AWS's minimum; the engine option AllowShortTimeouts permits 1), was {s}");
        }
    }
}
