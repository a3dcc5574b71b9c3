using BatchCore.Logs;
using BatchCore.Model;

namespace BatchCore.Hosts.Slurm;

/// <summary>
/// The <c>slurm</c> host provider: the nodes of a Slurm cluster (of one partition) become the hosts of an UNMANAGED
/// compute environment, with the CPUs, memory (<c>RealMemory</c>) and GPUs (<c>gres</c>) <c>sinfo --json</c> reports.
/// A node joins when it is up (idle, mixed, allocated) and leaves when Slurm stops starting jobs there (DOWN, DRAIN,
/// FAIL, ...): the engine then ends its attempts as host failures that retry per retryStrategy. Every host shares one
/// <see cref="SlurmHostDriver"/>.
/// </summary>
public sealed class SlurmHostProvider : HostProvider
{
    /// <summary>The provider's name in specs: <c>slurm</c>.</summary>
    public const string Name = "slurm";

    private readonly SlurmOptions _options;
    private readonly SlurmCommands _commands;
    private readonly SlurmHostDriver _driver;
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<string> _usable = new(StringComparer.Ordinal);
    private Task? _loop;
    private int _disposed;

    /// <summary>Creates the provider and its driver.</summary>
    /// <exception cref="BatchClientException">The options break a rule.</exception>
    public SlurmHostProvider(SlurmOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options with { };
        _commands = new SlurmCommands(_options);
        _driver = new SlurmHostDriver(_options);
    }

    /// <summary>
    /// A factory for <see cref="BatchEngineOptions.HostProviders"/> (key <c>slurm</c>): each compute environment gets a
    /// provider built from its <c>providerSettings</c>, its attempts' output going to <paramref name="logStore"/>.
    /// </summary>
    public static Func<CreateComputeEnvironmentRequest, HostProvider> Factory(LogStore logStore, Func<SlurmOptions, SlurmOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(logStore);
        return request =>
        {
            var options = SlurmOptions.FromSettings(request.ProviderSettings, logStore);
            return new SlurmHostProvider(configure is null ? options : configure(options));
        };
    }

    /// <inheritdoc />
    public override string Kind => Name;

    /// <summary>The driver every host of this provider runs attempts with.</summary>
    public override SlurmHostDriver Driver => _driver;

    /// <summary>The last error of a node query (null after a successful one): for diagnostics.</summary>
    public string? LastError { get; private set; }

    /// <inheritdoc />
    public override void Start(IHostMembershipSink membership)
    {
        ArgumentNullException.ThrowIfNull(membership);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_loop is not null)
        {
            throw new InvalidOperationException("the provider is already started");
        }

        _loop = Task.Run(() => RunAsync(membership));
    }

    private async Task RunAsync(IHostMembershipSink membership)
    {
        var ct = _stop.Token;
        using var timer = new PeriodicTimer(_options.NodePollInterval, _options.TimeProvider);
        do
        {
            await RefreshAsync(membership, ct).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false));
    }

    /// <summary>One sinfo: nodes that became usable join, nodes that stopped being usable (or vanished) leave.</summary>
    internal async Task RefreshAsync(IHostMembershipSink membership, CancellationToken ct)
    {
        var (nodes, error) = await _commands.NodesAsync(ct).ConfigureAwait(false);
        LastError = error;
        if (nodes is null)
        {
            return; // the controller did not answer: keep the hosts as they are (their jobs report on their own)
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in nodes)
        {
            if (_options.Partition is { } partition && !node.Partitions.Contains(partition))
            {
                continue;
            }

            seen.Add(node.Name);
            if (node.Usable)
            {
                if (_usable.Add(node.Name))
                {
                    membership.HostAvailable(new ProvidedHost
                    {
                        HostName = node.Name,
                        Vcpus = node.Cpus,
                        MemoryMiB = node.RealMemoryMiB,
                        Gpus = node.Gpus,
                        Architecture = node.Architecture == "aarch64" ? "arm64" : "x86_64",
                        Driver = _driver,
                    });
                }
            }
            else if (_usable.Remove(node.Name))
            {
                var why = node.Reason.Length > 0 ? $" ({node.Reason})" : "";
                membership.HostLost(node.Name, $"{SlurmHostDriver.HostTerminatedPrefix}{node.Name}) terminated: Slurm node {node.Describe()}{why}");
            }
        }

        foreach (var name in _usable.ToList())
        {
            if (!seen.Contains(name))
            {
                _usable.Remove(name);
                membership.HostLost(name, $"{SlurmHostDriver.HostTerminatedPrefix}{name}) terminated: Slurm node removed from the cluster");
            }
        }
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is { } loop)
        {
            try
            {
                await loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        await _driver.DisposeAsync().ConfigureAwait(false);
        _commands.Dispose();
        _stop.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
