using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchCore.Provisioning;

/// <summary>One EC2 instance type of the catalog.</summary>
public sealed record InstanceType
{
    [JsonPropertyName("instanceType")] public required string Name { get; init; }
    public required string Family { get; init; }
    public required int Vcpus { get; init; }
    public required int MemoryMiB { get; init; }
    public int Gpus { get; init; }
    /// <summary><c>x86_64</c> or <c>arm64</c>.</summary>
    public required string Architecture { get; init; }
    public required double OnDemandPricePerHour { get; init; }
    /// <summary>Spot price as a fraction of on-demand (a model, not live prices).</summary>
    public double SpotPriceRatio { get; init; } = 0.35;
    /// <summary>Chance per hour that a spot instance of this type is interrupted (a model).</summary>
    public double SpotInterruptionRatePerHour { get; init; }

    public double SpotPricePerHour => OnDemandPricePerHour * SpotPriceRatio;
}

/// <summary>Fargate's prices (us-east-1, x86).</summary>
public sealed record FargatePricing
{
    public double PerVcpuHour { get; init; }
    public double PerGbHour { get; init; }
    public double SpotPerVcpuHour { get; init; }
    public double SpotPerGbHour { get; init; }
    public double SpotInterruptionRatePerHour { get; init; }

    public double PricePerHour(double vcpus, int memoryMiB, bool spot) =>
        spot ? (vcpus * SpotPerVcpuHour) + (memoryMiB / 1024.0 * SpotPerGbHour)
             : (vcpus * PerVcpuHour) + (memoryMiB / 1024.0 * PerGbHour);
}

/// <summary>
/// The instance types AWS Batch uses (reference §2.5), shipped as a data file with the engine
/// (<c>Provisioning/instance-catalog.json</c>): sizes, architectures, on-demand prices, a spot price and
/// interruption model, Fargate prices.
/// </summary>
public sealed class InstanceCatalog
{
    private static readonly Lazy<InstanceCatalog> DefaultCatalog = new(Load);
    private readonly Dictionary<string, InstanceType> _byName;

    private InstanceCatalog(CatalogDocument doc)
    {
        Types = doc.InstanceTypes;
        Aliases = doc.Aliases;
        Fargate = doc.Fargate;
        PriceDate = doc.PriceDate;
        Source = doc.Source;
        _byName = doc.InstanceTypes.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>The catalog shipped with the engine.</summary>
    public static InstanceCatalog Default => DefaultCatalog.Value;

    public IReadOnlyList<InstanceType> Types { get; }
    public IReadOnlyDictionary<string, string[]> Aliases { get; }
    public FargatePricing Fargate { get; }
    public string PriceDate { get; }
    public string Source { get; }

    public InstanceType? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>
    /// Expands an <c>instanceTypes</c> entry (a size such as <c>c6i.large</c>, a family such as <c>c6i</c>, or
    /// <c>optimal</c> / <c>default_x86_64</c> / <c>default_arm64</c>) into instance types; empty when unknown.
    /// </summary>
    public IReadOnlyList<InstanceType> Expand(string entry)
    {
        if (_byName.TryGetValue(entry, out var one))
        {
            return [one];
        }

        var families = Aliases.TryGetValue(entry, out var fams) ? fams : [entry];
        var list = new List<InstanceType>();
        foreach (var t in Types)
        {
            if (Array.IndexOf(families, t.Family) >= 0)
            {
                list.Add(t);
            }
        }

        return list;
    }

    private static InstanceCatalog Load()
    {
        using var stream = typeof(InstanceCatalog).Assembly.GetManifestResourceStream("BatchCore.instance-catalog.json")
            ?? throw new InvalidOperationException("instance-catalog.json is missing from the BatchCore assembly");
        var doc = JsonSerializer.Deserialize<CatalogDocument>(stream, new JsonSerializerOptions { PropertyNameCaseInsensitive = true })
            ?? throw new InvalidOperationException("instance-catalog.json is empty");
        return new InstanceCatalog(doc);
    }

    private sealed record CatalogDocument
    {
        public string Source { get; init; } = "";
        public string PriceDate { get; init; } = "";
        public Dictionary<string, string[]> Aliases { get; init; } = [];
        public FargatePricing Fargate { get; init; } = new();
        public List<InstanceType> InstanceTypes { get; init; } = [];
    }
}
