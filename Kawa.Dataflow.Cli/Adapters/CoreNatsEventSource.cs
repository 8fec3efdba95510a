using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Nats.Pipeline;

namespace Kawa.Dataflow.Cli.Adapters;

/// <summary>
/// The daemon's view of a core NATS <see cref="NatsSource"/>: each message's payload becomes an <see cref="EventRecord"/>
/// over the raw bytes, keeping its subject and attributes. At-most-once: the source's ack tokens are no-ops, so a
/// message in flight when kawa stops or fails is gone (<c>validate</c> warns about this).
/// </summary>
internal sealed class CoreNatsEventSource(NatsSource inner) : ISource<EventRecord>, IAsyncDisposable
{
    /// <summary>The wrapped source.</summary>
    public NatsSource Inner { get; } = inner;

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
        return new Delivery<EventRecord>(message.With(new EventRecord(message.Value, capacity: 0)), delivery.Ack);
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => Inner.DisposeAsync();
}
