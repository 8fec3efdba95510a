using System.Text;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.JetStream;

/// <summary>
/// What the pull consumer does right after a reconnect, when it cannot learn whether the consumer has a leader: here the
/// user may not look consumers up (a common restriction), so every lookup fails, and the consumer must hold its acks and
/// pulls for a while, then go on without the answer.
/// </summary>
[NonParallelizable]
public class NatsPullConsumerReconnectTests
{
    private const string Config = """
        authorization {
          users = [
            { user: "admin", password: "admin-pw" }
            { user: "worker", password: "worker-pw", permissions: { publish: { allow: [">"], deny: ["$JS.API.CONSUMER.INFO.>"] } } }
          ]
        }

        """;

    [Test]
    public async Task Reconnect_ConsumerLookupRefused_AcksHeldWhileProbingThenSentAndPullingResumes()
    {
        await using var server = await NatsServerProcess.StartAsync(Config);
        await using var admin = await NatsTestHelpers.ConnectAsync(server, o => (o.User, o.Password) = ("admin", "admin-pw"));
        var adminJs = new JetStreamContext(admin);
        await adminJs.CreateStreamAsync(new StreamConfig { Name = "R", Subjects = ["r.>"] });
        await adminJs.CreateConsumerAsync("R", new ConsumerConfig { DurableName = "d", AckPolicy = AckPolicy.Explicit, AckWait = TimeSpan.FromMinutes(5) });
        await adminJs.PublishAsync("r.1", Encoding.UTF8.GetBytes("first"));

        await using var worker = await NatsTestHelpers.ConnectAsync(server, o => (o.User, o.Password) = ("worker", "worker-pw"));
        var heartbeat = TimeSpan.FromSeconds(2); // the consumer probes for 4 s after the reconnect
        await using var consumer = new JetStreamContext(worker).CreatePullConsumer(
            "R", "d", new NatsPullConsumerOptions { BatchSize = 1, Expires = TimeSpan.FromSeconds(5), IdleHeartbeat = heartbeat });
        await consumer.StartAsync();
        using var cts = new CancellationTokenSource(NatsTestHelpers.Generous);
        var first = await consumer.NextAsync(cts.Token);
        var token = consumer.CreateAckToken(first);

        await server.RestartAsync();
        await NatsTestHelpers.WaitForStateAsync(worker, NatsConnectionState.Connected);
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.LeaderProbes >= 1), what: "a consumer lookup after the reconnect");
        var sentBefore = consumer.AcksSent;
        token.Ack();

        // The lookups fail (no permission): the ack waits while the consumer keeps asking...
        var probes = consumer.LeaderProbes;
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.LeaderProbes >= probes + 2), what: "two more lookups");
        Assert.That(consumer.AcksSent, Is.EqualTo(sentBefore), "the ack is held while the consumer's leader is unknown");

        // ...until 2 x idle heartbeat after the reconnect, when it goes on without the answer: the ack goes out and
        // pulling resumes.
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.AcksSent > sentBefore), what: "the held ack sent");
        await adminJs.PublishAsync("r.2", Encoding.UTF8.GetBytes("second"));
        var second = await consumer.NextAsync(cts.Token);
        Assert.That(Encoding.UTF8.GetString(second.Data), Is.EqualTo("second"));
        await NatsTestHelpers.WaitUntilAsync(
            async () => (await adminJs.GetConsumerAsync("R", "d")).AckFloor?.StreamSeq == 1,
            what: "the server to record the held ack");
        Assert.That(consumer.MissedHeartbeatReissues, Is.Zero);
    }

    [Test]
    public async Task Reconnect_SecondReconnectWhileAnAckWaits_AckStillSent()
    {
        // An ack waiting for the first reconnect's leader wait must be released by whatever ends the second one.
        await using var server = await NatsServerProcess.StartAsync(Config);
        await using var admin = await NatsTestHelpers.ConnectAsync(server, o => (o.User, o.Password) = ("admin", "admin-pw"));
        var adminJs = new JetStreamContext(admin);
        await adminJs.CreateStreamAsync(new StreamConfig { Name = "R", Subjects = ["r.>"] });
        await adminJs.CreateConsumerAsync("R", new ConsumerConfig { DurableName = "d", AckPolicy = AckPolicy.Explicit, AckWait = TimeSpan.FromMinutes(5) });
        await adminJs.PublishAsync("r.1", Encoding.UTF8.GetBytes("first"));
        await using var worker = await NatsTestHelpers.ConnectAsync(server, o => (o.User, o.Password) = ("worker", "worker-pw"));
        await using var consumer = new JetStreamContext(worker).CreatePullConsumer(
            "R", "d", new NatsPullConsumerOptions { BatchSize = 1, Expires = TimeSpan.FromSeconds(5), IdleHeartbeat = TimeSpan.FromSeconds(2) });
        await consumer.StartAsync();
        using var cts = new CancellationTokenSource(NatsTestHelpers.Generous);
        var token = consumer.CreateAckToken(await consumer.NextAsync(cts.Token));

        await server.RestartAsync();
        await NatsTestHelpers.WaitForStateAsync(worker, NatsConnectionState.Connected);
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.LeaderProbes >= 1), what: "a consumer lookup after the first reconnect");
        var sentBefore = consumer.AcksSent;
        token.Ack();
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.LeaderProbes >= 2), what: "a second lookup, the ack waiting");
        Assert.That(consumer.AcksSent, Is.EqualTo(sentBefore), "held during the first wait");

        var reconnects = 0;
        worker.StateChanged += (_, e) =>
        {
            if (e.Previous == NatsConnectionState.Reconnecting && e.Current == NatsConnectionState.Connected)
            {
                Interlocked.Increment(ref reconnects);
            }
        };
        await server.RestartAsync();
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref reconnects) >= 1), what: "the second reconnect");

        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.AcksSent > sentBefore), what: "the held ack sent after the second wait ended");
        await NatsTestHelpers.WaitUntilAsync(
            async () => (await adminJs.GetConsumerAsync("R", "d")).AckFloor?.StreamSeq == 1,
            what: "the server to record the held ack");
    }
}
