using FsCheck.Xunit;

namespace BatchCore.Tests.Properties;

/// <summary>
/// Issue 2: model-based test of the job lifecycle. Random hosts, jobs (retries, timeouts, arrays, dependencies with
/// SUCCEEDED or ANY), and random orders of submit / cancel / terminate / advance-time run against a model of AWS's
/// transition table (reference §2.2); attempts start and exit through simulated run times and exit codes.
/// </summary>
public class LifecycleModelProperties
{
    /// <summary>
    /// Every change is an edge of the AWS table; terminal states are absorbing; attempts ≤ retryStrategy.attempts; no
    /// retry after a timeout, cancel or terminate; no job leaves PENDING before its dependencies allow (SUCCEEDED, or
    /// ended for ANY); CancelJob fails only SUBMITTED/PENDING/RUNNABLE jobs (PENDING ones once their dependencies end);
    /// TerminateJob fails STARTING/RUNNING ones; a cancelled job never starts; an idle engine leaves nothing SUBMITTED,
    /// STARTING or RUNNING, nothing PENDING without an open dependency, and no RUNNABLE head an idle host would fit.
    /// </summary>
    [Property(Arbitrary = [typeof(ScenarioGenerators)], MaxTest = 150)]
    public void Lifecycle_follows_the_AWS_transition_table(Scenario scenario)
    {
        var run = ScenarioRun.Run(scenario);
        Assert.True(run.Ok(Check.Lifecycle), run.Describe(Check.Lifecycle));
    }

    /// <summary>
    /// At every step each submitted job (and array child) is in exactly one state: ListJobs lists it under one status,
    /// the one the change stream last announced, and DescribeJobs agrees at the end.
    /// </summary>
    [Property(Arbitrary = [typeof(ScenarioGenerators)], MaxTest = 100)]
    public void Every_job_is_in_exactly_one_state_at_every_step(Scenario scenario)
    {
        var run = ScenarioRun.Run(scenario);
        Assert.True(run.Ok(Check.States), run.Describe(Check.States));
    }

    /// <summary>
    /// Array parents are never RUNNABLE/STARTING/RUNNING and end only after every child ended (SUCCEEDED only if all
    /// did); statusSummary counts are the children's states and sum to the size; a SEQUENTIAL array runs one child at a
    /// time; arrayMaxConcurrency and the queue's maxRunningJobs hold.
    /// </summary>
    [Property(Arbitrary = [typeof(ScenarioGenerators)], MaxTest = 100)]
    public void Arrays_and_concurrency_caps_hold(Scenario scenario)
    {
        var run = ScenarioRun.Run(scenario);
        Assert.True(run.Ok(Check.Arrays), run.Describe(Check.Arrays));
    }
}
