namespace Kawa.Dataflow;

/// <summary>What the batching sink does with a batch whose flush failed after every retry.</summary>
public enum BatchErrorAction
{
    /// <summary>Fatal: the batch is negatively acked and the error surfaces from the next send and from the drain.</summary>
    Raise = 0,

    /// <summary>The batch is acked without being written; the loss is counted and logged.</summary>
    DiscardAndAck = 1,

    /// <summary>The batch is negatively acked with a delay, for the source to redeliver.</summary>
    NegativeAck = 2,

    /// <summary>Each message is written to a dead-letter destination; an original is acked only after its dead letter is.</summary>
    DeadLetter = 3,
}

/// <summary>
/// The batching sink's decision for a batch whose flush failed after every retry (or was not retryable).
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// Create one with <see cref="Raise"/>, <see cref="DiscardAndAck"/>, <see cref="NegativeAck(TimeSpan)"/> or
/// <see cref="DeadLetter(IDestination{DeadLetter{T}})"/>. Whatever the choice, no message is acked before
/// something durable happened to it, except with <see cref="DiscardAndAck"/>, which is an explicit choice to lose it.
/// </remarks>
public sealed class BatchErrorHandler<T>
{
    private BatchErrorHandler(BatchErrorAction action, TimeSpan nackDelay, IDestination<DeadLetter<T>>? deadLetters)
    {
        Action = action;
        NackDelay = nackDelay;
        DeadLetters = deadLetters;
    }

    /// <summary>Fatal (the default, as in Kawa): the batch is negatively acked at once and the error is thrown from the
    /// next <see cref="IDestination{T}.SendAsync"/> and from <see cref="IDestination{T}.FlushAsync"/>, stopping the pipeline.</summary>
    public static BatchErrorHandler<T> Raise { get; } = new(BatchErrorAction.Raise, TimeSpan.Zero, null);

    /// <summary>Acks the batch's messages without writing them: they are lost on purpose; counted and logged.</summary>
    public static BatchErrorHandler<T> DiscardAndAck { get; } = new(BatchErrorAction.DiscardAndAck, TimeSpan.Zero, null);

    /// <summary>The action taken.</summary>
    public BatchErrorAction Action { get; }

    /// <summary>For <see cref="BatchErrorAction.NegativeAck"/>, the redelivery delay passed to the source.</summary>
    public TimeSpan NackDelay { get; }

    /// <summary>For <see cref="BatchErrorAction.DeadLetter"/>, where the dead letters go.</summary>
    public IDestination<DeadLetter<T>>? DeadLetters { get; }

    /// <summary>Negatively acks the batch's messages so the source redelivers them after <paramref name="delay"/>.</summary>
    /// <param name="delay">The redelivery delay; zero for at once.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative.</exception>
    public static BatchErrorHandler<T> NegativeAck(TimeSpan delay = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        return new(BatchErrorAction.NegativeAck, delay, null);
    }

    /// <summary>Writes each message of the batch to <paramref name="deadLetters"/> as a <see cref="DeadLetter{T}"/>.</summary>
    /// <param name="deadLetters">The dead-letter destination.</param>
    /// <remarks>
    /// Each dead letter is sent with its own ack token. An original message is acked only once the dead-letter
    /// destination acked its dead letter; if the dead-letter destination throws, nacks or terminates, the original is
    /// negatively acked (never acked). A keep-alive (<see cref="AckToken.InProgress"/>) on a dead letter's token reaches
    /// its original's token. The batching sink drains the dead-letter destination
    /// (<see cref="IDestination{T}.FlushAsync"/>) during its own drain.
    /// </remarks>
    public static BatchErrorHandler<T> DeadLetter(IDestination<DeadLetter<T>> deadLetters)
    {
        ArgumentNullException.ThrowIfNull(deadLetters);
        return new(BatchErrorAction.DeadLetter, TimeSpan.Zero, deadLetters);
    }

    /// <inheritdoc/>
    public override string ToString() => Action == BatchErrorAction.NegativeAck ? $"{Action}({NackDelay})" : Action.ToString();
}
