namespace BatchCore.Validation;

/// <summary>AWS's naming rules.</summary>
internal static class Names
{
    /// <summary>
    /// Job, queue, CE, definition, policy and consumable-resource names: up to 128 letters, digits, hyphens and
    /// underscores; a job name must start with a letter or digit.
    /// </summary>
    public static void Check(Problems p, string? name, string field, bool firstAlphanumeric)
    {
        if (string.IsNullOrEmpty(name))
        {
            p.Add(field, "is required");
            return;
        }

        if (name.Length > 128)
        {
            p.Add(field, $"must be at most 128 characters, was {name.Length}");
        }

        if (firstAlphanumeric && !char.IsAsciiLetterOrDigit(name[0]))
        {
            p.Add(field, $"must start with a letter or digit, was '{name}'");
        }

        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '-' && c != '_')
            {
                p.Add(field, $"may contain only letters, digits, hyphens and underscores, was '{name}'");
                break;
            }
        }
    }

    public static void CheckTags(Problems p, IReadOnlyDictionary<string, string>? tags, string field, int max)
    {
        if (tags is null)
        {
            return;
        }

        if (tags.Count > max)
        {
            p.Add(field + ":", $"Member must have length less than or equal to {max}, had {tags.Count}");
        }

        foreach (var (k, v) in tags)
        {
            if (string.IsNullOrEmpty(k) || k.Length > 128)
            {
                p.Add(field, $"keys must be 1 to 128 characters, was '{k}'");
            }

            if (v is null || v.Length > 256)
            {
                p.Add($"{field}.{k}", "must be at most 256 characters");
            }
        }
    }
}
