namespace BatchCore;

/// <summary>
/// Bad input: the request broke a rule of AWS Batch's API or of BatchCore's. Like AWS's <c>ClientException</c>, the
/// message names the field and the rule, e.g. <c>arrayProperties.size must be between 2 and 10000, was 10001</c>.
/// Nothing of a request that throws this has been applied.
/// </summary>
public sealed class BatchClientException : Exception
{
    /// <summary>Creates the exception with a message naming the field and the rule.</summary>
    public BatchClientException(string message) : base(message) => Problems = [message];

    /// <summary>Creates the exception with every problem found; the message joins them.</summary>
    public BatchClientException(IReadOnlyList<string> problems)
        : base(problems.Count == 1 ? problems[0] : string.Join("; ", problems)) => Problems = problems;

    public BatchClientException() : base("invalid request") => Problems = ["invalid request"];

    public BatchClientException(string message, Exception innerException) : base(message, innerException) => Problems = [message];

    /// <summary>Every problem found, one per broken rule.</summary>
    public IReadOnlyList<string> Problems { get; } = [];
}
