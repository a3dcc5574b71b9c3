using BatchCore.Hosts;

namespace BatchCore.Dispatch;

/// <summary>What a driver reported: a struct, so the event channel allocates nothing per event.</summary>
internal readonly record struct HostEvent(bool Started, AttemptToken Token, AttemptExit Exit, string? Handle = null);
