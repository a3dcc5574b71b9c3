using System.Buffers;
using System.Text.Json;
using BatchCore.Model;
using MessagePack;

namespace BatchCore.Journal;

/// <summary>What a journal record says.</summary>
internal enum RecordKind : byte
{
    /// <summary>A resource request that succeeded: [1, op, requestJson].</summary>
    Resource = 1,
    /// <summary>A job accepted by SubmitJob: [2, jobId, createdAt, definitionArn, requestJson].</summary>
    Submit = 2,
    /// <summary>A job changed state: [3, jobId, state, reason, time, startedAt, stoppedAt, flags, attemptJson?, host?, driver?, handle?]
    /// (format 1: the first 9 fields only).</summary>
    State = 3,
    /// <summary>Snapshot only: a job's whole state: [4, jobId, state, reason, time, startedAt, stoppedAt, flags, attemptsJson?, host?, driver?, handle?]
    /// (format 1: the first 9 fields only).</summary>
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

/// <summary>A decoded record.</summary>
internal sealed record DecodedRecord(RecordKind Kind)
{
    public string? Op { get; init; }
    public byte[]? Json { get; init; }
    public string? JobId { get; init; }
    public long Time { get; init; }
    public string? DefinitionArn { get; init; }
    public int State { get; init; }
    public string? Reason { get; init; }
    public long? StartedAt { get; init; }
    public long? StoppedAt { get; init; }
    public JobFlags Flags { get; init; }
    /// <summary>STARTING or RUNNING: the host the attempt runs on.</summary>
    public string? Host { get; init; }
    /// <summary>STARTING or RUNNING: the host's driver kind.</summary>
    public string? Driver { get; init; }
    /// <summary>RUNNING: the driver's re-attach handle, when it reported one.</summary>
    public string? Handle { get; init; }
}

/// <summary>Where a STARTING or RUNNING job's attempt runs, for re-attaching after a restart.</summary>
internal readonly record struct AttemptLocation(string? Host, string? Driver, string? Handle);

/// <summary>Encodes and decodes records: a MessagePack array per record; request bodies as UTF-8 JSON inside.</summary>
internal static class JournalCodec
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static void Resource(IBufferWriter<byte> output, string op, byte[] requestJson)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(3);
        w.Write((byte)RecordKind.Resource);
        w.Write(op);
        w.Write(requestJson);
        w.Flush();
    }

    public static void Submit(IBufferWriter<byte> output, string jobId, long createdAt, string definitionArn, byte[] requestJson)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(5);
        w.Write((byte)RecordKind.Submit);
        w.Write(jobId);
        w.Write(createdAt);
        w.Write(definitionArn);
        w.Write(requestJson);
        w.Flush();
    }

    public static void State(IBufferWriter<byte> output, RecordKind kind, string jobId, int state, string? reason, long time, long? startedAt, long? stoppedAt, JobFlags flags, byte[]? json, AttemptLocation where = default)
    {
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader(12);
        w.Write((byte)kind);
        w.Write(jobId);
        w.Write(state);
        WriteNullable(ref w, reason);

        w.Write(time);
        WriteNullable(ref w, startedAt);
        WriteNullable(ref w, stoppedAt);
        w.Write((int)flags);
        if (json is null)
        {
            w.WriteNil();
        }
        else
        {
            w.Write(json);
        }

        WriteNullable(ref w, where.Host);
        WriteNullable(ref w, where.Driver);
        WriteNullable(ref w, where.Handle);
        w.Flush();
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

    public static DecodedRecord Decode(ReadOnlyMemory<byte> payload)
    {
        var r = new MessagePackReader(payload);
        var n = r.ReadArrayHeader();
        var kind = (RecordKind)r.ReadByte();
        switch (kind)
        {
            case RecordKind.Resource when n == 3:
                return new DecodedRecord(kind) { Op = r.ReadString(), Json = ReadBytes(ref r) };
            case RecordKind.Submit when n == 5:
                return new DecodedRecord(kind) { JobId = r.ReadString(), Time = r.ReadInt64(), DefinitionArn = r.ReadString(), Json = ReadBytes(ref r) };
            case RecordKind.State or RecordKind.Full when n is 9 or 12:
                var id = r.ReadString();
                var state = r.ReadInt32();
                var reason = r.TryReadNil() ? null : r.ReadString();
                var time = r.ReadInt64();
                long? started = r.TryReadNil() ? null : r.ReadInt64();
                long? stopped = r.TryReadNil() ? null : r.ReadInt64();
                var flags = (JobFlags)r.ReadInt32();
                var json = r.TryReadNil() ? null : ReadBytes(ref r);
                string? host = null, driver = null, handle = null;
                if (n == 12)
                {
                    host = r.TryReadNil() ? null : r.ReadString();
                    driver = r.TryReadNil() ? null : r.ReadString();
                    handle = r.TryReadNil() ? null : r.ReadString();
                }

                return new DecodedRecord(kind) { JobId = id, State = state, Reason = reason, Time = time, StartedAt = started, StoppedAt = stopped, Flags = flags, Json = json, Host = host, Driver = driver, Handle = handle };
            default:
                throw new InvalidDataException($"unknown record kind {(int)kind} with {n} fields");
        }
    }

    private static byte[] ReadBytes(ref MessagePackReader r) => r.ReadBytes()?.ToArray() ?? [];
}
