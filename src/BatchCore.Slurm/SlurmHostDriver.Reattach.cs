using System.Globalization;

namespace BatchCore.Hosts.Slurm;

/// <summary>
/// Re-attaching: a Slurm job outlives the engine that submitted it (slurmctld runs it, the wrapper records its exit in
/// the shared directory), so an engine that restarts takes it back instead of retrying it beside a job still running.
/// The handle journaled with RUNNING is <c>&lt;Slurm job id&gt; &lt;file prefix&gt;</c>; without one (the engine died
/// while the job was pending), the job is found by its name and the identity in its comment.
/// </summary>
public sealed partial class SlurmHostDriver
{
    /// <inheritdoc />
    /// <remarks>
    /// With a handle: a job Slurm still knows under the attempt's name (pending, running or ended), or one it forgot
    /// whose wrapper recorded an exit, is tracked as if launched here: polled, its output file read from the start (the
    /// lines a previous engine already stored may appear again), its exit reported. Slurm not answering does not lose
    /// the job either: it is tracked, and the poller asks until Slurm answers. A job Slurm forgot without a recorded exit
    /// has nothing left running: false. Without a handle: squeue <c>--name=bc-&lt;job id&gt;-&lt;attempt&gt;</c>, and a
    /// job whose comment puts its files in this driver's shared directory is tracked; when squeue does not answer,
    /// false, and whatever of the attempt Slurm has is cancelled once it answers.
    /// </remarks>
    public override bool TryReattach(AttemptReattach reattach, IAttemptEventSink sink)
    {
        ArgumentNullException.ThrowIfNull(reattach);
        ArgumentNullException.ThrowIfNull(sink);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_attempts.ContainsKey(reattach.Token))
        {
            ThrowDuplicate(reattach.Token);
        }

        // Recovery runs synchronously; the pool thread keeps a caller's synchronization context out of the way. Each
        // Slurm command is bounded by CommandTimeout.
        return Task.Run(() => ReattachAsync(reattach, sink)).GetAwaiter().GetResult();
    }

    private async Task<bool> ReattachAsync(AttemptReattach reattach, IAttemptEventSink sink)
    {
        var name = JobName(reattach.JobId, reattach.Attempt);
        if (TryParseHandle(reattach.Handle, out var id, out var prefix))
        {
            var jobs = await QueryAsync("--jobs=" + id.ToString(CultureInfo.InvariantCulture), withComment: false, CancellationToken.None).ConfigureAwait(false);
            var known = false;
            foreach (var job in jobs ?? [])
            {
                known |= job.Id == id && job.Name == name;
            }

            if (jobs is null || known || File.Exists(prefix + ".result"))
            {
                Track(reattach, sink, id, prefix);
                return true;
            }

            // Slurm forgot it and its wrapper recorded no exit: nothing of it is left running.
            DeleteAttemptFiles(prefix);
            RemoveEndedDriverDirectory(prefix);
            return false;
        }

        // No handle: the engine died before it journaled the start (the job may still be pending).
        var found = await QueryAsync("--name=" + name, withComment: true, CancellationToken.None).ConfigureAwait(false);
        if (found is null)
        {
            // The engine retries the attempt; whatever of this one Slurm has is cancelled once it answers.
            AddStray(name, comment: null);
            return false;
        }

        SlurmJob? taken = null;
        string? takenFiles = null;
        foreach (var job in found)
        {
            if (job.Name != name || FilesOf(job.Comment) is not { } files || !IsOwnFiles(files))
            {
                continue; // another engine's
            }

            if (taken is null)
            {
                taken = job;
                takenFiles = files;
            }
            else if (!IsTerminal(job.State))
            {
                AddStray(name, job.Comment); // one attempt has one job: a second one is not left running
            }
        }

        if (taken is not { } take)
        {
            return false;
        }

        Track(reattach, sink, take.Id, takenFiles!);
        return true;
    }

    /// <summary>Tracks a job a previous engine submitted, under this engine's token.</summary>
    private void Track(AttemptReattach reattach, IAttemptEventSink sink, long jobId, string prefix)
    {
        var launch = new AttemptLaunch
        {
            Token = reattach.Token,
            JobId = reattach.JobId,
            Attempt = reattach.Attempt,
            JobDefinitionName = "",
            LogStreamName = reattach.LogStreamName,
            Command = [],
            Environment = new Dictionary<string, string>(StringComparer.Ordinal),
            Vcpus = 0,
            MemoryMiB = 0,
            HostName = reattach.HostName,
        };
        var attempt = new Attempt(this, launch, sink, prefix);
        attempt.Adopt(jobId);
        if (!_attempts.TryAdd(reattach.Token, attempt))
        {
            ThrowDuplicate(reattach.Token);
        }

        EnsurePoller();
    }

    /// <summary>Reads a handle reported with Started: <c>&lt;Slurm job id&gt; &lt;file prefix&gt;</c>.</summary>
    internal static bool TryParseHandle(string? handle, out long jobId, out string prefix)
    {
        jobId = 0;
        prefix = "";
        var space = handle?.IndexOf(' ', StringComparison.Ordinal) ?? -1;
        if (space <= 0 || !long.TryParse(handle.AsSpan(0, space), NumberStyles.None, CultureInfo.InvariantCulture, out jobId))
        {
            return false;
        }

        prefix = handle![(space + 1)..];
        return Path.IsPathFullyQualified(prefix);
    }
}
