namespace BatchCore.Placement.Packing;

/// <summary>Defaults of <see cref="PackingOptions"/>, in one place.</summary>
public static class PackingDefaults
{
    /// <summary>Improvement time per 1,000 items: 50 ms.</summary>
    public static readonly TimeSpan TimeBudgetPerThousandItems = TimeSpan.FromMilliseconds(50);

    /// <summary>The smallest automatic time budget: 5 ms.</summary>
    public static readonly TimeSpan MinimumTimeBudget = TimeSpan.FromMilliseconds(5);

    /// <summary>Local-search iterations (one iteration examines the moves of one bin): 2,000,000.</summary>
    public const long MaxIterations = 2_000_000;

    /// <summary>Seed of the local search's random choices: 0.</summary>
    public const int Seed = 0;

    /// <summary>The automatic time budget for <paramref name="itemCount"/> items.</summary>
    public static TimeSpan TimeBudgetFor(int itemCount)
    {
        var t = TimeSpan.FromTicks(TimeBudgetPerThousandItems.Ticks * itemCount / 1000);
        return t < MinimumTimeBudget ? MinimumTimeBudget : t;
    }
}

/// <summary>
/// Limits of the <see cref="PackingStrategy.Optimized"/> improvement phase. The search stops at whichever limit comes
/// first; for reproducible results set <see cref="MaxIterations"/> and an infinite <see cref="TimeBudget"/>.
/// </summary>
public sealed record PackingOptions
{
    /// <summary>The shared default options.</summary>
    public static PackingOptions Default { get; } = new();

    /// <summary>Wall-clock budget of the improvement phase; <see cref="Timeout.InfiniteTimeSpan"/> for none.</summary>
    /// <value>The default is <c>null</c>: 50 ms per 1,000 items, at least 5 ms (<see cref="PackingDefaults"/>).</value>
    public TimeSpan? TimeBudget { get; init; }

    /// <summary>Iteration budget of the improvement phase (one iteration examines one bin's moves).</summary>
    /// <value>The default is 2,000,000.</value>
    public long MaxIterations { get; init; } = PackingDefaults.MaxIterations;

    /// <summary>Seed of the improvement phase's random choices; same seed and iteration budget, same result.</summary>
    /// <value>The default is 0.</value>
    public int Seed { get; init; } = PackingDefaults.Seed;

    /// <summary>Clock for the time budget.</summary>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    public TimeProvider? TimeProvider { get; init; }

    internal void Validate()
    {
        if (MaxIterations < 0)
        {
            throw new BatchClientException($"MaxIterations must not be negative, was {MaxIterations}");
        }

        if (TimeBudget is { } t && t < TimeSpan.Zero && t != Timeout.InfiniteTimeSpan)
        {
            throw new BatchClientException($"TimeBudget must not be negative, was {t}");
        }
    }
}
