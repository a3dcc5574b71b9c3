using System.Globalization;
using BatchCore.Hosts.Slurm;
using BatchCore.Logs;
using BatchCore.Model;

namespace BatchCore.Tests.Hosts.Slurm;

/// <summary>
/// The whole engine on the private 4-node Slurm cluster: an UNMANAGED compute environment with <c>provider: slurm</c>
/// whose hosts are the cluster's nodes. Real clock; awaits carry hang guards only, nothing asserts on timing.
/// </summary>
[Collection(SlurmCollection.Name)]
public sealed class SlurmEngineTests(SlurmFixture slurm) : IAsyncLifetime
{
    private const string Ce = "slurm-ce";
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(90);
    private readonly InMemoryLogStore _logs = new();
    private BatchEngine? _engine;

    private BatchEngine Engine => _engine!;

    public ValueTask InitializeAsync()
    {
        if (slurm.UnavailableReason is null)
        {
            _engine = new BatchEngine(new BatchEngineOptions
            {
                LogStore = _logs,
                AllowShortTimeouts = true,
                TerminationGracePeriod = TimeSpan.FromSeconds(2),
                HostProviders = new Dictionary<string, Func<CreateComputeEnvironmentRequest, BatchCore.Hosts.HostProvider>>
                {
                    [SlurmHostProvider.Name] = SlurmHostProvider.Factory(_logs, o => o with
                    {
                        PollInterval = TimeSpan.FromMilliseconds(100),
                        NodePollInterval = TimeSpan.FromMilliseconds(200),
                    }),
                },
            });
        }

        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        if (_engine is not null)
        {
            await _engine.StopAsync(TimeSpan.FromSeconds(30));
        }
    }

    private void RequireSlurm()
    {
        if (slurm.UnavailableReason is { } reason)
        {
            Assert.Skip(reason);
        }
    }

    /// <summary>The spec's resources: the Slurm CE (all four nodes joined), one queue, and the definitions.</summary>
    private async Task SetUpAsync()
    {
        await Engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = Ce,
            Type = CEType.UNMANAGED,
            Provider = SlurmHostProvider.Name,
            ProviderSettings = new Dictionary<string, string>
            {
                ["slurmConf"] = slurm.SlurmConf,
                ["partition"] = "debug",
                ["sharedDirectory"] = slurm.SharedDirectory,
            },
        });
        await Engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "q",
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = Ce }],
        });

        using var guard = new CancellationTokenSource(HangGuard);
        while ((await Engine.Run(c => c.AcceptingHostNames(Ce), guard.Token)).Count < SlurmFixture.Nodes.Length)
        {
            await Task.Delay(50, guard.Token);
        }
    }

    private Task DefineAsync(string name, IReadOnlyList<string> command, int vcpus = 1, int memoryMiB = 128, int retryAttempts = 1) =>
        Engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = name,
            Type = JobDefinitionType.container,
            ContainerProperties = new ContainerProperties
            {
                Command = command,
                ResourceRequirements =
                [
                    new(ResourceType.VCPU, vcpus.ToString(CultureInfo.InvariantCulture)),
                    new(ResourceType.MEMORY, memoryMiB.ToString(CultureInfo.InvariantCulture)),
                ],
            },
            RetryStrategy = retryAttempts > 1 ? new RetryStrategy { Attempts = retryAttempts } : null,
        });

    private async Task<JobDetail> WaitAsync(string jobId)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        return await Engine.WaitForJobAsync(jobId, guard.Token);
    }

    private async Task WaitForStatusAsync(string jobId, string status)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        while ((await Engine.DescribeJobsAsync([jobId], guard.Token))[0].Status != status)
        {
            await Task.Delay(50, guard.Token);
        }
    }

    private static string HostOf(AttemptDetail attempt) => attempt.Container!.ContainerInstanceArn!.Split('/')[^1];

    private string[] Log(AttemptDetail attempt) =>
        [.. _logs.GetLogEvents(attempt.Container!.LogStreamName!).Events.Select(e => e.Message)];

    /// <summary>The Slurm job of a running job's attempt, found by the job name the driver gives it.</summary>
    private async Task<(long JobId, string Node)> SlurmJobOfAsync(string jobId, int attempt = 1)
    {
        var (code, output) = await slurm.RunAsync("/usr/bin/squeue", "--noheader", "--states=RUNNING", "--name=" + SlurmHostDriver.JobName(jobId, attempt), "--format=%i %N");
        Assert.True(code == 0, output);
        var parts = output.Trim().Split(' ');
        return (long.Parse(parts[0], CultureInfo.InvariantCulture), parts[1]);
    }

    [Fact]
    public async Task ArrayJob_SpreadsOverTheFourNodes_ThenItsDependentRuns_AndAFailingJobRetries()
    {
        RequireSlurm();
        await SetUpAsync();
        // Two vCPUs each: a whole node per child, so the four children need the four nodes.
        await DefineAsync("map", ["sh", "-c", "echo index=$AWS_BATCH_JOB_ARRAY_INDEX of $AWS_BATCH_JOB_ARRAY_SIZE on $SLURMD_NODENAME"], vcpus: 2);
        await DefineAsync("reduce", ["sh", "-c", "echo reduced in $AWS_BATCH_CE_NAME"]);
        await DefineAsync("flaky", ["sh", "-c", "echo attempt $AWS_BATCH_JOB_ATTEMPT; test \"$AWS_BATCH_JOB_ATTEMPT\" -ge 2"], retryAttempts: 2);

        var map = await Engine.SubmitJobAsync(new SubmitJobRequest { JobName = "map", JobQueue = "q", JobDefinition = "map", ArrayProperties = new() { Size = 4 } });
        var reduce = await Engine.SubmitJobAsync(new SubmitJobRequest { JobName = "reduce", JobQueue = "q", JobDefinition = "reduce", DependsOn = [new() { JobId = map.JobId }] });
        var flaky = await Engine.SubmitJobAsync(new SubmitJobRequest { JobName = "flaky", JobQueue = "q", JobDefinition = "flaky" });

        var reduced = await WaitAsync(reduce.JobId);
        var retried = await WaitAsync(flaky.JobId);

        Assert.Equal(JobStatus.SUCCEEDED, (await WaitAsync(map.JobId)).Status);
        var children = await Engine.DescribeJobsAsync([.. Enumerable.Range(0, 4).Select(i => $"{map.JobId}:{i}")]);
        Assert.All(children, c => Assert.Equal(JobStatus.SUCCEEDED, c.Status));
        Assert.Equal(SlurmFixture.Nodes, children.Select(c => HostOf(c.Attempts[^1])).Order(StringComparer.Ordinal));
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal([$"index={i} of 4 on {HostOf(children[i].Attempts[^1])}"], Log(children[i].Attempts[^1]));
        }

        Assert.Equal(JobStatus.SUCCEEDED, reduced.Status);
        Assert.True(reduced.StartedAt >= children.Max(c => c.StoppedAt), "the dependent starts after every child stopped");
        Assert.Equal([$"reduced in {Ce}"], Log(reduced.Attempts[0]));

        Assert.Equal(JobStatus.SUCCEEDED, retried.Status);
        Assert.Equal(2, retried.Attempts.Count);
        Assert.Equal(1, retried.Attempts[0].Container!.ExitCode);
        Assert.Equal(0, retried.Attempts[1].Container!.ExitCode);
        Assert.Equal(["attempt 1"], Log(retried.Attempts[0]));
    }

    [Fact]
    public async Task NodeDrainedMidRun_ItsAttemptFailsAsHostTerminated_AndRetriesOnAnotherNode()
    {
        RequireSlurm();
        await SetUpAsync();
        await DefineAsync("long-first", ["sh", "-c", "echo attempt $AWS_BATCH_JOB_ATTEMPT on $SLURMD_NODENAME; [ \"$AWS_BATCH_JOB_ATTEMPT\" -ge 2 ] || sleep 300"],
            retryAttempts: 2);
        var job = await Engine.SubmitJobAsync(new SubmitJobRequest { JobName = "drained", JobQueue = "q", JobDefinition = "long-first" });
        await WaitForStatusAsync(job.JobId, JobStatus.RUNNING);
        var (slurmJob, node) = await SlurmJobOfAsync(job.JobId);

        try
        {
            await slurm.SetNodeStateAsync(node, "drain", "test");
            var done = await WaitAsync(job.JobId);

            Assert.Equal(JobStatus.SUCCEEDED, done.Status);
            Assert.Equal(2, done.Attempts.Count);
            Assert.Equal(node, HostOf(done.Attempts[0]));
            // "mixed+DRAIN" or "idle+DRAIN", depending on whether Slurm still counted the job when the provider looked.
            Assert.StartsWith($"Host EC2 (instance {node}) terminated: Slurm node ", done.Attempts[0].StatusReason, StringComparison.Ordinal);
            Assert.EndsWith("+DRAIN (test)", done.Attempts[0].StatusReason, StringComparison.Ordinal);
            Assert.NotEqual(node, HostOf(done.Attempts[1]));
            Assert.DoesNotContain(node, await Engine.Run(c => c.AcceptingHostNames(Ce), CancellationToken.None));
            Assert.NotEqual("RUNNING", await slurm.JobStateAsync(slurmJob));
        }
        finally
        {
            await slurm.SetNodeStateAsync(node, "resume");
        }
    }

    [Fact]
    public async Task TerminateJob_OfARunningSlurmJob_CancelsItAndFailsTheJob()
    {
        RequireSlurm();
        await SetUpAsync();
        await DefineAsync("sleeper", ["sleep", "300"], retryAttempts: 3);
        var job = await Engine.SubmitJobAsync(new SubmitJobRequest { JobName = "sleeper", JobQueue = "q", JobDefinition = "sleeper" });
        await WaitForStatusAsync(job.JobId, JobStatus.RUNNING);
        var (slurmJob, _) = await SlurmJobOfAsync(job.JobId);

        await Engine.TerminateJobAsync(job.JobId, "no longer needed");
        var done = await WaitAsync(job.JobId);

        // AWS: a terminated job is not retried, whatever its retryStrategy.
        Assert.Equal(JobStatus.FAILED, done.Status);
        Assert.Equal("no longer needed", done.StatusReason);
        Assert.Single(done.Attempts);
        Assert.Equal(143, done.Attempts[0].Container!.ExitCode);
        Assert.True((await slurm.JobStateAsync(slurmJob)) is "FAILED" or "CANCELLED");
    }

    [Fact]
    public async Task CreateComputeEnvironment_WithBadSlurmSettings_NamesTheField()
    {
        RequireSlurm();

        var e = await Assert.ThrowsAsync<BatchClientException>(() => Engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "bad",
            Type = CEType.UNMANAGED,
            Provider = SlurmHostProvider.Name,
            ProviderSettings = new Dictionary<string, string> { ["partiton"] = "debug" },
        }));

        Assert.Contains("providerSettings.partiton", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateComputeEnvironment_SlurmProviderOnAManagedCe_IsRejected()
    {
        RequireSlurm();

        var e = await Assert.ThrowsAsync<BatchClientException>(() => Engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "bad",
            Type = CEType.MANAGED,
            Provider = SlurmHostProvider.Name,
            ComputeResources = new ComputeResource { Type = CRType.EC2, MaxvCpus = 4, InstanceTypes = ["optimal"], Subnets = ["s"], SecurityGroupIds = ["g"], InstanceRole = "r" },
        }));

        Assert.Contains("provider slurm supplies the hosts of an UNMANAGED compute environment", e.Message, StringComparison.Ordinal);
    }
}
