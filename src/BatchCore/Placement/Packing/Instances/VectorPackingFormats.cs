using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;

namespace BatchCore.Placement.Packing.Instances;

/// <summary>Readers of VPSolver <c>.vbp</c> files, the Panigrahy tarball and its tab-separated summary.</summary>
internal static class VectorPackingFormats
{
    /// <summary>
    /// <c>.vbp</c>: d; d capacities; the number of item types m; then m lines <c>w_1 .. w_d demand</c>. An item type
    /// with demand q becomes q identical items.
    /// </summary>
    internal static PackingProblem ReadVbp(TextReader reader)
    {
        var tokens = BinPackingFormats.Tokens(reader.ReadToEnd());
        var at = 0;
        var d = int.Parse(tokens[at++], CultureInfo.InvariantCulture);
        var capacity = new long[d];
        for (var k = 0; k < d; k++)
        {
            capacity[k] = long.Parse(tokens[at++], CultureInfo.InvariantCulture);
        }

        var types = int.Parse(tokens[at++], CultureInfo.InvariantCulture);
        var demands = new List<long>(types * d);
        var w = new long[d];
        for (var t = 0; t < types; t++)
        {
            for (var k = 0; k < d; k++)
            {
                w[k] = long.Parse(tokens[at++], CultureInfo.InvariantCulture);
            }

            var copies = int.Parse(tokens[at++], CultureInfo.InvariantCulture);
            for (var c = 0; c < copies; c++)
            {
                demands.AddRange(w);
            }
        }

        return new PackingProblem(capacity, demands.ToArray());
    }

    /// <summary>Every <c>.vbp</c> entry of a <c>.tar.gz</c>, read in memory: (file name without extension, problem).</summary>
    internal static IEnumerable<(string Name, PackingProblem Problem)> ReadTarGz(string path)
    {
        using var file = File.OpenRead(path);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null
                || !entry.Name.EndsWith(".vbp", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            using var text = new StreamReader(entry.DataStream);
            yield return (Path.GetFileNameWithoutExtension(entry.Name), ReadVbp(text));
        }
    }

    /// <summary>
    /// The summary: a header line, then <c>instance_name LB OPT best_overall ...</c> tab separated; OPT −1 = unknown.
    /// </summary>
    internal static Dictionary<string, (int LowerBound, int? Optimum, int BestOverall)> ReadSummary(TextReader reader)
    {
        var result = new Dictionary<string, (int, int?, int)>(StringComparer.Ordinal);
        _ = reader.ReadLine();
        while (reader.ReadLine() is { } line)
        {
            var f = line.Split('\t');
            if (f.Length < 4)
            {
                continue;
            }

            var opt = int.Parse(f[2], CultureInfo.InvariantCulture);
            result[f[0]] = (int.Parse(f[1], CultureInfo.InvariantCulture), opt < 0 ? null : opt,
                int.Parse(f[3], CultureInfo.InvariantCulture));
        }

        return result;
    }
}
