using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli.Sources;

/// <summary>The one shape every line-reading source gives its messages, so later stages see the same attributes.</summary>
internal static class LineMessage
{
    /// <summary>A line as a message: subject, stream and topic are <paramref name="name"/>; the stream sequence is the line number.</summary>
    /// <param name="name">The source's name (a path, <c>stdin</c>).</param>
    /// <param name="raw">The line without its terminator.</param>
    /// <param name="lineNumber">The 1-based line number.</param>
    /// <param name="deliveryCount">1 for a first delivery, more for a redelivery.</param>
    /// <param name="receivedAt">When the line was handed out.</param>
    public static Message<EventRecord> Create(string name, ReadOnlyMemory<byte> raw, long lineNumber, int deliveryCount, DateTimeOffset receivedAt)
    {
        var attributes = MessageAttributes.CreateBuilder(6)
            .Set(MessageAttributeKeys.Subject, name)
            .Set(MessageAttributeKeys.Stream, name)
            .Set(MessageAttributeKeys.StreamSequence, (ulong)lineNumber)
            .Set(MessageAttributeKeys.DeliveryCount, (long)deliveryCount)
            .Set(MessageAttributeKeys.ReceivedAt, receivedAt)
            .Set(MessageAttributeKeys.PayloadSize, raw.Length)
            .Build();
        return new Message<EventRecord>(new EventRecord(raw, capacity: 0), Topic: name, Attributes: attributes);
    }
}
