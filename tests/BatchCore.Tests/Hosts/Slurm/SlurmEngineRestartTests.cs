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
    public async Task Restart_TheProviderReportsTheNodeAgain_TheSlurmJobRunsOn_AndTheJobSucceedsWithItsOneAttempt()
    {
        using var slurm = new FakeSlurm();
        var (jobId, running) = await RunThenCrashAsync(slurm);

        // Recovery runs before the provider reports node n1 again: the attempt is held on a stand-in for n1, and n1,
        // once reported, takes it over. The Slurm job is neither cancelled nor run a second time.
        await using var restarted = Engine(slurm.Client(), SlurmDefaults.CommandTimeout);
        var next = (await restarted.SubmitJobAsync(new SubmitJobRequest { JobName = "next", JobQueue = "q", JobDefinition = "d" })).JobId;

        // n1 has 2 CPUs and the held attempt uses 1: the new job gets the other once n1 is reported.
        var second = await slurm.WaitForJobAsync(2);
        Assert.Equal("RUNNING", slurm.Job(running.Id).State);
        slurm.Run(second);
        slurm.Complete(second, 0);
        slurm.Complete(running, 0, "after the restart\n");
        using var guard = new CancellationTokenSource(HangGuard);
        var done = await restarted.WaitForJobAsync(jobId, guard.Token);
        var nextDone = await restarted.WaitForJobAsync(next, guard.Token);

        Assert.Equal(JobStatus.SUCCEEDED, done.Status);
        Assert.Single(done.Attempts);
        Assert.Equal(JobStatus.SUCCEEDED, nextDone.Status);
        Assert.Equal(2, slurm.Jobs().Count); // the re-attached job and the new one: no retry was submitted
    }

    [Fact]
    public async Task Restart_TheNodeIsNotReportedInTime_ItsSlurmJobIsCancelled_AndTheJobRetried()
    {
        using var slurm = new FakeSlurm();
        var (jobId, running) = await RunThenCrashAsync(slurm);

        // The controller does not list n1 within ProvidedHostRecoveryTimeout: the held attempt ends as a host failure,
        // its Slurm job must not run on beside the retry, and the retry runs once n1 is listed again.
        var client = slurm.Client();
        client.FailSinfo(true);
        await using var restarted = Engine(client, SlurmDefaults.CommandTimeout, recoveryTimeout: TimeSpan.FromMilliseconds(300));
        await slurm.WaitForStateAsync(running.Id, "CANCELLED");
        client.FailSinfo(false);
        var retry = await slurm.WaitForJobAsync(2);
        slurm.Run(retry);
        slurm.Complete(retry, 0);
        using var guard = new CancellationTokenSource(HangGuard);
        var done = await restarted.WaitForJobAsync(jobId, guard.Token);

        Assert.Equal(JobStatus.SUCCEEDED, done.Status);
        Assert.Equal(2, done.Attempts.Count);
        Assert.Equal(StatusReasons.EngineRestarted, done.Attempts[0].StatusReason);
    }

    /// <summary>Runs one job until its Slurm job is RUNNING, then stops the engine as a crash would leave it.</summary>
    private async Task<(string JobId, FakeJob Running)> RunThenCrashAsync(FakeSlurm slurm)
    {
        var first = slurm.Client();
        var engine = Engine(first, TimeSpan.FromSeconds(1));
        try
        {
            await SetUpAsync(engine);
            var jobId = (await engine.SubmitJobAsync(new SubmitJobRequest { JobName = "j", JobQueue = "q", JobDefinition = "d" })).JobId;
            var running = await slurm.WaitForJobAsync();
            slurm.Run(running, "first\n");
            await WaitForStatusAsync(engine, jobId, JobStatus.RUNNING);

            // The engine dies: its driver can neither see nor stop the job any more.
            first.FailSqueue(true);
            first.FailScancel(int.MaxValue);
            return (jobId, running);
        }
        finally
        {
            await engine.StopAsync(TimeSpan.FromSeconds(1));
            Assert.Equal("RUNNING", slurm.Jobs()[0].State);
        }
    }

    private BatchEngine Engine(FakeSlurmClient client, TimeSpan commandTimeout, TimeSpan? recoveryTimeout = null)
    {
        var logs = new InMemoryLogStore();
        return new BatchEngine(new BatchEngineOptions
        {
            ProvidedHostRecoveryTimeout = recoveryTimeout ?? BatchEngineDefaults.ProvidedHostRecoveryTimeout,
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
