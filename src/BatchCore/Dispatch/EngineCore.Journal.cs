using System.Text.Json;
using BatchCore.Hosts;
using BatchCore.Jobs;
using BatchCore.Journal;
using BatchCore.Model;
using BatchCore.Validation;

namespace BatchCore.Dispatch;

internal sealed partial class EngineCore
{
    private const string JournalFileName = "journal.bcj";
    private const string SnapshotFileName = "snapshot.bcj";

    /// <summary>The journal a new snapshot replaces, while it is put in place (see <see cref="InstallSnapshot"/>).</summary>
    private const string ReplacedJournalFileName = "journal.replaced.bcj";

    /// <summary>The state directory's identity (see <see cref="EngineId"/>).</summary>
    private const string EngineIdFileName = "engine-id";
    private JournalWriter? _journal;
    private bool _replaying;

    /// <summary>
    /// Set around what recovery itself does (an attempt the restart cut short fails): telemetry counts it, where it skips
    /// replayed changes (counted by the run that made them).
    /// </summary>
    private bool _newDuringReplay;
    private string? _stateDirectory;
    private readonly List<(string Op, byte[] Json)> _resourceLog = [];

    /// <summary>
    /// Tag/UntagResource of jobs, apart from the resource log: a snapshot writes them after the jobs' submissions (and
    /// only for jobs it keeps), so replay never tags a job that does not exist yet.
    /// </summary>
    private readonly List<(string JobId, string Op, byte[] Json)> _jobTagLog = [];

    /// <summary>While replaying: job tag records met before their job (snapshots written before the rule above).</summary>
    private List<(string JobId, string Op, byte[] Json)>? _deferredJobTags;

    /// <summary>Requests of jobs that override their definition, kept for snapshots (a plain job's record needs only its fields).</summary>
    private readonly Dictionary<string, byte[]> _submitLog = new(StringComparer.Ordinal);

    public bool Journaling => _journal is not null;

    /// <summary>
    /// The identity of the state directory, null without one: random when the directory is created, then kept in its
    /// <c>engine-id</c> file, so the same across restarts and different for every other engine on the machine. Launches
    /// and re-attaches carry it (<see cref="AttemptLaunch.EngineId"/>) for drivers to scope what they leave on the machine.
    /// </summary>
    public string? EngineId { get; private set; }

    /// <summary>What recovery found: for the caller to report.</summary>
    public RecoveryReport? Recovery { get; private set; }

    // ---- writing -----------------------------------------------------------------------------------------------------

    public void JournalResource(string op, object request)
    {
        if (_journal is null || _replaying)
        {
            return;
        }

        var json = JsonSerializer.SerializeToUtf8Bytes(request, request.GetType(), JournalCodec.Json);
        if (request is TagRecord { Arn: var arn } && JobIdOfArn(arn) is { } jobId)
        {
            _jobTagLog.Add((jobId, op, json));
        }
        else
        {
            LogResource(op, json, request);
        }

        JournalCodec.Resource(_journal.BeginRecord(), op, json);
        _journal.EndRecord();
    }

    /// <summary>
    /// Per consumable resource (by name): where in <see cref="_resourceLog"/> its last UpdateConsumableResource is, while
    /// no Create or Delete of it came after. A SET replaces that entry instead of following it (nothing after it says
    /// anything about the resource, and a SET makes what came before it moot), so the log does not grow by one entry per
    /// job that used up units of a non-replenishable resource (<see cref="RecordConsumableTotal"/>).
    /// </summary>
    private readonly Dictionary<string, int> _lastConsumableUpdate = new(StringComparer.Ordinal);

    /// <summary>Adds a resource record to the log snapshots write (<paramref name="request"/>: the record's request, decoded).</summary>
    private void LogResource(string op, byte[] json, object request)
    {
        switch (request)
        {
            case UpdateConsumableResourceRequest { ConsumableResource: { } nameOrArn } update:
                var name = NameOf(nameOrArn, "consumable-resource", anyRegion: true);
                if ((update.Operation ?? "SET") == "SET" && _lastConsumableUpdate.TryGetValue(name, out var at))
                {
                    _resourceLog[at] = (op, json);
                    return;
                }

                _lastConsumableUpdate[name] = _resourceLog.Count;
                break;
            case CreateConsumableResourceRequest { ConsumableResourceName: { } created }:
                _lastConsumableUpdate.Remove(created);
                break;
            case string deleted when op == nameof(DeleteConsumableResource):
                _lastConsumableUpdate.Remove(NameOf(deleted, "consumable-resource", anyRegion: true));
                break;
        }

        _resourceLog.Add((op, json));
    }

    /// <summary>
    /// A job that ended used up units of non-replenishable <paramref name="resource"/>: its total now is journaled (as
    /// the UpdateConsumableResource SET that gives it, so every engine that reads the format replays it) and kept for
    /// snapshots. Replay applies job states only after every resource record, so without it a restart gave the used-up
    /// units back; a SET of the total, not the quantity used, keeps its place among UpdateConsumableResource records (an
    /// update below what jobs hold shrinks the total as they end: <see cref="ConsumableResourceState.Release"/>).
    /// </summary>
    private void RecordConsumableTotal(ConsumableResourceState resource)
    {
        if (_stateDirectory is null)
        {
            return; // nothing is kept: no snapshot will be written
        }

        var request = new UpdateConsumableResourceRequest { ConsumableResource = resource.Name, Operation = "SET", Quantity = resource.TotalQuantity };
        var json = JsonSerializer.SerializeToUtf8Bytes(request, JournalCodec.Json);
        LogResource(nameof(UpdateConsumableResource), json, request); // also during recovery: the snapshot it writes has it
        if (_journal is not null && !_replaying)
        {
            JournalCodec.Resource(_journal.BeginRecord(), nameof(UpdateConsumableResource), json);
            _journal.EndRecord();
        }
    }

    private void JournalSubmit(Job job, SubmitJobRequest r)
    {
        if (_journal is null || _replaying)
        {
            return;
        }

        // A request that overrides nothing resolved to the definition's shared spec: its record is the job's fields only,
        // written straight into the journal's buffer. Others carry the request, replayed through SubmitJob.
        ReadOnlySpan<byte> json = default;
        if (!IsPlainSpec(job.Spec))
        {
            var bytes = JsonSerializer.SerializeToUtf8Bytes(r, JournalCodec.Json);
            _submitLog[job.Id] = bytes;
            json = bytes;
        }

        JournalCodec.Submit(_journal.BeginRecord(), job, json);
        _journal.EndRecord();
    }

    private static bool IsPlainSpec(JobSpec spec) => spec.Plain;

    private void JournalState(Job job)
    {
        if (_journal is null || _replaying)
        {
            return;
        }

        JournalCodec.State(_journal.BeginRecord(), RecordKind.State, job, NowMs, job.JournaledAttempts, LocationOf(job), FlagsOf(job), _options.Region, _options.AccountId);
        _journal.EndRecord();
        job.JournaledAttempts = job.AttemptCount;
    }

    /// <summary>STARTING or RUNNING on a host: where, so that recovery can re-attach to it.</summary>
    private static AttemptLocation LocationOf(Job job) =>
        job.State is JobState.Starting or JobState.Running && job.Host is { } host
            ? new AttemptLocation(host.Name, host.Driver.Kind, job.AttemptHandle)
            : default;

    private static JobFlags FlagsOf(Job job) =>
        (job.IsCancelled ? JobFlags.Cancelled : 0) | (job.IsTerminated ? JobFlags.Terminated : 0) | (job.PendingCancelReason is not null ? JobFlags.PendingCancel : 0);

    /// <summary>
    /// Group commit: one write and (per policy) one fsync for everything the loop did in this batch; then
    /// <paramref name="acks"/> are told (on the journal's flusher, so the loop goes on meanwhile). Without a journal
    /// the acknowledgements run at once.
    /// </summary>
    public void CommitJournal(List<IJournalAck>? acks = null)
    {
        if (_journal is null)
        {
            if (acks is not null)
            {
                foreach (var a in acks)
                {
                    a.Acknowledge(_journalFault); // no journal, or one compaction could not reopen: never a silent success
                }
            }

            return;
        }

        _journal.Commit(acks);
        if (_journal.Length > _options.Journal.CompactAfterBytes && _journal.Length > _compactPostponedTo)
        {
            Compact();
        }
    }

    /// <summary>Set when compaction could not reopen the journal: every later request fails with it instead of being acknowledged unjournaled.</summary>
    private Exception? _journalFault;

    /// <summary>After a snapshot that failed: the journal length to reach before compaction is tried again.</summary>
    private long _compactPostponedTo;

    // ---- recovery ------------------------------------------------------------------------------------------------------

    /// <summary>
    /// Opens the state directory: replays snapshot + journal (cutting a torn tail, refusing corruption), brings every
    /// job to a valid state, writes a fresh snapshot and starts a new journal.
    /// </summary>
    public void OpenJournal(string directory)
    {
        Directory.CreateDirectory(directory);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        _stateDirectory = directory;
        var snapshot = Path.Combine(directory, SnapshotFileName);
        var journal = Path.Combine(directory, JournalFileName);
        FinishInterruptedInstall(directory);
        EngineId = ReadOrCreateEngineId(directory); // before replay: re-attaching during recovery needs it
        var replay = new ReplayState(_jobs);
        int journalVersion;
        _replaying = true;
        try
        {
            using (var reader = new JournalReader(snapshot, truncateTornTail: false))
            {
                ReplayFile(snapshot, reader, replay);
            }

            var before = replay.Records;
            using (var reader = new JournalReader(journal, truncateTornTail: true))
            {
                journalVersion = reader.Version;
                ReplayFile(journal, reader, replay);
            }

            replay.JournalRecords = replay.Records - before;
        }
        finally
        {
            _replaying = false;
        }

        var changed = false;
        if (replay.Records == 0)
        {
            // A new state directory. Seed, 1 by default, would give every journaled engine the same ids, and with them
            // the same names for what the engines leave on the machine (a driver's run directories, container labels).
            // Ids are journaled, never regenerated by replay, so a random seed changes nothing recovery reproduces.
            _ids = new JobIdGenerator(RandomSeed());
        }
        else
        {
            FinishReplay(replay);
            FoldRecoveredChildren(replay);
            RebuildShareUsage();
            changed |= ForgetExpiredJobs();
            QueueRecoveredEndedJobs();
            changed |= Recovery!.InterruptedAttempts > 0 || Recovery.Reattached > 0 || _deregistrationsTimed;
        }

        _journal = null;
        if (replay.JournalRecords > 0 && !changed && journalVersion == JournalFile.Version && new FileInfo(journal).Length <= _options.Journal.CompactAfterBytes)
        {
            // Replaying the journal reproduced the state exactly (recovery changed nothing that is not in it): go on
            // appending to it. Restart time is then read + replay; compaction waits for CompactAfterBytes as usual.
            _journal = new JournalWriter(journal, _options.Journal, pipelined: true);
            return;
        }

        // Start clean: everything recovered goes into a new snapshot; the journal starts empty. A snapshot that already
        // says it all (empty journal, nothing changed by recovery) is kept as it is: restart time is then read + replay.
        if (changed || replay.JournalRecords > 0 || !File.Exists(snapshot))
        {
            WriteSnapshot(snapshot);
            InstallSnapshot(directory);
        }
        else if (File.Exists(journal))
        {
            File.Delete(journal); // holds no records: the snapshot says it all
        }

        _journal = new JournalWriter(journal, _options.Journal, pipelined: true);
    }

    /// <summary>A seed no other engine uses (64 random bits).</summary>
    /// <summary>
    /// The seed of the recovered engine's <see cref="Random"/> (boot jitter, spot interruptions): the same in every
    /// process for the same options seed, recovered job count and clock (<see cref="HashCode.Combine{T1, T2, T3}"/>,
    /// used before, is randomized per process, so a replayed simulation or test did not repeat).
    /// </summary>
    internal static int RecoveredSeed(int seed, int jobs, long nowMs)
    {
        unchecked
        {
            var h = ((ulong)(uint)seed * 0x9E3779B97F4A7C15UL) ^ ((ulong)(uint)jobs * 0xC2B2AE3D27D4EB4FUL) ^ (ulong)nowMs;
            h ^= h >> 33;
            h *= 0xFF51AFD7ED558CCDUL;
            h ^= h >> 33;
            return (int)h;
        }
    }

    private static long RandomSeed()
    {
        Span<byte> bytes = stackalloc byte[8];
        System.Security.Cryptography.RandomNumberGenerator.Fill(bytes);
        return System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(bytes);
    }

    /// <summary>
    /// The state directory's <c>engine-id</c> (16 hex digits), created with a random one when missing or not such an id
    /// (written aside, fsynced and renamed into place, so a crash never leaves a partial one).
    /// </summary>
    private static string ReadOrCreateEngineId(string directory)
    {
        var file = Path.Combine(directory, EngineIdFileName);
        try
        {
            var text = File.ReadAllText(file).Trim();
            if (text.Length == 16 && text.AsSpan().IndexOfAnyExcept("0123456789abcdef") < 0)
            {
                return text;
            }
        }
        catch (FileNotFoundException)
        {
        }

        Span<byte> bytes = stackalloc byte[8];
        System.Security.Cryptography.RandomNumberGenerator.Fill(bytes);
        var id = Convert.ToHexStringLower(bytes);
        var tmp = file + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // 0600, as the journal's files
        }

        using (var stream = new FileStream(tmp, options))
        {
            stream.Write(System.Text.Encoding.ASCII.GetBytes(id + "\n"));
            stream.Flush(flushToDisk: true);
        }

        File.Move(tmp, file, overwrite: true);
        DirectorySync.Fsync(directory);
        return id;
    }

    /// <summary>
    /// Puts a written snapshot (<c>snapshot.bcj.tmp</c>, complete and fsynced) in place of the snapshot and the journal it
    /// contains, so that no crash can pair the new snapshot with the old journal (which would replay the journal twice:
    /// jobs duplicated, finished ones run again). The journal is renamed aside first, then the snapshot into place, then
    /// the old journal deleted, with the directory fsynced after each step; <see cref="FinishInterruptedInstall"/> reads
    /// which step a crash interrupted from the files left.
    /// </summary>
    private static void InstallSnapshot(string directory)
    {
        var journal = Path.Combine(directory, JournalFileName);
        var replaced = Path.Combine(directory, ReplacedJournalFileName);
        var snapshot = Path.Combine(directory, SnapshotFileName);
        if (File.Exists(journal))
        {
            File.Move(journal, replaced, overwrite: true);
            DirectorySync.Fsync(directory);
        }

        File.Move(snapshot + ".tmp", snapshot, overwrite: true);
        DirectorySync.Fsync(directory);
        if (File.Exists(replaced))
        {
            File.Delete(replaced);
            DirectorySync.Fsync(directory);
        }
    }

    /// <summary>
    /// Before replay: a crash inside <see cref="InstallSnapshot"/> left the replaced journal. With the new snapshot still
    /// beside it (not yet renamed into place) the old snapshot and that journal are the state, as before the
    /// compaction; without it the snapshot in place already contains that journal, which is dropped.
    /// </summary>
    private static void FinishInterruptedInstall(string directory)
    {
        var replaced = Path.Combine(directory, ReplacedJournalFileName);
        if (!File.Exists(replaced))
        {
            return;
        }

        var pending = Path.Combine(directory, SnapshotFileName) + ".tmp";
        if (File.Exists(pending))
        {
            // The journal back first, made durable; only then the marker that said so goes (the other order, cut
            // between the two, read as "the snapshot has it" at the next start, and the journal was deleted).
            File.Move(replaced, Path.Combine(directory, JournalFileName), overwrite: true);
            DirectorySync.Fsync(directory);
            File.Delete(pending);
        }
        else
        {
            File.Delete(replaced);
        }

        DirectorySync.Fsync(directory);
    }

    /// <summary>What replay carries from record to record and from the snapshot to the journal.</summary>
    private sealed class ReplayState
    {
        public ReplayState(Dictionary<string, Job> jobs)
        {
            JobsById = JobIndex.GetAlternateLookup<ReadOnlySpan<char>>();
            TopJobs = jobs.GetAlternateLookup<ReadOnlySpan<char>>();
        }

        /// <summary>The engine's job table, looked up by the record's id without making a string of it.</summary>
        public readonly Dictionary<string, Job>.AlternateLookup<ReadOnlySpan<char>> TopJobs;

        public readonly StringTable Strings = new();
        public readonly RecoveryReport Report = new();
        /// <summary>Jobs named by state records, each with its last state record and where that stands in journal order.</summary>
        public readonly Dictionary<string, int> JobIndex = new(StringComparer.Ordinal);
        public readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> JobsById;
        public readonly List<Job> Jobs = [];
        public readonly List<StateRecord> Last = [];
        public readonly List<int> LastAt = [];
        /// <summary>Per state record, in journal order: its job's index. The last record of each job is applied in this order.</summary>
        public readonly List<int> Order = [];
        /// <summary>Definitions by ARN, as submit records name them (the strings come from <see cref="Strings"/>).</summary>
        public readonly Dictionary<string, JobDefinition> Definitions = new(StringComparer.Ordinal);
        public int Records;
        public int JournalRecords;
    }

    /// <summary>
    /// Replays one file's records as they are decoded: resources and submissions at once (a plain submission becomes its
    /// job directly, from the definition's shared spec — it was validated before it was journaled); for state records
    /// only each job's last is kept, for <see cref="FinishReplay"/>, and their attempts go to the job.
    /// </summary>
    private void ReplayFile(string path, JournalReader reader, ReplayState replay)
    {
        Span<char> idBuffer = stackalloc char[128];
        while (reader.TryRead(out var payload))
        {
            var offset = reader.Offset;
            var r = new MessagePack.MessagePackReader(payload);
            try
            {
                var kind = JournalCodec.ReadHeader(ref r, out var fields);
                if (kind is RecordKind.State or RecordKind.Full)
                {
                    var state = JournalCodec.DecodeState(ref r, kind, fields, replay.Strings, out var idUtf8);
                    ReplayStateRecord(path, offset, state, idUtf8.IsSingleSegment ? idUtf8.FirstSpan : System.Buffers.BuffersExtensions.ToArray(idUtf8), idBuffer, replay);
                }
                else
                {
                    var rec = JournalCodec.Decode(ref r, kind, fields, replay.Strings);
                    if (rec.Kind == RecordKind.Resource)
                    {
                        ReplayResource(rec.Op!, rec.Json.ToArray());
                    }
                    else
                    {
                        ReplaySubmit(rec, replay);
                        EvaluateSubmitted(); // children exist before a later job names one as a dependency
                        replay.Report.Jobs++;
                    }
                }
            }
            catch (Exception e) when (e is InvalidDataException or MessagePack.MessagePackSerializationException or EndOfStreamException or JsonException)
            {
                throw new JournalCorruptException(path, offset, "undecodable record: " + e.Message);
            }

            replay.Records++;
        }

        ApplyDeferredJobTags();
    }

    private void ReplayStateRecord(string path, long offset, in StateRecord rec, ReadOnlySpan<byte> idUtf8, Span<char> idBuffer, ReplayState replay)
    {
        var chars = idUtf8.Length <= idBuffer.Length ? idBuffer[..System.Text.Encoding.UTF8.GetChars(idUtf8, idBuffer)] : System.Text.Encoding.UTF8.GetString(idUtf8).AsSpan();
        if (!replay.JobsById.TryGetValue(chars, out var at))
        {
            // The job's first state record (no string is made for the others, nor for a job the table has by that id).
            if (!replay.TopJobs.TryGetValue(chars, out var found))
            {
                var id = new string(chars);
                if (!TryGetJob(id, out found))
                {
                    throw new JournalCorruptException(path, offset, $"names job {id}, which no submit record created");
                }
            }

            at = replay.Jobs.Count;
            replay.JobIndex[found.Id] = at;
            replay.Jobs.Add(found);
            replay.Last.Add(default);
            replay.LastAt.Add(0);
        }

        var job = replay.Jobs[at];
        if (rec.Attempts is { } attempts)
        {
            if (rec.Kind == RecordKind.Full)
            {
                job.ReplaceAttempts(attempts);
            }
            else
            {
                foreach (var a in attempts)
                {
                    job.AddAttempt(a);
                }
            }

            job.JournaledAttempts = job.AttemptCount;
        }

        if (job.IsArrayParent && (JobState)rec.State != JobState.Succeeded)
        {
            // Known before FinishReplay ends its children: a cancelled or terminated parent then ends cancelled, with the
            // cancel's reason, as live. (Not from a SUCCEEDED record: journals written before this rule have cancelled
            // parents that succeeded, and replay keeps them so.)
            job.IsCancelled = (rec.Flags & JobFlags.Cancelled) != 0;
            job.IsTerminated = (rec.Flags & JobFlags.Terminated) != 0;
            if ((job.IsCancelled || job.IsTerminated) && rec.Reason is { } reason)
            {
                job.StatusReason = reason;
            }
        }

        var last = rec;
        last.Attempts = null; // already the job's
        replay.Last[at] = last;
        replay.LastAt[at] = replay.Order.Count;
        replay.Order.Add(at);
    }

    private void ReplaySubmit(DecodedRecord rec, ReplayState replay)
    {
        if (!rec.Compact || !rec.Json.IsEmpty)
        {
            // Formats 1 and 2, or a request with overrides: through SubmitJob, with the pinned revision.
            var json = rec.Json.ToArray();
            var request = JsonSerializer.Deserialize<SubmitJobRequest>(json, JournalCodec.Json)!;
            _submitLog[rec.JobId!] = json;
            SubmitJob(request with { JobDefinition = rec.DefinitionArn }, null, rec.JobId, rec.Time);
            if (TryGetJob(rec.JobId!, out var replayed) && IsPlainSpec(replayed.Spec))
            {
                _submitLog.Remove(rec.JobId!); // an old format's plain request: written compactly from now on
            }

            return;
        }

        var q = FindQueue(rec.Queue!) ?? throw new JournalCorruptException($"journal submits job {rec.JobId} to job queue {rec.Queue}, which no record created");
        if (!replay.Definitions.TryGetValue(rec.DefinitionArn!, out var def))
        {
            var p = new Problems();
            def = ResolveDefinitionForSubmit(rec.DefinitionArn!, p) ?? throw new JournalCorruptException($"journal submits job {rec.JobId} with job definition {rec.DefinitionArn}, which no record created");
            replay.Definitions[rec.DefinitionArn!] = def;
        }

        if (!_plainSpecs.TryGetValue(def, out var spec) || q.IsFairShare)
        {
            // The first job of this definition (or a queue that gives no shared spec): resolve as SubmitJob did.
            spec = ResolveSpec(new SubmitJobRequest { JobName = rec.JobName, JobQueue = q.Name, JobDefinition = def.JobDefinitionArn }, q, def, new Problems());
        }

        AcceptJob(rec.JobId!, rec.JobName!, q, spec!, rec.Time, rec.ArraySize, null, null);
    }

    /// <summary>After every record is read: children and SUBMITTED → PENDING/RUNNABLE, then each job's last state in journal order.</summary>
    private void FinishReplay(ReplayState replay)
    {
        var report = replay.Report;
        _replaying = true;
        try
        {
            // Children and SUBMITTED → PENDING/RUNNABLE, as the first cycle would have done.
            EvaluateSubmitted();
            var order = replay.Order;
            for (var i = 0; i < order.Count; i++)
            {
                var at = order[i];
                if (replay.LastAt[at] == i)
                {
                    ApplyRecovered(replay.Jobs[at], replay.Last[at], report);
                }
            }

            ReleaseInterruptedConsumables();
        }
        finally
        {
            _replaying = false;
        }

        // A job of a deleted queue that its records leave unfinished (a journal cut between the deletion and the records
        // of what it ended) ends as the deletion ends it live.
        foreach (var job in _jobs.Values.Where(j => j.Queue.Status == ResourceStatus.DELETED && !j.State.IsTerminal()).ToList())
        {
            if (job.Parent is null)
            {
                Terminate(job.Id, QueueDeletedReason);
            }
        }

        // New ids must never repeat recovered ones, nor another engine's: a random seed (see OpenJournal). Boot jitter
        // and spot interruptions stay reproducible: their seed is a function of the options' and what was recovered.
        _random = new Random(RecoveredSeed(_options.Seed, _jobs.Count, NowMs));
        _ids = new JobIdGenerator(RandomSeed());
        Recovery = report;
        _dirty = true;
    }

    /// <summary>
    /// Fair share after recovery: the live engine accrues each share's usage continuously and journals none of it, so it
    /// is rebuilt here from the recovered attempts (and the attempts still running), decayed to now exactly as the live
    /// accrual decays it: an attempt of r vCPUs that ran from s to e adds r·τ·(e^(−(now−e)/τ) − e^(−(now−s)/τ)). Attempts
    /// count from RUNNING (the journal keeps the placement time of the last attempt only), so a start delay (Fargate's) is left out.
    /// </summary>
    private void RebuildShareUsage()
    {
        var now = NowMs;
        foreach (var q in _queues.Values)
        {
            if (q.Policy is not { } policy)
            {
                continue;
            }

            var tau = policy.DecaySeconds;
            var usage = new Dictionary<string, (double Decayed, double Total)>(StringComparer.Ordinal);
            foreach (var top in q.AllJobs)
            {
                if (top.Children is { } children)
                {
                    foreach (var child in children)
                    {
                        Add(child);
                    }
                }
                else
                {
                    Add(top);
                }
            }

            foreach (var (id, (decayed, total)) in usage)
            {
                ShareOf(q, id).Restore(decayed, total, now);
            }

            void Add(Job job)
            {
                if (job.Spec.ShareIdentifier is not { } id)
                {
                    return;
                }

                var rate = job.Spec.Request.VcpuMilli / 1000.0;
                var (decayed, total) = usage.GetValueOrDefault(id);
                foreach (var a in job.Attempts)
                {
                    if (a.StartedAt is { } started)
                    {
                        Accrue(started, a.StoppedAt);
                    }
                }

                if (job.State == JobState.Running && job.AttemptStartedAt > 0)
                {
                    Accrue(job.AttemptStartedAt, now);
                }

                usage[id] = (decayed, total);

                void Accrue(long startMs, long stopMs)
                {
                    stopMs = Math.Min(stopMs, now);
                    if (stopMs <= startMs)
                    {
                        return;
                    }

                    total += rate * (stopMs - startMs) / 1000.0;
                    decayed += rate * tau * (Math.Exp(-(now - stopMs) / 1000.0 / tau) - Math.Exp(-(now - startMs) / 1000.0 / tau));
                }
            }
        }
    }

    /// <summary>
    /// Array children recovered as plain first-attempt successes are folded into their array as a live engine folds
    /// them (<see cref="ArrayChildren.TryFold"/>): a replayed attempt comes back as a record, and one that is exactly a
    /// plain success (attempt 1, exit 0, no reason, AWS's "Essential container in task exited", the job's own times) on a
    /// host this engine still has is turned back into that host alone. A child whose host is gone (a Fargate or managed
    /// host of the previous run) keeps its record and its object; so does a record in AWS's shape from an older journal.
    /// </summary>
    private void FoldRecoveredChildren(ReplayState replay)
    {
        foreach (var job in replay.Jobs)
        {
            if (job.Parent?.Children is not { } children || job.State != JobState.Succeeded || job.PlainSuccessHost is not null ||
                job.AttemptCount != 1 || job.StatusReason != StatusReasons.Essential || job.StartedAt is not { } started ||
                job.StoppedAt is not { } stopped || !ReferenceEquals(children.LiveAt(job.ArrayIndex), job))
            {
                continue;
            }

            var attempt = job.Attempts[0];
            if (attempt is not { Number: 1, ExitCode: 0, Reason: null, StatusReason: StatusReasons.Essential } ||
                attempt.StartedAt != started || attempt.StoppedAt != stopped || attempt.HostName.Length == 0 ||
                !_ces.TryGetValue(attempt.CeName, out var ce) || !ce.Hosts.TryGetValue(attempt.HostName, out var host))
            {
                continue;
            }

            var attemptStartedAt = job.AttemptStartedAt;
            job.ReplaceAttempts([]);
            job.AddPlainSuccess(host);
            job.AttemptStartedAt = started;
            if (!children.TryFold(job))
            {
                job.ReplaceAttempts([attempt]); // something else keeps it live: as it was
                job.AttemptStartedAt = attemptStartedAt;
            }
        }
    }

    private void ApplyRecovered(Job job, in StateRecord rec, RecoveryReport report)
    {
        var state = (JobState)rec.State;
        job.IsCancelled = (rec.Flags & JobFlags.Cancelled) != 0;
        job.IsTerminated = (rec.Flags & JobFlags.Terminated) != 0;
        job.StartedAt = rec.StartedAt;
        if (job.State.IsTerminal())
        {
            job.StatusReason = rec.Reason ?? job.StatusReason;
            job.StoppedAt = rec.StoppedAt ?? job.StoppedAt;
            RestoreScheduledAt(job, rec);
            return;
        }

        if (state.IsTerminal())
        {
            RemoveFromReady(job);
            job.StoppedAt = rec.StoppedAt;
            SetState(job, state, rec.Reason); // from RUNNABLE: no scheduledAt
            RestoreScheduledAt(job, rec);
            return;
        }

        if ((rec.Flags & JobFlags.PendingCancel) != 0)
        {
            job.PendingCancelReason = rec.Reason;
            job.StatusReason = rec.Reason;
        }

        if (state is JobState.Starting or JobState.Running)
        {
            if (job.State == JobState.Runnable && TryReattach(job, state, rec))
            {
                report.Reattached++;
                return;
            }

            // The engine died while this attempt ran and no driver could take it back: the attempt ends as a host
            // failure and retries per retryStrategy.
            report.InterruptedAttempts++;
            LockInterruptedConsumables(job);
            job.AddAttempt(new AttemptRecord(new AttemptDetail
            {
                Container = new AttemptContainerDetail { Reason = StatusReasons.EngineRestarted },
                StartedAt = rec.StartedAt,
                StoppedAt = NowMs,
                StatusReason = StatusReasons.EngineRestarted,
            }));
            job.JournaledAttempts = job.AttemptCount;
            job.StartedAt = rec.StartedAt;
            if (job.State != JobState.Runnable)
            {
                return; // e.g. still PENDING because a dependency's record came later: it gets there on its own
            }

            RemoveFromReady(job);
            if (job.AttemptCount < job.Spec.MaxAttempts && !job.IsTerminated)
            {
                job.StatusReason = StatusReasons.EngineRestarted;
                job.Seq = -(++_retrySeq);
                Enqueue(job, front: true);
                report.Retried++;
            }
            else
            {
                job.StoppedAt = NowMs;
                _newDuringReplay = true;
                try
                {
                    SetState(job, JobState.Failed, StatusReasons.EngineRestarted);
                    RestoreScheduledAt(job, rec); // the interrupted attempt's placement, as a live host failure keeps it
                }
                finally
                {
                    _newDuringReplay = false;
                }

                report.Failed++;
            }

            return;
        }

        if (state == JobState.Runnable && job.State == JobState.Runnable && job.AttemptCount > 0)
        {
            // A retry that was waiting: back to the front, as when it was retried.
            RemoveFromReady(job);
            job.Seq = -(++_retrySeq);
            Enqueue(job, front: true);
            job.StatusReason = rec.Reason;
        }
    }

    /// <summary>Jobs whose attempt the restart cut short, holding their consumable resources until every recovered attempt holds its own.</summary>
    private List<Job>? _interruptedHolding;

    /// <summary>
    /// An attempt the restart cut short held its consumable resources (locked at STARTING) when the engine died: they are
    /// locked again, and released as the attempt's end releases them live once every re-attached attempt holds its own
    /// (<see cref="ReleaseInterruptedConsumables"/>), so a non-replenishable resource's units it used are used up, as
    /// after any failed attempt, and the total comes out as the running engine's would have (an update below what jobs
    /// hold shrinks it by what they all held).
    /// </summary>
    private void LockInterruptedConsumables(Job job)
    {
        if (job.Spec.Consumables.Length == 0)
        {
            return;
        }

        foreach (var (res, qty) in job.Spec.Consumables)
        {
            res.InUse += qty;
        }

        (_interruptedHolding ??= []).Add(job);
    }

    private void ReleaseInterruptedConsumables()
    {
        if (_interruptedHolding is not { } holding)
        {
            return;
        }

        _interruptedHolding = null;
        foreach (var job in holding)
        {
            foreach (var (res, qty) in job.Spec.Consumables)
            {
                res.Release(qty);
                if (!res.Replenishable)
                {
                    RecordConsumableTotal(res); // into the snapshot recovery writes (an interrupted attempt makes it write one)
                }
            }
        }
    }

    /// <summary>
    /// An ended job's scheduledAt from its record (format 4 carries it; a format 1–3 record leaves what replay gave it,
    /// none). Never for a job waiting again: its field holds when it became RUNNABLE.
    /// </summary>
    private static void RestoreScheduledAt(Job job, in StateRecord rec)
    {
        System.Diagnostics.Debug.Assert(job.State.IsTerminal(), "only an ended job's field is free for scheduledAt");
        if (rec.ScheduledAt is { } at)
        {
            job.ScheduledAt = at;
        }
    }

    /// <summary>
    /// Hands an attempt that was STARTING or RUNNING when the engine died back to the driver of the host it ran on. When
    /// the driver takes it, the job is STARTING or RUNNING again under a new token with its resources reserved, and the
    /// driver reports its exit as for any attempt. When the host is gone (a managed host is not brought back), a driver
    /// of the same kind is asked to take it only to stop it, so that nothing is left running unobserved.
    /// </summary>
    private bool TryReattach(Job job, JobState state, in StateRecord rec)
    {
        if (rec.Host is not { } hostName || rec.Driver is not { } kind || kind == "simulated")
        {
            return false;
        }

        var attempt = job.AttemptCount + 1;
        var host = FindHost(hostName);
        var token = ++_tokenSeq; // events only reach the loop's channel: nothing is handled before the job is set up
        var reattach = ReattachOf(job, attempt, hostName, rec.Handle, new AttemptToken(token));
        if (host is null)
        {
            // A host provider's host (a Slurm node) is reported again only after recovery: its driver takes the attempt
            // back onto a stand-in host, which the reported host later takes over.
            host = ReattachOnUnreportedHost(job, kind, reattach);
            if (host is null)
            {
                StopOrphan(job, attempt, hostName, kind, rec.Handle);
                return false;
            }
        }
        else if (host.Driver.Kind != kind || !(host.Accepts || host.AwaitingReport))
        {
            StopOrphan(job, attempt, hostName, kind, rec.Handle);
            return false;
        }
        else if (!TryTakeBack(host.Driver, reattach))
        {
            return false;
        }
        else if (host.AwaitingReport)
        {
            GrowStandIn(host, job.Spec.Request);
        }

        RemoveFromReady(job);
        ReserveAttempt(job, host, token);
        job.AttemptHandle = rec.Handle;
        SetState(job, JobState.Starting, null);
        job.ScheduledAt = rec.ScheduledAt; // when the previous engine placed it (null from a format 1–3 record)
        if (state == JobState.Running)
        {
            job.AttemptStartedAt = rec.StartedAt ?? NowMs;
            SetState(job, JobState.Running, null);
            if (job.Spec.TimeoutSeconds is { } seconds)
            {
                // AWS: the timeout counts from the attempt's startedAt, which was before the restart.
                job.TimeoutTimer = AddTimer(new TimerEntry { Kind = TimerKind.AttemptTimeout, DueMs = job.AttemptStartedAt + (seconds * 1000L), Target = job, Token = token });
            }
        }

        job.StartedAt = rec.StartedAt ?? job.StartedAt;
        if (job.IsTerminated)
        {
            // TerminateJob was accepted before the crash: it still applies.
            job.TerminateReason = job.StatusReason ?? "Terminated";
            host.Driver.Terminate(new AttemptToken(token), _options.TerminationGracePeriod);
        }

        return true;
    }

    private Placement.Host? FindHost(string name)
    {
        foreach (var ce in _ces.Values)
        {
            if (ce.Hosts.TryGetValue(name, out var host))
            {
                return host;
            }
        }

        return null;
    }

    /// <summary>
    /// The host is gone (or, for a host provider's, not reported again yet): a driver of its kind takes the attempt
    /// back only to stop it at once.
    /// </summary>
    private void StopOrphan(Job job, int attempt, string hostName, string kind, string? handle)
    {
        HostDriver? driver = null;
        foreach (var d in _sharedDrivers.Values)
        {
            if (d.Kind == kind)
            {
                driver = d;
            }
        }

        foreach (var ce in _ces.Values)
        {
            foreach (var h in ce.Hosts.Values)
            {
                if (driver is null && h.Driver.Kind == kind)
                {
                    driver = h.Driver;
                }
            }
        }

        if (driver is null && _options.DriverFactories?.ContainsKey(kind) == true)
        {
            driver = CreateDriver(new HostSpec { Driver = kind, HostName = hostName }, "recovery");
            _sharedDrivers[kind] = driver; // disposed with the engine
        }

        if (driver is not null)
        {
            _ = StopOrphanWith(driver, job, attempt, hostName, handle);
            return;
        }

        // A host provider's hosts come back only once it reports them, after recovery (a Slurm node): its driver is
        // asked instead. Each provider may own another cluster: the first whose driver takes the attempt stops it.
        foreach (var ce in _ces.Values)
        {
            if (ce.HostProvider?.Driver is { } provided && provided.Kind == kind && StopOrphanWith(provided, job, attempt, hostName, handle))
            {
                return;
            }
        }
    }

    /// <summary>Whether <paramref name="driver"/> took the attempt back (and was told to stop it at once).</summary>
    private bool StopOrphanWith(HostDriver driver, Job job, int attempt, string hostName, string? handle)
    {
        var token = new AttemptToken(++_tokenSeq); // never in _attempts: its events are ignored
        if (!TryTakeBack(driver, ReattachOf(job, attempt, hostName, handle, token)))
        {
            return false;
        }

        try
        {
            driver.Terminate(token, TimeSpan.Zero);
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return false; // best effort: the attempt fails as a host failure either way
        }
    }

    /// <summary>What a driver is handed to take back attempt <paramref name="attempt"/> of <paramref name="job"/>.</summary>
    private AttemptReattach ReattachOf(Job job, int attempt, string hostName, string? handle, AttemptToken token) => new()
    {
        Token = token,
        JobId = job.Id,
        Attempt = attempt,
        LogStreamName = AttemptRecord.LogStreamName(job.Spec.Definition.JobDefinitionName, job.Id, attempt),
        HostName = hostName,
        Handle = handle,
        EngineId = EngineId,
    };

    private void ReplayResource(string op, byte[] json)
    {
        T Read<T>() => JsonSerializer.Deserialize<T>(json, JournalCodec.Json)!;
        switch (op)
        {
            case nameof(CreateComputeEnvironment): CreateComputeEnvironment(Read<CreateComputeEnvironmentRequest>()); break;
            case nameof(UpdateComputeEnvironment): UpdateComputeEnvironment(Read<UpdateComputeEnvironmentRequest>()); break;
            case nameof(DeleteComputeEnvironment): DeleteComputeEnvironment(Read<string>()); break;
            case nameof(CreateJobQueue): CreateJobQueue(Read<CreateJobQueueRequest>()); break;
            case nameof(UpdateJobQueue): UpdateJobQueue(Read<UpdateJobQueueRequest>()); break;
            case nameof(DeleteJobQueue): DeleteJobQueue(Read<string>()); break;
            case nameof(RegisterJobDefinition): RegisterJobDefinition(Read<RegisterJobDefinitionRequest>()); break;
            case nameof(DeregisterJobDefinition):
                if (json is [(byte)'"', ..])
                {
                    // Written before deregistrations carried their time: from now, and the log rewritten to say so (a
                    // snapshot is then written), so that every later start counts the 180 days from the same instant.
                    var legacy = new DeregisterRecord(Read<string>(), NowMs);
                    json = JsonSerializer.SerializeToUtf8Bytes(legacy, JournalCodec.Json);
                    _deregistrationsTimed = true;
                }

                var deregister = Read<DeregisterRecord>();
                DeregisterJobDefinition(deregister.JobDefinition, deregister.DeregisteredAtMs);
                break;
            case nameof(CreateSchedulingPolicy): CreateSchedulingPolicy(Read<CreateSchedulingPolicyRequest>()); break;
            case nameof(UpdateSchedulingPolicy): UpdateSchedulingPolicy(Read<UpdateSchedulingPolicyRequest>()); break;
            case nameof(DeleteSchedulingPolicy): DeleteSchedulingPolicy(Read<string>()); break;
            case nameof(CreateConsumableResource):
                var create = Read<CreateConsumableResourceRequest>();
                CreateConsumableResource(create);
                LogResource(op, json, create);
                return;
            case nameof(UpdateConsumableResource):
                var update = Read<UpdateConsumableResourceRequest>();
                UpdateConsumableResource(update);
                LogResource(op, json, update);
                return;
            case nameof(DeleteConsumableResource):
                var delete = Read<string>();
                DeleteConsumableResource(delete);
                LogResource(op, json, delete);
                return;
            case nameof(TagResource) or nameof(UntagResource):
                var tag = Read<TagRecord>();
                if (JobIdOfArn(tag.Arn) is { } jobId)
                {
                    if (!TryGetJob(jobId, out _))
                    {
                        // Its submission comes later in the file (a snapshot written before job tags followed their jobs),
                        // or its job was forgotten: applied at the end of the file if the job is there then.
                        (_deferredJobTags ??= []).Add((jobId, op, json));
                        return;
                    }

                    ApplyTag(op, tag);
                    _jobTagLog.Add((jobId, op, json));
                    return;
                }

                ApplyTag(op, tag);
                break;
            default:
                throw new JournalCorruptException($"journal has an unknown resource operation '{op}'");
        }

        _resourceLog.Add((op, json));
    }

    private void ApplyTag(string op, TagRecord tag)
    {
        if (op == nameof(TagResource))
        {
            TagResource(tag.Arn, tag.Tags);
        }
        else
        {
            UntagResource(tag.Arn, tag.Keys);
        }
    }

    /// <summary>After a file is replayed: the job tag records that came before their job, for jobs that exist now.</summary>
    private void ApplyDeferredJobTags()
    {
        if (_deferredJobTags is not { } deferred)
        {
            return;
        }

        _deferredJobTags = null;
        foreach (var (jobId, op, json) in deferred)
        {
            if (TryGetJob(jobId, out _))
            {
                ApplyTag(op, JsonSerializer.Deserialize<TagRecord>(json, JournalCodec.Json)!);
                _jobTagLog.Add((jobId, op, json));
            }
        }
    }

    /// <summary>The job id in a job's ARN (<c>…:job/&lt;id&gt;</c>), or null for another resource's.</summary>
    private string? JobIdOfArn(string? arn) =>
        arn is not null && arn.StartsWith("arn:", StringComparison.Ordinal) && arn.Contains(":job/", StringComparison.Ordinal) ? NameOf(arn, "job") : null;

    /// <summary>The journal body of DeregisterJobDefinition: the request's jobDefinition and when (engine ms), from which recovery purges.</summary>
    internal sealed record DeregisterRecord(string JobDefinition, long DeregisteredAtMs);

    /// <summary>Replay met deregistrations without their time and gave them one: the state must be written again.</summary>
    private bool _deregistrationsTimed;

    /// <summary>The journal body of Tag/UntagResource.</summary>
    internal sealed record TagRecord(string Arn, IReadOnlyDictionary<string, string>? Tags, IReadOnlyList<string>? Keys);

    // ---- snapshots and compaction ----------------------------------------------------------------------------------------

    /// <summary>Writes the whole current state as a snapshot (temp file, fsync, atomic rename) and restarts the journal.</summary>
    private void Compact()
    {
        if (_stateDirectory is null || _journal is null)
        {
            return;
        }

        _journal.Commit();
        var snapshot = Path.Combine(_stateDirectory, SnapshotFileName);
        try
        {
            WriteSnapshot(snapshot);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Disk full, a bad sector: the old snapshot and the journal are still whole and the journal goes on. The
            // compaction is tried again once the journal has grown by another CompactAfterBytes.
            TryDelete(snapshot + ".tmp");
            _compactPostponedTo = _journal.Length + _options.Journal.CompactAfterBytes;
            ReportUnexpected(e);
            return;
        }

        _journal.Dispose();
        _journal = null;
        var journal = Path.Combine(_stateDirectory, JournalFileName);
        try
        {
            InstallSnapshot(_stateDirectory);
            _journal = new JournalWriter(journal, _options.Journal, pipelined: true);
            _compactPostponedTo = 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The snapshot holds everything so far; what comes now cannot be journaled: refused, not lost silently.
            _journalFault = new IOException("the journal could not be reopened after compaction: " + e.Message, e);
            ReportUnexpected(e);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // best effort: recovery ignores a leftover temporary snapshot
        }
    }

    /// <summary>Writes the whole current state to <c><paramref name="path"/>.tmp</c>, fsynced; <see cref="InstallSnapshot"/> puts it in place.</summary>
    private void WriteSnapshot(string path)
    {
        var tmp = path + ".tmp";
        var cutoff = RetentionCutoff();
        var keep = JobsToKeep(cutoff);
        using (var writer = new JournalWriter(tmp, _options.Journal with { FsyncPolicy = FsyncPolicy.EveryCommit }))
        {
            foreach (var (op, json) in _resourceLog)
            {
                JournalCodec.Resource(writer.BeginRecord(), op, json);
                writer.EndRecord();
            }

            foreach (var job in keep)
            {
                if (job.Parent is null)
                {
                    var logged = _submitLog.TryGetValue(job.Id, out var json);
                    System.Diagnostics.Debug.Assert(logged || IsPlainSpec(job.Spec), "a job with overrides has its request logged");
                    JournalCodec.Submit(writer.BeginRecord(), job, logged ? json : default);
                    writer.EndRecord();
                    writer.WriteIfOver(1 << 20);
                }
            }

            // Tags set on jobs after they were submitted: after the submissions, and only for the jobs kept.
            var kept = new HashSet<string>(StringComparer.Ordinal);
            foreach (var job in keep)
            {
                if (job.Parent is null)
                {
                    kept.Add(job.Id);
                }
            }

            _jobTagLog.RemoveAll(t => !kept.Contains(TopIdOf(t.JobId)));
            foreach (var (_, op, json) in _jobTagLog)
            {
                JournalCodec.Resource(writer.BeginRecord(), op, json);
                writer.EndRecord();
            }

            foreach (var job in keep)
            {
                if (job.State == JobState.Submitted)
                {
                    continue;
                }

                JournalCodec.State(writer.BeginRecord(), RecordKind.Full, job, NowMs, 0, LocationOf(job), FlagsOf(job), _options.Region, _options.AccountId);
                writer.EndRecord();
                writer.WriteIfOver(1 << 20);
            }

            writer.Commit();
        }
    }

    /// <summary>An array child's parent id (<c>parent:index</c> → <c>parent</c>); a top-level id as it is.</summary>
    private static string TopIdOf(string jobId) => jobId.IndexOf(':', StringComparison.Ordinal) is var colon and > 0 ? jobId[..colon] : jobId;

    /// <summary>
    /// Top-level jobs in submission order, as long as a state directory is open (dependencies always point back in this
    /// order, so a snapshot written in it replays). Kept rather than sorted: a million jobs would take a sort per snapshot.
    /// </summary>
    private readonly List<Job> _submissionOrder = [];

    private void RecordSubmission(Job job)
    {
        if (_stateDirectory is not null)
        {
            _submissionOrder.Add(job);
        }
    }

    /// <summary>
    /// Jobs in submission order, without terminal jobs older than the retention that no kept job depends on
    /// (dependencies always point back in time, so one pass from newest to oldest finds them).
    /// </summary>
    private List<Job> JobsToKeep(long cutoff)
    {
        var tops = _submissionOrder;
        var needed = new HashSet<string>(StringComparer.Ordinal);
        var keepTop = new bool[tops.Count];
        for (var i = tops.Count - 1; i >= 0; i--)
        {
            var j = tops[i];
            var old = j.State.IsTerminal() && (j.StoppedAt ?? j.CreatedAt) < cutoff;
            if ((old && !needed.Contains(j.Id)) || !_queues.ContainsKey(j.Queue.Name))
            {
                continue;
            }

            keepTop[i] = true;
            foreach (var d in j.Spec.DependsOn)
            {
                if (d.JobId is { } dep)
                {
                    needed.Add(dep);
                    var colon = dep.IndexOf(':', StringComparison.Ordinal);
                    if (colon > 0)
                    {
                        needed.Add(dep[..colon]);
                    }
                }
            }
        }

        var result = new List<Job>(tops.Count);
        for (var i = 0; i < tops.Count; i++)
        {
            if (!keepTop[i])
            {
                continue;
            }

            result.Add(tops[i]);
            if (tops[i].Children is { } children)
            {
                result.AddRange(children);
            }
        }

        return result;
    }

    /// <summary>Drops terminal jobs past the retention that nothing kept depends on (AWS keeps them at least 7 days).</summary>
    private bool ForgetExpiredJobs()
    {
        var cutoff = RetentionCutoff();
        var anyOld = false;
        foreach (var j in _submissionOrder)
        {
            if ((j.State.IsTerminal() && (j.StoppedAt ?? j.CreatedAt) < cutoff) || !_queues.ContainsKey(j.Queue.Name))
            {
                anyOld = true;
                break;
            }
        }

        if (!anyOld)
        {
            return false; // the common restart: nothing to drop, no need to build the sets below
        }

        var keep = new HashSet<Job>(JobsToKeep(cutoff));
        var drop = AllJobsAndChildren().Where(j => !keep.Contains(j) && j.State.IsTerminal() && (j.Parent is null || !keep.Contains(j.Parent))).ToList();
        if (drop.Count == 0)
        {
            return false;
        }

        var dropped = new HashSet<Job>(drop);
        foreach (var j in drop)
        {
            if (j.Parent is null)
            {
                Forget(j); // out of the tables, and no longer pinning what it depended on
            }
        }

        ForgottenJobs += dropped.Count(j => j.Parent is null);
        _submissionOrder.RemoveAll(dropped.Contains);
        foreach (var q in _queues.Values)
        {
            q.AllJobs.RemoveAll(dropped.Contains);
            q.ForgottenJobs = 0;
        }

        return true;
    }

    public void CloseJournal()
    {
        _journalClosed |= _journal is not null;
        _journal?.Dispose();
        _journal = null;
    }

    /// <summary>
    /// The journal was closed (the engine stops): what ends after it (attempts the stop terminates) is not durable, and a
    /// restart sees those attempts cut short — telemetry leaves them to the restart too, which counts how they end.
    /// </summary>
    private bool _journalClosed;
}

/// <summary>What recovery found in a state directory.</summary>
public sealed class RecoveryReport
{
    /// <summary>Jobs recovered.</summary>
    public int Jobs { get; internal set; }
    /// <summary>Attempts that were STARTING or RUNNING when the engine died and that a driver took back: still running,
    /// or ended while the engine was down with a recorded exit code (the job then completes with that exit).</summary>
    public int Reattached { get; internal set; }
    /// <summary>Attempts that were STARTING or RUNNING when the engine died and could not be re-attached (gone without a
    /// recorded exit, host gone, driver without re-attach): each ended FAILED as a host failure.</summary>
    public int InterruptedAttempts { get; internal set; }
    /// <summary>Of those, jobs sent back to RUNNABLE (front of the queue) per retryStrategy.</summary>
    public int Retried { get; internal set; }
    /// <summary>Of those, jobs that failed (no attempts left, or terminated).</summary>
    public int Failed { get; internal set; }
}
