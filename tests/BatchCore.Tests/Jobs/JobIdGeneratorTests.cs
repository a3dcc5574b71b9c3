using BatchCore.Jobs;
using FsCheck.Xunit;

namespace BatchCore.Tests.Jobs;

/// <summary>Job ids: seeded, version-4 UUIDs, never the same twice in a run.</summary>
public sealed class JobIdGeneratorTests
{
    /// <summary>Any seed gives the same ids on every run, each a version-4 RFC 4122 UUID in its 36-character form.</summary>
    [Property(MaxTest = 100)]
    public void A_seed_gives_the_same_version_4_uuids_every_time(long seed)
    {
        var a = new JobIdGenerator(seed);
        var b = new JobIdGenerator(seed);
        for (var i = 0; i < 20; i++)
        {
            var id = a.Next();
            Assert.Equal(id, b.Next());
            Assert.Equal(36, id.Length);
            var guid = Guid.ParseExact(id, "D");
            Assert.Equal(4, guid.Version);
            Assert.Contains(id[19], "89ab"); // RFC 4122 variant
        }
    }

    [Fact]
    public void HundredThousandIds_AreDistinct_AndSeedsDiffer()
    {
        var ids = new JobIdGenerator(1);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 100_000; i++)
        {
            Assert.True(seen.Add(ids.Next()));
        }

        Assert.NotEqual(new JobIdGenerator(1).Next(), new JobIdGenerator(2).Next());
    }

    [Fact]
    public async Task EnginesWithTheSameSeed_HandOutTheSameJobIds()
    {
        await using var a = await TestEngine.WithQueueAsync(options: new() { Seed = 7 });
        await using var b = await TestEngine.WithQueueAsync(options: new() { Seed = 7 });
        await using var c = await TestEngine.WithQueueAsync(options: new() { Seed = 8 });
        var ct = TestContext.Current.CancellationToken;
        var ida = (await a.SubmitJobAsync(TestEngine.Job(), ct)).JobId;
        Assert.Equal(ida, (await b.SubmitJobAsync(TestEngine.Job(), ct)).JobId);
        Assert.NotEqual(ida, (await c.SubmitJobAsync(TestEngine.Job(), ct)).JobId);
    }
}
