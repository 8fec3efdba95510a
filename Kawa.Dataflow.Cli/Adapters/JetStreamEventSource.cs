using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Nats.Pipeline;

namespace Kawa.Dataflow.Cli.Adapters;

/// <summary>
/// The daemon's view of a <see cref="NatsJetStreamSource"/>: each delivered payload becomes an <see cref="EventRecord"/>
/// over the raw bytes, keeping the message's key, topic, attributes (subject, stream sequence, delivery count...) and
/// the source's own ack token, so acks still go straight to JetStream.
/// </summary>
internal sealed class JetStreamEventSource(NatsJetStreamSource inner) : ISource<EventRecord>, IAsyncDisposable
{
    /// <summary>The wrapped source.</summary>
    public NatsJetStreamSource Inner { get; } = inner;

    /// <inheritdoc/>
    public async ValueTask<Delivery<EventRecord>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        var delivery = await Inner.ReceiveAsync(cancellationToken).ConfigureAwait(false);
        if (delivery.IsEndOfStream)
        {
            return Delivery<EventRecord>.EndOfStream;
        }

        if (delivery.IsIdle)
        {
            return Delivery<EventRecord>.Idle;
        }

        var message = delivery.Message;
        // Capacity 0: the parse stage sizes the record once it knows how many fields the event has.
        return new Delivery<EventRecord>(message.With(new EventRecord(message.Value, capacity: 0)), delivery.Ack);
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => Inner.DisposeAsync();
}
