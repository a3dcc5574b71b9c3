using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace BatchCore.Hosts.Docker;

/// <summary>
/// The sweep: removes containers nothing follows any more — an exited container whose removal gave up, a leftover of a
/// crashed engine that was not taken back (its attempt ended as a host failure and may be running again elsewhere).
/// </summary>
public sealed partial class DockerHostDriver
{
    // Every docker driver of this process not yet disposed. The engine makes one driver per host, and they share a
    // daemon and an engine id: a sweep leaves alone what any of them follows, not only what this one does.
    private static readonly ConditionalWeakTable<DockerHostDriver, object?> s_drivers = [];

    // The engines this driver launched attempts for. An engine launches only once its recovery (re-attach) is over, so
    // from then on a container labelled with its id that no driver follows belongs to no live or re-attachable attempt.
    private readonly ConcurrentDictionary<string, byte> _engineIds = new(StringComparer.Ordinal);

    // Containers whose removal gave up: removed by id by the next sweep (an engine without an id included).
    private readonly ConcurrentDictionary<string, byte> _unremoved = new(StringComparer.Ordinal);

    // One sweep at a time; at most one sweep waits for its turn (_sweepScheduled).
    private readonly SemaphoreSlim _sweeping = new(1, 1);
    private int _sweepScheduled;

    /// <summary>The first launch for an engine: its leftovers are swept now (off the caller's thread).</summary>
    private void NoteEngine(string? engineId)
    {
        if (engineId is not null && !_engineIds.ContainsKey(engineId) && _engineIds.TryAdd(engineId, 0))
        {
            Track(Task.Run(SweepNowAsync));
        }
    }

    /// <summary>A removal gave up: the container is swept after <see cref="DockerHostDriverOptions.SweepInterval"/>.</summary>
    private void RemovalGaveUp(string? id)
    {
        if (id is not null)
        {
            _unremoved.TryAdd(id, 0);
        }

        SweepLater();
    }

    /// <summary>Schedules a sweep after <see cref="DockerHostDriverOptions.SweepInterval"/>, unless one is scheduled already.</summary>
    private void SweepLater()
    {
        if (!_closing.IsCancellationRequested && Interlocked.Exchange(ref _sweepScheduled, 1) == 0)
        {
            Track(Task.Run(SweepLaterAsync));
        }
    }

    private async Task SweepNowAsync()
    {
        if (!await SweepAsync().ConfigureAwait(false))
        {
            SweepLater();
        }
    }

    private async Task SweepLaterAsync()
    {
        await DelayAsync(_options.SweepInterval).ConfigureAwait(false);
        Volatile.Write(ref _sweepScheduled, 0);
        if (!_closing.IsCancellationRequested && !await SweepAsync().ConfigureAwait(false))
        {
            SweepLater(); // the daemon failed or something is still left: again after the interval, one sweep per interval
        }
    }

    /// <summary>
    /// One sweep: force-removes (a running one is killed) each container whose removal gave up, and each container
    /// labelled with the id of an engine this driver launched for (<see cref="EngineIdLabel"/>), unless an attempt of a
    /// docker driver in this process follows it (its container, or one labelled with its token). Never another engine's
    /// container nor one without the label. True when nothing is left to try again. Never throws; stops when the driver
    /// is disposing.
    /// </summary>
    internal async Task<bool> SweepAsync()
    {
        try
        {
            await _sweeping.WaitAsync(_closing.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return true; // disposing
        }

        var removed = 0;
        var clean = true;
        try
        {
            foreach (var (id, _) in _unremoved)
            {
                if (_closing.IsCancellationRequested)
                {
                    return true;
                }

                if (!FollowedByADriver(id, null))
                {
                    if (await TryRemoveByIdAsync(id).ConfigureAwait(false))
                    {
                        _unremoved.TryRemove(id, out _);
                        removed++;
                    }
                    else
                    {
                        clean = false;
                    }
                }
            }

            foreach (var (engineId, _) in _engineIds)
            {
                IList<ContainerListResponse> list;
                try
                {
                    using var bound = new CancellationTokenSource(_options.RemoveRequestTimeout, _options.TimeProvider);
                    using var linked = CancellationTokenSource.CreateLinkedTokenSource(bound.Token, _closing.Token);
                    list = await _client.Containers.ListContainersAsync(new ContainersListParameters
                    {
                        All = true,
                        Filters = new Dictionary<string, IDictionary<string, bool>>
                        {
                            ["label"] = new Dictionary<string, bool> { [EngineIdLabel + "=" + engineId] = true },
                        },
                    }, linked.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    clean = false; // the daemon failed: the next sweep looks again
                    continue;
                }

                foreach (var container in list)
                {
                    if (_closing.IsCancellationRequested)
                    {
                        return true;
                    }

                    // The daemon filtered by the label; checked again here: another engine's container is never touched.
                    if (container.Labels is not { } labels || !labels.TryGetValue(EngineIdLabel, out var label) || label != engineId
                        || FollowedByADriver(container.ID, labels))
                    {
                        continue;
                    }

                    if (await TryRemoveByIdAsync(container.ID).ConfigureAwait(false))
                    {
                        _unremoved.TryRemove(container.ID, out _);
                        removed++;
                    }
                    else
                    {
                        clean = false;
                    }
                }
            }

            return clean;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return false; // the client disposed under a sweep that outlived the driver, or a bug: never thrown
        }
        finally
        {
            _sweeping.Release();
            _options.Swept?.Invoke(removed);
        }
    }

    /// <summary>Whether an attempt of a docker driver in this process follows the container (by id, or by its attempt label).</summary>
    private static bool FollowedByADriver(string containerId, IDictionary<string, string>? labels)
    {
        long? token = labels is not null && labels.TryGetValue(AttemptLabel, out var text)
            && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;
        foreach (var (driver, _) in s_drivers)
        {
            foreach (var (_, attempt) in driver._attempts)
            {
                if (attempt.Owns(containerId, token))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>
    /// One forced removal, bounded by <see cref="DockerHostDriverOptions.RemoveRequestTimeout"/> and cut short by disposing
    /// (a sweep is best effort): true when the container is gone.
    /// </summary>
    private async Task<bool> TryRemoveByIdAsync(string id)
    {
        try
        {
            using var bound = new CancellationTokenSource(_options.RemoveRequestTimeout, _options.TimeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(bound.Token, _closing.Token);
            await _client.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, linked.Token)
                .ConfigureAwait(false);
            return true;
        }
        catch (DockerContainerNotFoundException)
        {
            return true; // removed meanwhile
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return false;
        }
    }
}
