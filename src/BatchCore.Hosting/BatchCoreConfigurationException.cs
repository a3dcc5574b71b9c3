namespace BatchCore.Hosting;

/// <summary>
/// The <c>BatchCore</c> configuration cannot be used: a value does not bind, or AWS's rules reject a resource. The
/// message starts with the configuration path, e.g. <c>BatchCore:JobQueues:0 (jobQueueName q): priority is required</c>.
/// </summary>
public sealed class BatchCoreConfigurationException : Exception
{
    /// <summary>Creates the exception for the configuration path <paramref name="path"/>.</summary>
    public BatchCoreConfigurationException(string path, string message, Exception? innerException = null)
        : base(path + ": " + message, innerException) => Path = path;

    /// <summary>Creates the exception with a generic message.</summary>
    public BatchCoreConfigurationException() : base("invalid BatchCore configuration") => Path = "";

    /// <summary>Creates the exception with a message (no path).</summary>
    public BatchCoreConfigurationException(string message) : base(message) => Path = "";

    /// <summary>Creates the exception with a message (no path) and its cause.</summary>
    public BatchCoreConfigurationException(string message, Exception innerException) : base(message, innerException) => Path = "";

    /// <summary>The configuration path of the offending value or resource (e.g. <c>BatchCore:JobQueues:0</c>).</summary>
    public string Path { get; }
}
