using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using Kawa.Dataflow.Nats.Protocol;

namespace Kawa.Dataflow.Nats.Client;

/// <summary>A subscription as the connection sees it: a sid, a subject, and what to do with each message.</summary>
/// <remarks><see cref="OnMessage"/> runs on the connection's read loop: it must not block.</remarks>
internal abstract class NatsSubscriptionBase
{
    private long _received;

    protected NatsSubscriptionBase(string subject, string? queueGroup)
    {
        Subject = subject;
        QueueGroup = queueGroup;
    }

    public long Sid { get; internal set; }

    public string Subject { get; }

    public string? QueueGroup { get; }

    /// <summary>Auto-unsubscribe after this many messages, or null.</summary>
    public long? MaxMessages { get; internal set; }

    public long Received => Interlocked.Read(ref _received);

    internal bool CountDelivery()
    {
        var count = Interlocked.Increment(ref _received);
        return MaxMessages is null || count <= MaxMessages;
    }

    internal abstract void OnMessage(ReadOnlySpan<byte> subject, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload);

    /// <summary>The connection closed for good (error null when closed on purpose).</summary>
    internal abstract void OnClosed(Exception? error);

    internal static NatsMsg Materialize(ReadOnlySpan<byte> subject, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload)
        => new(
            Encoding.UTF8.GetString(subject),
            replyTo.IsEmpty ? null : Encoding.UTF8.GetString(replyTo),
            headers.IsEmpty ? null : NatsHeaders.Parse(headers),
            payload.IsEmpty ? [] : payload.ToArray());
}

/// <summary>
/// A core subscription delivering into a bounded channel.
/// </summary>
/// <remarks>
/// Slow-consumer policy: the read loop never waits for a subscriber (that would stall every other subscription and
/// the keep-alive). When the channel is full the message is DROPPED, counted in <see cref="DroppedMessages"/> and
/// the <c>nats.messages.dropped</c> counter, and logged; this mirrors what the server itself does to slow clients.
/// Core NATS is at-most-once anyway; JetStream pull consumers bound their in-flight messages by the pull batch, so
/// their channel never fills.
/// </remarks>
internal sealed class NatsSubscription : NatsSubscriptionBase, IAsyncDisposable
{
    private readonly Channel<NatsMsg> _channel;
    private readonly NatsConnection _connection;
    private long _dropped;

    internal NatsSubscription(NatsConnection connection, string subject, string? queueGroup, int capacity)
        : base(subject, queueGroup)
    {
        _connection = connection;
        _channel = Channel.CreateBounded<NatsMsg>(new BoundedChannelOptions(capacity)
        {
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public ChannelReader<NatsMsg> Messages => _channel.Reader;

    public long DroppedMessages => Interlocked.Read(ref _dropped);

    public async IAsyncEnumerable<NatsMsg> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var msg in _channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return msg;
        }
    }

    public ValueTask UnsubscribeAsync(CancellationToken cancellationToken = default) => _connection.UnsubscribeAsync(this, cancellationToken);

    /// <summary>Ends the subscription after <paramref name="maxMessages"/> messages in total; the reader then completes.</summary>
    public ValueTask AutoUnsubscribeAsync(long maxMessages, CancellationToken cancellationToken = default) => _connection.AutoUnsubscribeAsync(this, maxMessages, cancellationToken);

    public ValueTask DisposeAsync() => UnsubscribeAsync();

    internal override void OnMessage(ReadOnlySpan<byte> subject, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload)
    {
        var msg = Materialize(subject, replyTo, headers, payload);
        if (!_channel.Writer.TryWrite(msg))
        {
            var dropped = Interlocked.Increment(ref _dropped);
            NatsTelemetry.MessagesDropped.Add(1);
            _connection.ReportSlowConsumer(this, dropped);
        }
    }

    internal override void OnClosed(Exception? error) => _channel.Writer.TryComplete(error);
}
