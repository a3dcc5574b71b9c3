using BatchCore.Model;

namespace BatchCore.Dispatch;

/// <summary>A scheduling policy; its fair-share settings are replaced whole by UpdateSchedulingPolicy.</summary>
internal sealed class SchedulingPolicyState
{
    public required string Name { get; init; }
    public required string Arn { get; init; }
    public required FairsharePolicy Policy { get; set; }
    public Dictionary<string, string> Tags { get; init; } = new(StringComparer.Ordinal);

    /// <summary>The weight of a share identifier: exact match first, then the longest matching prefix pattern.</summary>
    public double WeightOf(string shareIdentifier)
    {
        double? best = null;
        var bestLen = -1;
        foreach (var s in Policy.ShareDistribution)
        {
            var id = s.ShareIdentifier!;
            if (id == shareIdentifier)
            {
                return s.WeightFactor ?? 1.0;
            }

            if (id.EndsWith('*') && shareIdentifier.StartsWith(id.AsSpan(0, id.Length - 1), StringComparison.Ordinal) && id.Length > bestLen)
            {
                best = s.WeightFactor ?? 1.0;
                bestLen = id.Length;
            }
        }

        return best ?? 1.0;
    }

    /// <summary>AWS: shareDecaySeconds 0 means the minimum window of 600 seconds.</summary>
    public double DecaySeconds => Policy.ShareDecaySeconds <= 0 ? 600 : Policy.ShareDecaySeconds;
}
