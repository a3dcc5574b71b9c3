using BatchCore.Hosts;

namespace BatchCore.Cli.Hosts;

/// <summary>
/// Stands in for a host provider (slurm) while a spec is validated: contacts nothing and reports no host, so the
/// compute environment is checked without a cluster.
/// </summary>
internal sealed class InertHostProvider(string kind) : HostProvider
{
    public override string Kind { get; } = kind;

    public override void Start(IHostMembershipSink membership)
    {
    }
}
