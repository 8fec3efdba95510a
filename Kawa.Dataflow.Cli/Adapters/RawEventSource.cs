using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli.Adapters;

/// <summary>
/// The daemon's view of a source of raw payloads: each delivered payload becomes an <see cref="EventRecord"/> over the
/// raw bytes, keeping the message's key, topic, attributes and the source's own ack token (so outcomes still go straight
/// to the source, with whatever delivery guarantee it has).
/// </summary>
/// <typeparam name="TSource">The wrapped source.</typeparam>
internal class RawEventSource<TSource>(TSource inner) : ISource<EventRecord>, IAsyncDisposable, IPipelineSourceMember
    where TSource : ISource<byte[]>, IAsyncDisposable
{
    /// <summary>The wrapped source.</summary>
    public TSource Inner { get; } = inner;

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

    /// <summary>The pipeline's limits and hold go to the wrapped source (the JetStream pull window follows them, and its
    /// start-up checks run on them).</summary>
    void IPipelineSourceMember.JoinPipeline(string pipeline, int maxInFlightMessages, long maxInFlightBytes, TimeSpan longestHold)
        => (Inner as IPipelineSourceMember)?.JoinPipeline(pipeline, maxInFlightMessages, maxInFlightBytes, longestHold);
}
