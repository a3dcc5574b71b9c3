using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BatchCore.Cli.Logs;
using BatchCore.Cli.Spec;
using BatchCore.Logs;
using BatchCore.Model;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace BatchCore.Cli.Commands;

/// <summary>
/// <c>batchcore run &lt;spec&gt;</c>: validates the spec, creates its resources in a real engine (MANAGED compute
/// environments default to the <c>local</c> provider: jobs run as processes on this machine), submits the jobs, shows
/// progress while they run and prints every job at the end. Exit 0 when every job SUCCEEDED, 1 when one FAILED, 2 when
/// the spec is invalid, 130 when interrupted.
/// </summary>
internal static class RunCommand
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(2);

    public static Command Create()
    {
        var spec = new Argument<FileInfo>("spec") { Description = "The spec file (JSON, or YAML with a .yaml/.yml extension)." };
        var output = CommonOptions.Output("table", "json");
        var shortTimeouts = CommonOptions.AllowShortTimeouts();
        var state = CommonOptions.State("Keep log streams (logs/) and the final job details (jobs.json) in this directory, for `batchcore logs`.", withDefault: false);
        var command = new Command("run", "Create the spec's resources, submit its jobs and run them on this machine until every job has finished.")
        {
            spec, output, shortTimeouts, state,
        };
        command.SetAction((parse, ct) => RunAsync(
            parse.GetRequiredValue(spec), parse.GetValue(output) == "json", parse.GetValue(shortTimeouts), parse.GetValue(state), ct));
        return command;
    }

    /// <summary>The spec's jobs and their ids, written once all are submitted (durably, in the journal).</summary>
    public const string RunStateFileName = "run.json";

    /// <summary>Beside <see cref="RunStateFileName"/>: the SHA-256 of the spec the run came from, so a state directory resumes only its own spec.</summary>
    public const string RunSpecFileName = "run.spec.sha256";

    private static string SpecFingerprint(FileInfo file) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file.FullName)));

    private static async Task<int> RunAsync(FileInfo file, bool json, bool allowShortTimeouts, DirectoryInfo? stateDir, CancellationToken ct)
    {
        // 1. Validate in a throwaway engine: nothing runs unless the whole spec is valid.
        var doc = SpecDocument.Load(file.FullName);
        var problems = await Engines.ValidateAsync(doc, allowShortTimeouts, ct);
        if (problems.Count > 0)
        {
            foreach (var p in problems)
            {
                await Console.Error.WriteLineAsync(p.ToString());
            }

            return ExitCodes.InvalidInput;
        }

        // 2. Ctrl+C stops gracefully: running attempts are terminated, the final state is still printed.
        using var interrupt = CancellationTokenSource.CreateLinkedTokenSource(ct);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            interrupt.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            LogStore logs = stateDir is null ? new InMemoryLogStore() : new FileLogStore(Path.Combine(stateDir.FullName, "logs"));
            var engine = Engines.ForRun(allowShortTimeouts, logs, stateDir is null ? null : Path.Combine(stateDir.FullName, "journal"));
            try
            {
                var applier = new SpecApplier(engine);
                var runFile = stateDir is null ? null : Path.Combine(stateDir.FullName, RunStateFileName);
                var specFile = stateDir is null ? null : Path.Combine(stateDir.FullName, RunSpecFileName);
                if (runFile is not null && File.Exists(runFile) && File.Exists(specFile) &&
                    !string.Equals((await File.ReadAllTextAsync(specFile!, CancellationToken.None)).Trim(), SpecFingerprint(file), StringComparison.OrdinalIgnoreCase))
                {
                    await Console.Error.WriteLineAsync($"{stateDir!.FullName} holds a run of another spec (or of an earlier version of {file.Name}): use another --state directory, or remove this one to start again.");
                    return ExitCodes.InvalidInput;
                }

                if (runFile is not null && File.Exists(runFile))
                {
                    // Resume: the journal recovered every job; the run file maps the spec's jobs to them. Jobs already
                    // done are not run again; attempts the interruption cut short are retried per retryStrategy.
                    applier.Jobs.AddRange(JsonSerializer.Deserialize<List<SubmittedJob>>(await File.ReadAllTextAsync(runFile, CancellationToken.None)) ?? []);
                    await Console.Error.WriteLineAsync($"Resuming {applier.Jobs.Count} jobs from {stateDir!.FullName} ({engine.Recovery?.InterruptedAttempts ?? 0} interrupted attempts).");
                }
                else if (engine.Recovery is { Jobs: > 0 })
                {
                    await Console.Error.WriteLineAsync($"{stateDir!.FullName} holds a run that was interrupted before all its jobs were submitted; remove the directory to start again.");
                    return ExitCodes.InvalidInput;
                }
                else
                {
                    var skipDocker = doc.RequiresDocker.Count > 0 && !await Engines.DockerAvailableAsync();
                    if (skipDocker)
                    {
                        await Console.Error.WriteLineAsync($"No Docker daemon answers at {Engines.DefaultDockerEndpoint}: skipping the {doc.RequiresDocker.Count} spec entries marked `requires: docker`.");
                    }

                    await applier.ApplyAsync(doc, Engines.WithDefaultProvider, CancellationToken.None, skipDocker);
                    if (runFile is not null && applier.Problems.Count == 0)
                    {
                        await File.WriteAllTextAsync(specFile!, SpecFingerprint(file), CancellationToken.None);
                        await File.WriteAllTextAsync(runFile, JsonSerializer.Serialize(applier.Jobs), CancellationToken.None);
                    }
                }

                if (applier.Problems.Count > 0)
                {
                    foreach (var p in applier.Problems)
                    {
                        await Console.Error.WriteLineAsync(p.ToString());
                    }

                    return ExitCodes.InvalidInput;
                }

                var queues = new List<string>(); // the queues that exist (entries may have been skipped)
                string? token = null;
                do
                {
                    var page = await engine.DescribeJobQueuesAsync(new DescribeJobQueuesRequest { NextToken = token }, CancellationToken.None);
                    queues.AddRange(page.JobQueues.Select(q => q.JobQueueName));
                    token = page.NextToken;
                }
                while (token is not null);
                var waits = applier.Jobs.Select(j => engine.WaitForJobAsync(j.JobId, CancellationToken.None)).ToList();
                var all = Task.WhenAll(waits);
                var interrupted = false;
                var stalledRun = false;
                try
                {
                    await ShowProgressAsync(engine, applier.Jobs, queues, all, file.Name, json, interrupt.Token);
                }
                catch (StalledRunException stall)
                {
                    stalledRun = true;
                    foreach (var (name, reason) in stall.Jobs)
                    {
                        await Console.Error.WriteLineAsync($"job {name} can never start: {reason}");
                    }

                    await Console.Error.WriteLineAsync("Nothing is running and these jobs wait for hosts that none of their compute environments can give them: stopping.");
                }
                catch (OperationCanceledException) when (interrupt.IsCancellationRequested)
                {
                    interrupted = true;
                    if (stateDir is null)
                    {
                        await Console.Error.WriteLineAsync("Interrupted: terminating running jobs...");
                        foreach (var j in applier.Jobs)
                        {
                            await engine.TerminateJobAsync(j.JobId, "Interrupted (Ctrl+C)", CancellationToken.None);
                        }

                        await Task.WhenAny(all, Task.Delay(engine.Options.TerminationGracePeriod + TimeSpan.FromSeconds(5), CancellationToken.None));
                    }
                    else
                    {
                        // The journal keeps the running jobs as they are: `run --state` again resumes them.
                        await Console.Error.WriteLineAsync($"Interrupted: run the same command again to resume from {stateDir.FullName}.");
                    }
                }

                // 3. The final state of every job, array children included.
                var details = await JobReport.CollectAsync(engine, applier.Jobs, CancellationToken.None);
                if (stateDir is not null)
                {
                    await File.WriteAllTextAsync(Path.Combine(stateDir.FullName, JobReport.StateFileName), JobReport.ToJson(details), CancellationToken.None);
                }

                if (json)
                {
                    Console.WriteLine(JobReport.ToJson(details));
                }
                else
                {
                    AnsiConsole.Write(JobReport.ToTable(details));
                }

                if (interrupted)
                {
                    return ExitCodes.Interrupted;
                }

                return stalledRun || details.Any(d => d.Status == JobStatus.FAILED) ? ExitCodes.JobFailed : ExitCodes.Success;
            }
            finally
            {
                await engine.StopAsync(engine.Options.TerminationGracePeriod + TimeSpan.FromSeconds(5));
            }
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static async Task ShowProgressAsync(BatchEngine engine, List<SubmittedJob> jobs, List<string> queues, Task all, string title, bool json,
        CancellationToken ct)
    {
        var started = DateTime.UtcNow;
        var interactive = !json && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        if (interactive)
        {
            var first = await Progress.TakeAsync(engine, jobs, queues, ct);
            await AnsiConsole.Live(Render(first, title, DateTime.UtcNow - started)).AutoClear(true).StartAsync(async ctx =>
            {
                var stalledFor = 0;
                while (!all.IsCompleted)
                {
                    await Task.WhenAny(all, Task.Delay(PollInterval, ct));
                    ct.ThrowIfCancellationRequested();
                    var p = await Progress.TakeAsync(engine, jobs, queues, ct);
                    ctx.UpdateTarget(Render(p, title, DateTime.UtcNow - started));
                    if (StallSeenTwice(p, ref stalledFor) && !await QueuesHaveTimeLimitsAsync(engine, queues, ct))
                    {
                        throw new StalledRunException(p.NeverRun);
                    }
                }
            });
            return;
        }

        // Not a terminal: a plain line when the counts change, at most every PlainInterval.
        var writer = json ? Console.Error : Console.Out;
        string? last = null;
        var stalled = 0;
        while (!all.IsCompleted)
        {
            await Task.WhenAny(all, Task.Delay(PlainInterval, ct));
            ct.ThrowIfCancellationRequested();
            var p = await Progress.TakeAsync(engine, jobs, queues, ct);
            if (StallSeenTwice(p, ref stalled) && !await QueuesHaveTimeLimitsAsync(engine, queues, ct))
            {
                throw new StalledRunException(p.NeverRun);
            }

            var line = p.Line();
            if (line != last)
            {
                await writer.WriteLineAsync($"[{(DateTime.UtcNow - started).TotalSeconds,5:F1}s] {line}");
                last = line;
            }
        }
    }

    /// <summary>The run cannot finish: jobs wait RUNNABLE for a host none of their environments can ever give them.</summary>
    private sealed class StalledRunException(List<(string JobName, string Reason)> jobs) : Exception("the run cannot finish")
    {
        public List<(string JobName, string Reason)> Jobs { get; } = jobs;
    }

    /// <summary>
    /// A stall seen on two looks in a row ends the run, unless a queue has jobStateTimeLimitActions (which will cancel
    /// such jobs in time, as AWS does): waiting forever on a job no host can hold helps nobody.
    /// </summary>
    private static bool StallSeenTwice(Progress p, ref int seen)
    {
        seen = p.Stalled ? seen + 1 : 0;
        return seen >= 2;
    }

    private static async Task<bool> QueuesHaveTimeLimitsAsync(BatchEngine engine, List<string> queues, CancellationToken ct)
    {
        foreach (var chunk in queues.Chunk(100))
        {
            var described = await engine.DescribeJobQueuesAsync(new DescribeJobQueuesRequest { JobQueues = chunk }, ct);
            if (described.JobQueues.Any(q => q.JobStateTimeLimitActions is { Count: > 0 }))
            {
                return true;
            }
        }

        return false;
    }

    private static Rows Render(Progress p, string title, TimeSpan elapsed)
    {
        var items = new List<IRenderable>
        {
            new Markup($"[bold]batchcore run[/] {Markup.Escape(title)} — {p.Done}/{p.Total} jobs done, {elapsed.TotalSeconds:F0}s"),
        };
        var chart = new BreakdownChart().Width(60).ShowPercentage();
        foreach (var (status, color) in StatusColors)
        {
            if (p.Counts.TryGetValue(status, out var n) && n > 0)
            {
                chart.AddItem(status, n, color);
            }
        }

        items.Add(chart);
        if (p.Running.Count > 0)
        {
            var table = new Table().Border(TableBorder.Rounded).Title("running attempts");
            table.AddColumn("Job").AddColumn("Job ID").AddColumn(new TableColumn("Running for").RightAligned());
            foreach (var r in p.Running.Take(10))
            {
                table.AddRow(Markup.Escape(r.JobName), Markup.Escape(r.JobId), $"{r.RunningFor.TotalSeconds:F1}s");
            }

            if (p.Running.Count > 10)
            {
                table.AddRow($"… {p.Running.Count - 10} more", "", "");
            }

            items.Add(table);
        }

        return new Rows(items);
    }

    internal static readonly (string Status, Color Color)[] StatusColors =
    [
        (JobStatus.SUBMITTED, Color.Grey), (JobStatus.PENDING, Color.Yellow), (JobStatus.RUNNABLE, Color.Orange1),
        (JobStatus.STARTING, Color.Aqua), (JobStatus.RUNNING, Color.Blue), (JobStatus.SUCCEEDED, Color.Green), (JobStatus.FAILED, Color.Red),
    ];

    /// <summary>One look at the jobs: count per status (array children counted, parents not), running attempts.</summary>
    private sealed record Progress(Dictionary<string, int> Counts, int Total, int Done, List<RunningAttempt> Running, List<(string JobName, string Reason)> NeverRun)
    {
        /// <summary>
        /// Nothing runs, and every job still waiting is RUNNABLE with MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT (no
        /// environment of its queue can ever hold it) or PENDING behind such jobs: nothing will change.
        /// </summary>
        public bool Stalled => NeverRun.Count > 0 && Done < Total && Counts[JobStatus.SUBMITTED] == 0 && Counts[JobStatus.STARTING] == 0
            && Counts[JobStatus.RUNNING] == 0 && Counts[JobStatus.RUNNABLE] == NeverRun.Count;

        public string Line() =>
            string.Join(" ", JobStatus.All.Select(s => s + " " + Counts.GetValueOrDefault(s).ToString(CultureInfo.InvariantCulture)))
            + string.Create(CultureInfo.InvariantCulture, $" ({Done}/{Total} done)");

        public static async Task<Progress> TakeAsync(BatchEngine engine, List<SubmittedJob> jobs, List<string> queues, CancellationToken ct)
        {
            var counts = JobStatus.All.ToDictionary(s => s, _ => 0);
            var neverRun = new List<(string, string)>();
            foreach (var chunk in jobs.Chunk(100))
            {
                foreach (var d in await engine.DescribeJobsAsync(chunk.Select(j => j.JobId).ToList(), ct))
                {
                    if (d.ArrayProperties?.StatusSummary is { } summary && d.ArrayProperties.Size is > 0)
                    {
                        foreach (var (s, n) in summary)
                        {
                            counts[s] = counts.GetValueOrDefault(s) + n;
                        }
                    }
                    else
                    {
                        counts[d.Status]++;
                        // Only a job no environment of its queue can ever hold: at maxvCpus is not forever (idle
                        // instances scale in and make room), a job never fits.
                        if (d.Status == JobStatus.RUNNABLE && d.StatusReason?.StartsWith(StatusReasons.JobResourceRequirement, StringComparison.Ordinal) == true)
                        {
                            neverRun.Add((d.JobName, d.StatusReason));
                        }
                    }
                }
            }

            var running = new List<RunningAttempt>();
            var now = engine.UtcNow.ToUnixTimeMilliseconds();
            foreach (var q in queues)
            {
                var page = await engine.ListJobsAsync(new ListJobsRequest { JobQueue = q, JobStatus = JobStatus.RUNNING }, ct);
                running.AddRange(page.JobSummaryList.Select(s => new RunningAttempt(s.JobName, s.JobId, TimeSpan.FromMilliseconds(now - (s.StartedAt ?? now)))));
            }

            var total = jobs.Sum(j => j.ArraySize ?? 1);
            return new Progress(counts, total, counts[JobStatus.SUCCEEDED] + counts[JobStatus.FAILED], running, neverRun);
        }
    }

    private sealed record RunningAttempt(string JobName, string JobId, TimeSpan RunningFor);
}
