using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.Protocol;

namespace Kawa.Dataflow.Nats.JetStream;

/// <summary>A message delivered by a JetStream consumer, with its ack operations.</summary>
/// <remarks>
/// Acks are published on the message's reply subject: <c>+ACK</c>, <c>-NAK</c> (optionally <c>{"delay": ns}</c>),
/// <c>+WPI</c> (in progress: restarts the ack wait), <c>+TERM</c>. They are fire-and-forget unless
/// <see cref="AckAndWaitAsync"/> is used, which waits for the server to confirm. During a reconnect they go to the
/// reconnect buffer; an ack lost with a connection means the message is redelivered after the ack wait (at-least-once).
/// </remarks>
internal sealed class JetStreamMsg
{
    private readonly NatsConnection _connection;
    private AckMetadata? _metadata;

    internal JetStreamMsg(NatsConnection connection, string subject, string replyTo, NatsHeaders? headers, byte[] data)
    {
        _connection = connection;
        Subject = subject;
        ReplyTo = replyTo;
        Headers = headers;
        Data = data;
    }

    public string Subject { get; }

    public string ReplyTo { get; }

    public NatsHeaders? Headers { get; }

    public byte[] Data { get; }

    /// <summary>Stream, consumer, sequences, delivery count, timestamp, pending — from the ack subject.</summary>
    /// <exception cref="FormatException">The reply subject is not a JetStream ack subject.</exception>
    public AckMetadata Metadata => _metadata ??= AckMetadata.Parse(ReplyTo);

    public ValueTask AckAsync(CancellationToken cancellationToken = default) => SendAsync("+ACK"u8.ToArray(), cancellationToken);

    /// <summary>Negative ack: redeliver, after <paramref name="delay"/> when given.</summary>
    public ValueTask NakAsync(TimeSpan? delay = null, CancellationToken cancellationToken = default)
    {
        if (delay is not { } d || d <= TimeSpan.Zero)
        {
            return SendAsync("-NAK"u8.ToArray(), cancellationToken);
        }

        var json = JsonSerializer.Serialize(new NakDelay { Delay = d }, JetStreamJsonContext.Default.NakDelay);
        return SendAsync(Encoding.UTF8.GetBytes("-NAK " + json), cancellationToken);
    }

    /// <summary>Work in progress: the server restarts this message's ack wait.</summary>
    public ValueTask InProgressAsync(CancellationToken cancellationToken = default) => SendAsync("+WPI"u8.ToArray(), cancellationToken);

    /// <summary>Terminate: never redeliver.</summary>
    public ValueTask TermAsync(CancellationToken cancellationToken = default) => SendAsync("+TERM"u8.ToArray(), cancellationToken);

    /// <summary>Acks and waits until the server confirms it recorded the ack ("double ack").</summary>
    /// <exception cref="NatsTimeoutException">No confirmation in time: the ack may or may not have been recorded.</exception>
    public async Task AckAndWaitAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
        => await _connection.RequestAsync(ReplyTo, "+ACK"u8.ToArray(), null, timeout, cancellationToken).ConfigureAwait(false);

    public override string ToString() => $"JetStreamMsg {{ Subject = {Subject}, Bytes = {Data.Length}, Reply = {ReplyTo} }}";

    private ValueTask SendAsync(byte[] body, CancellationToken cancellationToken) => _connection.PublishAsync(ReplyTo, body, null, null, cancellationToken);
}
