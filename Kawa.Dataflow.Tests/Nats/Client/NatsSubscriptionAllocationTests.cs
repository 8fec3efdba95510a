using System.Buffers;
using System.Text;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;

namespace Kawa.Dataflow.Tests.Nats.Client;

/// <summary>
/// The delivery path makes no string for data nobody reads: frames are fed to a subscription as the read loop would,
/// and the bytes allocated on this thread are measured over many messages.
/// </summary>
public class NatsSubscriptionAllocationTests
{
    private const int Messages = 20_000;

    /// <summary>Ten fields: parsed eagerly they cost two strings each plus a list, well over 1 KB per message.</summary>
    internal static readonly byte[] HeaderBlock = Encoding.ASCII.GetBytes(
        "NATS/1.0\r\n" + string.Concat(Enumerable.Range(0, 10).Select(i => $"X-Header-{i:00}: value-of-header-{i:00}\r\n")) + "\r\n");

    /// <summary>Long enough that making it a string (two bytes a character) shows over the bound.</summary>
    private static readonly byte[] Reply = Encoding.ASCII.GetBytes("reply." + new string('r', 200));

    private static readonly byte[] Payload = new byte[8];

    [Test]
    public async Task OnMessage_HeadersAndReplyNotRead_NoStringsMadeForThem()
    {
        await using var connection = new NatsConnection(new NatsConnectionOptions());
        var subscription = new NatsSubscription(connection, "alloc.x", null, capacity: 16);
        var headers = new ReadOnlySequence<byte>(HeaderBlock);
        var payload = new ReadOnlySequence<byte>(Payload);
        Deliver(subscription, headers, payload, 1000); // JIT and channel segments

        var before = GC.GetAllocatedBytesForCurrentThread();
        Deliver(subscription, headers, payload, Messages);
        var perMessage = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)Messages;
        TestContext.Out.WriteLine($"{perMessage:0.#} bytes allocated per frame");

        // Kept per message: the reply and header bytes (one array), the payload, the message object; 256 bytes cover
        // the objects. An eager header parse or reply string would add over 400 bytes.
        var bound = HeaderBlock.Length + Reply.Length + Payload.Length + 256;
        Assert.That(perMessage, Is.LessThan(bound), $"bytes allocated per message (header block {HeaderBlock.Length}, reply {Reply.Length})");
    }

    [Test]
    public async Task OnMessage_HeadersAndReplyReadLater_SameValuesAsSent()
    {
        await using var connection = new NatsConnection(new NatsConnectionOptions());
        var subscription = new NatsSubscription(connection, "alloc.x", null, capacity: 16);

        subscription.OnMessage("alloc.x"u8, Reply, new ReadOnlySequence<byte>(HeaderBlock), new ReadOnlySequence<byte>(Payload));
        subscription.OnMessage("alloc.x"u8, default, ReadOnlySequence<byte>.Empty, new ReadOnlySequence<byte>(Payload));
        Assert.That(subscription.Messages.TryRead(out var withBoth), Is.True);
        Assert.That(subscription.Messages.TryRead(out var bare), Is.True);

        var headers = withBoth!.Headers;
        Assert.That(withBoth.ReplyTo, Is.EqualTo(Encoding.ASCII.GetString(Reply)));
        Assert.That(headers!.Entries, Is.EqualTo(NatsHeadersFields()));
        Assert.That(headers.StatusCode, Is.Zero);
        Assert.That(withBoth.Headers, Is.SameAs(headers), "one headers object per message");
        Assert.That(bare!.ReplyTo, Is.Null);
        Assert.That(bare.Headers, Is.Null);
    }

    internal static KeyValuePair<string, string>[] NatsHeadersFields()
        => Enumerable.Range(0, 10).Select(i => new KeyValuePair<string, string>($"X-Header-{i:00}", $"value-of-header-{i:00}")).ToArray();

    private static void Deliver(NatsSubscription subscription, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload, int count)
    {
        for (var i = 0; i < count; i++)
        {
            subscription.OnMessage("alloc.x"u8, Reply, headers, payload);
            if (!subscription.Messages.TryRead(out _))
            {
                Assert.Fail($"message {i} was not delivered");
            }
        }
    }
}
