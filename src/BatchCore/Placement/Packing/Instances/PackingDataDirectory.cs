namespace BatchCore.Placement.Packing.Instances;

/// <summary>
/// Finds the shared benchmark data (<c>binpacking/</c>, <c>vectorpacking/</c>): the folder named by the
/// <c>BATCHCORE_DATA</c> environment variable, else the first <c>shared/data</c> found walking up from the current
/// directory or the application's base directory (the layout is <c>&lt;repoRoot&gt;/../shared/data</c>).
/// The data is never copied into the repository.
/// </summary>
internal static class PackingDataDirectory
{
    internal const string EnvironmentVariable = "BATCHCORE_DATA";

    /// <summary>The data folder, or null when there is none.</summary>
    internal static string? Find()
    {
        var fromEnv = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            return Directory.Exists(fromEnv) ? Path.GetFullPath(fromEnv) : null;
        }

        return WalkUp(Directory.GetCurrentDirectory()) ?? WalkUp(AppContext.BaseDirectory);
    }

    private static string? WalkUp(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
