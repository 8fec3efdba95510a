namespace Kawa.Dataflow.Cli.Events;

/// <summary>
/// Message properties that templates and Parquet column sources can read besides the fields: the names start with
/// <c>$</c> so they never clash with a field.
/// </summary>
internal static class MessageProperties
{
    /// <summary>When this process received the message (timestamp).</summary>
    public const string ReceivedAt = "$receivedAt";

    /// <summary>When the message was stored at its origin (timestamp).</summary>
    public const string Timestamp = "$timestamp";

    /// <summary>The subject, file or channel it came from (string).</summary>
    public const string Subject = "$subject";

    /// <summary>The stream or file its sequence belongs to (string).</summary>
    public const string Stream = "$stream";

    /// <summary>Its position in the stream (long).</summary>
    public const string Sequence = "$sequence";

    /// <summary>Its key (string).</summary>
    public const string Key = "$key";

    /// <summary>How many times it was delivered (long).</summary>
    public const string DeliveryCount = "$deliveryCount";

    /// <summary>The raw payload (binary, or text in a string column).</summary>
    public const string Raw = "$raw";

    /// <summary>All of them.</summary>
    public static readonly IReadOnlyList<string> All = [ReceivedAt, Timestamp, Subject, Stream, Sequence, Key, DeliveryCount, Raw];

    /// <summary>Reads a property of <paramref name="message"/>; <see cref="FieldValue.Null"/> when the source did not set it.</summary>
    public static FieldValue Get(in Message<EventRecord> message, string name)
    {
        var a = message.Attributes;
        return name switch
        {
            ReceivedAt => a.TryGet(MessageAttributeKeys.ReceivedAt, out var r) ? FieldValue.From(r) : FieldValue.Null,
            Timestamp => a.TryGet(MessageAttributeKeys.Timestamp, out var t) ? FieldValue.From(t) : FieldValue.Null,
            Subject => a.TryGet(MessageAttributeKeys.Subject, out var s) ? FieldValue.From(s) : FieldValue.From(message.Topic),
            Stream => a.TryGet(MessageAttributeKeys.Stream, out var st) ? FieldValue.From(st) : FieldValue.Null,
            Sequence => a.TryGet(MessageAttributeKeys.StreamSequence, out var q) ? FieldValue.From(checked((long)q)) : FieldValue.Null,
            Key => FieldValue.From(message.Key),
            DeliveryCount => a.TryGet(MessageAttributeKeys.DeliveryCount, out var d) ? FieldValue.From(d) : FieldValue.Null,
            Raw => FieldValue.From(message.Value.RawText),
            _ => FieldValue.Null,
        };
    }
}
