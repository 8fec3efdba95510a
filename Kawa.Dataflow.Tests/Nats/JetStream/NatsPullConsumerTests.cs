using System.Text;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.JetStream;

[NonParallelizable]
public class NatsPullConsumerTests : ConnectedJetStreamTests
{
    private async Task<string> StreamWithConsumerAsync(TimeSpan ackWait, int messages = 0)
    {
        var stream = "PC" + Guid.NewGuid().ToString("N")[..8];
        await Js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"{stream}.>"] });
        await Js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = "c", AckPolicy = AckPolicy.Explicit, AckWait = ackWait });
        for (var i = 0; i < messages; i++)
        {
            await NatsServer.Connection.PublishAsync($"{stream}.m", Encoding.UTF8.GetBytes(i.ToString()));
        }

        await NatsServer.Connection.FlushAsync();
        return stream;
    }

    private static async Task<JetStreamMsg> NextAsync(NatsPullConsumer consumer)
    {
        using var cts = new CancellationTokenSource(NatsTestHelpers.Generous);
        return await consumer.NextAsync(cts.Token);
    }

    [Test]
    public async Task Consume_TenThousandWithAcks_NothingPendingAfterwards()
    {
        const int count = 10_000;
        var stream = await StreamWithConsumerAsync(TimeSpan.FromSeconds(30));
        for (var i = 0; i < count; i++)
        {
            await Js.Connection.PublishAsync($"{stream}.m", Encoding.UTF8.GetBytes(i.ToString()));
        }

        await NatsServer.Connection.FlushAsync();
        await using var consumer = Js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = 500 });
        await consumer.StartAsync();

        var sequences = new HashSet<ulong>();
        for (var i = 0; i < count; i++)
        {
            var msg = await NextAsync(consumer);
            Assert.That(msg.Metadata.Stream, Is.EqualTo(stream));
            Assert.That(msg.Metadata.Consumer, Is.EqualTo("c"));
            Assert.That(msg.Metadata.NumDelivered, Is.EqualTo(1));
            Assert.That(msg.Subject, Is.EqualTo($"{stream}.m"));
            Assert.That(Encoding.UTF8.GetString(msg.Data), Is.EqualTo((msg.Metadata.StreamSequence - 1).ToString()));
            sequences.Add(msg.Metadata.StreamSequence);
            if (i < count - 1)
            {
                await msg.AckAsync();
            }
            else
            {
                // The server handles acks asynchronously but in order: a confirmed last ack means all were recorded.
                await msg.AckAndWaitAsync();
            }
        }

        var info = await Js.GetConsumerAsync(stream, "c");
        Assert.That(sequences, Has.Count.EqualTo(count));
        Assert.That(info.NumAckPending, Is.Zero);
        Assert.That(info.NumPending, Is.Zero);
        Assert.That(info.Delivered!.StreamSeq, Is.EqualTo((ulong)count));
        Assert.That(consumer.PullsIssued, Is.GreaterThanOrEqualTo(count / 500), "refilled in batches, never more than the batch held");
    }

    [Test]
    public async Task Nak_WithDelay_RedeliveredAfterDelayAsSecondDelivery()
    {
        var stream = await StreamWithConsumerAsync(TimeSpan.FromSeconds(30), messages: 1);
        await using var consumer = Js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = 10 });
        await consumer.StartAsync();

        var first = await NextAsync(consumer);
        var nakAt = NatsServer.Connection.TimeProvider.GetTimestamp();
        await first.NakAsync(TimeSpan.FromSeconds(1));
        var again = await NextAsync(consumer);
        var waited = NatsServer.Connection.TimeProvider.GetElapsedTime(nakAt);
        await again.AckAsync();

        Assert.That(again.Metadata.StreamSequence, Is.EqualTo(first.Metadata.StreamSequence));
        Assert.That(again.Metadata.NumDelivered, Is.EqualTo(2));
        // The server holds it back for the delay (an integration fact about the server, not a unit timing assertion).
        Assert.That(waited, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(900)));
    }

    [Test]
    public async Task Term_NeverRedelivered_AckFloorMovesPast()
    {
        var stream = await StreamWithConsumerAsync(TimeSpan.FromSeconds(1), messages: 2);
        await using var consumer = Js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = 10 });
        await consumer.StartAsync();

        var first = await NextAsync(consumer);
        await first.TermAsync();
        var second = await NextAsync(consumer);
        await second.AckAndWaitAsync();

        var info = await Js.GetConsumerAsync(stream, "c");
        Assert.That(first.Metadata.StreamSequence, Is.EqualTo(1UL));
        Assert.That(second.Metadata.StreamSequence, Is.EqualTo(2UL));
        Assert.That(info.NumAckPending, Is.Zero);
        Assert.That(info.NumRedelivered, Is.Zero);
        Assert.That(info.AckFloor!.StreamSeq, Is.EqualTo(2UL), "the terminated message counts as settled: it is never redelivered");
    }

    [Test]
    public async Task AckWaitExpires_MessageRedelivered()
    {
        var stream = await StreamWithConsumerAsync(TimeSpan.FromSeconds(1), messages: 1);
        await using var consumer = Js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = 10 });
        await consumer.StartAsync();

        var first = await NextAsync(consumer);
        var again = await NextAsync(consumer); // not acked: comes back after ack wait
        await again.AckAsync();

        Assert.That(again.Metadata.StreamSequence, Is.EqualTo(first.Metadata.StreamSequence));
        Assert.That(again.Metadata.NumDelivered, Is.EqualTo(2));
    }

    [Test]
    public async Task InProgress_KeepsSlowMessagePastAckWait()
    {
        var stream = await StreamWithConsumerAsync(TimeSpan.FromSeconds(1), messages: 1);
        await using var consumer = Js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = 10 });
        await consumer.StartAsync();

        var msg = await NextAsync(consumer);
        var started = NatsServer.Connection.TimeProvider.GetTimestamp();
        using var ticker = new PeriodicTimer(TimeSpan.FromMilliseconds(300));
        // Pacing, not synchronization: a slow handler reporting progress three times per ack wait for 2.5 ack waits.
        while (NatsServer.Connection.TimeProvider.GetElapsedTime(started) < TimeSpan.FromSeconds(2.5))
        {
            await msg.InProgressAsync();
            await ticker.WaitForNextTickAsync();
        }

        await msg.AckAndWaitAsync();
        var info = await Js.GetConsumerAsync(stream, "c");

        Assert.That(info.NumRedelivered, Is.Zero);
        Assert.That(info.Delivered!.ConsumerSeq, Is.EqualTo(1UL), "delivered once only");
        Assert.That(info.NumAckPending, Is.Zero);
    }

    [Test]
    public async Task ConsumerDeletedWhilePulling_NextThrowsFatal()
    {
        var stream = await StreamWithConsumerAsync(TimeSpan.FromSeconds(30), messages: 0);
        await using var consumer = Js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = 10, Expires = TimeSpan.FromSeconds(10), IdleHeartbeat = TimeSpan.FromSeconds(1) });
        await consumer.StartAsync();
        await NatsTestHelpers.WaitUntilAsync(async () => (await Js.GetConsumerAsync(stream, "c")).NumWaiting > 0, what: "the pull to be waiting on the server");

        var next = consumer.NextAsync().AsTask();
        await Js.DeleteConsumerAsync(stream, "c");

        var ex = await Assert.ThrowsAsync<NatsJetStreamConsumerException>(() => next.WaitAsync(NatsTestHelpers.Generous));
        Assert.That(ex!.ConsumerDeleted, Is.True);
        Assert.That(ex.Message, Does.Contain("'c'").And.Contain(stream));
        await Assert.ThrowsAsync<NatsJetStreamConsumerException>(async () => await consumer.NextAsync());
    }

    [Test]
    public async Task PullRequestOverConsumerMaxBatch_FatalNamingTheLimit()
    {
        var stream = "MB" + Guid.NewGuid().ToString("N")[..8];
        await Js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"{stream}.>"] });
        await Js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = "c", AckPolicy = AckPolicy.Explicit, MaxBatch = 5 });
        await using var consumer = Js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = 50 });
        await consumer.StartAsync();

        var ex = await Assert.ThrowsAsync<NatsJetStreamConsumerException>(async () => await consumer.NextAsync().AsTask().WaitAsync(NatsTestHelpers.Generous));

        Assert.That(ex!.Message, Does.Contain("MaxRequestBatch"));
        Assert.That(ex.ConsumerDeleted, Is.False);
    }

    [Test]
    public async Task HeartbeatsStop_ServerHung_PullReissuedAndConsumptionResumes()
    {
        await using var server = await NatsServerProcess.StartAsync();
        await using var connection = await NatsTestHelpers.ConnectAsync(server, o => o.PingInterval = TimeSpan.FromMinutes(5));
        var js = new JetStreamContext(connection);
        await js.CreateStreamAsync(new StreamConfig { Name = "HB", Subjects = ["hb.>"] });
        await js.CreateConsumerAsync("HB", new ConsumerConfig { DurableName = "c", AckPolicy = AckPolicy.Explicit });
        await using var consumer = js.CreatePullConsumer("HB", "c", new NatsPullConsumerOptions { BatchSize = 10, Expires = TimeSpan.FromSeconds(20), IdleHeartbeat = TimeSpan.FromMilliseconds(300) });
        await consumer.StartAsync();
        await NatsTestHelpers.WaitUntilAsync(async () => (await js.GetConsumerAsync("HB", "c")).NumWaiting > 0, what: "the first pull to be open");
        var before = consumer.PullsIssued;

        await server.PauseAsync();
        try
        {
            await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.PullsIssued > before), what: "a re-issued pull after missed heartbeats");
        }
        finally
        {
            await server.ResumeAsync();
        }

        await js.PublishAsync("hb.x", "alive"u8.ToArray());
        var msg = await NextAsync(consumer);
        await msg.AckAsync();

        Assert.That(msg.Data, Is.EqualTo("alive"u8.ToArray()));
        Assert.That(consumer.PullsIssued, Is.GreaterThan(before));
    }

    [Test]
    public async Task ConnectionDisposedWhileWaiting_NextThrowsInsteadOfHanging()
    {
        var connection = await NatsTestHelpers.ConnectAsync(NatsServer.Server);
        var js = new JetStreamContext(connection);
        var stream = "CD" + Guid.NewGuid().ToString("N")[..8];
        await js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"{stream}.>"] });
        await js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = "c", AckPolicy = AckPolicy.Explicit });
        await using var consumer = js.CreatePullConsumer(stream, "c");
        await consumer.StartAsync();
        var next = consumer.NextAsync().AsTask();

        await connection.DisposeAsync();

        await Assert.ThrowsAsync<NatsConnectionException>(() => next.WaitAsync(NatsTestHelpers.Generous));
    }

    [Test]
    public async Task AckTokens_AckNackTerminate_SentInBackgroundWithTheirMeaning()
    {
        var stream = await StreamWithConsumerAsync(TimeSpan.FromSeconds(30), messages: 3);
        await using var consumer = Js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = 10 });
        await consumer.StartAsync();
        var tokens = new List<AckToken>();
        for (var i = 0; i < 3; i++)
        {
            tokens.Add(consumer.CreateAckToken(await NextAsync(consumer)));
        }

        tokens[0].Ack();
        tokens[1].InProgress();
        tokens[1].Nack(TimeSpan.FromMilliseconds(200));
        tokens[2].Terminate();
        Assert.Throws<InvalidOperationException>(() => tokens[0].Nack(), "one final outcome per token");

        var redelivered = await NextAsync(consumer);
        var token = consumer.CreateAckToken(redelivered);
        token.Ack();
        await NatsTestHelpers.WaitUntilAsync(async () => (await Js.GetConsumerAsync(stream, "c")).NumAckPending == 0, what: "all outcomes recorded by the server");

        Assert.That(redelivered.Metadata.StreamSequence, Is.EqualTo(2UL), "only the nacked message comes back");
        Assert.That(redelivered.Metadata.NumDelivered, Is.EqualTo(2));
        Assert.That(consumer.AcksLost, Is.Zero);
    }

    [Test]
    public async Task StopFetching_NoNewPulls_AcksStillSent()
    {
        var stream = await StreamWithConsumerAsync(TimeSpan.FromSeconds(30), messages: 0);
        await using var consumer = Js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = 10, Expires = TimeSpan.FromSeconds(20), IdleHeartbeat = TimeSpan.FromSeconds(5) });
        await consumer.StartAsync();
        await NatsTestHelpers.WaitUntilAsync(async () => (await Js.GetConsumerAsync(stream, "c")).NumWaiting > 0, what: "the first pull to be open");
        var pulls = consumer.PullsIssued;

        consumer.StopFetching();
        for (var i = 0; i < 25; i++)
        {
            await NatsServer.Connection.PublishAsync($"{stream}.m", new byte[1]);
        }

        for (var i = 0; i < 10; i++)
        {
            consumer.CreateAckToken(await NextAsync(consumer)).Ack();
        }

        await NatsTestHelpers.WaitUntilAsync(async () => (await Js.GetConsumerAsync(stream, "c")).NumAckPending == 0, what: "the 10 acks");
        var info = await Js.GetConsumerAsync(stream, "c");

        Assert.That(consumer.PullsIssued, Is.EqualTo(pulls));
        Assert.That(info.NumPending, Is.EqualTo(15UL), "nothing beyond the open pull was fetched");
        Assert.That(info.NumWaiting, Is.Zero);
    }
}
