using System.Globalization;

namespace BatchCore.Placement.Packing.Instances;

/// <summary>Readers of the 1-D formats: BPPLIB (n, C, weights) and OR-Library (Beasley's binpack1..5).</summary>
internal static class BinPackingFormats
{
    /// <summary>BPPLIB: n, capacity C, then n integer weights, whitespace separated (CRLF tolerated).</summary>
    internal static PackingProblem ReadBppLib(TextReader reader)
    {
        var tokens = Tokens(reader.ReadToEnd());
        var n = int.Parse(tokens[0], CultureInfo.InvariantCulture);
        var capacity = long.Parse(tokens[1], CultureInfo.InvariantCulture);
        if (tokens.Length < 2 + n)
        {
            throw new FormatException($"BPPLIB file declares {n} items but has {tokens.Length - 2} weights");
        }

        var sizes = new long[n];
        for (var i = 0; i < n; i++)
        {
            sizes[i] = long.Parse(tokens[2 + i], CultureInfo.InvariantCulture);
        }

        return PackingProblem.OneDimensional(capacity, sizes);
    }

    /// <summary>
    /// OR-Library: P, then per problem an identifier, a line <c>capacity n best_known</c> and n sizes. Sizes with one
    /// decimal (the triplet files, capacity 100.0) are scaled ×10 to integers.
    /// </summary>
    internal static IReadOnlyList<(string Name, PackingProblem Problem, int BestKnown)> ReadOrLibrary(TextReader reader)
    {
        var tokens = Tokens(reader.ReadToEnd());
        var scale = Array.Exists(tokens, t => t.Contains('.', StringComparison.Ordinal)) ? 10m : 1m;
        var count = int.Parse(tokens[0], CultureInfo.InvariantCulture);
        var at = 1;
        var result = new List<(string, PackingProblem, int)>(count);
        for (var p = 0; p < count; p++)
        {
            var name = tokens[at++];
            var capacity = Scaled(tokens[at++], scale);
            var n = int.Parse(tokens[at++], CultureInfo.InvariantCulture);
            var best = int.Parse(tokens[at++], CultureInfo.InvariantCulture);
            var sizes = new long[n];
            for (var i = 0; i < n; i++)
            {
                sizes[i] = Scaled(tokens[at++], scale);
            }

            result.Add((name, PackingProblem.OneDimensional(capacity, sizes), best));
        }

        return result;
    }

    internal static string[] Tokens(string text) =>
        text.Split([' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries);

    private static long Scaled(string token, decimal scale) =>
        (long)decimal.Round(decimal.Parse(token, CultureInfo.InvariantCulture) * scale);
}
