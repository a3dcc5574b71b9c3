using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using BatchCore.Model;
using YamlDotNet.Core;

namespace BatchCore.Cli.Spec;

/// <summary>One problem of a spec: where (<c>jobs[3].arrayProperties.size</c>) and what.</summary>
internal sealed record SpecProblem(string Path, string Message)
{
    public override string ToString() => Path + ": " + Message;
}

/// <summary>One entry of a spec section: its path and its request (null when it could not be read).</summary>
internal sealed class SpecEntry<T>(string path, T? request)
    where T : class
{
    public string Path { get; } = path;

    public T? Request { get; } = request;
}

/// <summary>
/// A spec file: lists of AWS request bodies under <c>computeEnvironments</c>, <c>schedulingPolicies</c>,
/// <c>consumableResources</c>, <c>jobQueues</c>, <c>jobDefinitions</c> and <c>jobs</c>, in JSON or YAML (YAML is
/// converted to the same JSON model). Reading never throws: every problem found is kept in <see cref="Problems"/>.
/// </summary>
internal sealed partial class SpecDocument
{
    /// <summary>The top-level keys, in the order the spec is applied.</summary>
    public static readonly IReadOnlyList<string> Sections =
        ["computeEnvironments", "schedulingPolicies", "consumableResources", "jobQueues", "jobDefinitions", "jobs"];

    public List<SpecEntry<CreateComputeEnvironmentRequest>> ComputeEnvironments { get; } = [];

    public List<SpecEntry<CreateSchedulingPolicyRequest>> SchedulingPolicies { get; } = [];

    public List<SpecEntry<CreateConsumableResourceRequest>> ConsumableResources { get; } = [];

    public List<SpecEntry<CreateJobQueueRequest>> JobQueues { get; } = [];

    public List<SpecEntry<RegisterJobDefinitionRequest>> JobDefinitions { get; } = [];

    public List<SpecEntry<SubmitJobRequest>> Jobs { get; } = [];

    /// <summary>For job <c>i</c>: the <c>dependsOn</c> entries that name an earlier job by <c>jobName</c> (index → name).</summary>
    public Dictionary<int, Dictionary<int, string>> DependsOnNames { get; } = [];

    /// <summary>
    /// Paths of entries marked <c>requires: docker</c> (a BatchCore spec extension): <c>batchcore run</c> skips them, with
    /// a notice, when no Docker daemon answers — so a spec with a container step still runs everywhere.
    /// </summary>
    public HashSet<string> RequiresDocker { get; } = new(StringComparer.Ordinal);

    /// <summary>Problems found while reading: syntax, unknown keys and fields, wrong value types.</summary>
    public List<SpecProblem> Problems { get; } = [];

    /// <summary>Reads a spec file; YAML when the extension is .yaml/.yml, else JSON.</summary>
    public static SpecDocument Load(string file)
    {
        var doc = new SpecDocument();
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            doc.Problems.Add(new SpecProblem(file, "cannot be read: " + e.Message));
            return doc;
        }

        var ext = Path.GetExtension(file);
        var yaml = ext.Equals(".yaml", StringComparison.OrdinalIgnoreCase) || ext.Equals(".yml", StringComparison.OrdinalIgnoreCase);
        doc.Parse(text, yaml);
        return doc;
    }

    /// <summary>Reads spec text.</summary>
    public static SpecDocument FromText(string text, bool yaml)
    {
        var doc = new SpecDocument();
        doc.Parse(text, yaml);
        return doc;
    }

    private void Parse(string text, bool yaml)
    {
        JsonNode? root;
        try
        {
            root = yaml
                ? YamlToJson.Convert(text)
                : JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (YamlException e)
        {
            Problems.Add(new SpecProblem(Fmt($"line {e.Start.Line}, column {e.Start.Column}"), "YAML syntax error: " + Inner(e).Message));
            return;
        }
        catch (JsonException e)
        {
            Problems.Add(new SpecProblem(Fmt($"line {(e.LineNumber ?? 0) + 1}, column {(e.BytePositionInLine ?? 0) + 1}"), "JSON syntax error: " + CutPath(e.Message)));
            return;
        }

        if (root is not JsonObject obj)
        {
            Problems.Add(new SpecProblem("$", "the spec must be an object with the keys " + string.Join(", ", Sections)));
            return;
        }

        foreach (var (key, value) in obj)
        {
            var section = Sections.FirstOrDefault(s => s.Equals(key, StringComparison.OrdinalIgnoreCase));
            if (section is null)
            {
                Problems.Add(new SpecProblem(key, "unknown top-level key (known: " + string.Join(", ", Sections) + ")"));
                continue;
            }

            if (value is null)
            {
                continue;
            }

            if (value is not JsonArray items)
            {
                Problems.Add(new SpecProblem(section, "must be a list"));
                continue;
            }

            for (var i = 0; i < items.Count; i++)
            {
                var path = Fmt($"{section}[{i}]");
                if (items[i] is not JsonObject item)
                {
                    Problems.Add(new SpecProblem(path, "must be an object (an AWS request body)"));
                    Add(section, path, i, null);
                    continue;
                }

                Add(section, path, i, (JsonObject)item.DeepClone());
            }
        }
    }

    private void Add(string section, string path, int index, JsonObject? item)
    {
        if (item is not null && item.TryGetPropertyValue("requires", out var requires))
        {
            item.Remove("requires");
            if (requires is JsonValue rv && rv.TryGetValue<string>(out var what) && what == "docker")
            {
                RequiresDocker.Add(path);
            }
            else
            {
                Problems.Add(new SpecProblem(path + ".requires", "must be \"docker\" (the only requirement BatchCore knows)"));
            }
        }

        switch (section)
        {
            case "computeEnvironments":
                ComputeEnvironments.Add(new(path, Read<CreateComputeEnvironmentRequest>(item, path)));
                break;
            case "schedulingPolicies":
                SchedulingPolicies.Add(new(path, Read<CreateSchedulingPolicyRequest>(item, path)));
                break;
            case "consumableResources":
                ConsumableResources.Add(new(path, Read<CreateConsumableResourceRequest>(item, path)));
                break;
            case "jobQueues":
                JobQueues.Add(new(path, Read<CreateJobQueueRequest>(item, path)));
                break;
            case "jobDefinitions":
                JobDefinitions.Add(new(path, Read<RegisterJobDefinitionRequest>(item, path)));
                break;
            default:
                if (item?["dependsOn"] is JsonArray deps)
                {
                    for (var d = 0; d < deps.Count; d++)
                    {
                        // BatchCore: {"jobName": "x"} names an earlier job of the spec; resolved to its jobId at submit.
                        if (deps[d] is JsonObject dep && dep.TryGetPropertyValue("jobName", out var name))
                        {
                            dep.Remove("jobName");
                            if (name is JsonValue v && v.TryGetValue<string>(out var s))
                            {
                                (DependsOnNames.TryGetValue(index, out var m) ? m : DependsOnNames[index] = [])[d] = s;
                            }
                            else
                            {
                                Problems.Add(new SpecProblem(Fmt($"{path}.dependsOn[{d}].jobName"), "must be a string"));
                            }
                        }
                    }
                }

                Jobs.Add(new(path, Read<SubmitJobRequest>(item, path)));
                break;
        }
    }

    private T? Read<T>(JsonObject? item, string path)
        where T : class
    {
        if (item is null)
        {
            return null;
        }

        var before = Problems.Count;
        CheckFields(item, typeof(T), path);
        try
        {
            var value = item.Deserialize<T>(CliJson.Read);
            return Problems.Count == before ? value : null;
        }
        catch (JsonException e)
        {
            var sub = e.Path is { Length: > 1 } p ? p.TrimStart('$') : "";
            Problems.Add(new SpecProblem(path + sub, e.Path is { } at && Mismatch(item, typeof(T), at) is { } m ? m : CutPath(e.Message)));
            return null;
        }
    }

    /// <summary>
    /// What a field at <paramref name="jsonPath"/> (<c>$.arrayProperties.size</c>) wants, in words, and what it was given:
    /// <c>must be a number, was "abc"</c> — instead of the serializer's "could not be converted to System.Nullable`1[...]".
    /// Null when the path does not lead to a field of <paramref name="type"/>.
    /// </summary>
    private static string? Mismatch(JsonNode? node, Type type, string jsonPath)
    {
        var found = true;
        foreach (Match segment in PathSegment().Matches(jsonPath))
        {
            type = Nullable.GetUnderlyingType(type) ?? type;
            if (segment.Groups["index"].Success)
            {
                if (type == typeof(string) || ElementType(type) is not { } element)
                {
                    return null;
                }

                var i = int.Parse(segment.Groups["index"].Value, CultureInfo.InvariantCulture);
                type = element;
                found &= node is JsonArray a && i < a.Count;
                node = found ? node![i] : null;
                continue;
            }

            var name = segment.Groups["name"].Success ? segment.Groups["name"].Value : segment.Groups["quoted"].Value;
            if (IsDictionary(type))
            {
                type = type.GetGenericArguments()[1];
            }
            else if (type.GetProperty(name, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase) is { } prop)
            {
                type = prop.PropertyType;
            }
            else
            {
                return null;
            }

            // Field names are read case-insensitively; the path has them as the spec wrote them.
            var match = node is JsonObject o ? o.FirstOrDefault(kv => kv.Key.Equals(name, StringComparison.OrdinalIgnoreCase)) : default;
            found &= match.Key is not null;
            node = match.Value;
        }

        var kind = Kind(type, node);
        return kind is null ? null : found ? kind + ", was " + Describe(node) : kind;
    }

    /// <summary>The kind of JSON value a field of this type takes, as a rule: "must be a number".</summary>
    private static string? Kind(Type type, JsonNode? value)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type.IsEnum)
        {
            return "must be one of " + string.Join(" | ", Enum.GetNames(type));
        }

        switch (Type.GetTypeCode(type))
        {
            case TypeCode.Boolean:
                return "must be true or false";
            case TypeCode.String:
                return "must be a string";
            case TypeCode.Single or TypeCode.Double or TypeCode.Decimal:
                return "must be a number";
            case TypeCode.SByte or TypeCode.Byte or TypeCode.Int16 or TypeCode.UInt16 or TypeCode.Int32 or TypeCode.UInt32 or TypeCode.Int64 or TypeCode.UInt64:
                // A number that is not whole, or out of the field's range, says so; anything else is not a number at all.
                var text = value is JsonValue v ? (v.TryGetValue<string>(out var str) ? str : v.ToJsonString()) : null;
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
                {
                    return "must be a number";
                }

                return d == Math.Floor(d)
                    ? Fmt($"must be a whole number from {type.GetField("MinValue")!.GetValue(null)} to {type.GetField("MaxValue")!.GetValue(null)}")
                    : "must be a whole number";
        }

        if (IsDictionary(type))
        {
            return "must be an object";
        }

        if (ElementType(type) is not null)
        {
            return "must be a list";
        }

        return type.IsClass && type != typeof(object) ? "must be an object" : null;
    }

    /// <summary>A value as the user wrote it (<c>"abc"</c>, <c>1.5</c>), or what it is when it is a list or an object.</summary>
    private static string Describe(JsonNode? node)
    {
        const int Longest = 40;
        var text = node switch
        {
            null => "null",
            JsonObject => "an object",
            JsonArray => "a list",
            _ => node.ToJsonString(CliJson.Write),
        };
        return text.Length <= Longest ? text : text[..(Longest - 1)] + "…";
    }

    /// <summary>One step of a System.Text.Json path: <c>.name</c>, <c>['odd.name']</c> or <c>[3]</c>.</summary>
    [GeneratedRegex(@"\.(?<name>[^.\[]+)|\['(?<quoted>.*?)'\]|\[(?<index>\d+)\]")]
    private static partial Regex PathSegment();

    /// <summary>Reports every field the request type does not have (a typo would otherwise be ignored silently).</summary>
    private void CheckFields(JsonNode? node, Type type, string path)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (node is JsonObject obj)
        {
            // Only a request type has fields: an object where a string, a number or a list goes is a type error, said
            // once by the serializer (Mismatch), not as an unknown field of String.
            if (type == typeof(object) || IsDictionary(type) || Type.GetTypeCode(type) != TypeCode.Object || ElementType(type) is not null)
            {
                return;
            }

            foreach (var (key, value) in obj)
            {
                var prop = type.GetProperty(key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
                if (prop is null)
                {
                    Problems.Add(new SpecProblem(path + "." + key, "unknown field of " + type.Name));
                    continue;
                }

                CheckFields(value, prop.PropertyType, path + "." + JsonNamingPolicy.CamelCase.ConvertName(prop.Name));
            }
        }
        else if (node is JsonArray arr && type != typeof(string) && ElementType(type) is { } element)
        {
            for (var i = 0; i < arr.Count; i++)
            {
                CheckFields(arr[i], element, Fmt($"{path}[{i}]"));
            }
        }
    }

    private static bool IsDictionary(Type t) =>
        t.IsGenericType && (t.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>) || t.GetGenericTypeDefinition() == typeof(Dictionary<,>)
            || t.GetGenericTypeDefinition() == typeof(IDictionary<,>));

    private static Type? ElementType(Type t)
    {
        if (!typeof(IEnumerable).IsAssignableFrom(t))
        {
            return null;
        }

        if (t.IsArray)
        {
            return t.GetElementType();
        }

        return t.IsGenericType ? t.GetGenericArguments()[0] : null;
    }

    private static Exception Inner(Exception e) => e.InnerException is YamlException inner ? inner : e;

    private static string CutPath(string message)
    {
        var i = message.IndexOf(" Path:", StringComparison.Ordinal);
        if (i < 0)
        {
            i = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        }

        return (i < 0 ? message : message[..i]).Trim();
    }

    private static string Fmt(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
