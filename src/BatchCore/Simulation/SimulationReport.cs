using System.Globalization;
using System.Text;
using System.Text.Json;

namespace BatchCore.Simulation;

/// <summary>What a replay produced, one entry per profile. <see cref="ToJson"/> and <see cref="ToTable"/> render it.</summary>
public sealed record SimulationReport
{
    /// <summary>One report per profile, in the order they ran.</summary>
    public required IReadOnlyList<ProfileReport> Profiles { get; init; }

    /// <summary>Where the workload came from.</summary>
    public string Workload { get; init; } = "";

    /// <summary>The seed of the replay.</summary>
    public int Seed { get; init; }

    /// <summary>The time scale of the replay.</summary>
    public double TimeScale { get; init; } = 1;

    /// <summary>
    /// The report as JSON: <c>{"profiles": [{"profile", "jobs", "unrunnable", "makespanSeconds", "waitSeconds": {"p50",
    /// "p95", "p99"}, "utilization", "peakHosts", "costUsd", "costLowerBoundUsd", "costRatio", "dispatchedPerWallSecond",
    /// ...more}], ...more}</c>. Without <paramref name="includeWallClock"/> the wall-clock fields
    /// (<c>dispatchedPerWallSecond</c>, <c>wallSeconds</c>) are left out: the rest is byte-identical for the same seed.
    /// </summary>
    public string ToJson(bool includeWallClock = true, bool includeSeries = true, bool indented = true)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented }))
        {
            w.WriteStartObject();
            w.WriteStartArray("profiles");
            foreach (var p in Profiles)
            {
                p.Write(w, includeWallClock, includeSeries);
            }

            w.WriteEndArray();
            w.WriteString("workload", Workload);
            w.WriteNumber("seed", Seed);
            w.WriteNumber("timeScale", TimeScale);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>A readable fixed-width table, one row per profile.</summary>
    public string ToTable()
    {
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        sb.Append(c, $"{"profile",-10} {"jobs",8} {"unrun",6} {"makespan",12} {"wait p50",10} {"wait p95",10} {"wait p99",10} {"util",6} {"peak",6} {"cost $",12} {"bound $",12} {"ratio",6} {"jobs/wall s",12}").AppendLine();
        foreach (var p in Profiles)
        {
            sb.Append(c, $"{p.Profile,-10} {p.Jobs,8} {p.Unrunnable,6} {Duration(p.MakespanSeconds),12} {Duration(p.Wait.P50),10} {Duration(p.Wait.P95),10} {Duration(p.Wait.P99),10} {p.Utilization,6:P0} {p.PeakHosts,6} {p.CostUsd,12:N2} {p.CostLowerBoundUsd,12:N2} {p.CostRatio,6:N2} {p.DispatchedPerWallSecond,12:N0}").AppendLine();
        }

        foreach (var p in Profiles)
        {
            if (p.CostBreakdown is { } b)
            {
                var bound = p.CostLowerBoundUsd > 0 ? p.CostLowerBoundUsd : 1;
                sb.Append(c, $"{p.Profile}: cost ${p.CostUsd:N2} = jobs at cheapest ${b.JobsAtCheapestUsd:N2} + type premium ${b.TypePremiumUsd:N2} ({b.TypePremiumUsd / bound:P1} of the bound)")
                    .Append(c, $" + size rounding ${b.SizeRoundingUsd:N2} ({b.SizeRoundingUsd / bound:P1}) + one job on a larger host ${b.OneJobOnLargerHostUsd:N2} ({b.OneJobOnLargerHostUsd / bound:P1}) + unused vCPUs among several jobs ${b.UnusedOnBusyHostsUsd:N2} ({b.UnusedOnBusyHostsUsd / bound:P1})")
                    .Append(c, $" + idle between jobs ${b.IdleBetweenJobsUsd:N2} ({b.IdleBetweenJobsUsd / bound:P1}) + idle before scale-in ${b.IdleBeforeScaleInUsd:N2} ({b.IdleBeforeScaleInUsd / bound:P1})")
                    .Append(c, $" + boot ${b.BootUsd:N2} ({b.BootUsd / bound:P1}) + 60-s minimum ${b.MinimumBillingUsd:N2} ({b.MinimumBillingUsd / bound:P1})").AppendLine();
                foreach (var t in b.ByInstanceType)
                {
                    sb.Append(c, $"{p.Profile}:   {t.InstanceType,-14} {t.Hosts,7} hosts {t.HostHours,10:N1} h  ${t.CostUsd,11:N2}  used {(t.HostVcpuHours > 0 ? t.UsedVcpuHours / t.HostVcpuHours : 0),6:P1}").AppendLine();
                }
            }
        }

        foreach (var p in Profiles)
        {
            foreach (var (reason, n) in p.UnrunnableReasons)
            {
                sb.Append(c, $"{p.Profile}: {n} unrunnable — {reason}").AppendLine();
            }
        }

        // Every profile replays the same workload: its skipped records once.
        if (Profiles.Count > 0 && Profiles[0].Skipped is { Count: > 0 } skipped)
        {
            var total = skipped.Values.Sum();
            sb.Append(c, $"workload: {total} record{(total == 1 ? "" : "s")} skipped — ")
                .AppendJoin(", ", skipped.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => string.Create(c, $"{kv.Value} {kv.Key}")))
                .AppendLine();
        }

        return sb.ToString();
    }

    private static string Duration(double seconds) => seconds switch
    {
        < 120 => seconds.ToString("0.#", CultureInfo.InvariantCulture) + "s",
        < 7_200 => (seconds / 60).ToString("0.#", CultureInfo.InvariantCulture) + "m",
        < 172_800 => (seconds / 3_600).ToString("0.#", CultureInfo.InvariantCulture) + "h",
        _ => (seconds / 86_400).ToString("0.#", CultureInfo.InvariantCulture) + "d",
    };
}

/// <summary>Wait time (createdAt → startedAt of the first attempt that ran) percentiles, nearest rank, seconds.</summary>
public sealed record WaitPercentiles(double P50, double P95, double P99, double Mean, double Max);

/// <summary>
/// Sampled time series of one replay (virtual seconds from the replay's start). Running vCPUs are what the running jobs
/// asked for, as <see cref="ProfileReport.Utilization"/> counts them; provisioned vCPUs are the hosts' real capacities. On
/// Fargate a job runs on the smallest valid task size covering it: a 3-vCPU job is 3 running and 4 provisioned, as a job
/// on an instance larger than it is on EC2.
/// </summary>
public sealed record SimulationSeries(
    IReadOnlyList<double> TimeSeconds,
    IReadOnlyList<int> QueuedJobs,
    IReadOnlyList<double> RunningVcpus,
    IReadOnlyList<double> ProvisionedVcpus,
    IReadOnlyList<int> Hosts);

/// <summary>One profile's results.</summary>
public sealed record ProfileReport
{
    /// <summary>The profile's name.</summary>
    public required string Profile { get; init; }

    /// <summary>Jobs that ran (reached RUNNING at least once).</summary>
    public int Jobs { get; init; }

    /// <summary>Jobs no host of the profile can hold (not submitted); see <see cref="UnrunnableReasons"/>.</summary>
    public int Unrunnable { get; init; }

    /// <summary>First submission → last job stopped, virtual seconds.</summary>
    public double MakespanSeconds { get; init; }

    /// <summary>Wait percentiles over the jobs that ran.</summary>
    public required WaitPercentiles Wait { get; init; }

    /// <summary>Used vCPU-seconds ÷ provisioned vCPU-seconds (hosts from launch to termination, booting and idle included).</summary>
    public double Utilization { get; init; }

    /// <summary>Most hosts (instances or Fargate tasks) at once.</summary>
    public int PeakHosts { get; init; }

    /// <summary>Σ host lifetime × price per hour (boot and idle time until scale-in included; hosts kept for minvCpus up to the end of the replay).</summary>
    public double CostUsd { get; init; }

    /// <summary>Σ job vCPU-seconds × the cheapest price per vCPU-second of any host that could run the job.</summary>
    public double CostLowerBoundUsd { get; init; }

    /// <summary><see cref="CostUsd"/> ÷ <see cref="CostLowerBoundUsd"/> (0 when the bound is 0).</summary>
    public double CostRatio { get; init; }

    /// <summary>Jobs run ÷ wall seconds of the replay (wall-clock: varies between runs).</summary>
    public double DispatchedPerWallSecond { get; init; }

    /// <summary>Jobs run ÷ makespan (virtual seconds).</summary>
    public double DispatchedPerVirtualSecond { get; init; }

    /// <summary>Wall seconds the replay took (wall-clock: varies between runs).</summary>
    public double WallSeconds { get; init; }

    /// <summary>Jobs submitted to the engine.</summary>
    public int Submitted { get; init; }

    /// <summary>Jobs that ended FAILED (e.g. interrupted more often than their attempts allow).</summary>
    public int Failed { get; init; }

    /// <summary>Submitted jobs that never ran.</summary>
    public int NeverStarted { get; init; }

    /// <summary>Attempts made (retries of interrupted attempts included).</summary>
    public int Attempts { get; init; }

    /// <summary>Spot interruption notices.</summary>
    public long SpotInterruptions { get; init; }

    /// <summary>Hosts launched.</summary>
    public long HostsLaunched { get; init; }

    /// <summary>Σ RUNNING time × the vCPUs the job asked for (on Fargate, not the task size it was padded to).</summary>
    public double UsedVcpuSeconds { get; init; }

    /// <summary>Σ host lifetime × the host's vCPUs (its real capacity: a 0.25-vCPU Fargate task counts 0.25).</summary>
    public double ProvisionedVcpuSeconds { get; init; }

    /// <summary>Unrunnable jobs by reason.</summary>
    public IReadOnlyDictionary<string, int> UnrunnableReasons { get; init; } = new Dictionary<string, int>();

    /// <summary>Workload records the reader skipped, by reason.</summary>
    public IReadOnlyDictionary<string, int> Skipped { get; init; } = new Dictionary<string, int>();

    /// <summary>Queue depth, running and provisioned vCPUs and hosts over time.</summary>
    public SimulationSeries? Series { get; init; }

    /// <summary>Where the cost went, when <see cref="SimulationOptions.IncludeCostBreakdown"/> asked for it.</summary>
    public CostBreakdown? CostBreakdown { get; init; }

    internal void Write(Utf8JsonWriter w, bool includeWallClock, bool includeSeries)
    {
        w.WriteStartObject();
        w.WriteString("profile", Profile);
        w.WriteNumber("jobs", Jobs);
        w.WriteNumber("unrunnable", Unrunnable);
        w.WriteNumber("makespanSeconds", R(MakespanSeconds));
        w.WriteStartObject("waitSeconds");
        w.WriteNumber("p50", R(Wait.P50));
        w.WriteNumber("p95", R(Wait.P95));
        w.WriteNumber("p99", R(Wait.P99));
        w.WriteNumber("mean", R(Wait.Mean));
        w.WriteNumber("max", R(Wait.Max));
        w.WriteEndObject();
        w.WriteNumber("utilization", R(Utilization));
        w.WriteNumber("peakHosts", PeakHosts);
        w.WriteNumber("costUsd", R(CostUsd));
        w.WriteNumber("costLowerBoundUsd", R(CostLowerBoundUsd));
        w.WriteNumber("costRatio", R(CostRatio));
        if (includeWallClock)
        {
            w.WriteNumber("dispatchedPerWallSecond", R(DispatchedPerWallSecond));
        }

        w.WriteNumber("dispatchedPerVirtualSecond", R(DispatchedPerVirtualSecond));
        if (includeWallClock)
        {
            w.WriteNumber("wallSeconds", R(WallSeconds));
        }

        w.WriteNumber("submitted", Submitted);
        w.WriteNumber("failed", Failed);
        w.WriteNumber("neverStarted", NeverStarted);
        w.WriteNumber("attempts", Attempts);
        w.WriteNumber("spotInterruptions", SpotInterruptions);
        w.WriteNumber("hostsLaunched", HostsLaunched);
        w.WriteNumber("usedVcpuSeconds", R(UsedVcpuSeconds));
        w.WriteNumber("provisionedVcpuSeconds", R(ProvisionedVcpuSeconds));
        WriteCounts(w, "unrunnableReasons", UnrunnableReasons);
        WriteCounts(w, "skipped", Skipped);
        if (CostBreakdown is { } b)
        {
            w.WriteStartObject("costBreakdown");
            w.WriteNumber("jobsAtCheapestUsd", R(b.JobsAtCheapestUsd));
            w.WriteNumber("typePremiumUsd", R(b.TypePremiumUsd));
            w.WriteNumber("sizeRoundingUsd", R(b.SizeRoundingUsd));
            w.WriteNumber("oneJobOnLargerHostUsd", R(b.OneJobOnLargerHostUsd));
            w.WriteNumber("unusedOnBusyHostsUsd", R(b.UnusedOnBusyHostsUsd));
            w.WriteNumber("idleBetweenJobsUsd", R(b.IdleBetweenJobsUsd));
            w.WriteNumber("idleBeforeScaleInUsd", R(b.IdleBeforeScaleInUsd));
            w.WriteNumber("bootUsd", R(b.BootUsd));
            w.WriteNumber("minimumBillingUsd", R(b.MinimumBillingUsd));
            w.WriteStartArray("byInstanceType");
            foreach (var t in b.ByInstanceType)
            {
                w.WriteStartObject();
                w.WriteString("instanceType", t.InstanceType);
                w.WriteNumber("hosts", t.Hosts);
                w.WriteNumber("hostHours", R(t.HostHours));
                w.WriteNumber("costUsd", R(t.CostUsd));
                w.WriteNumber("hostVcpuHours", R(t.HostVcpuHours));
                w.WriteNumber("usedVcpuHours", R(t.UsedVcpuHours));
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        if (includeSeries && Series is { } s)
        {
            w.WriteStartObject("series");
            WriteArray(w, "timeSeconds", s.TimeSeconds);
            WriteArray(w, "queuedJobs", s.QueuedJobs);
            WriteArray(w, "runningVcpus", s.RunningVcpus);
            WriteArray(w, "provisionedVcpus", s.ProvisionedVcpus);
            WriteArray(w, "hosts", s.Hosts);
            w.WriteEndObject();
        }

        w.WriteEndObject();
    }

    private static void WriteCounts(Utf8JsonWriter w, string name, IReadOnlyDictionary<string, int> counts)
    {
        w.WriteStartObject(name);
        foreach (var key in counts.Keys.Order(StringComparer.Ordinal))
        {
            w.WriteNumber(key, counts[key]);
        }

        w.WriteEndObject();
    }

    private static void WriteArray(Utf8JsonWriter w, string name, IReadOnlyList<double> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteNumberValue(R(v));
        }

        w.WriteEndArray();
    }

    private static void WriteArray(Utf8JsonWriter w, string name, IReadOnlyList<int> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteNumberValue(v);
        }

        w.WriteEndArray();
    }

    /// <summary>Six decimals: readable, and identical for identical runs.</summary>
    private static double R(double x) => double.IsFinite(x) ? Math.Round(x, 6) : 0;
}
