using System.Collections.Concurrent;
using BatchCore.Hosts;

namespace BatchCore.Cli.Hosts;

/// <summary>
/// Stands in for the process and docker drivers while a spec is validated: accepts launches and never runs anything;
/// a terminated attempt ends at once, so the throwaway engine stops without waiting.
/// </summary>
internal sealed class InertHostDriver(string kind) : HostDriver
{
    private readonly ConcurrentDictionary<AttemptToken, IAttemptEventSink> _launched = new();

    public override string Kind { get; } = kind;

    public override void Launch(AttemptLaunch launch, IAttemptEventSink sink) => _launched[launch.Token] = sink;

    public override void Terminate(AttemptToken token, TimeSpan gracePeriod)
    {
        if (_launched.TryRemove(token, out var sink))
        {
            sink.Exited(token, new AttemptExit(null, "Terminated (validation)"));
        }
    }
}
