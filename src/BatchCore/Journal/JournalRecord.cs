using System.Buffers;
using System.Text.Json;
using BatchCore.Jobs;
using BatchCore.Model;
using MessagePack;

namespace BatchCore.Journal;

/// <summary>What a journal record says.</summary>
internal enum RecordKind : byte
{
    /// <summary>A resource request that succeeded: [1, op, requestJson].</summary>
    Resource = 1,
    /// <summary>A job accepted by SubmitJob: [2, jobId, createdAt, definitionArn, queue, jobName, arraySize, requestJson?]
    /// (formats 1 and 2: [2, jobId, createdAt, definitionArn, requestJson]).</summary>
    Submit = 2,
    /// <summary>A job changed state: [3, jobId, state, reason, time, startedAt, stoppedAt, flags, attempt?, host?, driver?, handle?, scheduledAgo?]
    /// (format 1: the first 9 fields only; formats 1 and 2: the attempt as JSON; formats 1 to 3: no scheduledAgo).</summary>
    State = 3,
    /// <summary>Snapshot only: a job's whole state: [4, jobId, state, reason, time, startedAt, stoppedAt, flags, attempts?, host?, driver?, handle?, scheduledAgo?]
    /// (format 1: the first 9 fields only; formats 1 and 2: the attempts as one JSON array; formats 1 to 3: no scheduledAgo).</summary>
    Full = 4,
}

/// <summary>Job flags carried in state records.</summary>
[Flags]
internal enum JobFlags
{
    None = 0,
    Cancelled = 1,
    Terminated = 2,
    PendingCancel = 4,
}

/// <summary>A decoded Resource or Submit record.</summary>
internal sealed class DecodedRecord(RecordKind kind)
{
    public RecordKind Kind { get; } = kind;
    public string? Op { get; init; }
    /// <summary>Resource: the request. Submit: the request when it overrides something (empty for a plain submit).</summary>
    public ReadOnlyMemory<byte> Json { get; init; }
    public string? JobId { get; init; }
    public long Time { get; init; }
    public string? DefinitionArn { get; init; }
    /// <summary>Submit, formats 3 and 4: the queue's name, the job's name and its array size (0: not an array).</summary>
    public string? Queue { get; init; }
    public string? JobName { get; init; }
    public int ArraySize { get; init; }
    /// <summary>Submit: format 3 or 4 (queue and name recorded; no request body means the request overrode nothing).</summary>
    public bool Compact { get; init; }
}

/// <summary>A decoded State or Full record, without its job id (a struct: recovery keeps one per job, not one object per record).</summary>
internal struct StateRecord
{
    public RecordKind Kind;
    public int State;
    public string? Reason;
    public long Time;
    public long? StartedAt;
    public long? StoppedAt;
    public JobFlags Flags;
    /// <summary>State: the attempt that just ended; Full: all attempts; null when none.</summary>
    public List<AttemptRecord>? Attempts;
    /// <summary>STARTING or RUNNING: the host the attempt runs on.</summary>
    public string? Host;
    /// <summary>STARTING or RUNNING: the host's driver kind.</summary>
    public string? Driver;
    /// <summary>RUNNING: the driver's re-attach handle, when it reported one.</summary>
    public string? Handle;
    /// <summary>The job's scheduledAt (placed on a host: STARTING, RUNNING, or ended after a placement); null when it has
    /// none, and in records of formats 1 to 3, which did not carry it.</summary>
    public long? ScheduledAt;
}

/// <summary>Where a STARTING or RUNNING job's attempt runs, for re-attaching after a restart.</summary>
internal readonly record struct AttemptLocation(string? Host, string? Driver, string? Handle);

/// <summary>
/// Encodes and decodes records: a MessagePack array per record, written straight into the journal's buffer (no
/// intermediate arrays). Job state, submissions and attempts are plain MessagePack fields; only resource requests and
/// submissions that override the definition carry their AWS request as UTF-8 JSON inside.
/// </summary>
internal static class JournalCodec
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static void Resource(IBufferWriter<byte> output, string op, ReadOnlySpan<byte> requestJson)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(3);
        w.Write((byte)RecordKind.Resource);
        w.Write(op);
        w.Write(requestJson);
        w.Flush();
    }

    /// <summary>A submission; <paramref name="requestJson"/> is empty when the request overrode nothing (its spec is the definition's).</summary>
    public static void Submit(IBufferWriter<byte> output, Job job, ReadOnlySpan<byte> requestJson)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(8);
        w.Write((byte)RecordKind.Submit);
        w.Write(job.Id);
        w.Write(job.CreatedAt);
        w.Write(job.Spec.Definition.JobDefinitionArn);
        w.Write(job.Queue.Name);
        w.Write(job.Name);
        w.Write(job.ArraySize);
        if (requestJson.IsEmpty)
        {
            w.WriteNil();
        }
        else
        {
            w.Write(requestJson);
        }

        w.Flush();
    }

    /// <summary>A State record (the attempt that just ended, if any) or a snapshot's Full record (all attempts).</summary>
    public static void State(IBufferWriter<byte> output, RecordKind kind, Job job, long time, int firstAttempt, AttemptLocation where, JobFlags flags, string region, string account)
    {
        var attempts = job.Attempts;
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(13);
        w.Write((byte)kind);
        w.Write(job.Id);
        w.Write((int)job.State);
        WriteNullable(ref w, job.StatusReason);
        w.Write(time);
        WriteNullable(ref w, job.StartedAt);
        WriteNullable(ref w, job.StoppedAt);
        w.Write((int)flags);
        if (firstAttempt >= attempts.Count)
        {
            w.WriteNil();
        }
        else if (kind == RecordKind.State)
        {
            WriteAttempt(ref w, job, attempts.Last!, region, account);
        }
        else
        {
            w.WriteArrayHeader(attempts.Count - firstAttempt);
            for (var i = firstAttempt; i < attempts.Count; i++)
            {
                WriteAttempt(ref w, job, attempts[i], region, account);
            }
        }

        WriteNullable(ref w, where.Host);
        WriteNullable(ref w, where.Driver);
        WriteNullable(ref w, where.Handle);

        // scheduledAt as how long before the record's time: 1 byte in the STARTING record (the placement's own), a few
        // in the others, where the absolute time would take 9.
        WriteNullable(ref w, time - job.ScheduledAt);
        w.Flush();
    }

    /// <summary>
    /// [number, exitCode?, reason?, startedAt?, stoppedAt, statusReason, hostName, ceName]. An attempt recovered from a
    /// format 1/2 file (or made up by recovery) is already in AWS's shape and has no number: it stays JSON (bin).
    /// </summary>
    private static void WriteAttempt(ref MessagePackWriter w, Job job, AttemptRecord a, string region, string account)
    {
        if (a.Number == 0)
        {
            w.Write(JsonSerializer.SerializeToUtf8Bytes(a.ToDetail(job, region, account), Json));
            return;
        }

        w.WriteArrayHeader(8);
        w.Write(a.Number);
        if (a.ExitCode is { } exit)
        {
            w.Write(exit);
        }
        else
        {
            w.WriteNil();
        }

        WriteNullable(ref w, a.Reason);
        WriteNullable(ref w, a.StartedAt);
        w.Write(a.StoppedAt);
        w.Write(a.StatusReason);
        w.Write(a.HostName);
        w.Write(a.CeName);
    }

    private static void WriteNullable(ref MessagePackWriter w, string? v)
    {
        if (v is null)
        {
            w.WriteNil();
        }
        else
        {
            w.Write(v);
        }
    }

    private static void WriteNullable(ref MessagePackWriter w, long? v)
    {
        if (v is { } x)
        {
            w.Write(x);
        }
        else
        {
            w.WriteNil();
        }
    }

    /// <summary>Reads a record's array header and kind; then <see cref="Decode"/> or <see cref="DecodeState"/> reads the rest.</summary>
    public static RecordKind ReadHeader(ref MessagePackReader r, out int fields)
    {
        fields = r.ReadArrayHeader();
        return (RecordKind)r.ReadByte();
    }

    /// <summary>The rest of a Resource or Submit record of any format (1–4: the field count tells the layouts apart).</summary>
    public static DecodedRecord Decode(ref MessagePackReader r, RecordKind kind, int n, StringTable strings)
    {
        switch (kind)
        {
            case RecordKind.Resource when n == 3:
                return new DecodedRecord(kind) { Op = r.ReadString(), Json = ReadBytes(ref r) };
            case RecordKind.Submit when n == 5:
                return new DecodedRecord(kind) { JobId = r.ReadString(), Time = r.ReadInt64(), DefinitionArn = strings.Read(ref r), Json = ReadBytes(ref r) };
            case RecordKind.Submit when n == 8:
                return new DecodedRecord(kind)
                {
                    JobId = r.ReadString(),
                    Time = r.ReadInt64(),
                    DefinitionArn = strings.Read(ref r),
                    Queue = strings.Read(ref r),
                    JobName = strings.Read(ref r),
                    ArraySize = r.ReadInt32(),
                    Json = r.TryReadNil() ? default : ReadBytes(ref r),
                    Compact = true,
                };
            default:
                throw new InvalidDataException($"unknown record kind {(int)kind} with {n} fields");
        }
    }

    /// <summary>
    /// The rest of a State or Full record of any format (format 1: 9 fields, formats 2 and 3: 12, format 4: 13; formats 1
    /// and 2 carry attempts as JSON (bin), formats 3 and 4 as MessagePack arrays). <paramref name="jobId"/> is the job
    /// id's UTF-8, inside the payload.
    /// </summary>
    public static StateRecord DecodeState(ref MessagePackReader r, RecordKind kind, int n, StringTable strings, out ReadOnlySequence<byte> jobId)
    {
        if (kind is not (RecordKind.State or RecordKind.Full) || n is not (9 or 12 or 13))
        {
            throw new InvalidDataException($"unknown record kind {(int)kind} with {n} fields");
        }

        jobId = r.ReadStringSequence() ?? throw new InvalidDataException("a state record without a job id");
        var rec = new StateRecord
        {
            Kind = kind,
            State = r.ReadInt32(),
            Reason = r.TryReadNil() ? null : strings.Read(ref r),
            Time = r.ReadInt64(),
            StartedAt = r.TryReadNil() ? null : r.ReadInt64(),
            StoppedAt = r.TryReadNil() ? null : r.ReadInt64(),
            Flags = (JobFlags)r.ReadInt32(),
        };
        rec.Attempts = r.TryReadNil() ? null : ReadAttempts(ref r, kind, strings);
        if (n >= 12)
        {
            rec.Host = r.TryReadNil() ? null : strings.Read(ref r);
            rec.Driver = r.TryReadNil() ? null : strings.Read(ref r);
            rec.Handle = r.TryReadNil() ? null : r.ReadString();
        }

        if (n == 13)
        {
            rec.ScheduledAt = r.TryReadNil() ? null : rec.Time - r.ReadInt64();
        }

        return rec;
    }

    private static List<AttemptRecord>? ReadAttempts(ref MessagePackReader r, RecordKind kind, StringTable strings)
    {
        if (kind == RecordKind.State)
        {
            return [ReadAttempt(ref r, strings)];
        }

        if (r.NextMessagePackType == MessagePackType.Binary)
        {
            // Formats 1 and 2: all attempts as one JSON array of AttemptDetail.
            var all = JsonSerializer.Deserialize<List<AttemptDetail>>(r.ReadBytes()!.Value.ToArray(), Json)!;
            var list = new List<AttemptRecord>(all.Count);
            foreach (var d in all)
            {
                list.Add(new AttemptRecord(d));
            }

            return list.Count == 0 ? null : list;
        }

        var count = r.ReadArrayHeader();
        var attempts = new List<AttemptRecord>(count);
        for (var i = 0; i < count; i++)
        {
            attempts.Add(ReadAttempt(ref r, strings));
        }

        return count == 0 ? null : attempts;
    }

    private static AttemptRecord ReadAttempt(ref MessagePackReader r, StringTable strings)
    {
        if (r.NextMessagePackType == MessagePackType.Binary)
        {
            var bytes = r.ReadBytes()!.Value;
            var reader = new Utf8JsonReader(bytes);
            return new AttemptRecord(JsonSerializer.Deserialize<AttemptDetail>(ref reader, Json)!);
        }

        var n = r.ReadArrayHeader();
        if (n != 8)
        {
            throw new InvalidDataException($"an attempt has {n} fields, expected 8");
        }

        var number = r.ReadInt32();
        int? exit = r.TryReadNil() ? null : r.ReadInt32();
        var reason = r.TryReadNil() ? null : strings.Read(ref r);
        long? started = r.TryReadNil() ? null : r.ReadInt64();
        var stopped = r.ReadInt64();
        var statusReason = strings.Read(ref r);
        var host = strings.Read(ref r);
        var ce = strings.Read(ref r);
        return new AttemptRecord(number, exit, reason, started, stopped, statusReason, host, ce);
    }

    private static ReadOnlyMemory<byte> ReadBytes(ref MessagePackReader r)
    {
        var seq = r.ReadBytes();
        if (seq is not { } s)
        {
            return default;
        }

        // The reader runs over one contiguous payload: its sequences are single segments (no copy).
        return s.IsSingleSegment ? s.First : s.ToArray();
    }
}

/// <summary>
/// Decoding's string table: the strings records repeat (definition ARNs, queue and job names, status reasons, host
/// names) are allocated once per recovery, looked up by their UTF-8 bytes. Bounded, so unique names cost no memory.
/// </summary>
internal sealed class StringTable
{
    private const int MaxEntries = 4096;
    private const int MaxLength = 256;
    private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    public StringTable() => _lookup = _strings.GetAlternateLookup<ReadOnlySpan<char>>();

    public string Read(ref MessagePackReader r)
    {
        if (!r.TryReadStringSpan(out var utf8))
        {
            return r.ReadString() ?? ""; // nil or not contiguous (the reader has not moved)
        }

        if (utf8.Length > MaxLength)
        {
            return System.Text.Encoding.UTF8.GetString(utf8);
        }

        {
            Span<char> chars = stackalloc char[MaxLength];
            var count = System.Text.Encoding.UTF8.GetChars(utf8, chars);
            var span = chars[..count];
            if (_lookup.TryGetValue(span, out var found))
            {
                return found;
            }

            var s = new string(span);
            if (_strings.Count < MaxEntries)
            {
                _strings[s] = s;
            }

            return s;
        }
    }
}
