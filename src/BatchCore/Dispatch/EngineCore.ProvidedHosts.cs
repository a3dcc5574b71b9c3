using BatchCore.Hosts;
using BatchCore.Jobs;
using BatchCore.Model;
using BatchCore.Placement;

namespace BatchCore.Dispatch;

/// <summary>
/// Attempts that ran on a host provider's hosts (Slurm nodes) across a restart. Recovery replays the journal before any
/// provider has reported its hosts again, so the host an attempt ran on is not known yet. Cancelling such an attempt
/// and retrying it would throw away an HPC job's progress because the engine, not the job, restarted; instead the
/// provider's driver takes it back onto a stand-in host (<see cref="Host.AwaitingReport"/>): draining, so that nothing
/// new is placed on capacity the engine has not seen, and sized to exactly the attempts it holds. When the provider
/// reports the host, the host takes the reported capacity (less what the attempts use) and takes new jobs; when it does
/// not within <see cref="BatchEngineOptions.ProvidedHostRecoveryTimeout"/>, the host is treated as lost (its attempts are
/// stopped and end as host failures, retried per retryStrategy), as if the provider had reported it gone.
/// </summary>
internal sealed partial class EngineCore
{
    /// <summary>
    /// Offers <paramref name="reattach"/> to the driver of each compute environment whose provider's driver is of
    /// <paramref name="kind"/>; the first that takes it gets (or grows) the stand-in host, which is returned. Null: none took it.
    /// </summary>
    private Host? ReattachOnUnreportedHost(Job job, string kind, AttemptReattach reattach)
    {
        foreach (var ce in _ces.Values)
        {
            if (ce.HostProvider?.Driver is not { } driver || driver.Kind != kind || ce.Status == ResourceStatus.DELETED)
            {
                continue;
            }

            if (!TryTakeBack(driver, reattach))
            {
                continue;
            }

            var request = job.Spec.Request;
            var host = AddHost(ce, reattach.HostName, request, driver, "x86_64", instanceType: null, spot: false, price: 0,
                nominalVcpus: NominalOf(request));
            host.AwaitingReport = true;
            host.Draining = true;
            ce.Index.Update(host);
            var timeout = _options.ProvidedHostRecoveryTimeout;
            AddTimer(new TimerEntry
            {
                Kind = TimerKind.Callback,
                DueMs = NowMs + (long)timeout.TotalMilliseconds,
                Callback = () => OnStandInExpired(host),
            });
            return host;
        }

        return null;
    }

    /// <summary>Whether <paramref name="driver"/> took the attempt back (a driver that throws did not: failures are values).</summary>
    private bool TryTakeBack(HostDriver driver, AttemptReattach reattach)
    {
        try
        {
            return driver.TryReattach(reattach, this);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return false;
        }
    }

    /// <summary>One more re-attached attempt on a stand-in host: it grows by the attempt's request.</summary>
    private static void GrowStandIn(Host host, in ResourceVector request) =>
        Resize(host, host.Capacity + request, NominalOf(host.Capacity + request));

    /// <summary>
    /// The provider reported the host a stand-in holds: it takes the reported capacity less what the re-attached attempts
    /// use (which may exceed it, if the node shrank: then it takes nothing new until they end), its architecture, and
    /// new jobs. The attempts keep running on it with the driver that took them back.
    /// </summary>
    private void AdoptReportedHost(Host host, ProvidedHost reported)
    {
        var ce = host.ComputeEnvironment;
        ce.Index.Remove(host); // the architecture is part of its index entry
        host.Architecture = string.Intern(reported.Architecture);
        Resize(host, new ResourceVector(ResourceVector.ToMilli(reported.Vcpus), reported.MemoryMiB, reported.Gpus), (int)Math.Ceiling(reported.Vcpus));
        host.AwaitingReport = false;
        host.Draining = false;
        ce.Index.Add(host);
        ce.MaxHostShape = MaxShapeOf(ce);
        _capacityVersion++;
        _dirty = true;
    }

    private static void Resize(Host host, ResourceVector capacity, int nominalVcpus)
    {
        var ce = host.ComputeEnvironment;
        var used = host.Capacity - host.Free;
        ce._capacityVcpuMilli += capacity.VcpuMilli - host.Capacity.VcpuMilli;
        ce.ProvisionedVcpus += nominalVcpus - host.NominalVcpus;
        host.Capacity = capacity;
        host.NominalVcpus = nominalVcpus;
        host.Free = capacity - used;
        ce.Index.Update(host);
    }

    private static int NominalOf(in ResourceVector v) => (v.VcpuMilli + 999) / 1000;

    /// <summary>The provider did not report the host in time: it is lost (its attempts end as host failures).</summary>
    private void OnStandInExpired(Host host)
    {
        var ce = host.ComputeEnvironment;
        if (!host.AwaitingReport || !ce.Hosts.TryGetValue(host.Name, out var current) || !ReferenceEquals(current, host))
        {
            return; // reported meanwhile, or gone with its last attempt
        }

        OnMembershipChange(new MembershipChange(ce, null, host.Name, StatusReasons.EngineRestarted));
    }
}
