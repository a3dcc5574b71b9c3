namespace BatchCore.Simulation;

/// <summary>Seeded synthetic workloads: the same arguments give the same jobs.</summary>
public static class WorkloadGenerator
{
    private static readonly int[] VcpuChoices = [1, 1, 1, 2, 2, 4, 8];

    /// <summary>
    /// Bursts: <paramref name="bursts"/> bursts of <paramref name="jobsPerBurst"/> jobs each, one every
    /// <paramref name="intervalSeconds"/>; jobs ask 1–8 vCPUs (mostly 1–2) with 2 GiB per vCPU and run
    /// <paramref name="meanRuntimeSeconds"/> ±50 % (uniform).
    /// </summary>
    public static Workload Bursts(int bursts, int jobsPerBurst, double intervalSeconds, double meanRuntimeSeconds, int seed)
    {
        CheckPositive(bursts, nameof(bursts));
        CheckPositive(jobsPerBurst, nameof(jobsPerBurst));
        var random = new Random(seed);
        var jobs = new List<WorkloadJob>(bursts * jobsPerBurst);
        for (var b = 0; b < bursts; b++)
        {
            for (var i = 0; i < jobsPerBurst; i++)
            {
                jobs.Add(Job(random, b * intervalSeconds, meanRuntimeSeconds));
            }
        }

        return new Workload { Jobs = jobs, Source = $"bursts({bursts}x{jobsPerBurst}, every {intervalSeconds}s, seed {seed})" };
    }

    /// <summary>
    /// A steady stream: <paramref name="count"/> jobs with exponential inter-arrival times of mean
    /// 1/<paramref name="jobsPerSecond"/>; shapes as in <see cref="Bursts"/>.
    /// </summary>
    public static Workload Steady(int count, double jobsPerSecond, double meanRuntimeSeconds, int seed)
    {
        CheckPositive(count, nameof(count));
        if (jobsPerSecond <= 0)
        {
            throw new BatchClientException($"jobsPerSecond must be positive, was {jobsPerSecond}");
        }

        var random = new Random(seed);
        var jobs = new List<WorkloadJob>(count);
        var t = 0.0;
        for (var i = 0; i < count; i++)
        {
            t += -Math.Log(1 - random.NextDouble()) / jobsPerSecond;
            jobs.Add(Job(random, Math.Round(t, 3), meanRuntimeSeconds));
        }

        return new Workload { Jobs = jobs, Source = $"steady({count} jobs, {jobsPerSecond}/s, seed {seed})" };
    }

    private static WorkloadJob Job(Random random, double submit, double meanRuntime)
    {
        var vcpus = VcpuChoices[random.Next(VcpuChoices.Length)];
        var runtime = Math.Max(1, Math.Round(meanRuntime * (0.5 + random.NextDouble())));
        return new WorkloadJob(submit, vcpus, vcpus * 2048 - 256, 0, runtime);
    }

    private static void CheckPositive(int value, string name)
    {
        if (value <= 0)
        {
            throw new BatchClientException($"{name} must be positive, was {value}");
        }
    }
}
