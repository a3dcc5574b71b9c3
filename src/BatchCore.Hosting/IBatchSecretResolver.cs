using BatchCore.Model;
using Microsoft.Extensions.Configuration;

namespace BatchCore.Hosting;

/// <summary>
/// Resolves a job definition's <c>containerProperties.secrets</c> (AWS: Secrets Manager or SSM Parameter Store) to the
/// values jobs get in their environment. Register one with <see cref="BatchCoreServiceCollectionExtensions.AddSecretResolver{TResolver}"/>
/// (e.g. over the app's vault client) or use <see cref="BatchCoreServiceCollectionExtensions.AddConfigurationSecrets"/>; the
/// engine calls it off its loop before an attempt starts (<see cref="BatchEngineOptions.SecretResolver"/>, which wins
/// when set).
/// </summary>
public interface IBatchSecretResolver
{
    /// <summary>The value of <paramref name="secret"/>; throws when there is none (the attempt then fails unstarted).</summary>
    ValueTask<string> ResolveAsync(Secret secret, CancellationToken cancellationToken);
}

/// <summary>
/// Secrets from the app's configuration (appsettings, user secrets, environment, a vault's configuration provider):
/// <c>valueFrom</c> names a key under one section. An AWS ARN names the key by its secret or parameter name
/// (<c>arn:aws:secretsmanager:…:secret:db-password</c> and <c>arn:aws:ssm:…:parameter/db-password</c> → <c>db-password</c>);
/// a plain name is the key itself.
/// </summary>
internal sealed class ConfigurationSecretResolver(IConfiguration section) : IBatchSecretResolver
{
    public ValueTask<string> ResolveAsync(Secret secret, CancellationToken cancellationToken)
    {
        var key = KeyOf(secret.ValueFrom ?? "");
        return section[key] is { } value
            ? ValueTask.FromResult(value)
            : ValueTask.FromException<string>(new KeyNotFoundException(
                $"no configuration value at {(section is IConfigurationSection s ? s.Path + ":" : "")}{key}"));
    }

    /// <summary>The configuration key <paramref name="valueFrom"/> names.</summary>
    internal static string KeyOf(string valueFrom)
    {
        if (!valueFrom.StartsWith("arn:", StringComparison.Ordinal))
        {
            return valueFrom;
        }

        const string Secret = ":secret:";
        const string Parameter = ":parameter/";
        var s = valueFrom.IndexOf(Secret, StringComparison.Ordinal);
        if (s >= 0)
        {
            var name = valueFrom[(s + Secret.Length)..];
            var colon = name.IndexOf(':', StringComparison.Ordinal); // json-key:version-stage:version-id follow
            return colon < 0 ? name : name[..colon];
        }

        var p = valueFrom.IndexOf(Parameter, StringComparison.Ordinal);
        return p >= 0 ? valueFrom[(p + Parameter.Length)..] : valueFrom;
    }
}
