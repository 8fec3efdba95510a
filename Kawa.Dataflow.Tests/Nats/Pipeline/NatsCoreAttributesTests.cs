using System.Buffers;
using System.Text;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.Pipeline;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>A core message's attributes, read on demand, list and find the same values in every shape of message.</summary>
public class NatsCoreAttributesTests
{
    private static readonly DateTimeOffset ReceivedAt = new(2026, 12, 7, 12, 0, 0, TimeSpan.Zero);

    [TestCase(null, null, new[] { "subject", "received.at", "payload.size" })]
    [TestCase("reply.x", null, new[] { "subject", "received.at", "payload.size", "nats.reply_to" })]
    [TestCase(null, "NATS/1.0\r\nA: 1\r\nB: 2\r\n\r\n", new[] { "subject", "received.at", "payload.size", "headers" })]
    [TestCase("reply.x", "NATS/1.0\r\nA: 1\r\nB: 2\r\n\r\n", new[] { "subject", "received.at", "payload.size", "nats.reply_to", "headers" })]
    [TestCase("reply.x", "NATS/1.0\r\n\r\n", new[] { "subject", "received.at", "payload.size", "nats.reply_to" })]
    public void Attributes_MessageShape_ListedInOrderAndFoundByKey(string? reply, string? headerBlock, string[] names)
    {
        var msg = NatsMsg.FromWire(
            "orders.eu",
            reply is null ? default : Encoding.ASCII.GetBytes(reply),
            headerBlock is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(headerBlock)),
            new ReadOnlySequence<byte>("abc"u8.ToArray()));

        var attributes = MessageAttributes.FromProvider(new NatsCoreAttributes(msg, ReceivedAt));

        Assert.That(attributes.Select(a => a.Key), Is.EqualTo(names));
        Assert.That(attributes.GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo("orders.eu"));
        Assert.That(attributes.GetOrDefault(MessageAttributeKeys.ReceivedAt), Is.EqualTo(ReceivedAt));
        Assert.That(attributes.GetOrDefault(MessageAttributeKeys.PayloadSize), Is.EqualTo(3));
        Assert.That(attributes.TryGet(NatsAttributeKeys.ReplyTo, out var replyTo) ? replyTo : null, Is.EqualTo(reply));
        var expectedHeaders = names.Contains("headers") ? new KeyValuePair<string, string>[] { new("A", "1"), new("B", "2") } : null;
        Assert.That(attributes.TryGet(MessageAttributeKeys.Headers, out var headers) ? headers : null, Is.EqualTo(expectedHeaders));
        Assert.That(attributes.ToDictionary(a => a.Key, a => a.Value)["payload.size"], Is.EqualTo(3));
    }
}
