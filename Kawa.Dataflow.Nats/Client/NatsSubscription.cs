using System.Buffers;
using System.Diagnostics.CodeAnalysis;
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

    // The read loop's last subject for this subscription: a run of messages on one subject makes one string.
    // Only the connection's read loop calls OnMessage, so no synchronization is needed.
    private byte[] _lastSubjectBytes = [];
    private string _lastSubject = string.Empty;

    /// <summary>The subject as a string, reused while it repeats. Read loop only.</summary>
    protected string SubjectString(ReadOnlySpan<byte> subject)
    {
        if (!subject.SequenceEqual(_lastSubjectBytes))
        {
            _lastSubject = Encoding.UTF8.GetString(subject);
            _lastSubjectBytes = subject.ToArray();
        }

        return _lastSubject;
    }

    internal abstract void OnMessage(ReadOnlySpan<byte> subject, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload);

    /// <summary>The connection closed for good (error null when closed on purpose).</summary>
    internal abstract void OnClosed(Exception? error);

    internal static NatsMsg Materialize(ReadOnlySpan<byte> subject, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload)
        => NatsMsg.FromWire(Encoding.UTF8.GetString(subject), replyTo, headers, payload);
}

/// <summary>
/// A core subscription delivering into a bounded channel.
/// </summary>
/// <remarks>
/// Slow-consumer policy: the read loop never waits for a subscriber (that would stall every other subscription and
/// the keep-alive). When the channel is full the message is DROPPED, counted in <see cref="DroppedMessages"/> and
/// the <c>nats.messages.dropped</c> counter, and logged; this mirrors what the server itself does to slow clients.
/// Core NATS is at-most-once anyway; JetStream pull consumers bound their in-flight messages by the pull batch, so
/// their channel never fills. <see cref="Messages"/> has one reader at a time (a single consumer loop).
/// </remarks>
internal sealed class NatsSubscription : NatsSubscriptionBase, IAsyncDisposable
{
    private readonly Channel<NatsMsg> _channel;
    private readonly NatsConnection _connection;
    private readonly int _capacity;
    private readonly CountingReader _reader;
    private int _queued;
    private long _dropped;

    internal NatsSubscription(NatsConnection connection, string subject, string? queueGroup, int capacity)
        : base(subject, queueGroup)
    {
        _connection = connection;
        _capacity = capacity;

        // Single reader by contract (one consumer loop per subscription), bounded by the capacity check on write: the
        // single-reader channel hands messages over without a lock per read, unlike the bounded one.
        _channel = Channel.CreateUnbounded<NatsMsg>(new UnboundedChannelOptions
        {
            SingleWriter = true,
            SingleReader = true,
        });
        _reader = new CountingReader(this);
    }

    public ChannelReader<NatsMsg> Messages => _reader;

    public long DroppedMessages => Interlocked.Read(ref _dropped);

    public async IAsyncEnumerable<NatsMsg> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var msg in _reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
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
        // Counted before the write so a reader taking it at once never sees the count below zero.
        // Reply subject and headers stay bytes until someone reads them (see NatsMsg).
        if (Interlocked.Increment(ref _queued) > _capacity || !_channel.Writer.TryWrite(NatsMsg.FromWire(SubjectString(subject), replyTo, headers, payload)))
        {
            Interlocked.Decrement(ref _queued);
            var dropped = Interlocked.Increment(ref _dropped);
            NatsTelemetry.MessagesDropped.Add(1);
            _connection.ReportSlowConsumer(this, dropped);
        }
    }

    internal override void OnClosed(Exception? error) => _channel.Writer.TryComplete(error);

    /// <summary>The channel's reader, keeping the count the capacity check reads (lock free, unlike asking the channel).</summary>
    private sealed class CountingReader(NatsSubscription owner) : ChannelReader<NatsMsg>
    {
        private readonly ChannelReader<NatsMsg> _inner = owner._channel.Reader;

        public override Task Completion => _inner.Completion;

        public override bool CanCount => true;

        public override int Count => Math.Max(0, Volatile.Read(ref owner._queued));

        public override bool TryRead([MaybeNullWhen(false)] out NatsMsg item)
        {
            if (_inner.TryRead(out item))
            {
                Interlocked.Decrement(ref owner._queued);
                return true;
            }

            return false;
        }

        public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => _inner.WaitToReadAsync(cancellationToken);
    }
}
