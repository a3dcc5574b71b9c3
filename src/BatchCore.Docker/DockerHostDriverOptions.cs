using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using BatchCore.Logs;

namespace BatchCore.Hosts.Docker;

/// <summary>Default values of <see cref="DockerHostDriverOptions"/>, in one place.</summary>
public static class DockerHostDriverDefaults
{
    /// <summary>The local Docker Engine socket: <c>unix:///var/run/docker.sock</c>.</summary>
    public const string Endpoint = "unix:///var/run/docker.sock";

    /// <summary>The <c>PidsLimit</c> of each container: 4096.</summary>
    public const long PidsLimit = 4096;

    /// <summary>How long pulling a missing image may take: 2 minutes.</summary>
    public static readonly TimeSpan ImagePullTimeout = TimeSpan.FromMinutes(2);

    /// <summary>How long to wait for a container's log stream to drain after it exited: 10 seconds.</summary>
    public static readonly TimeSpan LogDrainTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long one request to remove a container may take before it is tried again: 30 seconds.</summary>
    internal static readonly TimeSpan RemoveRequestTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How many times removing a container is tried (a daemon that hangs or fails): 5.</summary>
    internal const int RemoveTries = 5;

    /// <summary>
    /// How much longer than the grace period one stop request may take (and one kill request in all) before it is
    /// tried again: 30 seconds.
    /// </summary>
    internal static readonly TimeSpan StopRequestMargin = TimeSpan.FromSeconds(30);

    /// <summary>How many times stopping a container is tried before it is killed instead: 3.</summary>
    internal const int StopTries = 3;

    /// <summary>How many times killing a container is tried after the stops failed: 3.</summary>
    internal const int KillTries = 3;

    /// <summary>The wait before the first retry of a removal, stop or kill; it doubles with each retry: 1 second.</summary>
    internal static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long the request that starts a container may take: 1 minute. Past it the attempt fails to start (the daemon
    /// may have started the container all the same: it is removed).
    /// </summary>
    internal static readonly TimeSpan StartRequestTimeout = TimeSpan.FromMinutes(1);

    /// <summary>How long one request to inspect a container may take: 30 seconds.</summary>
    internal static readonly TimeSpan InspectRequestTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How many times in a row a failed wait for a container's exit may be followed by an inspect that fails too (the
    /// daemon gone or not answering) before the attempt is given up as a host failure: 6 (with the doubling retry wait,
    /// about a minute).
    /// </summary>
    internal const int LostWaitTries = 6;

    /// <summary>The longest wait between two waits for a container's exit when they keep failing: 30 seconds.</summary>
    internal static readonly TimeSpan MaxWaitRetryDelay = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long after a removal that gave up (or a sweep that could not finish) the driver sweeps again: 1 minute.
    /// </summary>
    internal static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long re-attaching to a container waits for the daemon: 30 seconds. Past it the attempt is not taken back (the
    /// engine ends it as a host failure) and its container is removed in the background.
    /// </summary>
    internal static readonly TimeSpan ReattachTimeout = TimeSpan.FromSeconds(30);
}

/// <summary>Configures a <see cref="DockerHostDriver"/>. Validated and copied when the driver is created.</summary>
public sealed record DockerHostDriverOptions
{
    /// <summary>Receives every attempt's stdout and stderr lines (stream <see cref="AttemptLaunch.LogStreamName"/>).</summary>
    public required LogStore LogStore { get; init; }

    /// <summary>Stamps log lines, and times the driver's retries and its bounds on requests to the daemon.</summary>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// The Docker Engine API endpoint: <c>unix:///path/to/docker.sock</c> or <c>tcp://host:port</c>. A <c>tcp://</c>
    /// endpoint uses TLS when <see cref="ClientCertificate"/> is set; plain TCP is only accepted to a loopback address
    /// unless <see cref="AllowInsecureRemote"/> is true.
    /// </summary>
    /// <value>The default is <c>unix:///var/run/docker.sock</c>.</value>
    public string Endpoint { get; init; } = DockerHostDriverDefaults.Endpoint;

    /// <summary>Client certificate (with private key) for a TLS <c>tcp://</c> endpoint. Null: no TLS.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public X509Certificate2? ClientCertificate { get; init; }

    /// <summary>Validates the daemon's certificate on a TLS endpoint. Null: the platform's default validation.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; init; }

    /// <summary>Accept a plain-TCP (unauthenticated, unencrypted) endpoint on a non-loopback address.</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool AllowInsecureRemote { get; init; }

    /// <summary>The most processes and threads one container may have.</summary>
    /// <value>The default is 4096.</value>
    public long PidsLimit { get; init; } = DockerHostDriverDefaults.PidsLimit;

    /// <summary>The containers' network mode (<c>bridge</c>, <c>host</c>, <c>none</c>, ...). Null: the daemon's default.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? NetworkMode { get; init; }

    /// <summary>
    /// Run an init process (docker-init) as PID 1 that forwards signals and reaps zombies (AWS:
    /// <c>linuxParameters.initProcessEnabled</c>). Without it a job that installs no SIGTERM handler is only killed when
    /// the grace period ends.
    /// </summary>
    /// <value>The default is <see langword="false"/>, as in AWS.</value>
    public bool InitProcessEnabled { get; init; }

    /// <summary>
    /// Whether a job definition's <c>privileged: true</c> and <c>linuxParameters.devices</c> are applied. They give the
    /// job root-equivalent access to this machine, so they are honoured only when the host's owner says so; otherwise
    /// the container runs unprivileged and without the devices.
    /// </summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool AllowPrivileged { get; init; }

    /// <summary>Pull an image that is not present locally (AWS always pulls). False: a missing image fails the attempt.</summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool PullMissingImages { get; init; } = true;

    /// <summary>How long pulling a missing image may take before the attempt fails with <c>CannotPullContainerError</c>.</summary>
    /// <value>The default is 2 minutes.</value>
    public TimeSpan ImagePullTimeout { get; init; } = DockerHostDriverDefaults.ImagePullTimeout;

    /// <summary>How long to wait for the log stream to end after the container exited.</summary>
    /// <value>The default is 10 seconds.</value>
    public TimeSpan LogDrainTimeout { get; init; } = DockerHostDriverDefaults.LogDrainTimeout;

    // Bounds on the cleanup retries; internal so that tests can shorten them.

    /// <summary>See <see cref="DockerHostDriverDefaults.RemoveRequestTimeout"/>.</summary>
    internal TimeSpan RemoveRequestTimeout { get; init; } = DockerHostDriverDefaults.RemoveRequestTimeout;

    /// <summary>See <see cref="DockerHostDriverDefaults.RemoveTries"/>.</summary>
    internal int RemoveTries { get; init; } = DockerHostDriverDefaults.RemoveTries;

    /// <summary>See <see cref="DockerHostDriverDefaults.StopRequestMargin"/>.</summary>
    internal TimeSpan StopRequestMargin { get; init; } = DockerHostDriverDefaults.StopRequestMargin;

    /// <summary>See <see cref="DockerHostDriverDefaults.StopTries"/>.</summary>
    internal int StopTries { get; init; } = DockerHostDriverDefaults.StopTries;

    /// <summary>See <see cref="DockerHostDriverDefaults.KillTries"/>.</summary>
    internal int KillTries { get; init; } = DockerHostDriverDefaults.KillTries;

    /// <summary>See <see cref="DockerHostDriverDefaults.RetryDelay"/>.</summary>
    internal TimeSpan RetryDelay { get; init; } = DockerHostDriverDefaults.RetryDelay;

    /// <summary>See <see cref="DockerHostDriverDefaults.StartRequestTimeout"/>.</summary>
    internal TimeSpan StartRequestTimeout { get; init; } = DockerHostDriverDefaults.StartRequestTimeout;

    /// <summary>See <see cref="DockerHostDriverDefaults.InspectRequestTimeout"/>.</summary>
    internal TimeSpan InspectRequestTimeout { get; init; } = DockerHostDriverDefaults.InspectRequestTimeout;

    /// <summary>See <see cref="DockerHostDriverDefaults.LostWaitTries"/>.</summary>
    internal int LostWaitTries { get; init; } = DockerHostDriverDefaults.LostWaitTries;

    /// <summary>See <see cref="DockerHostDriverDefaults.SweepInterval"/>.</summary>
    internal TimeSpan SweepInterval { get; init; } = DockerHostDriverDefaults.SweepInterval;

    /// <summary>See <see cref="DockerHostDriverDefaults.ReattachTimeout"/>.</summary>
    internal TimeSpan ReattachTimeout { get; init; } = DockerHostDriverDefaults.ReattachTimeout;

    /// <summary>Tests: called after each sweep with the number of containers it removed.</summary>
    internal Action<int>? Swept { get; init; }

    /// <summary>Checks the options; returns the parsed endpoint. Throws <see cref="BatchClientException"/> naming every problem.</summary>
    internal Uri Validate()
    {
        List<string>? problems = null;
        Uri? uri = null;
        if (LogStore is null)
        {
            (problems ??= []).Add("LogStore is required");
        }

        if (TimeProvider is null)
        {
            (problems ??= []).Add("TimeProvider is required");
        }

        if (string.IsNullOrWhiteSpace(Endpoint) || !Uri.TryCreate(Endpoint, UriKind.Absolute, out uri)
            || (uri.Scheme != "unix" && uri.Scheme != "tcp"))
        {
            (problems ??= []).Add($"Endpoint must be unix:///path or tcp://host:port, was '{Endpoint}'");
            uri = null;
        }
        else if (uri.Scheme == "tcp" && ClientCertificate is null && !AllowInsecureRemote && !IsLoopback(uri))
        {
            (problems ??= []).Add($"Endpoint '{Endpoint}' is plain TCP to a non-loopback address, which gives anyone on the " +
                "network root on that host; set ClientCertificate for TLS, or AllowInsecureRemote = true");
        }

        if (PidsLimit < 1)
        {
            (problems ??= []).Add($"PidsLimit must be at least 1, was {PidsLimit}");
        }

        if (ImagePullTimeout <= TimeSpan.Zero)
        {
            (problems ??= []).Add($"ImagePullTimeout must be positive, was {ImagePullTimeout}");
        }

        if (LogDrainTimeout <= TimeSpan.Zero)
        {
            (problems ??= []).Add($"LogDrainTimeout must be positive, was {LogDrainTimeout}");
        }

        if (problems is not null)
        {
            throw new BatchClientException(problems);
        }

        return uri!;
    }

    private static bool IsLoopback(Uri uri) =>
        string.Equals(uri.Host, "localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
}
