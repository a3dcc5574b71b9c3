using System.Reflection;
using BatchCore.Hosts;
using BatchCore.Hosts.InProcess;
using BatchCore.Hosts.Process;
using BatchCore.Logs;
using BatchCore.Model;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace BatchCore.Hosting;

/// <summary>Registers BatchCore in a <see cref="IServiceCollection"/>.</summary>
public static class BatchCoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="BatchEngine"/>, the hosted service that creates the configured resources at
    /// start and stops the engine gracefully, and the in-process handler registry. Call once; later calls only add
    /// <paramref name="configure"/>.
    /// </summary>
    public static IBatchCoreBuilder AddBatchCore(this IServiceCollection services, Action<BatchCoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (configure is not null)
        {
            services.Configure(configure);
        }

        if (services.Any(d => d.ServiceType == typeof(BatchCoreMarker)))
        {
            return new BatchCoreBuilder(services);
        }

        services.AddSingleton<BatchCoreMarker>();
        services.AddOptions<BatchCoreOptions>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(CreateRegistry);
        services.TryAddSingleton(CreateEngine);
        services.AddHostedService<BatchCoreHostedService>();
        return new BatchCoreBuilder(services);
    }

    /// <summary>
    /// <see cref="AddBatchCore(IServiceCollection, Action{BatchCoreOptions})"/> with the options bound from
    /// <paramref name="section"/> (usually <c>configuration.GetSection("BatchCore")</c>), then <paramref name="configure"/>.
    /// Unknown keys and values that do not convert fail the start with a <see cref="BatchCoreConfigurationException"/>
    /// naming the path.
    /// </summary>
    public static IBatchCoreBuilder AddBatchCore(this IServiceCollection services, IConfiguration section, Action<BatchCoreOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(section);
        services.Configure<BatchCoreOptions>(o => Bind(section, o));
        return services.AddBatchCore(configure);
    }

    /// <summary>Registers <typeparamref name="THandler"/> as the handler named <paramref name="name"/>, resolved in a DI scope per attempt.</summary>
    public static IBatchCoreBuilder AddJobHandler<THandler>(this IBatchCoreBuilder builder, string name)
        where THandler : class, IBatchJobHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        builder.Services.TryAddScoped<THandler>();
        builder.Services.AddSingleton(new JobHandlerRegistration(name,
            static sp => new ScopedJobHandler<THandler>(sp.GetRequiredService<IServiceScopeFactory>())));
        return builder;
    }

    /// <summary>Registers a delegate as the handler named <paramref name="name"/>; its result is the exit code.</summary>
    public static IBatchCoreBuilder AddJobHandler(this IBatchCoreBuilder builder, string name, Func<BatchJobContext, CancellationToken, Task<int>> handler)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(handler);
        builder.Services.AddSingleton(new JobHandlerRegistration(name, _ => new DelegateJobHandler(handler)));
        return builder;
    }

    /// <summary>
    /// Registers <typeparamref name="TResolver"/> (a singleton) as the resolver of job definitions' secrets, unless
    /// <see cref="BatchEngineOptions.SecretResolver"/> is set.
    /// </summary>
    public static IBatchCoreBuilder AddSecretResolver<TResolver>(this IBatchCoreBuilder builder)
        where TResolver : class, IBatchSecretResolver
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IBatchSecretResolver, TResolver>();
        return builder;
    }

    /// <summary>
    /// Resolves job definitions' secrets from <paramref name="section"/> of the app's configuration: a secret's
    /// <c>valueFrom</c> (an ARN's secret or parameter name, or a plain name) is the key. Works with any configuration
    /// source: user secrets in development, environment variables, a vault's configuration provider.
    /// </summary>
    public static IBatchCoreBuilder AddConfigurationSecrets(this IBatchCoreBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        builder.Services.AddSingleton<IBatchSecretResolver>(new ConfigurationSecretResolver(section));
        return builder;
    }

    /// <summary>Registers the engine's health check (<see cref="BatchCoreHealthCheck"/>) under <paramref name="name"/>.</summary>
    public static IHealthChecksBuilder AddBatchCoreCheck(this IHealthChecksBuilder builder, string name = BatchCoreHostingDefaults.HealthCheckName,
        HealthStatus? failureStatus = null, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddCheck<BatchCoreHealthCheck>(name, failureStatus, tags ?? []);
    }

    /// <summary>Binds <paramref name="section"/> onto <paramref name="options"/>, turning binder errors into path-named ones.</summary>
    internal static void Bind(IConfiguration section, BatchCoreOptions options)
    {
        RejectVirtualClock(section);

        // The binder sets properties on the objects it finds, and the engine options' defaults include shared instances
        // (ProvisioningDefaults' launch buckets): bound onto copies, BatchCore:Engine changes this host's options only.
        var engine = options.Engine;
        var provisioning = engine.Provisioning;
        options.Engine = engine with
        {
            Quotas = engine.Quotas with { },
            Journal = engine.Journal with { },
            Provisioning = provisioning with
            {
                Ec2LaunchBucket = provisioning.Ec2LaunchBucket with { }, FargateLaunchBucket = provisioning.FargateLaunchBucket with { },
            },
        };
        try
        {
            section.Bind(options, b => b.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException e)
        {
            // The binder wraps the precise error ("... at 'BatchCore:JobQueues:0:Priority' ..."): report the innermost.
            var path = section is IConfigurationSection s ? s.Path : "";
            Exception inner = e;
            while (inner.InnerException is InvalidOperationException next)
            {
                inner = next;
            }

            // An unknown key: the binder names the key and the type, not where the key is (which list item): find it.
            if (inner.Message.Contains(nameof(BinderOptions.ErrorOnUnknownConfiguration), StringComparison.Ordinal)
                && UnknownKeys(section, typeof(BatchCoreOptions)).FirstOrDefault(u => inner.Message.Contains($"'{u.Key.Key}'", StringComparison.Ordinal))
                    is ({ } key, var type))
            {
                throw new BatchCoreConfigurationException(key.Path, $"unknown key: {type.Name} has no option '{key.Key}'", e);
            }

            throw new BatchCoreConfigurationException(path, inner.Message, e);
        }
    }

    /// <summary>
    /// <c>Engine:VirtualTime</c> and <c>Engine:VirtualStart</c> are code only, whatever their value: a virtual clock moves
    /// only when code calls RunUntilIdleAsync or AdvanceTimeAsync (the simulator's and the tests' mode), so a hosted engine
    /// on one, set by a configuration key, would never time out, retry or scale in by itself and would stamp jobs with
    /// another clock than its drivers'; VirtualStart means nothing without it. The binder would take both (a bool, a date).
    /// </summary>
    private static void RejectVirtualClock(IConfiguration section)
    {
        foreach (var key in section.GetSection("Engine").GetChildren())
        {
            if (string.Equals(key.Key, nameof(BatchEngineOptions.VirtualTime), StringComparison.OrdinalIgnoreCase))
            {
                throw new BatchCoreConfigurationException(key.Path,
                    "code only: the virtual clock of the simulator and the tests moves only when code calls RunUntilIdleAsync or AdvanceTimeAsync, so a hosted engine on it would never time out, retry or scale in by itself; set BatchEngineOptions.VirtualTime in code");
            }

            if (string.Equals(key.Key, nameof(BatchEngineOptions.VirtualStart), StringComparison.OrdinalIgnoreCase))
            {
                throw new BatchCoreConfigurationException(key.Path,
                    "code only: the start of the virtual clock, used only with BatchEngineOptions.VirtualTime, which is set in code");
            }
        }
    }

    /// <summary>
    /// The keys under <paramref name="section"/> that name no property of <paramref name="type"/>, walked as the binder
    /// walks them (names ignoring case; a list's items and a dictionary's values as their element type), with the type.
    /// </summary>
    private static IEnumerable<(IConfigurationSection Key, Type Type)> UnknownKeys(IConfiguration section, Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        var element = type == typeof(string) ? null : ElementType(type);
        foreach (var child in section.GetChildren())
        {
            var next = element ?? type.GetProperties(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static)
                .FirstOrDefault(p => string.Equals(p.GetCustomAttribute<ConfigurationKeyNameAttribute>()?.Name ?? p.Name, child.Key, StringComparison.OrdinalIgnoreCase))
                ?.PropertyType;
            if (next is null)
            {
                yield return (child, type);
                continue;
            }

            foreach (var unknown in UnknownKeys(child, next))
            {
                yield return unknown;
            }
        }
    }

    /// <summary>A dictionary's value type, a collection's item type, or null for an object.</summary>
    private static Type? ElementType(Type type)
    {
        Type? item = null;
        foreach (var i in type.IsInterface ? [type, .. type.GetInterfaces()] : type.GetInterfaces())
        {
            if (!i.IsGenericType)
            {
                continue;
            }

            var definition = i.GetGenericTypeDefinition();
            if (definition == typeof(IDictionary<,>) || definition == typeof(IReadOnlyDictionary<,>))
            {
                return i.GetGenericArguments()[1];
            }

            if (definition == typeof(IEnumerable<>))
            {
                item = i.GetGenericArguments()[0];
            }
        }

        return item;
    }

    private static InProcessHandlerRegistry CreateRegistry(IServiceProvider sp)
    {
        var registry = new InProcessHandlerRegistry();
        foreach (var r in sp.GetServices<JobHandlerRegistration>())
        {
            registry.Add(r.Name, r.Create(sp));
        }

        return registry;
    }

    private static BatchEngine CreateEngine(IServiceProvider sp)
    {
        var options = sp.GetRequiredService<IOptions<BatchCoreOptions>>().Value;
        var engine = options.Engine;
        var logs = engine.LogStore ?? new InMemoryLogStore();
        var time = engine.TimeProvider;
        var factories = new Dictionary<string, Func<HostSpec, HostDriver>>(StringComparer.Ordinal);
        if (engine.DriverFactories is { } given)
        {
            foreach (var (kind, factory) in given)
            {
                factories[kind] = factory;
            }
        }

        var logger = sp.GetService<Microsoft.Extensions.Logging.ILoggerFactory>()?.CreateLogger("BatchCore")
            ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        var registry = sp.GetRequiredService<InProcessHandlerRegistry>();
        factories.TryAdd(InProcessHostDriverDefaults.Kind, InProcessHostDriver.SharedFactory(new InProcessHostDriverOptions
        {
            HandlerResolver = registry.Resolve,
            LogStore = logs,
            TimeProvider = time,
            LoggerFactory = sp.GetService<Microsoft.Extensions.Logging.ILoggerFactory>(),
        }));
        if (options.EnableProcessDriver && !factories.ContainsKey("process"))
        {
            var process = new Lazy<ProcessHostDriver>(() => new ProcessHostDriver(new ProcessHostDriverOptions
            {
                LogStore = logs, TimeProvider = time, Diagnostic = message => Log.ProcessDriverDiagnostic(logger, message),
            }));
            factories["process"] = _ => process.Value;
        }

        var secrets = engine.SecretResolver;
        if (secrets is null && sp.GetService<IBatchSecretResolver>() is { } resolver)
        {
            secrets = resolver.ResolveAsync;
        }

        return new BatchEngine(engine with
        {
            LogStore = logs, DriverFactories = factories, SecretResolver = secrets,
            UnexpectedError = engine.UnexpectedError ?? (e => Log.LoopError(logger, e)),
        });
    }

    /// <summary>Marks that AddBatchCore ran.</summary>
    private sealed class BatchCoreMarker;

    private sealed class DelegateJobHandler(Func<BatchJobContext, CancellationToken, Task<int>> run) : IBatchJobHandler
    {
        public Task<int> RunAsync(BatchJobContext context, CancellationToken cancellationToken) => run(context, cancellationToken);
    }
}
