using System.Buffers;
using System.Text;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Nats.Client;

namespace Kawa.Dataflow.Tests.Nats.JetStream;

/// <summary>
/// A pull consumer's delivery path reads statuses from the header block's first line and leaves a message's headers
/// as bytes until someone reads them: frames are fed to its inbox as the read loop would, and the bytes allocated on
/// this thread are measured over many frames.
/// </summary>
public class NatsPullConsumerAllocationTests
{
    private const int Frames = 20_000;

    private static readonly byte[] Heartbeat = "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 0\r\n\r\n"u8.ToArray();

    private static readonly byte[] AckSubject = "$JS.ACK.S.C.1.1.1.1700000000000000000.0"u8.ToArray();

    private static readonly byte[] Payload = new byte[8];

    [Test]
    public async Task Inbox_Heartbeats_NothingAllocated()
    {
        await using var connection = new NatsConnection(new NatsConnectionOptions());
        await using var consumer = new NatsPullConsumer(new JetStreamContext(connection), "S", "C", new NatsPullConsumerOptions { BatchSize = 16 });
        var heartbeat = new ReadOnlySequence<byte>(Heartbeat);
        for (var i = 0; i < 1000; i++)
        {
            consumer.Inbox.OnMessage("_INBOX.x"u8, default, heartbeat, ReadOnlySequence<byte>.Empty);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < Frames; i++)
        {
            consumer.Inbox.OnMessage("_INBOX.x"u8, default, heartbeat, ReadOnlySequence<byte>.Empty);
        }

        var perFrame = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)Frames;
        TestContext.Out.WriteLine($"{perFrame:0.#} bytes allocated per frame");

        // Parsed, a heartbeat costs a headers object, its list and four field strings plus the description.
        Assert.That(perFrame, Is.LessThan(8), "bytes allocated per heartbeat");
    }

    [Test]
    public async Task Inbox_MessagesWithHeadersNotRead_NoStringsMadeForThem()
    {
        await using var connection = new NatsConnection(new NatsConnectionOptions());
        await using var consumer = new NatsPullConsumer(new JetStreamContext(connection), "S", "C", new NatsPullConsumerOptions { BatchSize = 16 });
        var headers = new ReadOnlySequence<byte>(NatsSubscriptionAllocationTests.HeaderBlock);
        var payload = new ReadOnlySequence<byte>(Payload);
        await DeliverAsync(consumer, headers, payload, 1000);

        var before = GC.GetAllocatedBytesForCurrentThread();
        await DeliverAsync(consumer, headers, payload, Frames);
        var perMessage = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)Frames;
        TestContext.Out.WriteLine($"{perMessage:0.#} bytes allocated per frame");

        // Kept per message: the ack subject, header and payload bytes and the message object (320 bytes cover the
        // objects); parsing the ten fields would add over 1 KB.
        var bound = NatsSubscriptionAllocationTests.HeaderBlock.Length + AckSubject.Length + Payload.Length + 320;
        Assert.That(perMessage, Is.LessThan(bound), "bytes allocated per message");
    }

    [Test]
    public async Task Inbox_MessageHeadersReadLater_SameFieldsAsSent()
    {
        await using var connection = new NatsConnection(new NatsConnectionOptions());
        await using var consumer = new NatsPullConsumer(new JetStreamContext(connection), "S", "C", new NatsPullConsumerOptions { BatchSize = 16 });

        consumer.Inbox.OnMessage("orders.1"u8, AckSubject, new ReadOnlySequence<byte>(NatsSubscriptionAllocationTests.HeaderBlock), new ReadOnlySequence<byte>(Payload));
        consumer.Inbox.OnMessage("orders.2"u8, AckSubject, ReadOnlySequence<byte>.Empty, new ReadOnlySequence<byte>(Payload));
        var withHeaders = await consumer.NextAsync();
        var bare = await consumer.NextAsync();

        var headers = withHeaders.Headers;
        Assert.That(headers!.Entries, Is.EqualTo(NatsSubscriptionAllocationTests.NatsHeadersFields()));
        Assert.That(withHeaders.Headers, Is.SameAs(headers), "one headers object per message");
        Assert.That(withHeaders.ReplyTo, Is.EqualTo(Encoding.ASCII.GetString(AckSubject)));
        Assert.That(bare.Headers, Is.Null);
    }

    private static async Task DeliverAsync(NatsPullConsumer consumer, ReadOnlySequence<byte> headers, ReadOnlySequence<byte> payload, int count)
    {
        for (var i = 0; i < count; i++)
        {
            consumer.Inbox.OnMessage("orders.new"u8, AckSubject, headers, payload);
            var next = consumer.NextAsync();
            if (!next.IsCompletedSuccessfully)
            {
                Assert.Fail($"message {i} was not buffered");
            }

            await next;
        }
    }
}
