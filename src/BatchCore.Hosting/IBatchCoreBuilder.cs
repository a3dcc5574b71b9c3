using Microsoft.Extensions.DependencyInjection;

namespace BatchCore.Hosting;

/// <summary>Returned by <c>AddBatchCore</c>: registers job handlers and further BatchCore services.</summary>
public interface IBatchCoreBuilder
{
    /// <summary>The application's services.</summary>
    IServiceCollection Services { get; }
}

internal sealed class BatchCoreBuilder(IServiceCollection services) : IBatchCoreBuilder
{
    public IServiceCollection Services { get; } = services;
}
