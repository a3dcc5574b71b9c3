using System.Globalization;
using BatchCore.Model;

namespace BatchCore.Jobs;

/// <summary>
/// One finished attempt, kept compact: the strings AWS shows (log stream name, container-instance and task ARNs) are
/// built only when someone describes the job, not on the dispatch path.
/// </summary>
internal sealed class AttemptRecord
{
    private AttemptDetail? _detail;

    public AttemptRecord(int number, int? exitCode, string? reason, long? startedAt, long stoppedAt, string statusReason, string hostName, string ceName)
    {
        Number = number;
        ExitCode = exitCode;
        Reason = reason;
        StartedAt = startedAt;
        StoppedAt = stoppedAt;
        StatusReason = statusReason;
        HostName = hostName;
        CeName = ceName;
    }

    /// <summary>An attempt recovered from the journal, already in AWS's shape.</summary>
    public AttemptRecord(AttemptDetail detail)
    {
        _detail = detail;
        ExitCode = detail.Container?.ExitCode;
        Reason = detail.Container?.Reason;
        StartedAt = detail.StartedAt;
        StoppedAt = detail.StoppedAt ?? 0;
        StatusReason = detail.StatusReason ?? "";
        HostName = "";
        CeName = "";
    }

    public int Number { get; }
    public int? ExitCode { get; }
    public string? Reason { get; }
    public long? StartedAt { get; }
    public long StoppedAt { get; }
    public string StatusReason { get; }
    public string HostName { get; }
    public string CeName { get; }

    /// <summary>AWS names a stream <c>&lt;first 200 chars of the definition name&gt;/default/&lt;task id&gt;</c>.</summary>
    public static string LogStreamName(string definitionName, string jobId, int attempt) =>
        (definitionName.Length > 200 ? definitionName[..200] : definitionName) + "/default/" + jobId.Replace(':', '-') + "-" + attempt.ToString(CultureInfo.InvariantCulture);

    /// <summary>The ECS-style ARN of the host an attempt ran on.</summary>
    public static string ContainerInstanceArn(string region, string account, string ceName, string hostName) =>
        $"arn:{BatchEngineDefaults.Partition(region)}:ecs:{region}:{account}:container-instance/{ceName}/{hostName}";

    /// <summary>The ECS-style task ARN of attempt <paramref name="number"/> of a job.</summary>
    public static string TaskArn(string region, string account, string ceName, string jobId, int number) =>
        $"arn:{BatchEngineDefaults.Partition(region)}:ecs:{region}:{account}:task/{ceName}/{jobId.Replace(':', '-')}-{number.ToString(CultureInfo.InvariantCulture)}";

    public AttemptDetail ToDetail(Job job, string region, string account) => _detail ??= new AttemptDetail
    {
        Container = new AttemptContainerDetail
        {
            ExitCode = ExitCode,
            Reason = Reason,
            LogStreamName = LogStreamName(job.Spec.Definition.JobDefinitionName, job.Id, Number),
            ContainerInstanceArn = ContainerInstanceArn(region, account, CeName, HostName),
            TaskArn = TaskArn(region, account, CeName, job.Id, Number),
        },
        StartedAt = StartedAt,
        StoppedAt = StoppedAt,
        StatusReason = StatusReason,
    };
}

/// <summary>
/// A job's attempts, oldest first, over the job's one field: none; the <see cref="Placement.Host"/> of a first attempt
/// that succeeded plainly (exit 0, AWS's "Essential container in task exited": the common job, whose record is built
/// from the host and the job's times when read, so a finished job keeps no attempt object at all); the one attempt
/// itself; or a list. A view: reading it allocates nothing but a plain success's record.
/// </summary>
internal readonly struct AttemptList
{
    private readonly object? _items;
    private readonly long _startedAt;
    private readonly long _stoppedAt;

    public AttemptList(object? items, long startedAt, long stoppedAt)
    {
        _items = items;
        _startedAt = startedAt;
        _stoppedAt = stoppedAt;
    }

    public int Count => _items switch
    {
        null => 0,
        AttemptRecord or Placement.Host => 1,
        _ => ((List<AttemptRecord>)_items).Count,
    };

    public AttemptRecord this[int index] => index == 0 && _items is AttemptRecord or Placement.Host ? Last!
        : _items is List<AttemptRecord> list ? list[index]
        : throw new ArgumentOutOfRangeException(nameof(index));

    /// <summary>The latest attempt, or null when there is none.</summary>
    public AttemptRecord? Last => _items switch
    {
        null => null,
        AttemptRecord one => one,
        Placement.Host host => new AttemptRecord(1, 0, null, _startedAt == 0 ? null : _startedAt, _stoppedAt,
            Model.StatusReasons.Essential, host.Name, host.ComputeEnvironment.Name),
        _ => ((List<AttemptRecord>)_items)[^1],
    };

    /// <summary>The field's value with <paramref name="attempt"/> appended.</summary>
    public object Append(AttemptRecord attempt) => _items switch
    {
        null => attempt,
        AttemptRecord or Placement.Host => new List<AttemptRecord>(2) { Last!, attempt },
        _ => Add((List<AttemptRecord>)_items, attempt),
    };

    private static List<AttemptRecord> Add(List<AttemptRecord> list, AttemptRecord attempt)
    {
        list.Add(attempt);
        return list;
    }

    public Enumerator GetEnumerator() => new(this);

    public struct Enumerator(AttemptList list)
    {
        private int _index = -1;

        public readonly AttemptRecord Current => list[_index];

        public bool MoveNext() => ++_index < list.Count;
    }
}
