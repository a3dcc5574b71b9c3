using BatchCore.Hosts;
using BatchCore.Journal;
using BatchCore.Model;

namespace BatchCore.Tests.Journal;

/// <summary>
/// Engines sharing a machine: every journaled engine makes ids of its own and has an identity of its own (its state
/// directory's), which drivers scope what they leave on the machine by; an in-memory engine stays seeded.
/// </summary>
public sealed class EngineIdentityTests() : StateDirectoryTest("bc-identity-")
{
    private BatchEngineOptions Journaled(string name) => Options() with
    {
        Journal = new JournalOptions { Durability = Durability.Journal, StateDirectory = Path.Combine(Dir, name) },
    };

    [Fact]
    public async Task TwoFreshJournaledEngines_GiveDifferentJobIds_InMemoryEnginesStaySeeded()
    {
        var journaled = new List<string>();
        var inMemory = new List<string>();
        foreach (var name in new[] { "a", "b" })
        {
            await using (var engine = await TestEngine.WithQueueAsync(options: Journaled(name)))
            {
                journaled.Add((await engine.SubmitJobAsync(TestEngine.Job())).JobId);
            }

            await using (var engine = await TestEngine.WithQueueAsync())
            {
                inMemory.Add((await engine.SubmitJobAsync(TestEngine.Job())).JobId);
            }
        }

        Assert.NotEqual(journaled[0], journaled[1]);
        Assert.Equal(inMemory[0], inMemory[1]); // Seed (1 by default) still decides: tests and the simulator replay exactly
    }

    [Fact]
    public async Task Launches_CarryTheStateDirectorysEngineId_TheSameAfterARestart_AnotherForAnotherDirectory()
    {
        var first = await LaunchOneAsync("a", setUp: true);
        var restarted = await LaunchOneAsync("a", setUp: false);
        var other = await LaunchOneAsync("b", setUp: true);

        Assert.Matches("^[0-9a-f]{16}$", first);
        Assert.Equal(first, restarted);
        Assert.NotEqual(first, other);
        Assert.Equal(first, File.ReadAllText(Path.Combine(Dir, "a", "engine-id")).Trim());
        Assert.Null(await LaunchOneAsync(null, setUp: true)); // an in-memory engine has none
    }

    /// <summary>The EngineId of one job's launch by an engine journaling into <paramref name="name"/> (null: in memory).</summary>
    private async Task<string?> LaunchOneAsync(string? name, bool setUp)
    {
        var driver = new CapturingDriver();
        var options = name is null ? Options() with { Journal = new JournalOptions() } : Journaled(name);
        await using var engine = new BatchEngine(options with { DriverFactories = new Dictionary<string, Func<HostSpec, HostDriver>> { ["capture"] = _ => driver } });
        if (setUp)
        {
            await engine.CreateComputeEnvironmentAsync(new() { ComputeEnvironmentName = "ce", Type = CEType.UNMANAGED, Hosts = [new() { HostName = "h", Vcpus = 4, MemoryMiB = 8192, Driver = "capture" }] });
            await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
            await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        }

        await engine.SubmitJobAsync(TestEngine.Job());
        await engine.RunUntilIdleAsync();
        var launch = Assert.Single(driver.Launches);
        Assert.Equal(name is not null, launch.Reattachable);
        return launch.EngineId;
    }

    /// <summary>Records each launch and reports it ran and exited 0 at once.</summary>
    private sealed class CapturingDriver : HostDriver
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<AttemptLaunch> _launches = new();

        public IReadOnlyCollection<AttemptLaunch> Launches => _launches;

        public override string Kind => "capture";

        public override void Launch(AttemptLaunch launch, IAttemptEventSink sink)
        {
            _launches.Enqueue(launch);
            sink.Ran(launch.Token, new AttemptExit(0), 0);
        }

        public override void Terminate(AttemptToken token, TimeSpan gracePeriod)
        {
        }
    }
}
