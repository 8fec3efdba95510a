using System.Diagnostics.CodeAnalysis;
using Kawa.Dataflow.Nats.Client;

namespace Kawa.Dataflow.Nats.Pipeline;

/// <summary>
/// A core NATS message's attributes, read from the message when asked: the reply subject becomes a string and the
/// headers are parsed only if someone reads them.
/// </summary>
/// <remarks>Order of <see cref="GetAt"/>: subject, received at, payload size, then the reply subject when the message
/// has one, then the headers when it has any.</remarks>
internal sealed class NatsCoreAttributes(NatsMsg msg, DateTimeOffset receivedAt) : MessageAttributeProvider
{
    private const int Fixed = 3;

    private bool HasHeaders => msg.Headers is { HasEntries: true };

    public override int Count => Fixed + (msg.HasReplyTo ? 1 : 0) + (HasHeaders ? 1 : 0);

    public override KeyValuePair<string, object?> GetAt(int index) => index switch
    {
        0 => new(MessageAttributeKeys.Subject.Name, msg.Subject),
        1 => new(MessageAttributeKeys.ReceivedAt.Name, receivedAt),
        2 => new(MessageAttributeKeys.PayloadSize.Name, msg.Data.Length),
        3 when msg.HasReplyTo => new(NatsAttributeKeys.ReplyTo.Name, msg.ReplyTo),
        3 when HasHeaders => new(MessageAttributeKeys.Headers.Name, msg.Headers!.Entries),
        4 when msg.HasReplyTo && HasHeaders => new(MessageAttributeKeys.Headers.Name, msg.Headers!.Entries),
        _ => throw new ArgumentOutOfRangeException(nameof(index), index, $"This NATS message has {Count} attributes."),
    };

    public override bool TryGet<TValue>(AttributeKey<TValue> key, [MaybeNullWhen(false)] out TValue value)
    {
        switch (key.Name)
        {
            case "subject":
                return Match(msg.Subject, out value);
            case "received.at":
                return Match(receivedAt, out value);
            case "payload.size":
                return Match(msg.Data.Length, out value);
            case "nats.reply_to" when msg.HasReplyTo:
                return Match(msg.ReplyTo, out value);
            case "headers" when HasHeaders:
                return Match(msg.Headers!.Entries, out value);
            default:
                value = default;
                return false;
        }
    }
}
