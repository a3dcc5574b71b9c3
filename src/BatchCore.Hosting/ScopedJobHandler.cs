using BatchCore.Hosts.InProcess;
using Microsoft.Extensions.DependencyInjection;

namespace BatchCore.Hosting;

/// <summary>Resolves <typeparamref name="THandler"/> in a new DI scope per attempt and disposes the scope after it.</summary>
internal sealed class ScopedJobHandler<THandler>(IServiceScopeFactory scopes) : IBatchJobHandler
    where THandler : class, IBatchJobHandler
{
    public async Task<int> RunAsync(BatchJobContext context, CancellationToken cancellationToken)
    {
        var scope = scopes.CreateAsyncScope();
        await using (scope.ConfigureAwait(false))
        {
            var handler = scope.ServiceProvider.GetRequiredService<THandler>();
            return await handler.RunAsync(context, cancellationToken).ConfigureAwait(false);
        }
    }
}
