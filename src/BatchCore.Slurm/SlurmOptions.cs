using BatchCore.Logs;

namespace BatchCore.Hosts.Slurm;

/// <summary>Default values of <see cref="SlurmOptions"/>, in one place.</summary>
public static class SlurmDefaults
{
    /// <summary>Where Debian installs <c>sbatch</c>, <c>squeue</c>, <c>sinfo</c> and <c>scancel</c>: <c>/usr/bin</c>.</summary>
    public const string BinDirectory = "/usr/bin";

    /// <summary>The <c>PATH</c> a job starts with unless its environment sets one.</summary>
    public const string JobPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>How many Slurm commands (sbatch, squeue, scancel) one driver runs at a time: 4.</summary>
    public const int MaxConcurrentCommands = 4;

    /// <summary>How often the driver asks <c>squeue</c> about its jobs and reads their output files: every 200 ms.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    /// <summary>How often the provider asks <c>sinfo</c> about the nodes: every second.</summary>
    public static readonly TimeSpan NodePollInterval = TimeSpan.FromSeconds(1);

    /// <summary>How much longer than the attempt's timeout Slurm's own <c>--time</c> limit is: 2 minutes.</summary>
    public static readonly TimeSpan TimeLimitMargin = TimeSpan.FromMinutes(2);

    /// <summary>How long one Slurm command may take before it counts as failed: 30 seconds.</summary>
    public static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How long a job the driver submitted may be missing from <c>squeue</c> before its attempt ends as a host failure (and how long a failed sbatch's job is looked for): 30 seconds.</summary>
    public static readonly TimeSpan LostJobTimeout = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Configures the Slurm driver and provider (<see cref="SlurmHostDriver"/>, <see cref="SlurmHostProvider"/>). Validated
/// and copied when they are created. Spec keys (<c>providerSettings</c>): <c>slurmConf</c>, <c>partition</c>,
/// <c>sharedDirectory</c>, <c>binDirectory</c>.
/// </summary>
public sealed record SlurmOptions
{
    /// <summary>Receives every attempt's output lines (stream <see cref="AttemptLaunch.LogStreamName"/>).</summary>
    public required LogStore LogStore { get; init; }

    /// <summary>Stamps log lines and paces polling.</summary>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>The cluster's <c>slurm.conf</c>, passed to every command as <c>SLURM_CONF</c>. Null: Slurm's default.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? SlurmConf { get; init; }

    /// <summary>The partition jobs go to (<c>--partition</c>) and whose nodes become hosts. Null: the default partition, all nodes.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? Partition { get; init; }

    /// <summary>
    /// Where the driver keeps each attempt's environment, output and result files. Every node must see it at the same
    /// path (a shared file system on a real cluster). Null: a new temporary directory, which only works when the nodes
    /// share this machine's file system.
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? SharedDirectory { get; init; }

    /// <summary>The directory holding <c>sbatch</c>, <c>squeue</c>, <c>sinfo</c> and <c>scancel</c>.</summary>
    /// <value>The default is <c>/usr/bin</c>.</value>
    public string BinDirectory { get; init; } = SlurmDefaults.BinDirectory;

    /// <summary>The <c>PATH</c> a job starts with unless its environment sets one.</summary>
    /// <value>The default is <c>/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin</c>.</value>
    public string JobPath { get; init; } = SlurmDefaults.JobPath;

    /// <summary>How often the driver polls <c>squeue</c> and the output files.</summary>
    /// <value>The default is 200 ms.</value>
    public TimeSpan PollInterval { get; init; } = SlurmDefaults.PollInterval;

    /// <summary>How often the provider polls <c>sinfo</c>.</summary>
    /// <value>The default is 1 second.</value>
    public TimeSpan NodePollInterval { get; init; } = SlurmDefaults.NodePollInterval;

    /// <summary>How many Slurm commands one driver runs at a time.</summary>
    /// <value>The default is 4.</value>
    public int MaxConcurrentCommands { get; init; } = SlurmDefaults.MaxConcurrentCommands;

    /// <summary>Added to an attempt's timeout for Slurm's <c>--time</c>: BatchCore times the attempt out itself (with
    /// SIGTERM and the grace period); Slurm's limit is the backstop should BatchCore be gone.</summary>
    /// <value>The default is 2 minutes.</value>
    public TimeSpan TimeLimitMargin { get; init; } = SlurmDefaults.TimeLimitMargin;

    /// <summary>How long one Slurm command may take.</summary>
    /// <value>The default is 30 seconds.</value>
    public TimeSpan CommandTimeout { get; init; } = SlurmDefaults.CommandTimeout;

    /// <summary>
    /// How long a submitted job may be missing from <c>squeue</c> (purged, controller state lost) before its attempt ends
    /// as a host failure; also how long the driver keeps looking for the job of a submission whose sbatch failed.
    /// </summary>
    /// <value>The default is 30 seconds.</value>
    public TimeSpan LostJobTimeout { get; init; } = SlurmDefaults.LostJobTimeout;

    /// <summary>Reads the options from a compute environment's <c>providerSettings</c>.</summary>
    /// <exception cref="BatchClientException">An unknown key, naming it and the known ones.</exception>
    public static SlurmOptions FromSettings(IReadOnlyDictionary<string, string>? settings, LogStore logStore)
    {
        var options = new SlurmOptions { LogStore = logStore };
        if (settings is null)
        {
            return options;
        }

        List<string>? problems = null;
        foreach (var (key, value) in settings)
        {
            switch (key)
            {
                case "slurmConf": options = options with { SlurmConf = value }; break;
                case "partition": options = options with { Partition = value }; break;
                case "sharedDirectory": options = options with { SharedDirectory = value }; break;
                case "binDirectory": options = options with { BinDirectory = value }; break;
                default:
                    (problems ??= []).Add($"providerSettings.{key}: unknown Slurm setting (known: slurmConf, partition, sharedDirectory, binDirectory)");
                    break;
            }
        }

        if (problems is not null)
        {
            throw new BatchClientException(problems);
        }

        return options;
    }

    /// <summary>Checks the options. Throws <see cref="BatchClientException"/> naming every problem.</summary>
    internal void Validate()
    {
        List<string>? problems = null;
        if (LogStore is null)
        {
            (problems ??= []).Add("LogStore is required");
        }

        if (TimeProvider is null)
        {
            (problems ??= []).Add("TimeProvider is required");
        }

        if (SlurmConf is not null && !File.Exists(SlurmConf))
        {
            (problems ??= []).Add($"slurmConf must name an existing file, was '{SlurmConf}'");
        }

        if (Partition is not null && (Partition.Length == 0 || Partition.AsSpan().IndexOfAny(" ,\t\n") >= 0))
        {
            (problems ??= []).Add($"partition must be one partition name (no spaces or commas), was '{Partition}'");
        }

        if (SharedDirectory is not null && !Path.IsPathFullyQualified(SharedDirectory))
        {
            (problems ??= []).Add($"sharedDirectory must be an absolute path, was '{SharedDirectory}'");
        }

        if (string.IsNullOrEmpty(BinDirectory) || !File.Exists(Path.Combine(BinDirectory, "sbatch")))
        {
            (problems ??= []).Add($"binDirectory must hold sbatch (apt-get install slurm-client), was '{BinDirectory}'");
        }

        if (string.IsNullOrEmpty(JobPath))
        {
            (problems ??= []).Add("JobPath must not be empty");
        }

        if (PollInterval <= TimeSpan.Zero || NodePollInterval <= TimeSpan.Zero || CommandTimeout <= TimeSpan.Zero || LostJobTimeout <= TimeSpan.Zero)
        {
            (problems ??= []).Add("PollInterval, NodePollInterval, CommandTimeout and LostJobTimeout must be positive");
        }

        if (TimeLimitMargin < TimeSpan.Zero)
        {
            (problems ??= []).Add($"TimeLimitMargin must not be negative, was {TimeLimitMargin}");
        }

        if (MaxConcurrentCommands < 1)
        {
            (problems ??= []).Add($"MaxConcurrentCommands must be at least 1, was {MaxConcurrentCommands}");
        }

        if (problems is not null)
        {
            throw new BatchClientException(problems);
        }
    }
}
