using BatchCore.Journal;

namespace BatchCore.Tests.Journal;

/// <summary>Engines sharing a machine: every journaled engine makes ids of its own; an in-memory engine stays seeded.</summary>
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
}
