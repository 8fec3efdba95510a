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

    private NatsServerProcess _server = null!;
    private NatsConnection _admin = null!;
    private JetStreamContext _adminJs = null!;
    private NatsConnection _worker = null!;
    private NatsPullConsumer _consumer = null!;
    private CancellationTokenSource _timeout = null!;

    /// <summary>
    /// A stream with one message, read by a worker who may not look consumers up, through a pull consumer whose idle
    /// heartbeat of 2 s makes it wait up to 4 s for a leader after each reconnect.
    /// </summary>
    [SetUp]
    public async Task Start()
    {
        _timeout = new CancellationTokenSource(NatsTestHelpers.Generous);
        _server = await NatsServerProcess.StartAsync(Config);
        _admin = await NatsTestHelpers.ConnectAsync(_server, o => (o.User, o.Password) = ("admin", "admin-pw"));
        _adminJs = new JetStreamContext(_admin);
        await _adminJs.CreateStreamAsync(new StreamConfig { Name = "R", Subjects = ["r.>"] });
        await _adminJs.CreateConsumerAsync("R", new ConsumerConfig { DurableName = "d", AckPolicy = AckPolicy.Explicit, AckWait = TimeSpan.FromMinutes(5) });
        await _adminJs.PublishAsync("r.1", Encoding.UTF8.GetBytes("first"));
        _worker = await NatsTestHelpers.ConnectAsync(_server, o => (o.User, o.Password) = ("worker", "worker-pw"));
        _consumer = new JetStreamContext(_worker).CreatePullConsumer(
            "R", "d", new NatsPullConsumerOptions { BatchSize = 1, Expires = TimeSpan.FromSeconds(5), IdleHeartbeat = TimeSpan.FromSeconds(2) });
        await _consumer.StartAsync();
    }

    [TearDown]
    public async Task Stop()
    {
        await _consumer.DisposeAsync();
        await _worker.DisposeAsync();
        await _admin.DisposeAsync();
        await _server.DisposeAsync();
        _timeout.Dispose();
    }

    /// <summary>Reads the first message, restarts the server, and acks the message once the consumer is probing.</summary>
    private async Task<long> AckAfterReconnectAsync()
    {
        var token = _consumer.CreateAckToken(await _consumer.NextAsync(_timeout.Token));
        await _server.RestartAsync();
        await NatsTestHelpers.WaitForStateAsync(_worker, NatsConnectionState.Connected);
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(_consumer.LeaderProbes >= 1), what: "a consumer lookup after the reconnect");
        var sentBefore = _consumer.AcksSent;
        token.Ack();

        // The lookups fail (no permission): the ack waits while the consumer keeps asking.
        var probes = _consumer.LeaderProbes;
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(_consumer.LeaderProbes >= probes + 2), what: "two more lookups");
        Assert.That(_consumer.AcksSent, Is.EqualTo(sentBefore), "the ack is held while the consumer's leader is unknown");
        return sentBefore;
    }

    private Task AckFloorReachesFirstAsync() => NatsTestHelpers.WaitUntilAsync(
        async () => (await _adminJs.GetConsumerAsync("R", "d")).AckFloor?.StreamSeq == 1,
        what: "the server to record the held ack");

    [Test]
    public async Task Reconnect_ConsumerLookupRefused_AcksHeldWhileProbingThenSentAndPullingResumes()
    {
        var sentBefore = await AckAfterReconnectAsync();

        // 2 x idle heartbeat after the reconnect it goes on without the answer: the ack goes out and pulling resumes.
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(_consumer.AcksSent > sentBefore), what: "the held ack sent");
        await _adminJs.PublishAsync("r.2", Encoding.UTF8.GetBytes("second"));
        var second = await _consumer.NextAsync(_timeout.Token);
        Assert.That(Encoding.UTF8.GetString(second.Data), Is.EqualTo("second"));
        await AckFloorReachesFirstAsync();
        Assert.That(_consumer.MissedHeartbeatReissues, Is.Zero);
    }

    [Test]
    public async Task Reconnect_SecondReconnectWhileAnAckWaits_AckStillSent()
    {
        // An ack waiting for the first reconnect's leader wait must be released by whatever ends the second one.
        var sentBefore = await AckAfterReconnectAsync();
        var reconnects = 0;
        _worker.StateChanged += (_, e) =>
        {
            if (e.Previous == NatsConnectionState.Reconnecting && e.Current == NatsConnectionState.Connected)
            {
                Interlocked.Increment(ref reconnects);
            }
        };
        await _server.RestartAsync();
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref reconnects) >= 1), what: "the second reconnect");

        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(_consumer.AcksSent > sentBefore), what: "the held ack sent after the second wait ended");
        await AckFloorReachesFirstAsync();
    }
}
