using System.Globalization;

namespace BatchCore.Placement.Packing.Instances;

/// <summary>Loads the benchmark sets from the shared data folder (see <see cref="PackingDataDirectory"/>).</summary>
internal static class BenchmarkInstances
{
    /// <summary>
    /// The Falkenauer instances of <c>binpacking/instances.csv</c> whose family is <paramref name="family"/>
    /// (<c>falkenauer_u</c> or <c>falkenauer_t</c>), with their optimum; group = e.g. <c>u120</c>.
    /// </summary>
    internal static List<PackingInstance> Falkenauer(string dataDirectory, string family)
    {
        var root = Path.Combine(dataDirectory, "binpacking");
        var list = new List<PackingInstance>();
        using var csv = new StreamReader(Path.Combine(root, "instances.csv"));
        _ = csv.ReadLine();
        while (csv.ReadLine() is { } line)
        {
            // instance,capacity,n,optimal_bins,family,file,... (the quoted last column is not needed)
            var f = line.Split(',');
            if (f.Length < 6 || f[4] != family)
            {
                continue;
            }

            using var reader = new StreamReader(Path.Combine(root, f[5]));
            var problem = BinPackingFormats.ReadBppLib(reader);
            var name = f[0];
            var group = name.Split('_')[1];
            list.Add(new PackingInstance(name, group, problem, int.Parse(f[3], CultureInfo.InvariantCulture), null, null));
        }

        return list;
    }

    /// <summary>The Panigrahy classes 1–9 with LB, OPT (when known) and the best published heuristic; group = class.</summary>
    internal static List<PackingInstance> Panigrahy(string dataDirectory)
    {
        var root = Path.Combine(dataDirectory, "vectorpacking");
        Dictionary<string, (int LowerBound, int? Optimum, int BestOverall)> summary;
        using (var reader = new StreamReader(Path.Combine(root, "Panigrahy_summary_known.csv")))
        {
            summary = VectorPackingFormats.ReadSummary(reader);
        }

        var list = new List<PackingInstance>();
        foreach (var (name, problem) in VectorPackingFormats.ReadTarGz(Path.Combine(root, "Panigrahy_instances.tar.gz")))
        {
            var group = name.Split('_')[0];
            var known = summary.TryGetValue(name, out var s);
            list.Add(new PackingInstance(name, group, problem, known ? s.Optimum : null,
                known ? s.LowerBound : null, known ? s.BestOverall : null));
        }

        list.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
        return list;
    }
}
