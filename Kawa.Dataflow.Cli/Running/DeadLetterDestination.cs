using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli.Running;

/// <summary>
/// Lets any daemon destination receive dead letters: each <see cref="DeadLetter{T}"/> becomes an ordinary message
/// (<see cref="DeadLetterRecords.ToMessage"/>) sent to the configured <c>pipeline.deadLetter</c> destination.
/// </summary>
/// <remarks>The token is passed through unchanged: the inner destination acks it once the record is durable, and the
/// pipeline acks the original only then (a failed or nacked dead-letter write nacks the original).</remarks>
internal sealed class DeadLetterDestination(IDestination<EventRecord> inner) : IDestination<DeadLetter<EventRecord>>
{
    /// <inheritdoc/>
    public ValueTask SendAsync(AckToken ack, Messages<DeadLetter<EventRecord>> messages, CancellationToken cancellationToken = default)
    {
        if (messages.Count == 1)
        {
            return inner.SendAsync(ack, DeadLetterRecords.ToMessage(messages[0].Value), cancellationToken);
        }

        var converted = new List<Message<EventRecord>>(messages.Count);
        foreach (var message in messages)
        {
            converted.Add(DeadLetterRecords.ToMessage(message.Value));
        }

        return inner.SendAsync(ack, converted, cancellationToken);
    }

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

    /// <inheritdoc/>
    public ValueTask CommitHeldAsync(CancellationToken cancellationToken = default) => inner.CommitHeldAsync(cancellationToken);
}
