using System.Globalization;
using BatchCore.Hosts.Slurm;
using BatchCore.Journal;
using BatchCore.Logs;
using BatchCore.Model;
using BatchCore.Tests.Journal;

namespace BatchCore.Tests.Hosts.Slurm;

/// <summary>
/// A journaling engine with a <c>provider: slurm</c> compute environment on a <see cref="FakeSlurm"/>, stopped while its
/// Slurm job runs (the journal keeps the attempt RUNNING) and started again. Real clock; waits are hang guards only.
/// </summary>
public sealed class SlurmEngineRestartTests() : StateDirectoryTest("bc-slurm-restart-")
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Restart_AttemptOnANodeTheProviderHasNotReportedYet_ItsSlurmJobIsCancelled_AndTheJobRetried()
    {
        using var slurm = new FakeSlurm();
        var first = slurm.Client();
        string jobId;
        FakeJob running;
        var engine = Engine(first, TimeSpan.FromSeconds(1));
        try
        {
            await SetUpAsync(engine);
            jobId = (await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "d" })).JobId;
            running = await slurm.WaitForJobAsync();
            slurm.Run(running, "first\n");
            await WaitForStatusAsync(engine, jobId, JobStatus.RUNNING);

            // The engine dies: its driver can neither see nor stop the job any more.
            first.FailSqueue(true);
            first.FailScancel(int.MaxValue);
        }
        finally
        {
            await engine.StopAsync(TimeSpan.FromSeconds(1));
        }

        Assert.Equal("RUNNING", slurm.Job(running.Id).State);

        // Recovery runs before the provider reported node n1 again: the attempt cannot be taken back onto a host, so
        // it is retried — and its Slurm job must not run on beside the retry.
        await using var restarted = Engine(slurm.Client(), SlurmDefaults.CommandTimeout);
        await slurm.WaitForStateAsync(running.Id, "CANCELLED");
        var retry = await slurm.WaitForJobAsync(2);
        slurm.Run(retry);
        slurm.Complete(retry, 0);
        using var guard = new CancellationTokenSource(HangGuard);
        var done = await restarted.WaitForJobAsync(jobId, guard.Token);

        Assert.Equal(JobStatus.SUCCEEDED, done.Status);
        Assert.Equal(2, done.Attempts.Count);
        Assert.Equal(StatusReasons.EngineRestarted, done.Attempts[0].StatusReason);
    }

    private BatchEngine Engine(FakeSlurmClient client, TimeSpan commandTimeout)
    {
        var logs = new InMemoryLogStore();
        return new BatchEngine(new BatchEngineOptions
        {
            LogStore = logs,
            AllowShortTimeouts = true,
            TerminationGracePeriod = TimeSpan.FromSeconds(1),
            Journal = new JournalOptions { Durability = Durability.Journal, StateDirectory = Dir },
            HostProviders = new Dictionary<string, Func<CreateComputeEnvironmentRequest, BatchCore.Hosts.HostProvider>>
            {
                [SlurmHostProvider.Name] = SlurmHostProvider.Factory(logs, o => client.Options(logs) with
                {
                    NodePollInterval = TimeSpan.FromMilliseconds(100),
                    CommandTimeout = commandTimeout,
                }),
            },
        });
    }

    private static async Task SetUpAsync(BatchEngine engine)
    {
        await engine.CreateComputeEnvironmentAsync(new CreateComputeEnvironmentRequest
        {
            ComputeEnvironmentName = "slurm",
            Type = CEType.UNMANAGED,
            Provider = SlurmHostProvider.Name,
        });
        await engine.CreateJobQueueAsync(new CreateJobQueueRequest
        {
            JobQueueName = "q",
            Priority = 1,
            ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "slurm" }],
        });
        await engine.RegisterJobDefinitionAsync(new RegisterJobDefinitionRequest
        {
            JobDefinitionName = "d",
            Type = JobDefinitionType.container,
            ContainerProperties = new ContainerProperties
            {
                Command = ["echo", "hi"],
                ResourceRequirements =
                [
                    new(ResourceType.VCPU, "1"),
                    new(ResourceType.MEMORY, 128.ToString(CultureInfo.InvariantCulture)),
                ],
            },
            RetryStrategy = new RetryStrategy { Attempts = 2 },
        });
    }

    private static async Task WaitForStatusAsync(BatchEngine engine, string jobId, string status)
    {
        using var guard = new CancellationTokenSource(HangGuard);
        while ((await engine.DescribeJobsAsync([jobId], guard.Token))[0].Status != status)
        {
            await Task.Delay(20, guard.Token);
        }
    }
}
