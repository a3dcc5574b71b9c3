using BatchCore.Journal;

namespace BatchCore.Tests.Journal;

/// <summary>A test class with a fresh temporary directory of its own, removed afterwards; engines journal into it.</summary>
public abstract class StateDirectoryTest(string prefix) : IDisposable
{
    /// <summary>The directory (not created until something writes into it).</summary>
    protected string Dir { get; } = Path.Combine(Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N"));

    /// <summary>A virtual-clock engine journaling into <see cref="Dir"/>.</summary>
    protected BatchEngineOptions Options(DateTimeOffset? start = null, long compactAfterBytes = 256L << 20, long preallocate = 8L << 20) => new()
    {
        VirtualTime = true,
        VirtualStart = start ?? BatchEngineDefaults.VirtualStart,
        AllowShortTimeouts = true,
        BatchPlacementThreshold = 0,
        Journal = new JournalOptions { Durability = Durability.Journal, StateDirectory = Dir, CompactAfterBytes = compactAfterBytes, PreallocateBytes = preallocate },
    };

    public void Dispose()
    {
        if (Directory.Exists(Dir))
        {
            Directory.Delete(Dir, recursive: true);
        }

        GC.SuppressFinalize(this);
    }
}
