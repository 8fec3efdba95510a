using System.Text;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.JetStream;

/// <summary>
/// How the pull consumer reads the server's status messages and byte budgets, against a real nats-server: every wait
/// here is bounded far below the missed-heartbeat timeout, so a status that is not handled shows as a timeout.
/// </summary>
[NonParallelizable]
public class NatsPullConsumerStatusTests : ConnectedJetStreamTests
{
    private async Task<string> StreamAsync(int messages, int payloadBytes, params string[] durables)
    {
        var stream = "ST" + Guid.NewGuid().ToString("N")[..8];
        await Js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"{stream}.>"] });
        foreach (var durable in durables)
        {
            await Js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = durable, AckPolicy = AckPolicy.Explicit });
        }

        for (var i = 0; i < messages; i++)
        {
            await Js.PublishAsync($"{stream}.m", Encoding.ASCII.GetBytes(new string('x', payloadBytes - 1) + (i % 10).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        return stream;
    }

    /// <summary>Reads <paramref name="count"/> messages, acking each; fails if that takes longer than <paramref name="bound"/>.</summary>
    private static async Task<List<ulong>> ReadAsync(NatsPullConsumer consumer, int count, TimeSpan bound)
    {
        using var cts = new CancellationTokenSource(bound);
        var sequences = new List<ulong>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var msg = await consumer.NextAsync(cts.Token);
                sequences.Add(msg.Metadata.StreamSequence);
                consumer.CreateAckToken(msg).Ack();
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"only {sequences.Count} of {count} messages within {bound} (pulls issued: {consumer.PullsIssued}, pending: {consumer.PendingMessages})");
        }

        return sequences;
    }

    // Heartbeats every 5 s: a pull lost track of is only re-issued after 10 s, far beyond the bounds used here.
    private static NatsPullConsumerOptions Budgeted(int batch, long maxBytes)
        => new() { BatchSize = batch, MaxBytes = maxBytes, Expires = TimeSpan.FromSeconds(30), IdleHeartbeat = TimeSpan.FromSeconds(5) };

    [Test]
    public async Task Consume_SmallMaxBytes_EveryMessageArrivesWithoutWaitingForHeartbeats()
    {
        const int count = 60;
        var stream = await StreamAsync(count, payloadBytes: 20, "c");
        await using var consumer = Js.CreatePullConsumer(stream, "c", Budgeted(batch: 50, maxBytes: 400));
        await consumer.StartAsync();

        var sequences = await ReadAsync(consumer, count, TimeSpan.FromSeconds(4));

        Assert.That(sequences, Is.EqualTo(Enumerable.Range(1, count).Select(i => (ulong)i)), "every message once, in order");
        Assert.That(consumer.PullsIssued, Is.GreaterThanOrEqualTo(count / 5), "each pull ended on its byte budget, a few messages in");
        Assert.That(consumer.StatusesReceived(409), Is.GreaterThan(0), "the server ended pulls with 409 Message Size Exceeds MaxBytes");
        Assert.That(consumer.MissedHeartbeatReissues, Is.Zero);
    }

    [Test]
    public async Task Consume_BudgetUsedUpExactly_NextPullGoesOutAtOnce()
    {
        // Equal-length deliveries: one-digit sequences and pending counts, the same payload length, consumer names of one length.
        const int count = 6;
        var stream = await StreamAsync(count, payloadBytes: 10, "p1", "c1");
        await using var probe = Js.CreatePullConsumer(stream, "p1", new NatsPullConsumerOptions { BatchSize = 1 });
        await probe.StartAsync();
        var first = (await ReadProbeAsync(probe))!;
        var size = first.Subject.Length + first.ReplyTo.Length + first.Data.Length;

        await using var consumer = Js.CreatePullConsumer(stream, "c1", Budgeted(batch: 50, maxBytes: 2 * size));
        await consumer.StartAsync();
        var sequences = await ReadAsync(consumer, count, TimeSpan.FromSeconds(4));

        Assert.That(sequences, Is.EqualTo(Enumerable.Range(1, count).Select(i => (ulong)i)));
        Assert.That(consumer.PullsIssued, Is.GreaterThanOrEqualTo(3), "two messages a pull");
        Assert.That(consumer.MissedHeartbeatReissues, Is.Zero);
    }

    private static async Task<JetStreamMsg> ReadProbeAsync(NatsPullConsumer probe)
    {
        using var cts = new CancellationTokenSource(NatsTestHelpers.Generous);
        return await probe.NextAsync(cts.Token);
    }

    [Test]
    public async Task Consume_MessageLargerThanTheWholeBudget_FailsNamingTheBudgetInsteadOfLooping()
    {
        var stream = await StreamAsync(1, payloadBytes: 200, "c");
        await using var consumer = Js.CreatePullConsumer(stream, "c", Budgeted(batch: 10, maxBytes: 100));
        await consumer.StartAsync();

        var error = await Assert.ThrowsAsync<NatsJetStreamConsumerException>(async () => await consumer.NextAsync().AsTask().WaitAsync(NatsTestHelpers.Generous));

        Assert.That(error!.Message, Does.Contain("byte budget (100 bytes").And.Contain("PrefetchBytes"));
        Assert.That(error.ConsumerDeleted, Is.False);
        Assert.That(consumer.PullsIssued, Is.EqualTo(1), "no pull loop");
    }

    [Test]
    public async Task IdleHeartbeats_KeepArriving_CountAsLivenessAndThePullIsNotReissued()
    {
        var stream = await StreamAsync(0, payloadBytes: 1, "c");
        await using var consumer = Js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = 10, Expires = TimeSpan.FromSeconds(30), IdleHeartbeat = TimeSpan.FromMilliseconds(200) });
        await consumer.StartAsync();

        // Eight heartbeats span four times the 400 ms after which a silent pull counts as lost.
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.StatusesReceived(100) >= 8), what: "eight idle heartbeats");

        Assert.That(consumer.MissedHeartbeatReissues, Is.Zero);
        Assert.That(consumer.PullsIssued, Is.EqualTo(1), "the one open pull stayed in use");
        Assert.That(consumer.PendingMessages, Is.EqualTo(10));
    }

    [Test]
    public async Task RequestTimeout408_ReleasesExactlyNatsPendingMessages()
    {
        // Pull 1 (10) gets the 8 messages and stays open; once a heartbeat shows it idle, reading the 8 leaves 2 held, the
        // refill point, and sends pull 2 (8), so pull 1 expires about a heartbeat before pull 2. Its 408 says 2 were
        // unfilled: 8 stay requested, above the refill point, so no pull goes out.
        var stream = await StreamAsync(8, payloadBytes: 1, "c");
        await using var consumer = Js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = 10, RefillThreshold = 0.2, Expires = TimeSpan.FromSeconds(3), IdleHeartbeat = TimeSpan.FromSeconds(1) });
        await consumer.StartAsync();
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.StatusesReceived(100) >= 1), what: "pull 1 to go idle");
        await ReadAsync(consumer, 8, NatsTestHelpers.Generous);
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.PullsIssued == 2), what: "pull 2");

        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.StatusesReceived(408) >= 1), what: "pull 1's 408");
        var pending = consumer.PendingMessages;
        var pulls = consumer.PullsIssued;
        var timeouts = consumer.StatusesReceived(408);

        Assert.That(timeouts, Is.EqualTo(1), "pull 2 had not expired yet");
        Assert.That(pending, Is.EqualTo(8), "only pull 1's unfilled 2 released");
        Assert.That(pulls, Is.EqualTo(2), "pull 2 still covers the window: no pull sent");
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.StatusesReceived(408) >= 2 && consumer.PullsIssued == 3), what: "pull 2's 408 and a new pull");
        Assert.That(consumer.MissedHeartbeatReissues, Is.Zero);
    }

    [Test]
    public async Task MissedHeartbeats_ConsumerMissing_LookedUpAndFatalAsDeleted()
    {
        // nats-server 2.9 serves every $JS.API subject through its API import, so a pull for a missing consumer gets no
        // answer at all (no 503): only the missed heartbeats show it, and the lookup then decides the consumer is gone.
        var stream = await StreamAsync(0, payloadBytes: 1, "c");
        await using var consumer = Js.CreatePullConsumer(stream, "gone", new NatsPullConsumerOptions { BatchSize = 10, Expires = TimeSpan.FromSeconds(30), IdleHeartbeat = TimeSpan.FromMilliseconds(200) });
        await consumer.StartAsync();

        var error = await Assert.ThrowsAsync<NatsJetStreamConsumerException>(async () => await consumer.NextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));

        Assert.That(consumer.MissedHeartbeatReissues, Is.GreaterThan(0));
        Assert.That(error!.ConsumerDeleted, Is.True);
        Assert.That(error.Message, Does.Contain("'gone'").And.Contain("no longer exists"));
    }

    [Test]
    public async Task NoResponders503_JetStreamUnreachable_ConsumerLookedUpAgainAndNotFatal()
    {
        // Pulls (and lookups) through a JetStream domain nobody serves get 503 no responders, as when JetStream becomes
        // unreachable while running: whether the consumer is gone cannot be told, so it is asked again, never fatal.
        var stream = await StreamAsync(0, payloadBytes: 1, "c");
        await using var connection = await NatsTestHelpers.ConnectAsync(NatsServer.Server, o => o.JetStreamDomain = "nowhere");
        var js = new JetStreamContext(connection);
        await using var consumer = js.CreatePullConsumer(stream, "c", new NatsPullConsumerOptions { BatchSize = 10, Expires = TimeSpan.FromSeconds(2), IdleHeartbeat = TimeSpan.FromMilliseconds(200) });
        await consumer.StartAsync();
        var next = consumer.NextAsync().AsTask();

        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(consumer.StatusesReceived(503) >= 1 && consumer.ConsumerLookups >= 3), what: "a 503 and repeated lookups");

        Assert.That(next.IsCompleted, Is.False, "not failed: a consumer that cannot be looked up is not taken for gone");
        Assert.That(consumer.MissedHeartbeatReissues, Is.Zero);
    }
}
