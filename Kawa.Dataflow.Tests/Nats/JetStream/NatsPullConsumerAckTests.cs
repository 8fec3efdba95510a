using System.Text;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.JetStream;

/// <summary>What becomes of acks given through tokens: coalesced into batched writes, and across a lost connection.</summary>
[NonParallelizable]
public class NatsPullConsumerAckTests
{
    private NatsServerProcess _server = null!;
    private NatsConnection _direct = null!;
    private JetStreamContext _js = null!;

    [SetUp]
    public async Task Start()
    {
        _server = await NatsServerProcess.StartAsync();
        _direct = await NatsTestHelpers.ConnectAsync(_server);
        _js = new JetStreamContext(_direct);
    }

    [TearDown]
    public async Task Stop()
    {
        await _direct.DisposeAsync();
        await _server.DisposeAsync();
    }

    private async Task<string> StreamAsync(int messages, TimeSpan ackWait)
    {
        var stream = "PA" + Guid.NewGuid().ToString("N")[..8];
        await _js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"{stream}.>"] });
        await _js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = "c", AckPolicy = AckPolicy.Explicit, AckWait = ackWait, MaxAckPending = 10_000 });
        for (var i = 0; i < messages; i++)
        {
            await _direct.PublishAsync($"{stream}.m", Encoding.UTF8.GetBytes(i.ToString()));
        }

        await _direct.FlushAsync();
        return stream;
    }

    private static async Task<List<(JetStreamMsg Msg, AckToken Token)>> TakeAsync(NatsPullConsumer consumer, int count)
    {
        using var cts = new CancellationTokenSource(NatsTestHelpers.Generous);
        var taken = new List<(JetStreamMsg, AckToken)>(count);
        for (var i = 0; i < count; i++)
        {
            var msg = await consumer.NextAsync(cts.Token);
            taken.Add((msg, consumer.CreateAckToken(msg)));
        }

        return taken;
    }

    [Test]
    public async Task AckTokens_FiveThousandAckedInOneBurst_EveryAckRecordedNoneRedelivered()
    {
        const int count = 5_000;
        var stream = await StreamAsync(count, TimeSpan.FromSeconds(30));
        await using var consumer = _js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = count });
        await consumer.StartAsync();
        var taken = await TakeAsync(consumer, count);

        // All at once: the ack sender writes what accumulated in batches; every one must still reach the server.
        foreach (var (_, token) in taken)
        {
            token.Ack();
        }

        await NatsTestHelpers.WaitUntilAsync(async () => (await _js.GetConsumerAsync(stream, "c")).NumAckPending == 0, what: "every ack recorded");
        var info = await _js.GetConsumerAsync(stream, "c");

        Assert.That(taken.Select(t => t.Msg.Metadata.StreamSequence), Is.EquivalentTo(Enumerable.Range(1, count).Select(i => (ulong)i)));
        Assert.That(consumer.AcksSent, Is.EqualTo(count));
        Assert.That(consumer.AcksLost, Is.Zero);
        Assert.That(info.NumPending, Is.Zero);
        Assert.That(info.NumRedelivered, Is.Zero);
        Assert.That(info.AckFloor?.StreamSeq, Is.EqualTo((ulong)count));
    }

    [Test]
    public async Task AcksGivenWhileDisconnected_HeldInReconnectBuffer_RecordedAfterReconnectWithoutRedelivery()
    {
        const int count = 200;
        var stream = await StreamAsync(count, TimeSpan.FromSeconds(60));
        await using var proxy = TcpCutProxy.To(_server);
        await using var connection = await NatsTestHelpers.ConnectAsync(_server, o => o.Servers = [proxy.Url]);
        var js = new JetStreamContext(connection);
        await using var consumer = js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = count });
        await consumer.StartAsync();
        var taken = await TakeAsync(consumer, count);

        var reconnecting = NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Reconnecting);
        proxy.CutAndRefuse();
        await reconnecting;
        foreach (var (_, token) in taken)
        {
            token.Ack();
        }

        // Written into the reconnect buffer, not yet seen by the server (it still runs: only the client was cut off).
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.AcksSent == count), what: "the acks to enter the reconnect buffer");
        var whileDown = await _js.GetConsumerAsync(stream, "c");

        var connected = NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Connected);
        proxy.Admit();
        await connected;
        await NatsTestHelpers.WaitUntilAsync(async () => (await _js.GetConsumerAsync(stream, "c")).NumAckPending == 0, what: "the buffered acks recorded after the reconnect");
        var after = await _js.GetConsumerAsync(stream, "c");

        Assert.That(whileDown.NumAckPending, Is.EqualTo(count), "no ack reached the server while the client was cut off");
        Assert.That(connection.State, Is.EqualTo(NatsConnectionState.Connected));
        Assert.That(consumer.AcksLost, Is.Zero);
        Assert.That(after.NumPending, Is.Zero);
        Assert.That(after.NumRedelivered, Is.Zero, "acked in the buffer means never redelivered");
        Assert.That(after.AckFloor?.StreamSeq, Is.EqualTo((ulong)count));
    }

    [Test]
    public async Task AcksGivenWhileDisconnected_ReconnectBufferFull_CountedLostAndThoseMessagesRedelivered()
    {
        const int count = 50;
        // Ack wait 5 s: past the ~2 s the refused acks take to give up (50 ms each), so the buffered acks arrive in time.
        var stream = await StreamAsync(count, TimeSpan.FromSeconds(5));
        await using var proxy = TcpCutProxy.To(_server);
        await using var connection = await NatsTestHelpers.ConnectAsync(_server, o =>
        {
            o.Servers = [proxy.Url];
            o.ReconnectBufferBytes = 1_000; // room for a few acks (~110 bytes each), not 50
            o.ReconnectBufferTimeout = TimeSpan.FromMilliseconds(50);
        });
        var js = new JetStreamContext(connection);
        await using var consumer = js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = count, Expires = TimeSpan.FromSeconds(10), IdleHeartbeat = TimeSpan.FromSeconds(1) });
        await consumer.StartAsync();
        var taken = await TakeAsync(consumer, count);

        var reconnecting = NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Reconnecting);
        proxy.CutAndRefuse();
        await reconnecting;
        foreach (var (_, token) in taken)
        {
            token.Ack();
        }

        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.AcksSent + consumer.AcksLost == count), what: "every ack either buffered or given up");
        var lost = consumer.AcksLost;
        var connected = NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Connected);
        proxy.Admit();
        await connected;

        // The lost acks' messages come back after the ack wait (at-least-once); the buffered ones do not.
        var redelivered = await TakeAsync(consumer, (int)lost);
        foreach (var (_, token) in redelivered)
        {
            token.Ack();
        }

        await NatsTestHelpers.WaitUntilAsync(async () => (await _js.GetConsumerAsync(stream, "c")).NumAckPending == 0, what: "the redelivered messages acked");
        var after = await _js.GetConsumerAsync(stream, "c");

        Assert.That(lost, Is.InRange(1, count - 1), "some acks fit the 1,000-byte buffer, the rest did not");
        Assert.That(redelivered.Select(r => r.Msg.Metadata.NumDelivered), Is.All.GreaterThanOrEqualTo(2));
        Assert.That(
            redelivered.Select(r => r.Msg.Metadata.StreamSequence),
            Is.EquivalentTo(taken.Skip(count - (int)lost).Select(t => t.Msg.Metadata.StreamSequence)),
            "outcomes go in order: the first ones were buffered and recorded, exactly the refused ones came back");
        Assert.That(after.NumPending, Is.Zero);
    }
}
