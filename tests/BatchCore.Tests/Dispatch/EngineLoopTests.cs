namespace BatchCore.Tests.Dispatch;

/// <summary>The engine's loop: a thread of its own, woken by requests.</summary>
public class EngineLoopTests
{
    private static readonly AsyncLocal<string?> Ambient = new();

    [Fact]
    public async Task Loop_RunsOnItsOwnThread_WithoutTheCreatorsExecutionContext()
    {
        Ambient.Value = "creator";
        await using var engine = await TestEngine.WithQueueAsync();
        var (seen, thread, pool) = await engine.Run(_ => (Ambient.Value, Thread.CurrentThread.Name, Thread.CurrentThread.IsThreadPoolThread), TestContext.Current.CancellationToken);

        Assert.Null(seen); // the creator's AsyncLocals (an Activity, a logging scope) do not leak into every job
        Assert.Equal("BatchCore engine loop", thread);
        Assert.False(pool);
    }

    [Fact]
    public async Task IdleLoop_IsWokenByEachRequest_AndStopsWhenDisposed()
    {
        var engine = await TestEngine.WithQueueAsync();
        for (var i = 0; i < 50; i++)
        {
            await Task.Yield(); // let the loop go idle and block between requests
            var r = await engine.SubmitJobAsync(TestEngine.Job("j" + i));
            Assert.False(string.IsNullOrEmpty(r.JobId));
        }

        await engine.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => engine.SubmitJobAsync(TestEngine.Job("late")));
    }
}
