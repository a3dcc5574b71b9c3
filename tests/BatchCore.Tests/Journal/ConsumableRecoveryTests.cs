using BatchCore.Model;

namespace BatchCore.Tests.Journal;

/// <summary>
/// A non-replenishable consumable resource's units that ended jobs used up stay used up across restarts, from the journal
/// alone and from snapshots. Replay applies job states after every resource record and never released anything, so a
/// restart gave them back (5 units, two jobs of 1 each: 3 before the restart, 5 after).
/// </summary>
public sealed class ConsumableRecoveryTests() : StateDirectoryTest("bc-consumable-recovery-")
{
    private static async Task SetUpAsync(BatchEngine engine, long total, int hosts = 1)
    {
        await engine.CreateComputeEnvironmentAsync(new()
        {
            ComputeEnvironmentName = "ce",
            Type = CEType.UNMANAGED,
            Hosts = [.. Enumerable.Range(0, hosts).Select(i => new HostSpec { HostName = "h" + i, Vcpus = 4, MemoryMiB = 8192 })],
        });
        await engine.CreateJobQueueAsync(new() { JobQueueName = "q", Priority = 1, ComputeEnvironmentOrder = [new() { Order = 1, ComputeEnvironment = "ce" }] });
        await engine.RegisterJobDefinitionAsync(TestEngine.Definition("def"));
        await engine.CreateConsumableResourceAsync(new() { ConsumableResourceName = "credits", TotalQuantity = total, ResourceType = ConsumableResourceType.NON_REPLENISHABLE });
    }

    private static SubmitJobRequest Using(string name, long quantity, double runSeconds = 10) => TestEngine.Job(name, runSeconds: runSeconds) with
    {
        ConsumableResourcePropertiesOverride = new() { ConsumableResourceList = [new() { ConsumableResource = "credits", Quantity = quantity }] },
    };

    private static async Task<(long Total, long InUse, long Available)> QuantitiesAsync(BatchEngine engine)
    {
        var d = await engine.DescribeConsumableResourceAsync("credits");
        return (d.TotalQuantity, d.InUseQuantity, d.AvailableQuantity);
    }

    /// <summary>compactAfterBytes 0: every commit writes a snapshot; the default: the journal alone, appended to after each restart.</summary>
    [Theory]
    [InlineData(256L << 20)]
    [InlineData(0L)]
    public async Task UsedUpUnits_StayUsedUp_AcrossRestarts(long compactAfterBytes)
    {
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options(compactAfterBytes: compactAfterBytes)))
        {
            await SetUpAsync(engine, total: 5);
            await engine.SubmitJobAsync(Using("a", 1));
            await engine.SubmitJobAsync(Using("b", 1));
            await engine.RunUntilIdleAsync();
            Assert.Equal((3L, 0L, 3L), await QuantitiesAsync(engine));
            stoppedAt = engine.UtcNow;
        }

        for (var restart = 0; restart < 3; restart++)
        {
            await using var engine = new BatchEngine(Options(stoppedAt, compactAfterBytes: compactAfterBytes));
            Assert.Equal((3L - restart, 0L, 3L - restart), await QuantitiesAsync(engine));
            await engine.SubmitJobAsync(Using("c" + restart, 1)); // and the recovered total goes on being used up
            await engine.RunUntilIdleAsync();
            Assert.Equal((2L - restart, 0L, 2L - restart), await QuantitiesAsync(engine));
            stoppedAt = engine.UtcNow;
        }
    }

    /// <summary>
    /// Updates interleaved with jobs ending, SET below what a running job holds among them (the total then shrinks as it
    /// ends): the restart gives what the running engine had, also with a job still running at the stop (re-attached or
    /// not, the describe before and after must agree on what is used up).
    /// </summary>
    [Theory]
    [InlineData(256L << 20)]
    [InlineData(0L)]
    public async Task UpdatesInterleavedWithJobEnds_RecoverToTheSameQuantities(long compactAfterBytes)
    {
        DateTimeOffset stoppedAt;
        (long, long, long) before;
        await using (var engine = new BatchEngine(Options(compactAfterBytes: compactAfterBytes)))
        {
            await SetUpAsync(engine, total: 10, hosts: 2);
            await engine.SubmitJobAsync(Using("a", 4, runSeconds: 10));
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
            await engine.UpdateConsumableResourceAsync(new() { ConsumableResource = "credits", Operation = "SET", Quantity = 2 }); // below the 4 held
            await engine.RunUntilIdleAsync();
            Assert.Equal((0L, 0L, 0L), await QuantitiesAsync(engine));
            await engine.UpdateConsumableResourceAsync(new() { ConsumableResource = "credits", Operation = "ADD", Quantity = 7 });
            await engine.SubmitJobAsync(Using("b", 2));
            await engine.RunUntilIdleAsync();
            await engine.UpdateConsumableResourceAsync(new() { ConsumableResource = "credits", Operation = "REMOVE", Quantity = 1 });
            await engine.SubmitJobAsync(Using("c", 1));
            await engine.RunUntilIdleAsync();
            before = await QuantitiesAsync(engine);
            Assert.Equal((3L, 0L, 3L), before); // 10 → SET 2 (a holds 4) → 0 → ADD 7 → b uses 2 → 5 → REMOVE 1 → c uses 1 → 3
            stoppedAt = engine.UtcNow;
        }

        for (var restart = 0; restart < 2; restart++)
        {
            await using var engine = new BatchEngine(Options(stoppedAt, compactAfterBytes: compactAfterBytes));
            Assert.Equal(before, await QuantitiesAsync(engine));
            stoppedAt = engine.UtcNow;
        }
    }

    /// <summary>
    /// An attempt the restart cuts short (a simulated host's: nothing re-attaches it) held its units: they are used up,
    /// as by any failed attempt, and stay so at the next restart (from the snapshot the first one writes). With the total
    /// set below what it held, it ends as the attempt's end would have left it live: at the new total less what it used.
    /// </summary>
    [Theory]
    [InlineData(null, 3L)]
    [InlineData(1L, 0L)]
    public async Task AttemptCutShortByTheRestart_UsesUpWhatItHeld(long? setTo, long expected)
    {
        DateTimeOffset stoppedAt;
        string id;
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine, total: 5);
            id = (await engine.SubmitJobAsync(Using("a", 2, runSeconds: 1000))).JobId;
            await engine.AdvanceTimeAsync(TimeSpan.FromSeconds(1));
            Assert.Equal((5L, 2L, 3L), await QuantitiesAsync(engine));
            if (setTo is { } quantity)
            {
                await engine.UpdateConsumableResourceAsync(new() { ConsumableResource = "credits", Operation = "SET", Quantity = quantity });
            }

            stoppedAt = engine.UtcNow;
        }

        for (var restart = 0; restart < 2; restart++)
        {
            await using var engine = new BatchEngine(Options(stoppedAt));
            Assert.Equal(JobStatus.FAILED, await engine.StatusAsync(id));
            Assert.Equal((expected, 0L, expected), await QuantitiesAsync(engine));
            stoppedAt = engine.UtcNow;
        }
    }

    /// <summary>
    /// Each job's end is journaled as the resource's total (a SET); snapshots keep one such record per resource, not
    /// one per job that ever used it, however many restarts and compactions there are.
    /// </summary>
    [Fact]
    public async Task Snapshots_KeepOneTotalPerResource_NotOnePerJob()
    {
        DateTimeOffset stoppedAt;
        await using (var engine = new BatchEngine(Options()))
        {
            await SetUpAsync(engine, total: 100);
            for (var i = 0; i < 20; i++)
            {
                await engine.SubmitJobAsync(Using("j" + i, 1));
            }

            await engine.RunUntilIdleAsync();
            await engine.UpdateConsumableResourceAsync(new() { ConsumableResource = "credits", Operation = "ADD", Quantity = 5 });
            await engine.SubmitJobAsync(Using("k", 1));
            await engine.RunUntilIdleAsync();
            stoppedAt = engine.UtcNow;
        }

        for (var restart = 0; restart < 3; restart++)
        {
            await using var engine = new BatchEngine(Options(stoppedAt, compactAfterBytes: 0));
            Assert.Equal((84L - restart, 0L, 84L - restart), await QuantitiesAsync(engine));
            await engine.SubmitJobAsync(Using("m" + restart, 1));
            await engine.RunUntilIdleAsync();
            stoppedAt = engine.UtcNow;
        }

        await using (var engine = new BatchEngine(Options(stoppedAt)))
        {
            Assert.Equal((81L, 0L, 81L), await QuantitiesAsync(engine));
        }

        var snapshot = File.ReadAllBytes(Path.Combine(Dir, "snapshot.bcj"));
        Assert.Equal(1, Count(snapshot, "UpdateConsumableResource"u8)); // the total after the last job (the ADD before it is moot)
    }

    private static int Count(ReadOnlySpan<byte> haystack, ReadOnlySpan<byte> needle)
    {
        var n = 0;
        int i;
        while ((i = haystack.IndexOf(needle)) >= 0)
        {
            n++;
            haystack = haystack[(i + needle.Length)..];
        }

        return n;
    }
}
