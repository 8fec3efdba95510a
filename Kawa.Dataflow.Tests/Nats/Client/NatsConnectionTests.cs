using System.Text;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.Protocol;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Client;

[NonParallelizable]
public class NatsConnectionTests
{
    private NatsServerProcess _server = null!;

    [OneTimeSetUp]
    public async Task StartServer() => _server = await NatsServerProcess.StartAsync("max_payload: 2097152\n");

    [OneTimeTearDown]
    public async Task StopServer() => await _server.DisposeAsync();

    private static async Task<NatsMsg> NextAsync(NatsSubscription subscription)
        => await subscription.Messages.ReadAsync().AsTask().WaitAsync(NatsTestHelpers.Generous);

    [Test]
    public async Task ConnectAsync_RealServer_StateConnectedAndInfoKnown()
    {
        await using var connection = await NatsTestHelpers.ConnectAsync(_server);

        Assert.That(connection.State, Is.EqualTo(NatsConnectionState.Connected));
        Assert.That(connection.ServerInfo.Headers, Is.True);
        Assert.That(connection.ServerInfo.MaxPayload, Is.EqualTo(2097152));
    }

    [Test]
    public async Task Subscribe_WildcardWithSubjectsAlternating_EachMessageKeepsItsOwnSubject()
    {
        await using var connection = await NatsTestHelpers.ConnectAsync(_server);
        await using var subscription = await connection.SubscribeAsync("alt.*");
        string[] subjects = ["alt.one", "alt.one", "alt.two", "alt.one", "alt.three", "alt.three"];
        foreach (var subject in subjects)
        {
            await connection.PublishAsync(subject, Encoding.UTF8.GetBytes(subject));
        }

        var received = new List<NatsMsg>();
        for (var i = 0; i < subjects.Length; i++)
        {
            received.Add(await NextAsync(subscription));
        }

        // Repeated subjects share one string (no allocation per message), changed ones never leak the previous one.
        Assert.That(received.Select(m => m.Subject), Is.EqualTo(subjects));
        Assert.That(received.Select(m => Encoding.UTF8.GetString(m.Data)), Is.EqualTo(subjects));
        Assert.That(received[1].Subject, Is.SameAs(received[0].Subject));
    }

    [Test]
    public async Task ConnectAsync_NothingListening_ThrowsConnectionExceptionNamingServer()
    {
        var port = NatsServerProcess.FreePort();
        await using var connection = new NatsConnection(new NatsConnectionOptions { Servers = [$"nats://127.0.0.1:{port}"] });

        var ex = await Assert.ThrowsAsync<NatsConnectionException>(() => connection.ConnectAsync());

        Assert.That(ex!.Message, Does.Contain($"127.0.0.1:{port}"));
        Assert.That(connection.State, Is.EqualTo(NatsConnectionState.Closed));
    }

    [Test]
    public async Task ConnectAsync_FirstServerDown_NextOneInListUsed()
    {
        var dead = $"nats://127.0.0.1:{NatsServerProcess.FreePort()}";
        await using var connection = new NatsConnection(NatsTestHelpers.Options(_server, o =>
        {
            o.Servers = [dead, _server.Url];
            o.RandomizeServers = false;
        }));

        await connection.ConnectAsync();

        Assert.That(connection.ConnectedUrl, Is.EqualTo(_server.Url));
    }

    [Test]
    public async Task PublishSubscribe_ManyMessages_AllArriveInOrder()
    {
        await using var connection = await NatsTestHelpers.ConnectAsync(_server);
        await using var subscription = await connection.SubscribeAsync("ps.>");
        await connection.FlushAsync();

        for (var i = 0; i < 5000; i++)
        {
            await connection.PublishAsync($"ps.{i % 3}", Encoding.UTF8.GetBytes(i.ToString()));
        }

        for (var i = 0; i < 5000; i++)
        {
            var msg = await NextAsync(subscription);
            Assert.That(Encoding.UTF8.GetString(msg.Data), Is.EqualTo(i.ToString()));
            Assert.That(msg.Subject, Is.EqualTo($"ps.{i % 3}"));
        }
    }

    [Test]
    public async Task Subscribe_QueueGroup_EachMessageToExactlyOneMember()
    {
        await using var connection = await NatsTestHelpers.ConnectAsync(_server);
        await using var a = await connection.SubscribeAsync("q.work", "workers");
        await using var b = await connection.SubscribeAsync("q.work", "workers");
        await connection.FlushAsync();

        for (var i = 0; i < 1000; i++)
        {
            await connection.PublishAsync("q.work", Encoding.UTF8.GetBytes(i.ToString()));
        }

        await connection.FlushAsync();
        var seen = new List<int>();
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(a.Messages.Count + b.Messages.Count == 1000), what: "1000 messages across the group");
        while (a.Messages.TryRead(out var m)) seen.Add(int.Parse(Encoding.UTF8.GetString(m.Data)));
        var fromA = seen.Count;
        while (b.Messages.TryRead(out var m)) seen.Add(int.Parse(Encoding.UTF8.GetString(m.Data)));

        Assert.That(seen.Order(), Is.EqualTo(Enumerable.Range(0, 1000)));
        Assert.That(fromA, Is.GreaterThan(0).And.LessThan(1000), "both members got a share");
    }

    [Test]
    public async Task Publish_WithHeaders_RoundTrip()
    {
        await using var connection = await NatsTestHelpers.ConnectAsync(_server);
        await using var subscription = await connection.SubscribeAsync("hdr.test");
        await connection.FlushAsync();
        var headers = new NatsHeaders();
        headers.Add("Trace-Id", "abc-123");
        headers.Add("Multi", "1");
        headers.Add("Multi", "2");

        await connection.PublishAsync("hdr.test", "body"u8.ToArray(), headers, replyTo: "hdr.reply");

        var msg = await NextAsync(subscription);
        Assert.That(msg.Headers!["Trace-Id"], Is.EqualTo("abc-123"));
        Assert.That(msg.Headers.GetValues("Multi"), Is.EqualTo(new[] { "1", "2" }));
        Assert.That(msg.ReplyTo, Is.EqualTo("hdr.reply"));
        Assert.That(msg.Data, Is.EqualTo("body"u8.ToArray()));
    }

    [Test]
    public async Task Request_WithResponder_ReturnsReply()
    {
        await using var connection = await NatsTestHelpers.ConnectAsync(_server);
        await using var service = await connection.SubscribeAsync("svc.echo");
        await connection.FlushAsync();
        var responder = Task.Run(async () =>
        {
            for (var i = 0; i < 3; i++)
            {
                var request = await NextAsync(service);
                await connection.PublishAsync(request.ReplyTo!, Encoding.UTF8.GetBytes("re:" + Encoding.UTF8.GetString(request.Data)));
            }
        });

        var replies = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => connection.RequestAsync("svc.echo", Encoding.UTF8.GetBytes(i.ToString()))));

        await responder;
        Assert.That(connection.SubscriptionCount, Is.EqualTo(2), "the service plus ONE shared inbox for all requests");
        Assert.That(replies.Select(r => Encoding.UTF8.GetString(r.Data)).Order(), Is.EqualTo(new[] { "re:0", "re:1", "re:2" }));
    }

    [Test]
    public async Task Request_NoSubscriber_ThrowsNoResponders()
    {
        await using var connection = await NatsTestHelpers.ConnectAsync(_server);

        await Assert.ThrowsAsync<NatsNoRespondersException>(() => connection.RequestAsync("nobody.here", "x"u8.ToArray()));
    }

    [Test]
    public async Task Request_ResponderSilent_ThrowsTimeout()
    {
        await using var connection = await NatsTestHelpers.ConnectAsync(_server);
        await using var silent = await connection.SubscribeAsync("svc.silent");
        await connection.FlushAsync();

        var ex = await Assert.ThrowsAsync<NatsTimeoutException>(() => connection.RequestAsync("svc.silent", "x"u8.ToArray(), timeout: TimeSpan.FromMilliseconds(200)));

        Assert.That(ex!.Message, Does.Contain("svc.silent"));
    }

    [Test]
    public async Task Publish_OverMaxPayload_ThrowsClearErrorAndConnectionStaysUsable()
    {
        await using var connection = await NatsTestHelpers.ConnectAsync(_server);
        await using var subscription = await connection.SubscribeAsync("big.ok");
        await connection.FlushAsync();

        var ex = await Assert.ThrowsAsync<NatsMaxPayloadExceededException>(async () => await connection.PublishAsync("big.too", new byte[2097153]));
        await connection.PublishAsync("big.ok", new byte[2097152 - 100]);

        Assert.That(ex!.MaxPayload, Is.EqualTo(2097152));
        Assert.That(ex.Message, Does.Contain("max_payload").And.Contain("big.too"));
        Assert.That((await NextAsync(subscription)).Data, Has.Length.EqualTo(2097152 - 100));
    }

    [Test]
    public async Task Subscribe_ReaderTooSlow_DropsBeyondCapacityAndCounts()
    {
        await using var connection = await NatsTestHelpers.ConnectAsync(_server);
        await using var subscription = await connection.SubscribeAsync("slow.x", capacity: 10);
        await connection.FlushAsync();

        for (var i = 0; i < 50; i++)
        {
            await connection.PublishAsync("slow.x", new byte[1]);
        }

        await connection.FlushAsync();
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(subscription.Received == 50), what: "all 50 delivered to the subscription");

        Assert.That(subscription.Messages.Count, Is.EqualTo(10));
        Assert.That(subscription.DroppedMessages, Is.EqualTo(40));
    }

    [Test]
    public async Task Unsubscribe_StopsDeliveryAndCompletesReader()
    {
        await using var connection = await NatsTestHelpers.ConnectAsync(_server);
        var subscription = await connection.SubscribeAsync("unsub.x");
        await subscription.UnsubscribeAsync();
        await connection.PublishAsync("unsub.x", new byte[1]);
        await connection.FlushAsync();

        Assert.That(subscription.Messages.Completion.IsCompleted, Is.True);
        Assert.That(subscription.Received, Is.Zero);
    }

    [Test]
    public async Task DrainAsync_SubscriberKeepsBufferedMessagesThenCompletes()
    {
        var connection = await NatsTestHelpers.ConnectAsync(_server);
        var subscription = await connection.SubscribeAsync("drain.x");
        await connection.FlushAsync();
        for (var i = 0; i < 10; i++)
        {
            await connection.PublishAsync("drain.x", new byte[1]);
        }

        await connection.FlushAsync();
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(subscription.Received == 10));
        await connection.DrainAsync();

        var count = 0;
        await foreach (var _ in subscription.ReadAllAsync().WithCancellation(new CancellationTokenSource(NatsTestHelpers.Generous).Token))
        {
            count++;
        }

        Assert.That(count, Is.EqualTo(10));
        Assert.That(connection.State, Is.EqualTo(NatsConnectionState.Closed));
        await Assert.ThrowsAsync<NatsConnectionException>(async () => await connection.PublishAsync("drain.x", new byte[1]));
        await connection.DisposeAsync();
    }

    [Test]
    public async Task DrainAsync_BurstStillInFlight_SubscriberReadsEveryMessage()
    {
        const int count = 20_000;
        await using var proxy = TcpCutProxy.To(_server);
        await using var publisher = await NatsTestHelpers.ConnectAsync(_server);
        var subscriber = await NatsTestHelpers.ConnectAsync(_server, o => o.Servers = [proxy.Url]);
        var subscription = await subscriber.SubscribeAsync("drain.burst", capacity: count);
        await subscriber.FlushAsync();

        // The server has every message once the publisher's flush returns; none has reached the subscriber.
        proxy.HoldToClient();
        for (var i = 0; i < count; i++)
        {
            await publisher.PublishAsync("drain.burst", new byte[] { (byte)i });
        }

        await publisher.FlushAsync();
        var drain = subscriber.DrainAsync();
        var receivedWhenDrainStarted = subscription.Received;
        proxy.ReleaseToClient();
        await drain.WaitAsync(NatsTestHelpers.Generous);

        var read = new List<byte>(count);
        await foreach (var msg in subscription.ReadAllAsync().WithCancellation(new CancellationTokenSource(NatsTestHelpers.Generous).Token))
        {
            read.Add(msg.Data[0]);
        }

        Assert.That(receivedWhenDrainStarted, Is.Zero, "every message was still in flight when the drain started");
        Assert.That(read, Has.Count.EqualTo(count));
        Assert.That(read, Is.EqualTo(Enumerable.Range(0, count).Select(i => (byte)i)), "in order");
        Assert.That(subscription.DroppedMessages, Is.Zero);
        Assert.That(subscriber.State, Is.EqualTo(NatsConnectionState.Closed));
        await subscriber.DisposeAsync();
    }

    [Test]
    public async Task DrainAsync_ConnectionLostBeforeThePong_ThrowsAndClosesInsteadOfWaitingForAReconnect()
    {
        await using var proxy = TcpCutProxy.To(_server);
        var subscriber = await NatsTestHelpers.ConnectAsync(_server, o => o.Servers = [proxy.Url]);
        var subscription = await subscriber.SubscribeAsync("drain.lost");
        await subscriber.FlushAsync();

        // The PONG cannot arrive (held), then the connection goes and no reconnect is let in.
        proxy.HoldToClient();
        var drain = subscriber.DrainAsync();
        proxy.CutAndRefuse();

        Assert.That(async () => await drain.WaitAsync(NatsTestHelpers.Generous), Throws.InstanceOf<NatsConnectionException>());
        Assert.That(subscriber.State, Is.EqualTo(NatsConnectionState.Closed));
        Assert.That(subscription.Messages.Completion.IsCompleted, Is.True, "the subscription is completed all the same");
        await subscriber.DisposeAsync();
    }

    [Test]
    public async Task DrainAsync_NeverConnected_ClosesWithoutWaitingForAConnection()
    {
        await using var connection = new NatsConnection(NatsTestHelpers.Options(_server));

        await connection.DrainAsync().WaitAsync(NatsTestHelpers.Generous);

        Assert.That(connection.State, Is.EqualTo(NatsConnectionState.Closed));
    }

    [Test]
    public async Task AutoUnsubscribe_AfterMax_ReaderCompletesWithExactlyMax()
    {
        await using var connection = await NatsTestHelpers.ConnectAsync(_server);
        await using var subscription = await connection.SubscribeAsync("auto.x");
        await subscription.AutoUnsubscribeAsync(3);
        await connection.FlushAsync();

        for (var i = 0; i < 10; i++)
        {
            await connection.PublishAsync("auto.x", new byte[] { (byte)i });
        }

        var received = new List<byte>();
        await foreach (var msg in subscription.ReadAllAsync().WithCancellation(new CancellationTokenSource(NatsTestHelpers.Generous).Token))
        {
            received.Add(msg.Data[0]);
        }

        Assert.That(received, Is.EqualTo(new byte[] { 0, 1, 2 }));
    }
}
