using System.Globalization;
using BatchCore.Model;
using BatchCore.Validation;

namespace BatchCore.Advice;

/// <summary>The advisor's verdict for one job definition: a platform and every reason that applies.</summary>
/// <param name="Platform"><see cref="PlatformCapability.FARGATE"/> or <see cref="PlatformCapability.EC2"/>.</param>
/// <param name="Reasons">Why, one sentence per rule that applied; never empty.</param>
public sealed record AdviceResult(string Platform, IReadOnlyList<string> Reasons);

/// <summary>Thresholds of <see cref="FargateAdvisor"/>, in one place.</summary>
public static class FargateAdvisorDefaults
{
    /// <summary>Fargate's largest task: 16 vCPUs (AWS §2.6, since 2022-10-24).</summary>
    public const double MaxFargateVcpus = 16;

    /// <summary>Fargate's largest task memory: 120 GiB (AWS §2.6, since 2022-10-24).</summary>
    public const int MaxFargateMemoryMiB = 120 * 1024;

    /// <summary>The older Fargate limit and the still-published best-practice guidance: 4 vCPUs.</summary>
    public const double OldFargateVcpus = 4;

    /// <summary>The older Fargate limit and the still-published best-practice guidance: 30 GiB.</summary>
    public const int OldFargateMemoryMiB = 30 * 1024;

    /// <summary>
    /// Expected jobs from which EC2 is advised: 10,000, one full-size array job (AWS's array maximum). AWS documents no
    /// numeric dispatch rate, only that EC2 dispatches faster and runs more jobs at once than Fargate (one ~30 s task
    /// launch per job, default On-Demand quota of 6 vCPUs); at this volume launch rate, not start latency, dominates.
    /// </summary>
    public const int ManyJobsThreshold = 10_000;

    /// <summary>Fargate jobs can't be guaranteed to run for more than 14 days (AWS §2.2).</summary>
    public const long MaxFargateAttemptSeconds = 14L * 24 * 3600;
}

/// <summary>
/// Advises FARGATE or EC2 for a job definition, after AWS's "when to use Fargate" guidance (reference §2.6): Fargate
/// unless the job needs something only EC2 has (more than 16 vCPUs or 120 GiB, GPUs, Arm, Linux devices / tmpfs / swap /
/// shared memory, privileged containers, multi-node parallel, runs beyond 14 days) or so many jobs that EC2's faster
/// dispatch and higher concurrency matter more than Fargate's ~30 s start.
/// </summary>
public static class FargateAdvisor
{
    /// <summary>Advises on a registered definition.</summary>
    /// <param name="definition">The definition (its latest revision, usually).</param>
    /// <param name="expectedJobCount">How many jobs (array children counted one by one) are expected to use it.</param>
    public static AdviceResult Advise(JobDefinition definition, int expectedJobCount)
    {
        ArgumentNullException.ThrowIfNull(definition);
        return Advise(definition.Type, definition.ContainerProperties, definition.Timeout, definition.PlatformCapabilities, expectedJobCount);
    }

    /// <summary>Advises on a definition not yet registered (e.g. from a spec file).</summary>
    /// <param name="request">The RegisterJobDefinition request.</param>
    /// <param name="expectedJobCount">How many jobs (array children counted one by one) are expected to use it.</param>
    public static AdviceResult Advise(RegisterJobDefinitionRequest request, int expectedJobCount)
    {
        ArgumentNullException.ThrowIfNull(request);
        var type = request.Type ?? (request.NodeProperties is not null ? JobDefinitionType.multinode : JobDefinitionType.container);
        return Advise(type, request.ContainerProperties, request.Timeout, request.PlatformCapabilities, expectedJobCount);
    }

    private static AdviceResult Advise(string? type, ContainerProperties? c, JobTimeout? timeout, IReadOnlyList<string>? platforms,
        int expectedJobCount)
    {
        if (expectedJobCount < 0)
        {
            throw new BatchClientException(string.Create(CultureInfo.InvariantCulture, $"expectedJobCount must be at least 0, was {expectedJobCount}"));
        }

        var ec2 = new List<string>();
        var notes = new List<string>();
        var (vcpus, memory, gpus) = Resources(c);

        // 1. Size: Fargate's maximum task (AWS: raised from 4 vCPU / 30 GiB to 16 vCPU / 120 GiB on 2022-10-24).
        var old = vcpus > FargateAdvisorDefaults.OldFargateVcpus || memory > FargateAdvisorDefaults.OldFargateMemoryMiB;
        const string oldGuidance = "the older guidance (before 2022-10-24, still on the best-practices page) was at most 4 vCPUs and 30 GiB";
        if (vcpus > FargateAdvisorDefaults.MaxFargateVcpus)
        {
            ec2.Add(Fmt($"needs {vcpus} vCPUs, more than Fargate's maximum of 16 vCPUs; {oldGuidance}"));
        }

        if (memory > FargateAdvisorDefaults.MaxFargateMemoryMiB)
        {
            ec2.Add(Fmt($"needs {memory} MiB of memory, more than Fargate's maximum of 120 GiB (122880 MiB); {oldGuidance}"));
        }

        // 2. Features Fargate does not have (AWS §2.1, §2.6).
        if (gpus > 0)
        {
            ec2.Add(Fmt($"needs {gpus} GPU(s): GPUs aren't available for jobs that run on Fargate resources"));
        }

        if (string.Equals(c?.RuntimePlatform?.CpuArchitecture, "ARM64", StringComparison.OrdinalIgnoreCase))
        {
            ec2.Add("runtimePlatform.cpuArchitecture is ARM64: run it on Arm (Graviton) EC2 instances (instanceTypes default_arm64); Fargate Spot supports only X86_64");
        }

        if (c?.Privileged == true)
        {
            ec2.Add("privileged containers are not supported on Fargate");
        }

        if (c?.LinuxParameters is { } lp)
        {
            if (lp.Devices is { Count: > 0 })
            {
                ec2.Add("linuxParameters.devices (host devices) are not supported on Fargate");
            }

            if (lp.Tmpfs is { Count: > 0 })
            {
                ec2.Add("linuxParameters.tmpfs is not supported on Fargate");
            }

            if (lp.MaxSwap is not null || lp.Swappiness is not null)
            {
                ec2.Add("linuxParameters.maxSwap / swappiness: swap is not supported on Fargate");
            }

            if (lp.SharedMemorySize is not null)
            {
                ec2.Add("linuxParameters.sharedMemorySize is not supported on Fargate");
            }
        }

        if (type == JobDefinitionType.multinode)
        {
            ec2.Add("multi-node parallel jobs are not supported on Fargate");
        }

        if (timeout?.AttemptDurationSeconds is { } t && t > FargateAdvisorDefaults.MaxFargateAttemptSeconds)
        {
            ec2.Add(Fmt($"timeout.attemptDurationSeconds is {t}: Fargate jobs can't be guaranteed to run for more than 14 days"));
        }

        // 3. Volume: EC2 dispatches faster and runs more jobs at once (AWS §2.6, "Fargate" user guide page).
        if (expectedJobCount >= FargateAdvisorDefaults.ManyJobsThreshold)
        {
            ec2.Add(Fmt($"{expectedJobCount} jobs expected (at least {FargateAdvisorDefaults.ManyJobsThreshold}): EC2 dispatches jobs at a higher rate and runs more of them at once than Fargate, whose default On-Demand quota is 6 vCPUs"));
        }

        if (ec2.Count > 0)
        {
            if (platforms is { } p && p.Contains(PlatformCapability.FARGATE))
            {
                ec2.Add("note: the definition asks for platformCapabilities FARGATE; register it for EC2");
            }

            return new AdviceResult(PlatformCapability.EC2, ec2);
        }

        notes.Add("no capacity to manage: Fargate sizes a task for each job and you pay for what the job asks for");
        notes.Add("jobs start in about 30 s on Fargate, against minutes when a new EC2 instance has to boot");
        if (old)
        {
            notes.Add(Fmt($"{vcpus} vCPUs / {memory} MiB fits Fargate's maximum of 16 vCPUs / 120 GiB; {oldGuidance}"));
        }

        if (vcpus > 0 && memory > 0 && !FargateSizes.IsValid(vcpus, (int)memory) && FargateSizes.SmallestCovering(vcpus, (int)memory) is { } size)
        {
            notes.Add(Fmt($"{vcpus} vCPUs / {memory} MiB is not a Fargate size: the job would get (and pay for) {size.Vcpus} vCPUs / {size.MemoryMiB} MiB; request that in the definition"));
        }

        if (c?.ExecutionRoleArn is null)
        {
            notes.Add("on AWS a Fargate definition needs containerProperties.executionRoleArn");
        }

        return new AdviceResult(PlatformCapability.FARGATE, notes);
    }

    /// <summary>VCPU, MEMORY and GPU from resourceRequirements, falling back to the deprecated vcpus / memory fields.</summary>
    private static (double Vcpus, long MemoryMiB, long Gpus) Resources(ContainerProperties? c)
    {
        double vcpus = c?.Vcpus ?? 0;
        long memory = c?.Memory ?? 0;
        long gpus = 0;
        foreach (var r in c?.ResourceRequirements ?? [])
        {
            switch (r.Type)
            {
                case ResourceType.VCPU when double.TryParse(r.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v):
                    vcpus = v;
                    break;
                case ResourceType.MEMORY when long.TryParse(r.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var m):
                    memory = m;
                    break;
                case ResourceType.GPU when long.TryParse(r.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var g):
                    gpus = g;
                    break;
            }
        }

        return (vcpus, memory, gpus);
    }

    private static string Fmt(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
