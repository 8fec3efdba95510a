using Kawa.Dataflow.Tests.Core.Pipeline;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>
/// Drain mode against a real nats-server: consume up to the stream's last sequence as of the start (redeliveries after a
/// nack delay included), say Idle so the sink commits, and end once everything up to that sequence has its final outcome.
/// </summary>
[NonParallelizable]
public class NatsJetStreamSourceDrainTests : JetStreamTestBase
{
    private static Kawa.Dataflow.Pipeline Build(ISource<byte[]> source, IDestination<byte[]> destination)
        => Kawa.Dataflow.Pipeline.Create("nats-drain-test").From(source).To(destination).Build(new PipelineOptions { MaxInFlightMessages = 1000 });

    [Test]
    public async Task Pipeline_DrainMode_MessagesPublishedAfterStartAreLeftForTheConsumerAndANackedOneIsRedeliveredBeforeTheEnd()
    {
        var stream = await StreamAsync(50);
        // A short ack wait: it is also the delay with which messages beyond the start are given back.
        await using (var source = await SourceAsync(stream, o => o.AckWait = TimeSpan.FromSeconds(2)))
        {
            Assert.That(source.EndSequence, Is.EqualTo(50UL));
            var destination = new RecordingDestination((m, ack) =>
            {
                if (m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence) == 5 && m.Attributes.GetOrDefault(MessageAttributeKeys.DeliveryCount) == 1)
                {
                    ack.Nack(TimeSpan.FromSeconds(1));
                }
                else
                {
                    ack.Ack();
                }

                return ValueTask.CompletedTask;
            });

            // Building the pipeline sizes the pull window and opens the pull. Published after the start, 51..70 reach
            // the open pull before the pipeline reads anything.
            var pipeline = Build(source, destination);
            await PublishAsync(stream, 50, 20);
            await NatsTestHelpers.WaitUntilAsync(async () => (await ConsumerAsync(stream)).Delivered?.StreamSeq == 70, what: "the server delivering 51..70 to the open pull");
            await pipeline.RunAsync().WaitAsync(TimeSpan.FromMinutes(1));

            var seen = destination.Seen.Select(s => s.Sequence).ToList();
            Assert.That(seen.Distinct().Order(), Is.EqualTo(Enumerable.Range(1, 50).Select(i => (ulong)i)), "exactly the messages up to the start sequence");
            Assert.That(destination.Seen.Where(s => s.Sequence == 5).Select(s => s.Deliveries), Is.EqualTo(new long[] { 1, 2 }), "the nacked message came back before the run ended");
            Assert.That(source.BeyondEndReturned, Is.EqualTo(20), "51..70 were given back, not processed");
            Assert.That(source.Outstanding, Is.Zero);

            var info = await ConsumerAsync(stream);
            Assert.That(info.AckFloor!.StreamSeq, Is.GreaterThanOrEqualTo(50UL), "nothing up to the start sequence is left awaiting an ack");
        }

        // The next run gets what the first left: 51..70 (after the give-back delay), and only those.
        await using (var next = await SourceAsync(stream, o => o.AckWait = TimeSpan.FromSeconds(2)))
        {
            Assert.That(next.EndSequence, Is.EqualTo(70UL));
            var destination = new RecordingDestination();
            await Build(next, destination).RunAsync().WaitAsync(TimeSpan.FromMinutes(1));

            Assert.That(destination.Seen.Select(s => s.Sequence).Order(), Is.EqualTo(Enumerable.Range(51, 20).Select(i => (ulong)i)));
        }

        var final = await ConsumerAsync(stream);
        Assert.That(final.NumAckPending, Is.Zero);
        Assert.That(final.NumPending, Is.Zero);
    }

    [Test]
    public async Task Pipeline_DrainModeIntoASinkThatHoldsUntilCommit_SaysIdleAndEndsWithNothingAckPending()
    {
        var stream = await StreamAsync(300);
        await using var source = await SourceAsync(stream);

        // Acks only when committed (like a Parquet file with a long roll age): without Idle the source would wait
        // for outcomes and the sink for its drain, and the run would never end.
        var destination = new HoldingDestination<byte[]>();

        await Build(source, destination).RunAsync().WaitAsync(TimeSpan.FromMinutes(1));

        var commits = destination.Events.Where(e => e.StartsWith("commit", StringComparison.Ordinal)).ToList();
        Assert.That(commits, Is.Not.Empty);
        Assert.That(destination.Events.Count(e => e.StartsWith("send", StringComparison.Ordinal)), Is.EqualTo(300));
        Assert.That(destination.Events[^1], Is.EqualTo("flush 0"), "everything was committed at idle, nothing left for the final flush");
        var info = await ConsumerAsync(stream);
        Assert.That(info.NumAckPending, Is.Zero);
        Assert.That(info.NumPending, Is.Zero);
    }

    [Test]
    public async Task ReceiveAsync_DrainModeWithOnlyOutcomesAwaited_ReturnsIdleOncePerIdlePeriod()
    {
        var stream = await StreamAsync(2);
        await using var source = await SourceAsync(stream);
        using var cts = new CancellationTokenSource(NatsTestHelpers.Generous);

        var first = await ReceiveMessageAsync(source, cts.Token);
        var second = await ReceiveMessageAsync(source, cts.Token);
        Assert.That((await source.ReceiveAsync(cts.Token)).IsIdle, Is.True, "both delivered, both awaiting outcomes");

        // The next receive waits (no second Idle in the same idle period) until the outcomes end the stream.
        var next = source.ReceiveAsync(cts.Token).AsTask();
        first.Ack.Ack();
        second.Ack.Ack();
        Assert.That((await next).IsEndOfStream, Is.True);
    }

    private static async Task<Delivery<byte[]>> ReceiveMessageAsync(ISource<byte[]> source, CancellationToken cancellationToken)
    {
        var delivery = await source.ReceiveAsync(cancellationToken);
        if (delivery.IsIdle)
        {
            // The second message may still be on the wire when the first is out: an Idle then is allowed.
            delivery = await source.ReceiveAsync(cancellationToken);
        }

        Assert.That(delivery.IsIdle || delivery.IsEndOfStream, Is.False, "a message was expected");
        return delivery;
    }
}
