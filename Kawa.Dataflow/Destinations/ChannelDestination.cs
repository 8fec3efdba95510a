using System.Threading.Channels;

namespace Kawa.Dataflow;

/// <summary>A destination that writes each message to an in-memory <see cref="ChannelWriter{T}"/> and acks once it is written.</summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// "Durable" here means handed to the channel. A bounded channel gives backpressure: <see cref="SendAsync"/> waits
/// for room. A closed channel makes the send throw (fatal) without acking.
/// </remarks>
public sealed class ChannelDestination<T> : IDestination<T>
{
    private readonly ChannelWriter<Message<T>> _writer;

    /// <summary>Creates the destination.</summary>
    /// <param name="writer">Where messages go.</param>
    public ChannelDestination(ChannelWriter<Message<T>> writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        _writer = writer;
    }

    /// <inheritdoc/>
    public async ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ack);
        foreach (var message in messages)
        {
            await _writer.WriteAsync(message, cancellationToken).ConfigureAwait(false);
        }

        ack.Ack();
    }
}
