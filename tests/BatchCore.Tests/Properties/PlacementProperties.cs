using FsCheck.Xunit;

namespace BatchCore.Tests.Properties;

/// <summary>Placement invariants over random hosts, jobs and event orders (issue 3).</summary>
public class PlacementProperties
{
    /// <summary>
    /// No host is ever over capacity in any dimension (a sweep over every attempt's host and [start, stop) interval);
    /// every placement fits its host alone and matches the job's architecture; each attempt is placed exactly once
    /// (placements in the change stream = attempts in DescribeJobs).
    /// </summary>
    [Property(Arbitrary = [typeof(ScenarioGenerators)], MaxTest = 150)]
    public void No_host_is_ever_over_capacity_and_every_placement_fits(Scenario scenario)
    {
        var run = ScenarioRun.Run(scenario);
        Assert.True(run.Ok(Check.Placement), run.Describe(Check.Placement));
    }
}
