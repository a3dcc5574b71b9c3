using System.Threading.Channels;
using BatchCore.Dispatch;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace BatchCore.Tests.Dispatch;

public sealed class RequestQueueTests
{
    [Fact]
    public async Task Full_WriterWaitsUntilTheReaderReleases()
    {
        var q = new RequestQueue<string>(2);
        await q.WriteAsync("a", TestContext.Current.CancellationToken);
        await q.WriteAsync("b", TestContext.Current.CancellationToken);

        var third = q.WriteAsync("c", TestContext.Current.CancellationToken).AsTask();
        Assert.False(third.IsCompleted); // back-pressure: no room
        Assert.True(q.Reader.TryRead(out var first));
        Assert.Equal("a", first);
        Assert.False(third.IsCompleted); // taken, not yet released

        q.Release(1);
        await third.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Equal(2, q.Count);
        Assert.True(q.Reader.TryRead(out var second));
        Assert.True(q.Reader.TryRead(out var last));
        Assert.Equal(["b", "c"], [second, last]);
    }

    [Fact]
    public async Task Complete_FailsWaitingAndLaterWriters()
    {
        var q = new RequestQueue<string>(1);
        await q.WriteAsync("a", TestContext.Current.CancellationToken);
        var waiting = q.WriteAsync("b", TestContext.Current.CancellationToken).AsTask();

        q.Complete();

        await Assert.ThrowsAsync<ChannelClosedException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        await Assert.ThrowsAsync<ChannelClosedException>(() => q.WriteAsync("c", TestContext.Current.CancellationToken).AsTask());
        Assert.False(q.TryWriteControl("d"));
    }

    [Fact]
    public async Task Cancelled_WaitingWriterWritesNothing()
    {
        var q = new RequestQueue<string>(1);
        await q.WriteAsync("a", TestContext.Current.CancellationToken);
        using var cts = new CancellationTokenSource();
        var waiting = q.WriteAsync("b", cts.Token).AsTask();

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.True(q.Reader.TryRead(out _));
        Assert.False(q.Reader.TryRead(out _));
        Assert.Equal(1, q.Count);
    }

    [Fact]
    public void ControlWrites_GetInEvenWhenFull()
    {
        var q = new RequestQueue<string>(1);
        Assert.True(q.WriteAsync("a", CancellationToken.None).IsCompletedSuccessfully);
        Assert.True(q.TryWriteControl("stop"));
        Assert.Equal(2, q.Count);
    }

    /// <summary>
    /// Many concurrent writers, one reader releasing in random batch sizes: every item arrives exactly once, and the
    /// number of items written but not yet released never exceeds the capacity (control writes aside).
    /// </summary>
    [Property(MaxTest = 100)]
    public Property NoItemIsLost_AndTheQueueNeverHoldsMoreThanItsCapacity(byte c, byte w, byte p, byte b)
    {
        int capacity = 1 + (c % 8), writers = 1 + (w % 6), perWriter = 1 + (p % 200), batch = 1 + (b % 5);
        var q = new RequestQueue<int[]>(capacity);
        var maxSeen = 0;
        var published = 0; // writes that completed; each holds a slot until the reader releases it
        var released = 0;
        var tasks = Enumerable.Range(0, writers).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < perWriter; i++)
            {
                await q.WriteAsync([writer, i], CancellationToken.None);
                Interlocked.Increment(ref published);
            }
        })).ToArray();
        var received = new List<int[]>();
        var total = writers * perWriter;
        var deadline = DateTime.UtcNow.AddMinutes(2); // a hang guard, not a timed assertion
        while (received.Count < total && DateTime.UtcNow < deadline)
        {
            // Completed writes not yet released never exceed the capacity. (Count itself may overshoot for a moment:
            // a writer that finds the queue full takes a slot and gives it back at once.)
            maxSeen = Math.Max(maxSeen, Volatile.Read(ref published) - released);
            var n = 0;
            while (n < batch && q.Reader.TryRead(out var item))
            {
                received.Add(item);
                n++;
            }

            q.Release(n);
            released += n;
            if (n == 0)
            {
                Thread.Yield();
            }
        }

        Task.WaitAll(tasks, TimeSpan.FromMinutes(1));
        var distinct = received.Select(r => (r[0], r[1])).Distinct().Count();
        return (received.Count == total && distinct == total && maxSeen <= capacity)
            .Label($"received {received.Count}/{total}, distinct {distinct}, max in queue {maxSeen} (capacity {capacity})");
    }
}
