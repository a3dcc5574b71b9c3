using BatchCore.Hosts;

namespace BatchCore.Dispatch;

/// <summary>
/// What a driver (or a host provider) reported: a struct, so the event channel allocates nothing per attempt event.
/// <paramref name="Handle"/> is the driver's re-attach handle of a started attempt (journaled);
/// <paramref name="Membership"/> is set only for a host provider's (rare) host changes; <paramref name="Simulated"/> only
/// for the exit of a terminated attempt on the engine's own simulated hosts, which are not in the attempt map.
/// </summary>
internal readonly record struct HostEvent(bool Started, AttemptToken Token, AttemptExit Exit, string? Handle = null, MembershipChange? Membership = null, Jobs.Job? Simulated = null);

/// <summary>A host provider's report: <see cref="Available"/> joins the CE, else <see cref="LostHost"/> leaves it.</summary>
internal sealed record MembershipChange(ComputeEnvironmentState ComputeEnvironment, ProvidedHost? Available, string? LostHost, string? Reason);
