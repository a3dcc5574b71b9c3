using BatchCore.Hosts.InProcess;

namespace BatchCore.Hosting;

/// <summary>One named handler, as registered by <c>AddJobHandler</c>; collected into the engine's handler registry.</summary>
internal sealed record JobHandlerRegistration(string Name, Func<IServiceProvider, IBatchJobHandler> Create);
