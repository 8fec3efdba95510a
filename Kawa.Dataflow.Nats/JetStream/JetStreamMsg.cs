using System.Buffers;
using System.Buffers.Text;
using System.Text;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.Protocol;

namespace Kawa.Dataflow.Nats.JetStream;

/// <summary>A message delivered by a JetStream consumer, with its ack operations.</summary>
/// <remarks>
/// Acks are published on the message's reply subject: <c>+ACK</c>, <c>-NAK</c> (optionally <c>{"delay": ns}</c>),
/// <c>+WPI</c> (in progress: restarts the ack wait), <c>+TERM</c>. They are fire-and-forget unless
/// <see cref="AckAndWaitAsync"/> is used, which waits for the server to confirm. The reply subject is kept as the
/// UTF-8 bytes the server sent, so an ack is written straight into the connection's outbound pipe: no string, no
/// allocation. During a reconnect acks go to the reconnect buffer; an ack lost with a connection means the message
/// is redelivered after the ack wait (at-least-once).
/// </remarks>
internal sealed class JetStreamMsg
{
    private const int MaxAckBodyLength = 40; // "-NAK {"delay":<up to 20 digits>}"

    private static readonly byte[] AckBody = "+ACK"u8.ToArray();
    private static readonly byte[] NakBody = "-NAK"u8.ToArray();
    private static readonly byte[] InProgressBody = "+WPI"u8.ToArray();
    private static readonly byte[] TermBody = "+TERM"u8.ToArray();

    private readonly NatsConnection _connection;
    private readonly byte[] _replyTo;
    private readonly string? _stream;
    private readonly string? _consumer;
    private readonly byte[]? _rawHeaders;
    private string? _replyToText;
    private NatsHeaders? _headers;
    private AckMetadata? _metadata;

    /// <param name="connection">Where acks go.</param>
    /// <param name="subject">The message's subject.</param>
    /// <param name="replyTo">The ack subject, UTF-8, owned by this message from now on.</param>
    /// <param name="headers">The raw header block, if any, owned by this message (parsed on first use of <see cref="Headers"/>).</param>
    /// <param name="data">The payload, owned by this message.</param>
    /// <param name="stream">The stream name the consumer expects (reused when the ack subject names it: no string per message).</param>
    /// <param name="consumer">The consumer name, likewise.</param>
    internal JetStreamMsg(NatsConnection connection, string subject, byte[] replyTo, byte[]? headers, byte[] data, string? stream = null, string? consumer = null)
    {
        _connection = connection;
        Subject = subject;
        _replyTo = replyTo;
        _rawHeaders = headers;
        Data = data;
        _stream = stream;
        _consumer = consumer;
    }

    public string Subject { get; }

    /// <summary>The ack subject (made into a string on first use).</summary>
    public string ReplyTo => _replyToText ??= Encoding.UTF8.GetString(_replyTo);

    /// <summary>The headers, or null when the message has none: made from the raw block on first use, and their
    /// fields parsed only when read.</summary>
    public NatsHeaders? Headers
    {
        get
        {
            if (_headers is not null || _rawHeaders is null)
            {
                return _headers;
            }

            var created = NatsHeaders.FromReceived(_rawHeaders);
            return Interlocked.CompareExchange(ref _headers, created, null) ?? created;
        }
    }

    public byte[] Data { get; private set; }

    /// <summary>
    /// Drops this object's references to <see cref="Data"/> and the parsed <see cref="Metadata"/> once they have been
    /// handed on: the message stays reachable until its outcome is sent (for its reply subject), and they should not live
    /// that long with it (<see cref="Metadata"/> parses again if asked).
    /// </summary>
    internal void ReleasePayload()
    {
        Data = [];
        _metadata = null;
    }

    /// <summary>Stream, consumer, sequences, delivery count, timestamp, pending — from the ack subject.</summary>
    /// <exception cref="FormatException">The reply subject is not a JetStream ack subject.</exception>
    public AckMetadata Metadata => _metadata ??= AckMetadata.TryParse(_replyTo, _stream, _consumer, out var metadata)
        ? metadata!
        : throw AckMetadata.NotAnAckSubject(ReplyTo);

    public ValueTask AckAsync(CancellationToken cancellationToken = default) => SendAsync(AckBody, cancellationToken);

    /// <summary>Negative ack: redeliver, after <paramref name="delay"/> when given.</summary>
    public ValueTask NakAsync(TimeSpan? delay = null, CancellationToken cancellationToken = default)
        => delay is { } d && d > TimeSpan.Zero
            ? _connection.WriteAsync(_replyTo.Length + 64, 1, (this, d), static (writer, state) => WriteNak(writer, state.Item1._replyTo, state.Item2), cancellationToken)
            : SendAsync(NakBody, cancellationToken);

    /// <summary>Work in progress: the server restarts this message's ack wait.</summary>
    public ValueTask InProgressAsync(CancellationToken cancellationToken = default) => SendAsync(InProgressBody, cancellationToken);

    /// <summary>Terminate: never redeliver.</summary>
    public ValueTask TermAsync(CancellationToken cancellationToken = default) => SendAsync(TermBody, cancellationToken);

    /// <summary>Acks and waits until the server confirms it recorded the ack ("double ack").</summary>
    /// <exception cref="NatsTimeoutException">No confirmation in time: the ack may or may not have been recorded.</exception>
    public async Task AckAndWaitAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
        => await _connection.RequestAsync(ReplyTo, AckBody, null, timeout, cancellationToken).ConfigureAwait(false);

    public override string ToString() => $"JetStreamMsg {{ Subject = {Subject}, Bytes = {Data.Length}, Reply = {ReplyTo} }}";

    /// <summary>The reply subject's bytes: all an outcome needs, so whoever holds a message until its outcome can keep
    /// just these.</summary>
    internal byte[] ReplyToBytes => _replyTo;

    /// <summary>Bytes an outcome for <paramref name="replyTo"/> takes on the wire, at most (for the reconnect buffer's accounting).</summary>
    internal static int OutcomeSize(byte[] replyTo) => replyTo.Length + 32 + MaxAckBodyLength;

    /// <summary>Writes the PUB for an outcome to <paramref name="replyTo"/>: <paramref name="kind"/> null is <c>+WPI</c>.</summary>
    internal static void WriteOutcome(IBufferWriter<byte> writer, byte[] replyTo, AckKind? kind, TimeSpan delay)
    {
        switch (kind)
        {
            case AckKind.Ack:
                NatsProtocolWriter.WritePublish(writer, replyTo, AckBody);
                break;
            case AckKind.Nack when delay > TimeSpan.Zero:
                WriteNak(writer, replyTo, delay);
                break;
            case AckKind.Nack:
                NatsProtocolWriter.WritePublish(writer, replyTo, NakBody);
                break;
            case AckKind.Terminate:
                NatsProtocolWriter.WritePublish(writer, replyTo, TermBody);
                break;
            default:
                NatsProtocolWriter.WritePublish(writer, replyTo, InProgressBody);
                break;
        }
    }

    private static void WriteNak(IBufferWriter<byte> writer, byte[] replyTo, TimeSpan delay)
    {
        // -NAK {"delay":<nanoseconds>}
        Span<byte> body = stackalloc byte[MaxAckBodyLength];
        "-NAK {\"delay\":"u8.CopyTo(body);
        var pos = 14;
        Utf8Formatter.TryFormat(delay.Ticks * 100, body[pos..], out var written);
        pos += written;
        body[pos++] = (byte)'}';
        NatsProtocolWriter.WritePublish(writer, replyTo, body[..pos]);
    }

    private ValueTask SendAsync(byte[] body, CancellationToken cancellationToken)
        => _connection.WriteAsync(_replyTo.Length + 32 + body.Length, 1, (_replyTo, body), static (writer, state) => NatsProtocolWriter.WritePublish(writer, state._replyTo, state.body), cancellationToken);
}
