namespace BatchCore.Hosts;

/// <summary>
/// Supplies the hosts of an UNMANAGED compute environment from a system that owns them (a Slurm cluster's nodes):
/// the compute environment names it in <c>provider</c>, and the engine creates it with the factory registered under
/// that name in <see cref="BatchEngineOptions.HostProviders"/>. The provider reports hosts as they become usable and as
/// they go away; the engine adds them to the compute environment or removes them, and ends the attempts of a lost host
/// as host failures (host-terminated reason) that retry per retryStrategy, as for a terminated EC2 instance.
/// </summary>
public abstract class HostProvider : IAsyncDisposable
{
    /// <summary>The provider name as written in specs, e.g. <c>slurm</c>.</summary>
    public abstract string Kind { get; }

    /// <summary>
    /// Starts discovery. Called once, from the scheduling loop, right after the compute environment is created: must not
    /// block. Reports every host through <paramref name="membership"/> from any thread.
    /// </summary>
    public abstract void Start(IHostMembershipSink membership);

    /// <summary>
    /// The driver every host of this provider runs attempts with, or null (the default) when there is no single one.
    /// After a restart the engine recovers before the provider has reported its hosts again, and hands this driver
    /// the attempts its previous run had on them, so that none is left running beside its retry.
    /// </summary>
    public virtual HostDriver? Driver => null;

    /// <summary>Stops discovery and releases the provider's resources (and the drivers it created).</summary>
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}

/// <summary>Receives host changes from a <see cref="HostProvider"/>. Thread-safe; never blocks.</summary>
public interface IHostMembershipSink
{
    /// <summary>
    /// A host became usable (or came back): it joins the compute environment. A known host name is ignored; so is a host
    /// outside a listed host's limits (vCPUs above 0 and at most 1,000,000, memory and GPUs not negative, architecture
    /// <c>x86_64</c> or <c>arm64</c>), which is reported through <see cref="BatchEngineOptions.UnexpectedError"/>.
    /// </summary>
    void HostAvailable(ProvidedHost host);

    /// <summary>
    /// A host stopped being usable: it leaves the compute environment at once (nothing new is placed on it), and the
    /// attempts running there are terminated and end as host failures with <paramref name="reason"/> as statusReason.
    /// An unknown host name is ignored.
    /// </summary>
    void HostLost(string hostName, string reason);
}

/// <summary>A host reported by a <see cref="HostProvider"/>. Immutable.</summary>
public sealed record ProvidedHost
{
    /// <summary>The host's name, unique in its compute environment (Slurm: the node name).</summary>
    public required string HostName { get; init; }

    /// <summary>The vCPUs jobs may use.</summary>
    public required double Vcpus { get; init; }

    /// <summary>The memory (MiB) jobs may use.</summary>
    public required int MemoryMiB { get; init; }

    /// <summary>The GPUs jobs may use.</summary>
    public int Gpus { get; init; }

    /// <summary><c>x86_64</c> or <c>arm64</c>.</summary>
    /// <value>The default is <c>x86_64</c>.</value>
    public string Architecture { get; init; } = "x86_64";

    /// <summary>The driver that runs attempts on this host.</summary>
    public required HostDriver Driver { get; init; }
}
