using System.Diagnostics.CodeAnalysis;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Protocol;

namespace Kawa.Dataflow.Nats.Pipeline;

/// <summary>
/// A JetStream message's attributes read from its parsed ack subject when asked: one small object per message instead of
/// an entry array and a box per number (the sink reads the stream and sequence of every row for lineage, the pipeline its
/// payload size).
/// </summary>
/// <remarks>The order of <see cref="GetAt"/> is the order the source documents: subject, stream, stream sequence,
/// consumer sequence, delivery count, timestamp, received at, payload size, consumer, last delivery, then headers when the
/// message has any.</remarks>
internal sealed class JetStreamAttributes(string subject, AckMetadata metadata, DateTimeOffset receivedAt, int payloadSize, bool lastDelivery, NatsHeaders? headers)
    : MessageAttributeProvider
{
    private const int Fixed = 10;

    public override int Count => headers is { HasEntries: true } ? Fixed + 1 : Fixed;

    public override KeyValuePair<string, object?> GetAt(int index) => index switch
    {
        0 => new(MessageAttributeKeys.Subject.Name, subject),
        1 => new(MessageAttributeKeys.Stream.Name, metadata.Stream),
        2 => new(MessageAttributeKeys.StreamSequence.Name, metadata.StreamSequence),
        3 => new(MessageAttributeKeys.ConsumerSequence.Name, metadata.ConsumerSequence),
        4 => new(MessageAttributeKeys.DeliveryCount.Name, metadata.NumDelivered),
        5 => new(MessageAttributeKeys.Timestamp.Name, metadata.Timestamp),
        6 => new(MessageAttributeKeys.ReceivedAt.Name, receivedAt),
        7 => new(MessageAttributeKeys.PayloadSize.Name, payloadSize),
        8 => new(NatsAttributeKeys.Consumer.Name, metadata.Consumer),
        9 => new(NatsAttributeKeys.LastDelivery.Name, lastDelivery),
        10 when headers is { HasEntries: true } => new(MessageAttributeKeys.Headers.Name, headers.Entries),
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, $"A JetStream message has {Count} attributes."),
    };

    public override bool TryGet<TValue>(AttributeKey<TValue> key, [MaybeNullWhen(false)] out TValue value)
    {
        switch (key.Name)
        {
            case "payload.size":
                return Match(payloadSize, out value);
            case "stream":
                return Match(metadata.Stream, out value);
            case "stream.sequence":
                return Match(metadata.StreamSequence, out value);
            case "subject":
                return Match(subject, out value);
            case "timestamp":
                return Match(metadata.Timestamp, out value);
            case "received.at":
                return Match(receivedAt, out value);
            case "consumer.sequence":
                return Match(metadata.ConsumerSequence, out value);
            case "delivery.count":
                return Match(metadata.NumDelivered, out value);
            case "nats.consumer":
                return Match(metadata.Consumer, out value);
            case "last.delivery":
                return Match(lastDelivery, out value);
            case "headers" when headers is { HasEntries: true }:
                return Match(headers.Entries, out value);
            default:
                value = default;
                return false;
        }
    }
}
