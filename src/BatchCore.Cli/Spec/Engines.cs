using BatchCore.Cli.Hosts;
using BatchCore.Hosts;
using BatchCore.Hosts.Docker;
using BatchCore.Hosts.Process;
using BatchCore.Hosts.Slurm;
using BatchCore.Logs;
using BatchCore.Model;

namespace BatchCore.Cli.Spec;

/// <summary>The engines the CLI builds: a throwaway one on virtual time to validate, a real one to run.</summary>
internal static class Engines
{
    /// <summary>The provider <c>run</c> gives MANAGED compute environments that name none: instance-sized slices of this machine.</summary>
    public const string DefaultProvider = "local";

    /// <summary>
    /// A MANAGED compute environment without a <c>provider</c> gets <see cref="DefaultProvider"/>, so its jobs run
    /// as local processes (the engine's own default would be simulated hosts).
    /// </summary>
    public static CreateComputeEnvironmentRequest WithDefaultProvider(CreateComputeEnvironmentRequest r) =>
        r.Provider is null && string.Equals(r.Type, CEType.MANAGED, StringComparison.Ordinal) ? r with { Provider = DefaultProvider } : r;

    /// <summary>
    /// An engine on virtual time whose process and docker drivers run nothing: creating the spec's entries in it checks
    /// every AWS rule without starting a job. Docker endpoints are still checked (scheme, allowInsecureRemote).
    /// </summary>
    public static BatchEngine ForValidation(bool allowShortTimeouts) => new(new BatchEngineOptions
    {
        VirtualTime = true,
        AllowShortTimeouts = allowShortTimeouts,
        DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>(StringComparer.Ordinal)
        {
            ["process"] = _ => new InertHostDriver("process"),
            ["docker"] = spec =>
            {
                var probe = new DockerHostDriver(DockerOptions(spec, new InMemoryLogStore()));
                probe.DisposeAsync().AsTask().GetAwaiter().GetResult();
                return new InertHostDriver("docker");
            },
        },
        // provider: slurm is checked (its providerSettings) without contacting a cluster: no hosts join.
        HostProviders = new Dictionary<string, Func<CreateComputeEnvironmentRequest, HostProvider>>(StringComparer.Ordinal)
        {
            [SlurmHostProvider.Name] = r =>
            {
                _ = SlurmOptions.FromSettings(r.ProviderSettings, new InMemoryLogStore());
                return new InertHostProvider(SlurmHostProvider.Name);
            },
        },
    });

    /// <summary>Where <c>requires: docker</c> entries expect a daemon.</summary>
    public const string DefaultDockerEndpoint = "unix:///var/run/docker.sock";

    /// <summary>Whether a Docker daemon answers a ping at <see cref="DefaultDockerEndpoint"/> within two seconds.</summary>
    public static async Task<bool> DockerAvailableAsync()
    {
        if (!File.Exists("/var/run/docker.sock"))
        {
            return false;
        }

        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            using var client = new Docker.DotNet.DockerClientConfiguration(new Uri(DefaultDockerEndpoint)).CreateClient();
            await client.System.PingAsync(cts.Token);
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return false;
        }
    }

    /// <summary>An engine on the real clock with the process and docker drivers writing to <paramref name="logs"/>.</summary>
    public static BatchEngine ForRun(bool allowShortTimeouts, LogStore logs, string? journalDirectory = null) => new(new BatchEngineOptions
    {
        // With a state directory, every state change is journaled there and an interrupted run resumes.
        Journal = journalDirectory is null ? new() : new BatchCore.Journal.JournalOptions { Durability = BatchCore.Journal.Durability.Journal, StateDirectory = journalDirectory },
        // A fresh seed per run: job ids (and so log stream names) differ between runs, as on AWS.
        Seed = Random.Shared.Next(),
        AllowShortTimeouts = allowShortTimeouts,
        LogStore = logs,
        DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>>(StringComparer.Ordinal)
        {
            ["process"] = _ => new ProcessHostDriver(new ProcessHostDriverOptions { LogStore = logs }),
            ["docker"] = spec => new DockerHostDriver(DockerOptions(spec, logs)),
        },
        // UNMANAGED CEs with provider: slurm get the cluster's nodes as hosts (providerSettings: slurmConf, partition, ...).
        HostProviders = new Dictionary<string, Func<CreateComputeEnvironmentRequest, HostProvider>>(StringComparer.Ordinal)
        {
            [SlurmHostProvider.Name] = SlurmHostProvider.Factory(logs),
        },
    });

    /// <summary>Validates a spec: reading problems first, then every entry the engine rejects, each with its path.</summary>
    public static async Task<List<SpecProblem>> ValidateAsync(SpecDocument spec, bool allowShortTimeouts, CancellationToken ct)
    {
        var problems = new List<SpecProblem>(spec.Problems);
        var engine = ForValidation(allowShortTimeouts);
        try
        {
            var applier = new SpecApplier(engine);
            await applier.ApplyAsync(spec, WithDefaultProvider, ct);
            problems.AddRange(applier.Problems);

            // Engine (StopAsync): it terminates the attempts running when it is called, but the capacity they free is
            // given to queued jobs until it times out. Ending every job first lets it stop at once.
            foreach (var job in applier.Jobs)
            {
                await engine.TerminateJobAsync(job.JobId, "validation done", ct);
            }
        }
        finally
        {
            await engine.StopAsync(TimeSpan.FromSeconds(5));
        }

        return problems;
    }

    private static DockerHostDriverOptions DockerOptions(HostSpec spec, LogStore logs) => new()
    {
        LogStore = logs,
        Endpoint = spec.Endpoint ?? DockerHostDriverDefaults.Endpoint,
        AllowInsecureRemote = spec.AllowInsecureRemote,
    };
}
