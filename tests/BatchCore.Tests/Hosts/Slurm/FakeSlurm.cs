using System.Globalization;
using BatchCore.Hosts.Slurm;
using BatchCore.Logs;

namespace BatchCore.Tests.Hosts.Slurm;

/// <summary>
/// A Slurm controller made of files, for driver tests without slurmctld: <c>sbatch</c>, <c>squeue</c>,
/// <c>scancel</c> and <c>sinfo</c> (one idle node, n1) are small <c>/bin/sh</c> scripts that keep jobs as directories (<c>jobs/&lt;id&gt;/state</c>,
/// <c>name</c>, <c>comment</c>, <c>args</c>). Nothing runs: a test plays the job itself (<see cref="Run"/>,
/// <see cref="Complete"/>) and the controller (<see cref="SetState"/>, <see cref="Forget"/>). Each <see cref="Client"/>
/// is one bin directory with its own faults (a failing squeue, failing scancels, an sbatch that fails or hangs after
/// queueing the job), so that two drivers can see one cluster differently (an engine that "crashed" and its successor).
/// </summary>
internal sealed class FakeSlurm : IDisposable
{
    private readonly string _root;
    private readonly string _state;
    private int _clients;

    public FakeSlurm()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Skip("the fake Slurm commands are /bin/sh scripts");
        }

        _root = Directory.CreateTempSubdirectory("bc-fakeslurm-").FullName;
        _state = Path.Combine(_root, "state");
        Directory.CreateDirectory(Path.Combine(_state, "jobs"));
        SharedDirectory = Directory.CreateDirectory(Path.Combine(_root, "shared")).FullName;
    }

    /// <summary>The drivers' shared directory.</summary>
    public string SharedDirectory { get; }

    /// <summary>A new bin directory on this cluster, with its own faults.</summary>
    public FakeSlurmClient Client()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_root, "client" + Interlocked.Increment(ref _clients).ToString(CultureInfo.InvariantCulture))).FullName;
        var bin = Directory.CreateDirectory(Path.Combine(dir, "bin")).FullName;
        var flags = Directory.CreateDirectory(Path.Combine(dir, "flags")).FullName;
        // lock: a mkdir lock, given up after 5 s (a command killed while holding it, or the cluster removed under it).
        var header = $"#!/bin/sh\nS='{_state}'; F='{flags}'\necho \"${{0##*/}} $*\" >> \"$F/calls\" || exit 1\n"
            + "lock() { n=0; while ! mkdir \"$1\" 2>/dev/null; do n=$((n + 1)); [ $n -lt 500 ] || exit 1; sleep 0.01; done; }\n";
        Write(Path.Combine(bin, "sbatch"), header + Sbatch);
        Write(Path.Combine(bin, "squeue"), header + Squeue);
        Write(Path.Combine(bin, "scancel"), header + Scancel);
        Write(Path.Combine(bin, "sinfo"), header + Sinfo);
        return new FakeSlurmClient(this, bin, flags);
    }

    /// <summary>Every job the controller knows, by id.</summary>
    public IReadOnlyList<FakeJob> Jobs()
    {
        var jobs = new List<FakeJob>();
        foreach (var dir in Directory.GetDirectories(Path.Combine(_state, "jobs")))
        {
            jobs.Add(Read(long.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture)));
        }

        jobs.Sort((a, b) => a.Id.CompareTo(b.Id));
        return jobs;
    }

    public FakeJob Job(long id) => Read(id);

    /// <summary>Waits (hang guard) until the controller knows <paramref name="count"/> jobs; returns the last.</summary>
    public async Task<FakeJob> WaitForJobAsync(int count = 1)
    {
        await WaitUntilAsync(() => Jobs().Count >= count, $"{count} job(s) submitted");
        return Jobs()[count - 1];
    }

    /// <summary>Waits (hang guard) until job <paramref name="id"/> is in <paramref name="state"/>.</summary>
    public Task WaitForStateAsync(long id, string state) =>
        WaitUntilAsync(() => Directory.Exists(JobDirectory(id)) && Job(id).State == state, $"job {id} {state}");

    /// <summary>A job submitted by someone else (or another attempt): name, comment and state as given.</summary>
    public long AddJob(string name, string comment, string state)
    {
        var id = 1000 + Jobs().Count;
        var dir = Directory.CreateDirectory(JobDirectory(id)).FullName;
        File.WriteAllText(Path.Combine(dir, "name"), name);
        File.WriteAllText(Path.Combine(dir, "comment"), comment);
        File.WriteAllText(Path.Combine(dir, "args"), "");
        File.WriteAllText(Path.Combine(dir, "state"), state + "\n");
        return id;
    }

    public void SetState(long id, string state)
    {
        var file = Path.Combine(JobDirectory(id), "state");
        File.WriteAllText(file + ".tmp", state + "\n");
        File.Move(file + ".tmp", file, overwrite: true);
    }

    /// <summary>The controller forgets the job (MinJobAge purged it).</summary>
    public void Forget(long id) => Directory.Delete(JobDirectory(id), recursive: true);

    /// <summary>Plays the job's start: the wrapper's marker, some output, RUNNING.</summary>
    public void Run(FakeJob job, string output = "")
    {
        File.WriteAllText(job.StartedFile, "");
        File.AppendAllText(job.OutputFile, output);
        SetState(job.Id, "RUNNING");
    }

    /// <summary>Plays the job's end: more output, the wrapper's result file, COMPLETED.</summary>
    public void Complete(FakeJob job, int exitCode, string output = "")
    {
        File.AppendAllText(job.OutputFile, output);
        File.WriteAllText(job.ResultFile + ".tmp", $"exit {exitCode}\n");
        File.Move(job.ResultFile + ".tmp", job.ResultFile, overwrite: true);
        SetState(job.Id, "COMPLETED");
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; the limit is a hang guard, not a timed assertion.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + AttemptEventRecorder.HangGuard;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"not reached within {AttemptEventRecorder.HangGuard} (hang guard): {what}");
            }

            await Task.Delay(10);
        }
    }

    public void Dispose()
    {
        // A command of a disposed driver may still be writing (a scancel it sent last): try again a few times.
        for (var i = 0; i < 10 && Directory.Exists(_root); i++)
        {
            try
            {
                Directory.Delete(_root, recursive: true);
            }
            catch (IOException)
            {
                Thread.Sleep(100);
            }
        }
    }

    private string JobDirectory(long id) => Path.Combine(_state, "jobs", id.ToString(CultureInfo.InvariantCulture));

    private FakeJob Read(long id)
    {
        var dir = JobDirectory(id);
        string Text(string name) => File.Exists(Path.Combine(dir, name)) ? File.ReadAllText(Path.Combine(dir, name)) : "";
        var args = Text("args").Split('\0', StringSplitOptions.RemoveEmptyEntries);
        var scancels = Text("scancel").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return new FakeJob(id, Text("state").Trim(), Text("name"), Text("comment"), args, scancels);
    }

    private static void Write(string path, string script)
    {
        File.WriteAllText(path, script);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    // The job id comes from a counter under a mkdir lock (the driver runs up to 4 commands at a time); a job directory
    // appears complete (built aside, then renamed). Modes (flags/sbatch): fail or hang after queueing, reject before.
    private const string Sbatch = """
        mode=$(cat "$F/sbatch" 2>/dev/null)
        if [ "$mode" = reject ]; then echo "sbatch: error: Batch job submission failed: Invalid node name specified" >&2; exit 1; fi
        lock "$S/lock"
        id=$(( $(cat "$S/next" 2>/dev/null || echo 100) + 1 ))
        echo "$id" > "$S/next"
        rmdir "$S/lock"
        d="$S/new.$id"; mkdir "$d"
        : > "$d/name"; : > "$d/comment"; : > "$d/args"
        for a in "$@"; do
          printf '%s\0' "$a" >> "$d/args"
          case "$a" in
            --job-name=*) printf '%s' "${a#--job-name=}" > "$d/name" ;;
            --comment=*) printf '%s' "${a#--comment=}" > "$d/comment" ;;
          esac
        done
        echo PENDING > "$d/state"
        mv "$d" "$S/jobs/$id"
        case "$mode" in
          fail) echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2; exit 1 ;;
          hang) exec sleep 3600 ;;
        esac
        echo "$id"
        """;

    // --jobs (all unknown: "Invalid job id specified", as Slurm), --name, --format with %i %T %j %k; flags/squeue-fail.
    private const string Squeue = """
        if [ -e "$F/squeue-fail" ]; then echo "squeue: error: slurm_load_jobs error: Unable to contact slurm controller (connect failure)" >&2; exit 1; fi
        jobs=""; names=""; fmt="%i %T"
        for a in "$@"; do
          case "$a" in
            --jobs=*) jobs="${a#--jobs=}" ;;
            --name=*) names="${a#--name=}" ;;
            --format=*) fmt="${a#--format=}" ;;
          esac
        done
        found=0
        for d in "$S"/jobs/*; do
          [ -d "$d" ] || continue
          id=${d##*/}
          if [ -n "$jobs" ]; then case ",$jobs," in *",$id,"*) ;; *) continue ;; esac; fi
          name=$(cat "$d/name" 2>/dev/null)
          if [ -n "$names" ]; then case ",$names," in *",$name,"*) ;; *) continue ;; esac; fi
          found=1
          comment=$(cat "$d/comment" 2>/dev/null)
          awk -v f="$fmt" -v i="$id" -v t="$(cat "$d/state" 2>/dev/null)" -v j="$name" -v k="${comment:-(null)}" 'BEGIN {
            out = ""; n = length(f)
            for (p = 1; p <= n; p++) {
              c = substr(f, p, 1)
              if (c == "%" && p < n) {
                p++; c = substr(f, p, 1)
                if (c == "i") out = out i; else if (c == "T") out = out t; else if (c == "j") out = out j; else if (c == "k") out = out k; else out = out "?"
              } else out = out c
            }
            print out
          }'
        done
        if [ -n "$jobs" ] && [ "$found" = 0 ]; then echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1; fi
        exit 0
        """;

    // One idle node, n1 (2 CPUs, 2000 MiB), of partition debug.
    private const string Sinfo = """
        if [ -e "$F/sinfo-fail" ]; then echo "sinfo: error: Unable to contact slurm controller (connect failure)" >&2; exit 1; fi
        echo '{"meta":{},"errors":[],"nodes":[{"name":"n1","cpus":2,"real_memory":2000,"gres":"","architecture":"x86_64","state":"idle","state_flags":[],"partitions":["debug"],"reason":""}]}'
        """;

    // Fails while flags/scancel-fail counts down; otherwise records the call with the job and cancels a live job.
    private const string Scancel = """
        for a in "$@"; do id="$a"; done
        lock "$F/lock"
        n=$(cat "$F/scancel-fail" 2>/dev/null || echo 0)
        if [ "$n" -gt 0 ]; then
          echo $((n - 1)) > "$F/scancel-fail"; rmdir "$F/lock"
          echo "scancel: error: Kill job error on job id $id: Unable to contact slurm controller (connect failure)" >&2; exit 1
        fi
        rmdir "$F/lock"
        d="$S/jobs/$id"
        if [ ! -d "$d" ]; then echo "scancel: error: Kill job error on job id $id: Invalid job id specified" >&2; exit 1; fi
        echo "$*" >> "$d/scancel"
        case "$(cat "$d/state")" in
          PENDING|CONFIGURING|RUNNING|SUSPENDED) echo CANCELLED > "$d/state.tmp" && mv "$d/state.tmp" "$d/state" ;;
        esac
        exit 0
        """;
}

/// <summary>One bin directory of a <see cref="FakeSlurm"/> and its faults.</summary>
internal sealed class FakeSlurmClient(FakeSlurm cluster, string bin, string flags)
{
    public string BinDirectory => bin;

    /// <summary>Driver options on this client: fast polls, a short lost-job timeout.</summary>
    public SlurmOptions Options(LogStore logs) => new()
    {
        LogStore = logs,
        BinDirectory = bin,
        SharedDirectory = cluster.SharedDirectory,
        PollInterval = TimeSpan.FromMilliseconds(50),
        LostJobTimeout = TimeSpan.FromSeconds(1),
    };

    /// <summary>squeue fails (the controller does not answer) while set.</summary>
    public void FailSqueue(bool fail)
    {
        var file = Path.Combine(flags, "squeue-fail");
        if (fail)
        {
            File.WriteAllText(file, "");
        }
        else
        {
            File.Delete(file);
        }
    }

    /// <summary>sinfo fails (the provider sees no nodes) while set.</summary>
    public void FailSinfo(bool fail)
    {
        var file = Path.Combine(flags, "sinfo-fail");
        if (fail)
        {
            File.WriteAllText(file, "");
        }
        else
        {
            File.Delete(file);
        }
    }

    /// <summary>The next <paramref name="times"/> scancels fail.</summary>
    public void FailScancel(int times) => File.WriteAllText(Path.Combine(flags, "scancel-fail"), times.ToString(CultureInfo.InvariantCulture));

    /// <summary>sbatch: null (works), "fail" or "hang" (after queueing the job), "reject" (before).</summary>
    public void SbatchMode(string? mode)
    {
        var file = Path.Combine(flags, "sbatch");
        if (mode is null)
        {
            File.Delete(file);
        }
        else
        {
            File.WriteAllText(file, mode);
        }
    }

    /// <summary>Every command this client ran, one line each: "scancel --signal=TERM --full 101".</summary>
    public IReadOnlyList<string> Calls()
    {
        var file = Path.Combine(flags, "calls");
        return File.Exists(file) ? File.ReadAllLines(file) : [];
    }
}

/// <summary>A job as the fake controller keeps it; the files are where the driver told sbatch they are.</summary>
internal sealed record FakeJob(long Id, string State, string Name, string Comment, IReadOnlyList<string> Args, IReadOnlyList<string> Scancels)
{
    public string OutputFile => Option("--output=");

    /// <summary>The wrapper's first argument.</summary>
    public string ResultFile
    {
        get
        {
            for (var i = 0; i < Args.Count - 1; i++)
            {
                if (Args[i].EndsWith("/wrapper.sh", StringComparison.Ordinal))
                {
                    return Args[i + 1];
                }
            }

            throw new InvalidOperationException($"job {Id} has no wrapper argument");
        }
    }

    public string StartedFile => ResultFile + ".started";

    private string Option(string prefix)
    {
        foreach (var a in Args)
        {
            if (a.StartsWith(prefix, StringComparison.Ordinal))
            {
                return a[prefix.Length..];
            }
        }

        throw new InvalidOperationException($"job {Id} has no {prefix}");
    }
}
