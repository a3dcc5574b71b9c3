using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchCore.Cli.Spec;

/// <summary>The JSON settings of the CLI: AWS's camelCase field names, case-insensitive reading, nulls left out.</summary>
internal static class CliJson
{
    /// <summary>For reading specs: camelCase, case-insensitive, numbers accepted where AWS wants strings (YAML writes them bare).</summary>
    public static readonly JsonSerializerOptions Read = new(JsonSerializerDefaults.Web)
    {
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
        Converters = { new LenientStringConverter() },
    };

    /// <summary>For writing results: camelCase, indented, nulls left out.</summary>
    public static readonly JsonSerializerOptions Write = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        // Console and files, never HTML: keep '+', '<', quotes in messages readable.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>
    /// Reads a string field from a JSON string, number or boolean: AWS's resource requirement values are strings
    /// ("1", "512") that YAML and hand-written JSON often give as numbers.
    /// </summary>
    private sealed class LenientStringConverter : JsonConverter<string>
    {
        public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
        {
            JsonTokenType.String => reader.GetString(),
            JsonTokenType.Number => reader.HasValueSequence
                ? System.Text.Encoding.UTF8.GetString(System.Buffers.BuffersExtensions.ToArray(reader.ValueSequence))
                : System.Text.Encoding.UTF8.GetString(reader.ValueSpan),
            JsonTokenType.True => "true",
            JsonTokenType.False => "false",
            JsonTokenType.Null => null,
            _ => throw new JsonException(string.Create(CultureInfo.InvariantCulture, $"expected a string, found {reader.TokenType}")),
        };

        public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);
    }
}
