namespace Kawa.Dataflow.Tests.Nats.Pipeline;

[NonParallelizable]
public class NatsJetStreamLagTests : JetStreamTestBase
{
    [Test]
    public async Task GetLagAsync_AsMessagesAreDeliveredAndAcked_ReportsPendingAndAckPending()
    {
        var stream = await StreamAsync(50);
        await using var source = await SourceAsync(stream, o => o.PrefetchMessages = 10);
        using var cts = new CancellationTokenSource(Infrastructure.NatsTestHelpers.Generous);

        var first = await source.ReceiveAsync(cts.Token);
        var lag = await source.GetLagAsync(cts.Token);

        // What was pulled ahead (at least the one received) is ack-pending; the rest is the lag.
        Assert.That(lag.AckPending, Is.InRange(1, 20));
        Assert.That(lag.Pending + lag.AckPending, Is.EqualTo(50));
        Assert.That(lag.Redelivered, Is.Zero);
        first.Ack.Ack();
        await Infrastructure.NatsTestHelpers.WaitUntilAsync(async () => (await source.GetLagAsync(cts.Token)) is var now && now.Pending + now.AckPending == 49, what: "the ack to reach the server");
    }
}
