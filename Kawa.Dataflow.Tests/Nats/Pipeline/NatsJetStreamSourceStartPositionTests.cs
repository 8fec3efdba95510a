using Kawa.Dataflow.Nats.Pipeline;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>Where a new consumer starts: by stream sequence, by time, last per subject; and their option rules.</summary>
[NonParallelizable]
public class NatsJetStreamSourceStartPositionTests : JetStreamTestBase
{
    private static Kawa.Dataflow.Pipeline Build(ISource<byte[]> source, IDestination<byte[]> destination)
        => Kawa.Dataflow.Pipeline.Create("start-position").From(source).To(destination).Build(new PipelineOptions { MaxInFlightMessages = 1000 });

    [Test]
    public async Task Pipeline_ByStartSequence_DeliversOnlyFromThatSequenceOnAndAcksThem()
    {
        var stream = await StreamAsync(10);
        await using var source = await SourceAsync(stream, o =>
        {
            o.DeliverPolicy = JetStreamDeliverPolicy.ByStartSequence;
            o.OptStartSequence = 6;
        });
        var destination = new RecordingDestination();

        await Build(source, destination).RunAsync().WaitAsync(TimeSpan.FromMinutes(1));

        Assert.That(destination.Seen.Select(s => s.Sequence).Order(), Is.EqualTo(new ulong[] { 6, 7, 8, 9, 10 }));
        var info = await ConsumerAsync(stream);
        Assert.That((info.NumPending, info.NumAckPending), Is.EqualTo((0UL, 0L)), "the later messages were all acked, the earlier ones never delivered");
    }

    [Test]
    public async Task Pipeline_ByStartTime_DeliversOnlyMessagesStoredFromThatTimeOn()
    {
        var stream = await StreamAsync(10);
        // The server's own store time of message 6, read through a first consumer that starts at the beginning.
        DateTimeOffset sixth;
        await using (var probe = await SourceAsync(stream, o => o.Durable = "probe"))
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var times = new Dictionary<ulong, DateTimeOffset>();
            while (times.Count < 10)
            {
                var delivery = await probe.ReceiveAsync(cts.Token);
                times[delivery.Message.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence)] = delivery.Message.Attributes.GetOrDefault(MessageAttributeKeys.Timestamp);
                delivery.Ack.Ack();
            }

            sixth = times[6];
            Assert.That(times[5], Is.LessThan(sixth), "message 5 was stored before message 6");
        }

        await using var source = await SourceAsync(stream, o =>
        {
            o.DeliverPolicy = JetStreamDeliverPolicy.ByStartTime;
            o.OptStartTime = sixth;
        });
        var destination = new RecordingDestination();

        await Build(source, destination).RunAsync().WaitAsync(TimeSpan.FromMinutes(1));

        Assert.That(destination.Seen.Select(s => s.Sequence).Order(), Is.EqualTo(new ulong[] { 6, 7, 8, 9, 10 }));
    }

    [Test]
    public async Task Pipeline_LastPerSubject_DeliversTheLatestMessageOfEachSubject()
    {
        var stream = await StreamAsync(0);
        foreach (var subject in new[] { "a", "b", "a", "c", "b", "a" })
        {
            await Js.PublishAsync($"{stream}.{subject}", "x"u8.ToArray());
        }

        await using var source = await SourceAsync(stream, o =>
        {
            o.DeliverPolicy = JetStreamDeliverPolicy.LastPerSubject;
            o.FilterSubjects.Add($"{stream}.>");
        });
        var destination = new RecordingDestination();

        await Build(source, destination).RunAsync().WaitAsync(TimeSpan.FromMinutes(1));

        Assert.That(destination.Seen.Select(s => s.Sequence).Order(), Is.EqualTo(new ulong[] { 4, 5, 6 }), "c at 4, b at 5, a at 6");
    }

    [Test]
    public void Validate_StartPositionsWithoutTheirPolicyOrPoliciesWithoutTheirPosition_ReportsEach()
    {
        var bySequenceWithout = new NatsJetStreamSourceOptions { Stream = "S", Durable = "d", DeliverPolicy = JetStreamDeliverPolicy.ByStartSequence };
        var bySequenceZero = new NatsJetStreamSourceOptions { Stream = "S", Durable = "d", DeliverPolicy = JetStreamDeliverPolicy.ByStartSequence, OptStartSequence = 0 };
        var byTimeWithout = new NatsJetStreamSourceOptions { Stream = "S", Durable = "d", DeliverPolicy = JetStreamDeliverPolicy.ByStartTime };
        var allWithBoth = new NatsJetStreamSourceOptions { Stream = "S", Durable = "d", OptStartSequence = 3, OptStartTime = DateTimeOffset.UnixEpoch };
        var lastPerSubjectUnfiltered = new NatsJetStreamSourceOptions { Stream = "S", Durable = "d", DeliverPolicy = JetStreamDeliverPolicy.LastPerSubject };

        Assert.Multiple(() =>
        {
            Assert.That(bySequenceWithout.Validate(), Is.EqualTo(new[] { "OptStartSequence: required, at least 1, with DeliverPolicy ByStartSequence (was none)." }));
            Assert.That(bySequenceZero.Validate(), Is.EqualTo(new[] { "OptStartSequence: required, at least 1, with DeliverPolicy ByStartSequence (was 0)." }));
            Assert.That(byTimeWithout.Validate(), Is.EqualTo(new[] { "OptStartTime: required with DeliverPolicy ByStartTime." }));
            Assert.That(allWithBoth.Validate(), Is.EqualTo(new[]
            {
                "OptStartSequence: only applies with DeliverPolicy ByStartSequence (the policy is All).",
                "OptStartTime: only applies with DeliverPolicy ByStartTime (the policy is All).",
            }));
            Assert.That(lastPerSubjectUnfiltered.Validate(), Has.One.StartsWith("FilterSubjects: DeliverPolicy LastPerSubject needs at least one"));
        });
    }

    [Test]
    public async Task StartAsync_ByStartSequenceWithoutSequence_FailsBeforeConnecting()
    {
        var options = new NatsJetStreamSourceOptions { Stream = "S", Durable = "d", DeliverPolicy = JetStreamDeliverPolicy.ByStartSequence };

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => NatsJetStreamSource.StartAsync(new Kawa.Dataflow.Nats.NatsConnectionOptions { Servers = ["nats://127.0.0.1:1"] }, options));

        Assert.That(ex!.Message, Does.Contain("OptStartSequence"));
    }
}
