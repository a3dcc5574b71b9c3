using BatchCore.Dispatch;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace BatchCore.Tests.Dispatch;

public sealed class TimerHeapTests
{
    /// <summary>
    /// Any interleaving of enqueues (due times with many ties) and dequeues pops exactly what a
    /// <see cref="PriorityQueue{TElement, TPriority}"/> ordered by (due, sequence) pops — across chunk boundaries, and
    /// after the heap shrank and gave chunks back.
    /// </summary>
    [Property(MaxTest = 25)]
    public Property PopsInDueThenSequenceOrder_LikeAPriorityQueue() => Prop.ForAll(
        Gen.Choose(0, int.MaxValue).Select(seed => seed).ToArbitrary(),
        seed =>
        {
            var random = new Random(seed);
            var heap = new TimerHeap();
            var model = new PriorityQueue<string, (long, long)>();
            long seq = 0;
            var ops = random.Next(1, 6 * TimerHeap.ChunkSize);
            for (var i = 0; i < ops; i++)
            {
                // Mostly enqueues for the first 60 %, then mostly dequeues: the heap grows past chunk boundaries (up to
                // ~3 chunks) and shrinks back, giving chunks back.
                var enqueue = model.Count == 0 || random.Next(10) < (i < ops * 6 / 10 ? 9 : 1);
                if (enqueue)
                {
                    var due = random.Next(0, 50); // many equal due times: the sequence breaks the ties
                    var item = "t" + (++seq);
                    heap.Enqueue(item, due, seq);
                    model.Enqueue(item, (due, seq));
                }
                else
                {
                    Assert.True(heap.TryPeek(out var item, out var due, out var s));
                    Assert.True(model.TryDequeue(out var expected, out var p));
                    Assert.Equal((expected, p.Item1, p.Item2), ((string)item, due, s));
                    heap.Dequeue();
                }

                Assert.Equal(model.Count, heap.Count);
            }

            while (model.TryDequeue(out var expected, out var p))
            {
                Assert.True(heap.TryPeek(out var item, out var due, out var s));
                Assert.Equal((expected, p.Item1, p.Item2), ((string)item, due, s));
                heap.Dequeue();
            }

            Assert.False(heap.TryPeek(out _, out _, out _));
        });

    [Fact]
    public void Dequeue_OnAnEmptyHeap_Throws()
    {
        var heap = new TimerHeap();
        Assert.Throws<InvalidOperationException>(heap.Dequeue);
        heap.Enqueue("a", 1, 1);
        heap.Dequeue();
        Assert.Equal(0, heap.Count);
        Assert.Throws<InvalidOperationException>(heap.Dequeue);
    }
}
