namespace BatchCore.Tests.Telemetry;

/// <summary>
/// Tests that start an <see cref="System.Diagnostics.ActivityListener"/> on the BatchCore source, and tests that need
/// nobody listening: a listener is process-wide, and while one listens every engine gives each attempt its own activity
/// (so it keeps every array child as an object: see EngineCore.Cohorts.cs). Not run in parallel with each other.
/// </summary>
[CollectionDefinition(Name)]
public sealed class ActivityListenerCollection
{
    public const string Name = "ActivityListener";
}
