using System.Collections.Concurrent;

namespace BatchCore.Hosts.InProcess;

/// <summary>
/// Handlers by name, for <see cref="InProcessHostDriverOptions.HandlerResolver"/> (<c>HandlerResolver = registry.Resolve</c>).
/// Names are case-sensitive, as <c>extensions.handler</c> is. Thread-safe: handlers may be added while the engine runs.
/// </summary>
public sealed class InProcessHandlerRegistry
{
    private readonly ConcurrentDictionary<string, IBatchJobHandler> _handlers = new(StringComparer.Ordinal);

    /// <summary>Registers <paramref name="handler"/> under <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">The name is empty or already registered.</exception>
    public InProcessHandlerRegistry Add(string name, IBatchJobHandler handler)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(handler);
        if (!_handlers.TryAdd(name, handler))
        {
            throw new ArgumentException($"a handler named {name} is already registered", nameof(name));
        }

        return this;
    }

    /// <summary>Registers a delegate whose result is the exit code.</summary>
    public InProcessHandlerRegistry Add(string name, Func<BatchJobContext, CancellationToken, Task<int>> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return Add(name, new DelegateHandler(handler));
    }

    /// <summary>Registers a delegate that exits 0 when its task completes (and fails the attempt when it throws).</summary>
    public InProcessHandlerRegistry Add(string name, Func<BatchJobContext, CancellationToken, Task> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return Add(name, new VoidDelegateHandler(handler));
    }

    /// <summary>The handler named <paramref name="name"/>, or null.</summary>
    public IBatchJobHandler? Resolve(string name) => _handlers.TryGetValue(name, out var h) ? h : null;

    /// <summary>The registered names.</summary>
    public ICollection<string> Names => _handlers.Keys;

    private sealed class DelegateHandler(Func<BatchJobContext, CancellationToken, Task<int>> run) : IBatchJobHandler
    {
        public Task<int> RunAsync(BatchJobContext context, CancellationToken cancellationToken) => run(context, cancellationToken);
    }

    private sealed class VoidDelegateHandler(Func<BatchJobContext, CancellationToken, Task> run) : IBatchJobHandler
    {
        private static readonly Task<int> Zero = Task.FromResult(0);

        public Task<int> RunAsync(BatchJobContext context, CancellationToken cancellationToken)
        {
            var task = run(context, cancellationToken);
            return task.IsCompletedSuccessfully ? Zero : AwaitAsync(task);
        }

        private static async Task<int> AwaitAsync(Task task)
        {
            await task.ConfigureAwait(false);
            return 0;
        }
    }
}
