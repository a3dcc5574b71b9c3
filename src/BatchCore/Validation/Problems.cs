using System.Globalization;

namespace BatchCore.Validation;

/// <summary>Collects every broken rule of a request (field + rule), then throws them together.</summary>
internal sealed class Problems
{
    private List<string>? _items;

    public bool Any => _items is { Count: > 0 };

    /// <summary>Forgets the problems found, so that a caller on one thread can use one instance per request.</summary>
    public void Clear() => _items?.Clear();

    public IReadOnlyList<string> Items => _items ?? (IReadOnlyList<string>)[];

    public void Add(string field, string rule) => (_items ??= []).Add(field + " " + rule);

    public void Add(string message) => (_items ??= []).Add(message);

    /// <summary>
    /// A null entry of a request's list: adds "<paramref name="field"/> must not be null" and returns true, so that the
    /// caller skips the entry (<c>if (p.NullEntry(item, f)) continue;</c>).
    /// </summary>
    public bool NullEntry([System.Diagnostics.CodeAnalysis.NotNullWhen(false)] object? value, string field)
    {
        if (value is not null)
        {
            return false;
        }

        Add(field, "must not be null");
        return true;
    }

    public void Required(object? value, string field)
    {
        if (value is null || (value is string s && s.Length == 0))
        {
            Add(field, "is required");
        }
    }

    public void Range(long? value, long min, long max, string field)
    {
        if (value is { } v && (v < min || v > max))
        {
            Add(field, string.Create(CultureInfo.InvariantCulture, $"must be between {min} and {max}, was {v}"));
        }
    }

    public void Range(double? value, double min, double max, string field)
    {
        if (value is { } v && (v < min || v > max || double.IsNaN(v)))
        {
            Add(field, string.Create(CultureInfo.InvariantCulture, $"must be between {min} and {max}, was {v}"));
        }
    }

    public void OneOf(string? value, string field, params string[] allowed)
    {
        if (value is not null && Array.IndexOf(allowed, value) < 0)
        {
            Add(field, $"must be one of {string.Join(" | ", allowed)}, was {value}");
        }
    }

    public void MaxLength(string? value, int max, string field)
    {
        if (value is not null && value.Length > max)
        {
            Add(field, string.Create(CultureInfo.InvariantCulture, $"must be at most {max} characters, was {value.Length}"));
        }
    }

    /// <summary>Throws a <see cref="BatchClientException"/> with every problem, if any.</summary>
    public void ThrowIfAny()
    {
        if (Any)
        {
            throw new BatchClientException(_items!.ToArray()); // a copy: an instance may be cleared and used again
        }
    }
}
