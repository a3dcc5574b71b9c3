using BatchCore.Hosts;

namespace BatchCore.Tests.Placement;

/// <summary>A clock that never moves and timers that never fire: for hosts whose driver is never asked to run anything.</summary>
internal sealed class NullScheduler : ISimulationScheduler
{
    public long NowMs => 0;

    public object Schedule(long dueMs, Action callback) => callback;

    public void Cancel(object handle)
    {
    }
}
