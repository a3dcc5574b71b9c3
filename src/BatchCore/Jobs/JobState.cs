namespace BatchCore.Jobs;

/// <summary>The seven AWS Batch job states, as the engine keeps them.</summary>
internal enum JobState : byte
{
    Submitted,
    Pending,
    Runnable,
    Starting,
    Running,
    Succeeded,
    Failed,
}

internal static class JobStateExtensions
{
    private static readonly string[] Names =
    [
        Model.JobStatus.SUBMITTED, Model.JobStatus.PENDING, Model.JobStatus.RUNNABLE, Model.JobStatus.STARTING,
        Model.JobStatus.RUNNING, Model.JobStatus.SUCCEEDED, Model.JobStatus.FAILED,
    ];

    public static string ToAws(this JobState state) => Names[(int)state];

    public static bool IsTerminal(this JobState state) => state >= JobState.Succeeded;

    /// <summary>SUBMITTED, PENDING, RUNNABLE: what CancelJob acts on.</summary>
    public static bool IsBeforeStarting(this JobState state) => state <= JobState.Runnable;

    public static bool TryParse(string? s, out JobState state)
    {
        for (var i = 0; i < Names.Length; i++)
        {
            if (Names[i] == s)
            {
                state = (JobState)i;
                return true;
            }
        }

        state = default;
        return false;
    }
}
