using System.Reflection;
using System.Text;
using CliWrap;
using CliWrap.Buffered;

namespace BatchCore.Cli.Tests;

/// <summary>Runs the built <c>batchcore</c> (BatchCore.Cli.dll) as a separate process, as a user would.</summary>
internal static class Cli
{
    public static string Dll { get; } = Locate();

    public static string Spec(string name) => Path.Combine(AppContext.BaseDirectory, "Specs", name);

    /// <summary>A spec written to a temporary file for one test; disposing deletes it.</summary>
    public static TempFile TempSpec(string yaml)
    {
        var path = Path.Combine(Path.GetTempPath(), "batchcore-spec-" + Guid.NewGuid().ToString("N") + ".yaml");
        File.WriteAllText(path, yaml);
        return new TempFile(path);
    }

    /// <summary>A state directory path for one test (created by the CLI); disposing deletes it.</summary>
    public static TempDirectory TempState() =>
        new(Path.Combine(Path.GetTempPath(), "batchcore-state-" + Guid.NewGuid().ToString("N")));

    public sealed class TempDirectory(string path) : IDisposable
    {
        public string Path { get; } = path;

        public void Dispose()
        {
            if (Directory.Exists(Path))
            {
                Directory.Delete(Path, recursive: true);
            }
        }
    }

    public sealed class TempFile(string path) : IDisposable
    {
        public string Path { get; } = path;

        public void Dispose() => File.Delete(Path);
    }

    public static async Task<BufferedCommandResult> RunAsync(params string[] args)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2)); // a hang fails the test instead of the run
        return await CliWrap.Cli.Wrap("dotnet")
            .WithArguments([Dll, .. args])
            .WithValidation(CommandResultValidation.None)
            .WithEnvironmentVariables(e => e.Set("NO_COLOR", "1"))
            .ExecuteBufferedAsync(Encoding.UTF8, cts.Token);
    }

    public static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static string Locate()
    {
        var path = typeof(Cli).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "CliDll").Value!;
        return File.Exists(path) ? path : throw new FileNotFoundException("BatchCore.Cli.dll not found; build the solution", path);
    }
}
