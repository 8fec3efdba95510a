namespace Kawa.Dataflow;

/// <summary>A batch could not be flushed after every retry and the sink's error handler is
/// <see cref="BatchErrorHandler{T}.Raise"/>: the pipeline must stop.</summary>
public sealed class BatchFlushException : Exception
{
    /// <summary>Creates the exception.</summary>
    public BatchFlushException()
        : this("A batch flush failed.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public BatchFlushException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the flush's error.</summary>
    public BatchFlushException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    internal BatchFlushException(string stage, int batchSize, int attempts, bool abandoned, Exception innerException)
        : base(
            abandoned
                ? $"Stage '{stage}': a flush of {batchSize} message(s) ignored its cancellation after the flush timeout and was abandoned; the batch was negatively acked."
                : $"Stage '{stage}': a flush of {batchSize} message(s) failed after {attempts} attempt(s); the batch was negatively acked. {innerException.GetType().Name}: {innerException.Message}",
            innerException)
    {
        Stage = stage;
        BatchSize = batchSize;
        Attempts = attempts;
        Abandoned = abandoned;
    }

    /// <summary>The sink's stage name.</summary>
    public string? Stage { get; }

    /// <summary>How many messages the failed batch held.</summary>
    public int BatchSize { get; }

    /// <summary>How many attempts were made.</summary>
    public int Attempts { get; }

    /// <summary>Whether the last attempt ignored cancellation and was abandoned by the watchdog.</summary>
    public bool Abandoned { get; }

    /// <summary>The sink already counted the batch's messages in <c>kawa.messages.failed</c>; the pipeline must not count this error again.</summary>
    internal bool CountedAsFailed { get; init; }
}

/// <summary>A flush attempt did not finish within <see cref="BatchingOptions{T}.FlushTimeout"/>.</summary>
public sealed class FlushTimeoutException : TimeoutException
{
    /// <summary>Creates the exception.</summary>
    public FlushTimeoutException()
        : this("A batch flush timed out.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public FlushTimeoutException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public FlushTimeoutException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
