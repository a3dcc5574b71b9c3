using System.Text.Json;
using BatchCore.Model;
using BatchCore.Validation;
using FsCheck.Xunit;

namespace BatchCore.Tests.Validation;

/// <summary>The SubmitJob size check skips the exact measurement only when its estimate proves the request small.</summary>
public class RequestSizeProperties
{
    /// <summary>
    /// For any request (strings with quotes, control characters and non-ASCII text, in every field that can be long),
    /// the cheap upper bound is never below the request's JSON size: a request over the limit is always measured.
    /// </summary>
    [Property(MaxTest = 300)]
    public void Upper_bound_is_never_below_the_json_size(string[] texts, byte shape)
    {
        var t = (texts ?? []).Select(s => s ?? "").ToArray();
        string At(int i) => t.Length == 0 ? "" : t[i % t.Length];
        var r = new SubmitJobRequest
        {
            JobName = At(0),
            JobQueue = At(1),
            JobDefinition = At(2),
            ShareIdentifier = (shape & 1) != 0 ? At(3) : null,
            SchedulingPriorityOverride = (shape & 2) != 0 ? 9999 : null,
            ArrayProperties = (shape & 4) != 0 ? new ArrayProperties { Size = 10_000 } : null,
            Parameters = t.Distinct().Take(8).ToDictionary(s => s, s => At(s.Length)),
            Tags = (shape & 8) != 0 ? t.Distinct().Take(5).ToDictionary(s => "k" + s, s => s) : null,
            DependsOn = [.. t.Take(3).Select(s => new JobDependency { JobId = s, Type = ArrayJobDependency.N_TO_N })],
            ContainerOverrides = (shape & 16) != 0 ? new ContainerOverrides
            {
                Command = t,
                Environment = [.. t.Take(4).Select(s => new Model.KeyValuePair("E" + s.Length, s))],
                ResourceRequirements = [new(ResourceType.VCPU, "1"), new(ResourceType.MEMORY, At(5))],
                InstanceType = At(6),
            } : null,
            RetryStrategy = (shape & 32) != 0 ? new RetryStrategy { Attempts = 10, EvaluateOnExit = [new() { OnReason = At(7), OnExitCode = At(8), Action = "RETRY" }] } : null,
            Timeout = (shape & 64) != 0 ? new JobTimeout { AttemptDurationSeconds = int.MaxValue } : null,
            PropagateTags = (shape & 128) != 0,
            ConsumableResourcePropertiesOverride = (shape & 3) == 3 ? new() { ConsumableResourceList = [new() { ConsumableResource = At(9), Quantity = long.MaxValue }] } : null,
            Extensions = (shape & 6) == 6 ? new SubmitJobExtensions { SimulatedRunTimeSeconds = double.MaxValue, SimulatedExitCode = int.MinValue, SimulatedFailingAttempts = int.MaxValue, ArrayMaxConcurrency = int.MaxValue } : null,
        };

        var exact = JsonSerializer.SerializeToUtf8Bytes(r, RequestSize.Json).Length;
        Assert.True(RequestSize.UpperBound(r) >= exact, $"bound {RequestSize.UpperBound(r)} < JSON {exact}");
    }
}
