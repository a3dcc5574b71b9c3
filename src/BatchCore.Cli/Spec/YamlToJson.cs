using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace BatchCore.Cli.Spec;

/// <summary>
/// Converts a YAML document to the JSON model a JSON spec would give: mappings → objects, sequences → arrays, plain
/// scalars that read as YAML 1.2 core-schema numbers, booleans or null → those; everything else (and every quoted
/// scalar) → a string.
/// </summary>
internal static class YamlToJson
{
    /// <summary>Parses YAML text; throws <see cref="YamlException"/> with a position on a syntax error.</summary>
    public static JsonNode? Convert(string yaml)
    {
        var stream = new YamlStream();
        using var reader = new StringReader(yaml);
        stream.Load(reader);
        if (stream.Documents.Count == 0)
        {
            return null;
        }

        if (stream.Documents.Count > 1)
        {
            var second = stream.Documents[1].RootNode.Start;
            throw new YamlException(second, second, "a spec holds one YAML document, found more");
        }

        return Node(stream.Documents[0].RootNode);
    }

    private static JsonNode? Node(YamlNode node)
    {
        switch (node)
        {
            case YamlMappingNode map:
                var obj = new JsonObject();
                foreach (var (key, value) in map.Children)
                {
                    var name = key is YamlScalarNode s ? s.Value ?? "" : throw new YamlException(key.Start, key.End, "mapping keys must be scalars");
                    if (obj.ContainsKey(name))
                    {
                        throw new YamlException(key.Start, key.End, $"duplicate key '{name}'");
                    }

                    obj[name] = Node(value);
                }

                return obj;
            case YamlSequenceNode seq:
                var arr = new JsonArray();
                foreach (var item in seq.Children)
                {
                    arr.Add(Node(item));
                }

                return arr;
            case YamlScalarNode scalar:
                return Scalar(scalar);
            default:
                throw new YamlException(node.Start, node.End, $"unsupported YAML node {node.NodeType}");
        }
    }

    /// <summary>Whether <paramref name="v"/> is a number as JSON writes one (sign, digits without a leading zero, fraction, exponent).</summary>
    private static bool IsJsonNumber(string v)
    {
        var i = 0;
        if (i < v.Length && v[i] == '-')
        {
            i++;
        }

        if (i >= v.Length || !char.IsAsciiDigit(v[i]) || (v[i] == '0' && i + 1 < v.Length && char.IsAsciiDigit(v[i + 1])))
        {
            return false;
        }

        while (i < v.Length && char.IsAsciiDigit(v[i]))
        {
            i++;
        }

        if (i < v.Length && v[i] == '.')
        {
            i++;
            if (i >= v.Length || !char.IsAsciiDigit(v[i]))
            {
                return false;
            }

            while (i < v.Length && char.IsAsciiDigit(v[i]))
            {
                i++;
            }
        }

        if (i < v.Length && v[i] is 'e' or 'E')
        {
            i++;
            if (i < v.Length && v[i] is '+' or '-')
            {
                i++;
            }

            if (i >= v.Length || !char.IsAsciiDigit(v[i]))
            {
                return false;
            }

            while (i < v.Length && char.IsAsciiDigit(v[i]))
            {
                i++;
            }
        }

        return i == v.Length;
    }

    private static JsonNode? Scalar(YamlScalarNode scalar)
    {
        var v = scalar.Value ?? "";
        if (scalar.Style is not ScalarStyle.Plain)
        {
            return JsonValue.Create(v);
        }

        switch (v)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return null;
            case "true" or "True" or "TRUE":
                return JsonValue.Create(true);
            case "false" or "False" or "FALSE":
                return JsonValue.Create(false);
        }

        // A number keeps the text it was written with (`1.10` stays 1.10, `1e3` stays 1e3 for a string field such as a
        // command argument; a number field reads it either way); text JSON has no number for (`+5`, `.5`) stays a string,
        // which number fields also read.
        var isNumber = long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)
            || (v.Length > 0 && (char.IsAsciiDigit(v[0]) || v[0] is '-' or '+' or '.')
                && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d));
        if (isNumber && IsJsonNumber(v))
        {
            return JsonNode.Parse(v);
        }

        return JsonValue.Create(v);
    }
}
