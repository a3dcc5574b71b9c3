using System.Globalization;
using System.Text.Json;
using CliWrap;
using CliWrap.Buffered;

namespace BatchCore.Hosts.Slurm;

/// <summary>The result of one Slurm command: exit code and output, or why it could not run.</summary>
internal readonly record struct SlurmResult(int ExitCode, string StandardOutput, string StandardError)
{
    public bool Ok => ExitCode == 0;

    /// <summary>The first line of stderr (or stdout), for reasons.</summary>
    public string Message
    {
        get
        {
            var text = StandardError.Trim().Length > 0 ? StandardError.Trim() : StandardOutput.Trim();
            var newline = text.IndexOf('\n');
            return newline < 0 ? text : text[..newline];
        }
    }
}

/// <summary>A job as <c>squeue --format=%i|%T|%j[|%k]</c> reports it: id, state, name and (when asked) comment.</summary>
internal readonly record struct SlurmJob(long Id, string State, string Name, string Comment)
{
    /// <summary>Reads one line; the comment comes last, so that a '|' in it stays part of it. No comment: empty.</summary>
    public static bool TryParse(ReadOnlySpan<char> line, out SlurmJob job)
    {
        job = default;
        var bar = line.IndexOf('|');
        if (bar <= 0 || !long.TryParse(line[..bar], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            return false;
        }

        var rest = line[(bar + 1)..];
        bar = rest.IndexOf('|');
        var state = (bar < 0 ? rest : rest[..bar]).Trim().ToString();
        rest = bar < 0 ? [] : rest[(bar + 1)..];
        bar = rest.IndexOf('|');
        var name = (bar < 0 ? rest : rest[..bar]).Trim().ToString();
        var comment = bar < 0 ? "" : rest[(bar + 1)..].ToString();
        job = new SlurmJob(id, state, name, comment == "(null)" ? "" : comment);
        return true;
    }
}

/// <summary>A node as <c>sinfo --json</c> reports it.</summary>
internal sealed record SlurmNode(string Name, int Cpus, int RealMemoryMiB, int Gpus, string Architecture, string State,
    IReadOnlyList<string> Flags, IReadOnlyList<string> Partitions, string Reason)
{
    // Flags under which Slurm itself starts nothing new on the node.
    private static readonly string[] UnusableFlags =
        ["DRAIN", "FAIL", "MAINTENANCE", "REBOOT_REQUESTED", "REBOOT_ISSUED", "POWER_DOWN", "POWERED_DOWN", "POWERING_DOWN", "POWERING_UP", "INVALID_REG"];

    /// <summary>Whether jobs can start here: up (idle, mixed, allocated) and not drained, failing or powered down.</summary>
    public bool Usable
    {
        get
        {
            if (State is not ("idle" or "mixed" or "allocated"))
            {
                return false;
            }

            foreach (var flag in Flags)
            {
                if (Array.IndexOf(UnusableFlags, flag) >= 0)
                {
                    return false;
                }
            }

            return true;
        }
    }

    /// <summary>"down", "idle+DRAIN", ... as Slurm spells it.</summary>
    public string Describe() => Flags.Count == 0 ? State : State + "+" + string.Join('+', Flags);
}

/// <summary>
/// Runs Slurm's client commands through CliWrap: every argument is passed as one literal argv entry (no shell), with
/// <c>SLURM_CONF</c> set when configured. A bounded number run at a time (a 2-core controller host is easily flooded).
/// </summary>
internal sealed class SlurmCommands : IDisposable
{
    private readonly SlurmOptions _options;
    private readonly SemaphoreSlim _gate;

    public SlurmCommands(SlurmOptions options)
    {
        _options = options;
        _gate = new SemaphoreSlim(options.MaxConcurrentCommands, options.MaxConcurrentCommands);
    }

    public string Path(string command) => System.IO.Path.Combine(_options.BinDirectory, command);

    /// <summary>Runs <paramref name="command"/> with <paramref name="arguments"/>; a timeout or a missing binary is a failed result, not an exception.</summary>
    public async Task<SlurmResult> RunAsync(string command, IReadOnlyList<string> arguments, CancellationToken ct = default)
    {
        var cli = Cli.Wrap(Path(command)).WithArguments(arguments).WithValidation(CommandResultValidation.None);
        if (_options.SlurmConf is { } conf)
        {
            cli = cli.WithEnvironmentVariables(e => e.Set("SLURM_CONF", conf));
        }

        return await ExecuteAsync(cli, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs <c>sbatch</c> in a clean environment (<c>env -i</c>): with sbatch's default <c>--export=ALL</c> the job gets
    /// exactly PATH, SLURM_CONF and the variables of <c>--export-file</c> (NUL-separated, so any value stays literal), not
    /// this process's environment. (<c>--export=NONE</c> would ignore the file and make slurmd load root's login environment.)
    /// </summary>
    public async Task<SlurmResult> SubmitAsync(IReadOnlyList<string> sbatchArguments, CancellationToken ct = default)
    {
        var args = new List<string>(sbatchArguments.Count + 4) { "-i", "PATH=" + _options.JobPath };
        if (_options.SlurmConf is { } conf)
        {
            args.Add("SLURM_CONF=" + conf);
        }

        args.Add(Path("sbatch"));
        args.AddRange(sbatchArguments);
        var cli = Cli.Wrap("/usr/bin/env").WithArguments(args).WithValidation(CommandResultValidation.None);
        return await ExecuteAsync(cli, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs <paramref name="cli"/> once a slot is free. <paramref name="ct"/> cancelled while waiting for the slot:
    /// <see cref="OperationCanceledException"/>, the command never ran. Cancelled (or timed out) while it runs: it is
    /// killed and the result is a failure, since it may have done its work already (sbatch: queued the job).
    /// </summary>
    private async Task<SlurmResult> ExecuteAsync(Command cli, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(_options.CommandTimeout);
            var result = await cli.ExecuteBufferedAsync(timeout.Token).ConfigureAwait(false);
            return new SlurmResult(result.ExitCode, result.StandardOutput, result.StandardError);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new SlurmResult(-1, "", $"{cli.TargetFilePath} took longer than {_options.CommandTimeout}");
        }
        catch (OperationCanceledException)
        {
            return new SlurmResult(-1, "", $"{cli.TargetFilePath} was cancelled");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new SlurmResult(-1, "", $"{cli.TargetFilePath}: {e.Message}");
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The nodes <c>sinfo --json</c> reports, or null (with the reason) when it fails.</summary>
    public async Task<(IReadOnlyList<SlurmNode>? Nodes, string? Error)> NodesAsync(CancellationToken ct)
    {
        var result = await RunAsync("sinfo", ["--json"], ct).ConfigureAwait(false);
        if (!result.Ok)
        {
            return (null, "sinfo: " + result.Message);
        }

        try
        {
            return (ParseNodes(result.StandardOutput), null);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return (null, "sinfo --json: unexpected output: " + e.Message);
        }
    }

    internal static List<SlurmNode> ParseNodes(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var nodes = new List<SlurmNode>();
        foreach (var n in doc.RootElement.GetProperty("nodes").EnumerateArray())
        {
            var flags = new List<string>();
            if (n.TryGetProperty("state_flags", out var f) && f.ValueKind == JsonValueKind.Array)
            {
                foreach (var flag in f.EnumerateArray())
                {
                    flags.Add(flag.GetString() ?? "");
                }
            }

            var partitions = new List<string>();
            if (n.TryGetProperty("partitions", out var p) && p.ValueKind == JsonValueKind.Array)
            {
                foreach (var part in p.EnumerateArray())
                {
                    partitions.Add(part.GetString() ?? "");
                }
            }

            nodes.Add(new SlurmNode(
                n.GetProperty("name").GetString()!,
                n.GetProperty("cpus").GetInt32(),
                n.GetProperty("real_memory").GetInt32(),
                GpuCount(n.TryGetProperty("gres", out var g) ? g.GetString() : null),
                n.TryGetProperty("architecture", out var a) && a.GetString() is { Length: > 0 } arch ? arch : "x86_64",
                (n.GetProperty("state").GetString() ?? "unknown").ToLowerInvariant(),
                flags,
                partitions,
                n.TryGetProperty("reason", out var r) ? r.GetString() ?? "" : ""));
        }

        return nodes;
    }

    /// <summary>GPUs in a gres string: <c>gpu:2</c>, <c>gpu:tesla:2(S:0-1)</c>, several comma-separated entries.</summary>
    internal static int GpuCount(string? gres)
    {
        if (string.IsNullOrEmpty(gres))
        {
            return 0;
        }

        var total = 0;
        foreach (var entry in gres.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!entry.StartsWith("gpu", StringComparison.Ordinal))
            {
                continue;
            }

            var spec = entry;
            var paren = spec.IndexOf('(');
            if (paren >= 0)
            {
                spec = spec[..paren];
            }

            var colon = spec.LastIndexOf(':');
            if (colon >= 0 && int.TryParse(spec.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var count))
            {
                total += count;
            }
        }

        return total;
    }

    public void Dispose() => _gate.Dispose();
}
