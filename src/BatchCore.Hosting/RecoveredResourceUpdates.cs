using BatchCore.Model;

namespace BatchCore.Hosting;

/// <summary>
/// On an engine recovered from its journal, what the configuration now says about a resource the engine already has:
/// the AWS update that brings the resource to the configuration (null when they agree), or a
/// <see cref="BatchClientException"/> naming the field when the change is one AWS allows no update of (a compute
/// environment's or a job queue's type, a consumable resource's type) or BatchCore has no update for (an UNMANAGED compute environment's
/// hosts). Only the fields the configuration sets are compared: a field it leaves out keeps what the engine has (a queue
/// an operator disabled stays disabled unless the configuration names its state), and desiredvCpus, which the engine
/// itself moves with demand, is never compared. Tags are added or changed, never removed (others may have tagged the
/// resource since). The hosted service checks every configured resource here before it changes any, so a change of
/// these kinds fails the start with nothing applied; an update the engine itself then refuses (a rule of the Update
/// API, e.g. minvCpus above maxvCpus) fails the start naming the resource, with the resources before it updated.
/// </summary>
internal static class RecoveredResourceUpdates
{
    /// <exception cref="BatchClientException">The configuration changes the queue's type.</exception>
    public static UpdateJobQueueRequest? JobQueue(CreateJobQueueRequest configured, JobQueueDetail recovered)
    {
        if (Differs(configured.JobQueueType, recovered.JobQueueType, ignoreCase: true))
        {
            throw Immutable("jobQueueType", recovered.JobQueueType, "a job queue's type cannot be updated");
        }

        if (configured.SchedulingPolicyArn is not null && recovered.SchedulingPolicyArn is null)
        {
            throw Immutable("schedulingPolicyArn", null, "a job queue created without a scheduling policy (FIFO) cannot get one");
        }

        var state = Differs(configured.State, recovered.State, ignoreCase: true) ? configured.State : null;
        var priority = configured.Priority is { } p && p != recovered.Priority ? configured.Priority : null;
        var policy = configured.SchedulingPolicyArn is { } arn && NameOf(arn) != NameOf(recovered.SchedulingPolicyArn) ? arn : null;
        var order = configured.ComputeEnvironmentOrder is { } o && !SameOrder(o, recovered.ComputeEnvironmentOrder) ? o : null;
        var limits = configured.JobStateTimeLimitActions is { } l && !l.SequenceEqual(recovered.JobStateTimeLimitActions) ? l : null;
        var extensions = configured.Extensions is { } x && x != (recovered.Extensions ?? new JobQueueExtensions()) ? x : null;
        return state is null && priority is null && policy is null && order is null && limits is null && extensions is null
            ? null
            : new UpdateJobQueueRequest
            {
                JobQueue = recovered.JobQueueArn,
                State = state,
                Priority = priority,
                SchedulingPolicyArn = policy,
                ComputeEnvironmentOrder = order,
                JobStateTimeLimitActions = limits,
                Extensions = extensions,
            };
    }

    /// <param name="configured">The configuration.</param>
    /// <param name="recovered">What the engine describes.</param>
    /// <param name="warning">
    /// Set when the configured hosts of an UNMANAGED compute environment differ from the recovered ones in capacity only
    /// (vCPUs, memory, GPUs): the recovered hosts are kept. A local environment sized from the machine
    /// (<c>AddLocalComputeEnvironment</c>'s defaults) differs so after a move to another machine or a resize, which must
    /// not stop the app from starting.
    /// </param>
    /// <exception cref="BatchClientException">The configuration changes what cannot be updated.</exception>
    public static UpdateComputeEnvironmentRequest? ComputeEnvironment(CreateComputeEnvironmentRequest configured, ComputeEnvironmentDetail recovered, out string? warning)
    {
        warning = null;
        if (Differs(configured.Type, recovered.Type, ignoreCase: true))
        {
            throw Immutable("type", recovered.Type, "a compute environment's type cannot be updated");
        }

        if (configured.Hosts is { } hosts && !hosts.SequenceEqual(recovered.Hosts ?? []))
        {
            var had = recovered.Hosts ?? [];
            if (hosts.Count != had.Count || !hosts.Zip(had).All(p => p.First with { Vcpus = 0, MemoryMiB = 0, Gpus = 0 } == p.Second with { Vcpus = 0, MemoryMiB = 0, Gpus = 0 }))
            {
                throw Immutable("hosts", null, "BatchCore has no update of an UNMANAGED compute environment's hosts (names, drivers, endpoints, architectures)");
            }

            warning = "the configured hosts' capacity differs from the recovered hosts' (vCPUs, memory or GPUs); the recovered capacity is kept";
        }

        if (Differs(configured.Provider, recovered.Provider) ||
            (configured.ProviderSettings is { } settings && !SameTags(settings, recovered.ProviderSettings)))
        {
            throw Immutable("provider", recovered.Provider, "a compute environment's provider and its settings cannot be updated");
        }

        var state = Differs(configured.State, recovered.State, ignoreCase: true) ? configured.State : null;
        var unmanaged = configured.UnmanagedvCpus is { } u && u != recovered.UnmanagedvCpus ? configured.UnmanagedvCpus : null;
        var role = Differs(configured.ServiceRole, recovered.ServiceRole) ? configured.ServiceRole : null;
        var resources = configured.ComputeResources is { } c && recovered.ComputeResources is { } r ? ComputeResources(c, r) : null;
        return state is null && unmanaged is null && role is null && resources is null
            ? null
            : new UpdateComputeEnvironmentRequest
            {
                ComputeEnvironment = recovered.ComputeEnvironmentArn,
                State = state,
                UnmanagedvCpus = unmanaged,
                ServiceRole = role,
                ComputeResources = resources,
            };
    }

    private static ComputeResourceUpdate? ComputeResources(ComputeResource c, ComputeResource r)
    {
        if (Differs(c.SpotIamFleetRole, r.SpotIamFleetRole))
        {
            throw Immutable("computeResources.spotIamFleetRole", r.SpotIamFleetRole, "AWS has no update of it");
        }

        var update = new ComputeResourceUpdate
        {
            Type = Differs(c.Type, r.Type, ignoreCase: true) ? c.Type : null,
            MinvCpus = c.MinvCpus is { } min && min != r.MinvCpus ? min : null,
            MaxvCpus = c.MaxvCpus is { } max && max != r.MaxvCpus ? max : null,
            AllocationStrategy = Differs(c.AllocationStrategy, r.AllocationStrategy, ignoreCase: true) ? c.AllocationStrategy : null,
            InstanceTypes = c.InstanceTypes is { } types && !types.SequenceEqual(r.InstanceTypes ?? []) ? types : null,
            Subnets = c.Subnets is { } subnets && !subnets.SequenceEqual(r.Subnets ?? []) ? subnets : null,
            SecurityGroupIds = c.SecurityGroupIds is { } groups && !groups.SequenceEqual(r.SecurityGroupIds ?? []) ? groups : null,
            BidPercentage = c.BidPercentage is { } bid && bid != r.BidPercentage ? bid : null,
            ImageId = Differs(c.ImageId, r.ImageId) ? c.ImageId : null,
            InstanceRole = Differs(c.InstanceRole, r.InstanceRole) ? c.InstanceRole : null,
            Ec2KeyPair = Differs(c.Ec2KeyPair, r.Ec2KeyPair) ? c.Ec2KeyPair : null,
            ScalingPolicy = c.ScalingPolicy is { } scaling && scaling != r.ScalingPolicy ? scaling : null,
            Tags = c.Tags is { } tags && !SameTags(tags, r.Tags) ? tags : null,
            PlacementGroup = Differs(c.PlacementGroup, r.PlacementGroup) ? c.PlacementGroup : null,
            LaunchTemplate = c.LaunchTemplate is { } template && template != r.LaunchTemplate ? template : null,
            Ec2Configuration = c.Ec2Configuration is { } ec2 && !ec2.SequenceEqual(r.Ec2Configuration ?? []) ? ec2 : null,
        };
        return update == new ComputeResourceUpdate() ? null : update;
    }

    public static UpdateSchedulingPolicyRequest? SchedulingPolicy(CreateSchedulingPolicyRequest configured, SchedulingPolicyDetail recovered) =>
        configured.FairsharePolicy is { } policy && !SamePolicy(policy, recovered.FairsharePolicy)
            ? new UpdateSchedulingPolicyRequest { Arn = recovered.Arn, FairsharePolicy = policy }
            : null;

    /// <exception cref="BatchClientException">The configuration changes the resource's type.</exception>
    public static UpdateConsumableResourceRequest? ConsumableResource(CreateConsumableResourceRequest configured, ConsumableResourceDetail recovered)
    {
        if (Differs(configured.ResourceType, recovered.ResourceType, ignoreCase: true))
        {
            throw Immutable("resourceType", recovered.ResourceType, "a consumable resource's type cannot be updated");
        }

        return configured.TotalQuantity is { } total && total != recovered.TotalQuantity
            ? new UpdateConsumableResourceRequest { ConsumableResource = recovered.ConsumableResourceArn, Operation = "SET", Quantity = total }
            : null;
    }

    /// <summary>The configured tags the recovered resource lacks or has with another value (null when none).</summary>
    public static IReadOnlyDictionary<string, string>? Tags(IReadOnlyDictionary<string, string>? configured, IReadOnlyDictionary<string, string> recovered)
    {
        Dictionary<string, string>? changed = null;
        foreach (var (key, value) in configured ?? new Dictionary<string, string>())
        {
            if (!recovered.TryGetValue(key, out var had) || had != value)
            {
                (changed ??= new Dictionary<string, string>(StringComparer.Ordinal))[key] = value;
            }
        }

        return changed;
    }

    /// <summary>A configured value that differs from the recovered one; only AWS's enum values compare ignoring case.</summary>
    private static bool Differs(string? configured, string? recovered, bool ignoreCase = false) =>
        configured is not null && !string.Equals(configured, recovered, ignoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);

    /// <summary>A resource's name from its name or ARN (the part after the last '/').</summary>
    private static string? NameOf(string? nameOrArn) => nameOrArn is null ? null : nameOrArn[(nameOrArn.LastIndexOf('/') + 1)..];

    private static bool SameOrder(IReadOnlyList<ComputeEnvironmentOrder> configured, IReadOnlyList<ComputeEnvironmentOrder> recovered) =>
        configured.Count == recovered.Count &&
        configured.OrderBy(e => e.Order).Zip(recovered.OrderBy(e => e.Order))
            .All(p => p.First.Order == p.Second.Order && NameOf(p.First.ComputeEnvironment) == NameOf(p.Second.ComputeEnvironment));

    private static bool SamePolicy(FairsharePolicy configured, FairsharePolicy recovered) =>
        configured.ShareDecaySeconds == recovered.ShareDecaySeconds &&
        configured.ComputeReservation == recovered.ComputeReservation &&
        configured.ShareDistribution.SequenceEqual(recovered.ShareDistribution);

    private static bool SameTags(IReadOnlyDictionary<string, string> configured, IReadOnlyDictionary<string, string>? recovered) =>
        configured.Count == (recovered?.Count ?? 0) && configured.All(t => recovered!.TryGetValue(t.Key, out var v) && v == t.Value);

    private static BatchClientException Immutable(string field, string? recovered, string rule) =>
        new($"{field} differs from the value recovered from the state directory" + (recovered is null ? "" : $" ({recovered})") +
            $": {rule}. Keep the recovered value, or give the changed resource a new name");
}
