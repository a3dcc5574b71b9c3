using BatchCore.Logs;

namespace BatchCore.Hosts.Process;

/// <summary>Default values of <see cref="ProcessHostDriverOptions"/>, in one place.</summary>
public static class ProcessHostDriverDefaults
{
    /// <summary>Where the cgroup hierarchies are mounted: <c>/sys/fs/cgroup</c>.</summary>
    public const string CgroupRoot = "/sys/fs/cgroup";

    /// <summary>The driver-owned cgroup under the driver process's own cgroup: <c>batchcore</c>.</summary>
    public const string CgroupParent = "batchcore";

    /// <summary>The <c>pids.max</c> of each attempt: 4096.</summary>
    public const int PidsMax = 4096;

    /// <summary>The CFS period the vCPU quota is expressed in: 100,000 µs (100 ms, the kernel default).</summary>
    public const int CpuPeriodMicroseconds = 100_000;

    /// <summary>How long an attempt's output is still read after its main process exited: 2 seconds.</summary>
    public static readonly TimeSpan OutputDrainTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Where per-attempt working directories go when an attempt names none: <c>$TMPDIR/batchcore-work</c>.</summary>
    public static string WorkRoot => Path.Combine(Path.GetTempPath(), "batchcore-work");
}

/// <summary>Configures a <see cref="ProcessHostDriver"/>. Validated and copied when the driver is created.</summary>
public sealed record ProcessHostDriverOptions
{
    /// <summary>Receives every attempt's stdout and stderr lines (stream <see cref="AttemptLaunch.LogStreamName"/>).</summary>
    public required LogStore LogStore { get; init; }

    /// <summary>Stamps log lines and times the SIGTERM → SIGKILL grace period.</summary>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where cgroup hierarchies are mounted.</summary>
    /// <value>The default is <c>/sys/fs/cgroup</c> (<see cref="ProcessHostDriverDefaults.CgroupRoot"/>).</value>
    public string CgroupRoot { get; init; } = ProcessHostDriverDefaults.CgroupRoot;

    /// <summary>
    /// Name of the driver-owned cgroup. It is created under the driver process's own cgroup in each hierarchy (as runc
    /// nests containers under its caller), and each attempt gets a child of it.
    /// </summary>
    /// <value>The default is <c>batchcore</c>.</value>
    public string CgroupParent { get; init; } = ProcessHostDriverDefaults.CgroupParent;

    /// <summary>Whether to put attempts into cgroups with memory, CPU and pids limits. False: run without limits.</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool EnableLimits { get; init; } = true;

    /// <summary>The most processes and threads one attempt may have (<c>pids.max</c>).</summary>
    /// <value>The default is 4096.</value>
    public int PidsMax { get; init; } = ProcessHostDriverDefaults.PidsMax;

    /// <summary>The CFS period; an attempt's quota is <c>vcpus × period</c>.</summary>
    /// <value>The default is 100,000 µs.</value>
    public int CpuPeriodMicroseconds { get; init; } = ProcessHostDriverDefaults.CpuPeriodMicroseconds;

    /// <summary>
    /// Parent of the temporary working directories of attempts that name none; each such directory is removed when its
    /// attempt ends.
    /// </summary>
    /// <value>The default is <c>$TMPDIR/batchcore-work</c>.</value>
    public string WorkRoot { get; init; } = ProcessHostDriverDefaults.WorkRoot;

    /// <summary>
    /// How long the driver goes on reading an attempt's stdout and stderr after its main process exited and what was left
    /// of it was killed. Those pipes then normally close at once; a process the job started in a session of its own
    /// escapes the kill when there is no cgroup (<see cref="ProcessHostDriver.LimitsUnavailableReason"/>) and holds them
    /// open: after this long the driver stops reading (saying so in the log stream) and the attempt ends with its main
    /// process's exit code, as a container does. Terminating the attempt meanwhile stops reading at once.
    /// </summary>
    /// <value>The default is 2 seconds (<see cref="ProcessHostDriverDefaults.OutputDrainTimeout"/>).</value>
    public TimeSpan OutputDrainTimeout { get; init; } = ProcessHostDriverDefaults.OutputDrainTimeout;

    /// <summary>
    /// Runs every job as this process's user, whatever its definition's <c>containerProperties.user</c> says. By default
    /// the job runs as that user, which needs the engine to run as root (a user switch that cannot be made fails the
    /// attempt unstarted); set this when the engine runs unprivileged and its definitions name users it cannot become.
    /// </summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool IgnoreContainerUser { get; init; }

    /// <summary>Receives the driver's own diagnostics, e.g. once when limits are unavailable. Null: none.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public Action<string>? Diagnostic { get; init; }

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

        if (string.IsNullOrWhiteSpace(CgroupRoot) || !Path.IsPathRooted(CgroupRoot))
        {
            (problems ??= []).Add($"CgroupRoot must be an absolute path, was '{CgroupRoot}'");
        }

        if (string.IsNullOrWhiteSpace(CgroupParent) || CgroupParent.Contains("..", StringComparison.Ordinal) || Path.IsPathRooted(CgroupParent))
        {
            (problems ??= []).Add($"CgroupParent must be a relative path without '..', was '{CgroupParent}'");
        }

        if (PidsMax < 1)
        {
            (problems ??= []).Add($"PidsMax must be at least 1, was {PidsMax}");
        }

        if (CpuPeriodMicroseconds is < 1_000 or > 1_000_000)
        {
            (problems ??= []).Add($"CpuPeriodMicroseconds must be between 1000 and 1000000, was {CpuPeriodMicroseconds}");
        }

        if (OutputDrainTimeout < TimeSpan.Zero || OutputDrainTimeout > TimeSpan.FromDays(1))
        {
            (problems ??= []).Add($"OutputDrainTimeout must be between 0 and 1 day, was {OutputDrainTimeout}");
        }

        if (string.IsNullOrWhiteSpace(WorkRoot) || !Path.IsPathRooted(WorkRoot))
        {
            (problems ??= []).Add($"WorkRoot must be an absolute path, was '{WorkRoot}'");
        }

        if (problems is not null)
        {
            throw new BatchClientException(problems);
        }
    }
}
