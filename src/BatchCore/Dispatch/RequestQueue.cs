using System.Threading.Channels;

namespace BatchCore.Dispatch;

/// <summary>
/// The engine's request queue: many writers, one reader (the scheduling loop), bounded. An unbounded single-reader
/// channel — whose reads take no lock — behind a lock-free capacity gate: a writer takes a slot with one interlocked
/// increment; when all <c>capacity</c> slots are taken it waits asynchronously until the loop drains (the semantics of
/// <see cref="BoundedChannelFullMode.Wait"/>: back-pressure, never unbounded memory). A bounded channel would take its
/// lock on every read as well as every write, and the loop would contend with every submitter for it.
/// </summary>
internal sealed class RequestQueue<T>(int capacity)
    where T : class
{
    private readonly Channel<T> _channel = Channel.CreateUnbounded<T>(new UnboundedChannelOptions { SingleReader = true });
    private int _count;
    private TaskCompletionSource? _space;
    private volatile bool _closed;

    public ChannelReader<T> Reader => _channel.Reader;

    /// <summary>
    /// Slots taken and not yet released by the reader (for diagnostics: a writer that finds the queue full takes a slot
    /// and gives it back at once, so the value may exceed the capacity for a moment).
    /// </summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Queues <paramref name="item"/>, waiting while the queue is full. Throws <see cref="ChannelClosedException"/> once completed.</summary>
    public ValueTask WriteAsync(T item, CancellationToken ct)
    {
        if (TryEnter())
        {
            return Publish(item) ? default : ValueTask.FromException(new ChannelClosedException());
        }

        return WriteSlowAsync(item, ct);
    }

    /// <summary>Queues an engine-control request (stop, drain checks) even when the queue is full; false once completed.</summary>
    public bool TryWriteControl(T item)
    {
        Interlocked.Increment(ref _count);
        return Publish(item);
    }

    /// <summary>The reader took <paramref name="n"/> requests: frees their slots and wakes writers waiting for room.</summary>
    public void Release(int n)
    {
        if (n > 0 && Interlocked.Add(ref _count, -n) < capacity && Volatile.Read(ref _space) is not null)
        {
            Interlocked.Exchange(ref _space, null)?.TrySetResult();
        }
    }

    /// <summary>No more requests: waiting writers fail with <see cref="ChannelClosedException"/>.</summary>
    public void Complete()
    {
        _closed = true;
        _channel.Writer.TryComplete();
        Interlocked.Exchange(ref _space, null)?.TrySetResult();
    }

    private bool TryEnter()
    {
        if (Interlocked.Increment(ref _count) <= capacity)
        {
            return true;
        }

        // Giving the slot back: a Release that ran while this (and other) failed attempts held the count up saw the
        // queue full and woke nobody; whoever brings the count back under the capacity wakes the waiters instead.
        if (Interlocked.Decrement(ref _count) < capacity)
        {
            Interlocked.Exchange(ref _space, null)?.TrySetResult();
        }

        return false;
    }

    private bool Publish(T item)
    {
        if (_channel.Writer.TryWrite(item))
        {
            return true;
        }

        Interlocked.Decrement(ref _count);
        return false;
    }

    private async ValueTask WriteSlowAsync(T item, CancellationToken ct)
    {
        while (true)
        {
            ct.ThrowIfCancellationRequested();

            // Publish the waiter first, then look again: a Release between the two sees the waiter and completes it,
            // so no wake-up is lost.
            var waiter = Volatile.Read(ref _space);
            if (waiter is null)
            {
                var fresh = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                waiter = Interlocked.CompareExchange(ref _space, fresh, null) ?? fresh;
            }

            if (_closed)
            {
                throw new ChannelClosedException();
            }

            if (TryEnter())
            {
                if (!Publish(item))
                {
                    throw new ChannelClosedException();
                }

                return;
            }

            await waiter.Task.WaitAsync(ct).ConfigureAwait(false);
        }
    }
}
