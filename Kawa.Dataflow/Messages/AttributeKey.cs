namespace Kawa.Dataflow;

/// <summary>A typed name for a message attribute, so readers get the value back without casts or string typos.</summary>
/// <typeparam name="TValue">The attribute's value type.</typeparam>
/// <param name="Name">The attribute's name; unique within a message.</param>
public readonly record struct AttributeKey<TValue>(string Name)
{
    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>
/// The attributes sources set and later stages read, whatever the source: a destination can record lineage
/// (stream and sequence) without knowing it reads from JetStream.
/// </summary>
public static class MessageAttributeKeys
{
    /// <summary>The subject, file or channel the message was read from.</summary>
    public static readonly AttributeKey<string> Subject = new("subject");

    /// <summary>The stream (or log, or file) the sequence numbers belong to.</summary>
    public static readonly AttributeKey<string> Stream = new("stream");

    /// <summary>The message's position in <see cref="Stream"/> (a JetStream stream sequence, a line number, an offset).</summary>
    public static readonly AttributeKey<ulong> StreamSequence = new("stream.sequence");

    /// <summary>The consumer's own sequence for this delivery, where the source has one.</summary>
    public static readonly AttributeKey<ulong> ConsumerSequence = new("consumer.sequence");

    /// <summary>How many times the source has delivered this message, this delivery included (1 = first).</summary>
    public static readonly AttributeKey<long> DeliveryCount = new("delivery.count");

    /// <summary><see langword="true"/> when the source will not deliver this message again after a negative ack (its
    /// delivery limit, such as a JetStream consumer's <c>max_deliver</c>, is reached). A handler stage then applies its
    /// <see cref="StageOptions.PoisonPolicy"/> instead of a negative ack, so the message is not silently dropped.</summary>
    public static readonly AttributeKey<bool> LastDelivery = new("last.delivery");

    /// <summary>When the message was stored or produced at its origin (UTC).</summary>
    public static readonly AttributeKey<DateTimeOffset> Timestamp = new("timestamp");

    /// <summary>When this process received the message (UTC).</summary>
    public static readonly AttributeKey<DateTimeOffset> ReceivedAt = new("received.at");

    /// <summary>Transport headers in wire order; a name may repeat.</summary>
    public static readonly AttributeKey<IReadOnlyList<KeyValuePair<string, string>>> Headers = new("headers");

    /// <summary>Set by the pipeline on each output of a fan-out (a handler emitting more than one message): its index,
    /// dot-joined across successive fan-outs ("1", "1.0"). Absent for one-to-one outputs. Lets a sink build ids that
    /// are distinct per output yet the same when the source message is redelivered.</summary>
    public static readonly AttributeKey<string> OutputPath = new("output.path");

    /// <summary>Payload size in bytes as received, for sinks and in-flight accounting.</summary>
    public static readonly AttributeKey<int> PayloadSize = new("payload.size");
}
