using System.CommandLine;
using BatchCore.Cli.Logs;
using BatchCore.Model;

namespace BatchCore.Cli.Commands;

/// <summary><c>batchcore logs &lt;jobId&gt;</c>: the log streams of every attempt of a job, from a run's state directory.</summary>
internal static class LogsCommand
{
    public static Command Create()
    {
        var job = new Argument<string>("jobId") { Description = "The job's id (an array child: <parentId>:<index>) or its name." };
        var state = CommonOptions.State("The state directory of a `batchcore run --state <dir>`.", withDefault: true);
        var command = new Command("logs", "Print the logs of every attempt of a job, from the state directory of a run.") { job, state };
        command.SetAction(parse =>
        {
            var dir = parse.GetRequiredValue(state).FullName;
            var id = parse.GetRequiredValue(job);
            var file = Path.Combine(dir, JobReport.StateFileName);
            if (!File.Exists(file))
            {
                Console.Error.WriteLine($"error: no run state in {dir} (run `batchcore run <spec> --state {dir}` first)");
                return ExitCodes.InvalidInput;
            }

            var jobs = JobReport.Read(file)?.Jobs ?? [];
            var found = jobs.FirstOrDefault(j => j.JobId == id) ?? jobs.FirstOrDefault(j => j.JobName == id && j.ArrayProperties?.Index is null);
            if (found is null)
            {
                Console.Error.WriteLine($"error: job {id} is not in {file} (known: {string.Join(", ", jobs.Where(j => j.ArrayProperties?.Index is null).Select(j => j.JobName + " " + j.JobId))})");
                return ExitCodes.InvalidInput;
            }

            // An array parent has no attempts of its own: its children's logs, in index order.
            var targets = found.ArrayProperties?.Size is > 0
                ? jobs.Where(j => j.JobId.StartsWith(found.JobId + ":", StringComparison.Ordinal)).ToList()
                : [found];
            var streams = targets.SelectMany(t => t.Attempts.Select((a, i) => (Job: t, Attempt: i + 1, Stream: a.Container?.LogStreamName)))
                .Where(s => s.Stream is not null).ToList();
            if (streams.Count == 0)
            {
                Console.Error.WriteLine($"job {found.JobId} ({found.JobName}) has no log streams: status {found.Status}{(found.StatusReason is { } r ? ", " + r : "")}");
                return found.Status == JobStatus.FAILED ? ExitCodes.JobFailed : ExitCodes.Success;
            }

            var store = new FileLogStore(Path.Combine(dir, "logs"));
            foreach (var (target, attempt, stream) in streams)
            {
                if (streams.Count > 1)
                {
                    Console.WriteLine($"==> {target.JobId} attempt {attempt}: {stream} <==");
                }

                string? token = null;
                while (true)
                {
                    var page = store.GetLogEvents(stream!, token);
                    foreach (var e in page.Events)
                    {
                        Console.WriteLine(e.Message);
                    }

                    if (page.Events.Count == 0 || page.NextForwardToken == token)
                    {
                        break;
                    }

                    token = page.NextForwardToken;
                }
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
