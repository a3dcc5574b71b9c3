using BatchCore.Hosting;
using WorkerService;

// A worker service that embeds BatchCore: queues, compute environments and job definitions come from appsettings.json
// (section "BatchCore", AWS's request bodies) plus one definition added in code; in-process handlers and shell jobs run
// side by side; DemoJobs submits a few jobs and stops the application when they are done.
var builder = Host.CreateApplicationBuilder(args);

builder.Services
    .AddBatchCore(builder.Configuration.GetSection(BatchCoreHostingDefaults.SectionName), options =>
        options.AddHandlerJobDefinition("summary", handler: "summary"))
    .AddJobHandler<RenderReportHandler>("render-report")
    // Definitions' "Secrets" come from configuration section "Secrets" (user secrets or a vault provider in a real app).
    .AddConfigurationSecrets(builder.Configuration.GetSection("Secrets"))
    .AddJobHandler("summary", (context, _) =>
    {
        context.Log.WriteLine($"summary for {context.JobName} on {context.HostName}");
        return Task.FromResult(0);
    });
builder.Services.AddHealthChecks().AddBatchCoreCheck();
builder.Services.AddHostedService<DemoJobs>();

await builder.Build().RunAsync().ConfigureAwait(false);
