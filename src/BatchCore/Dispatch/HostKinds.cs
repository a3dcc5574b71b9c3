using BatchCore.Hosts;
using BatchCore.Jobs;

namespace BatchCore.Dispatch;

/// <summary>What a host can run: in-process handlers, commands (processes, containers, Slurm jobs), or both.</summary>
internal enum HostKind : byte
{
    /// <summary>The engine's simulated hosts: any job.</summary>
    Both,
    /// <summary><c>inprocess</c> hosts: jobs whose definition names a handler.</summary>
    Handlers,
    /// <summary>Every other driver: jobs that run a command or an image.</summary>
    Commands,
}

/// <summary>The one place that decides a host's <see cref="HostKind"/> (placement's driver-kind filter, its explanation, CE validation).</summary>
internal static class HostKinds
{
    public static HostKind Of(HostDriver driver) => driver switch
    {
        SimulatedHostDriver => HostKind.Both,
        Hosts.InProcess.InProcessHostDriver => HostKind.Handlers,
        _ => HostKind.Commands,
    };

    /// <summary>Whether a host of <paramref name="kind"/> runs a job of <paramref name="spec"/>.</summary>
    public static bool Runs(HostKind kind, JobSpec spec) => kind == HostKind.Both || (kind == HostKind.Handlers) == spec.IsHandlerJob;
}
