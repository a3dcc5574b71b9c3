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

    /// <summary>
    /// A resource's or a job's tags (AWS "Tag restrictions"): at most <paramref name="max"/>, keys of 1 to 128 characters,
    /// values of at most 256, and neither starting with the reserved <c>aws:</c> prefix (<see cref="CheckReservedTagPrefix"/>)
    /// unless <c>recovering</c> (replaying a journal: rules added after the record may have been written are not applied).
    /// </summary>
    public static void CheckTags(Problems p, IReadOnlyDictionary<string, string>? tags, string field, int max, bool recovering)
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

        if (!recovering)
        {
            CheckReservedTagPrefix(p, tags, field);
        }
    }

    /// <summary>
    /// AWS reserves the <c>aws:</c> prefix, in any case, for its own tags: "Don't use aws:, AWS:, or any upper or lowercase
    /// combination of such as a prefix for either keys or values". Also EC2's rule for a compute environment's
    /// <c>computeResources.tags</c>. (UntagResource still removes such a key: an engine before this rule accepted them.)
    /// </summary>
    public static void CheckReservedTagPrefix(Problems p, IReadOnlyDictionary<string, string>? tags, string field)
    {
        if (tags is null)
        {
            return;
        }

        foreach (var (k, v) in tags)
        {
            if (k is not null && k.StartsWith(ReservedTagPrefix, StringComparison.OrdinalIgnoreCase))
            {
                p.Add(field, $"keys must not start with '{ReservedTagPrefix}' (reserved for AWS's own tags, in any case), was '{k}'");
            }

            if (v is not null && v.StartsWith(ReservedTagPrefix, StringComparison.OrdinalIgnoreCase))
            {
                p.Add($"{field}.{k}", $"must not start with '{ReservedTagPrefix}' (reserved for AWS's own tags, in any case), was '{v}'");
            }
        }
    }

    private const string ReservedTagPrefix = "aws:";
}
