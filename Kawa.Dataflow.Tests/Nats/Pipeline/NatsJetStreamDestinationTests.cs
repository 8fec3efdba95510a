using System.Text;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Tests.Infrastructure;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

[NonParallelizable]
public class NatsJetStreamDestinationTests : JetStreamTestBase
{
    private async Task<string> TargetAsync()
    {
        var target = "T" + Guid.NewGuid().ToString("N")[..10];
        await Js.CreateStreamAsync(new StreamConfig { Name = target, Subjects = [$"{target}.>"], DuplicateWindow = TimeSpan.FromMinutes(2) });
        return target;
    }

    private NatsJetStreamDestination<byte[]> Destination(string target, Action<NatsJetStreamDestinationOptions<byte[]>>? configure = null)
    {
        var options = new NatsJetStreamDestinationOptions<byte[]> { Subject = target + ".{subject}", Batching = new BatchingOptions<byte[]> { MaxBatchSize = 100 } };
        configure?.Invoke(options);
        return NatsJetStreamDestination<byte[]>.Create(Connection, options);
    }

    private async Task CopyAsync(string stream, string durable, IDestination<byte[]> destination, bool fanOut = false)
    {
        await using var source = await SourceAsync(stream, o => o.Durable = durable);
        var builder = Kawa.Dataflow.Pipeline.Create("copy").From(source);
        var definition = fanOut
            ? builder.Handle("twice", (m, _) => ValueTask.FromResult<Messages<byte[]>>(new[] { m, m.With(Encoding.UTF8.GetBytes("copy")) })).To(destination)
            : builder.To(destination);
        await definition.Build(new PipelineOptions { MaxInFlightMessages = 1000 }).RunAsync().WaitAsync(TimeSpan.FromMinutes(2));
    }

    private async Task<ulong> CountAsync(string stream) => (await Js.GetStreamAsync(stream)).State!.Messages;

    [Test]
    public async Task Pipeline_SameSourceSequencesCopiedTwice_TargetUnchangedAndDuplicatesCounted()
    {
        const int count = 2000;
        var source = await StreamAsync(count);
        var target = await TargetAsync();
        await using var destination = Destination(target);
        var duplicatesMetric = 0L;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == Kawa.Dataflow.Nats.NatsTelemetry.MeterName && instrument.Name == "nats.jetstream.duplicates")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "nats.stream" && (string?)tag.Value == target)
                {
                    Interlocked.Add(ref duplicatesMetric, value);
                }
            }
        });
        listener.Start();

        await CopyAsync(source, "first", destination);
        Assert.That(await CountAsync(target), Is.EqualTo((ulong)count));
        Assert.That(destination.Published, Is.EqualTo(count));
        Assert.That(destination.Duplicates, Is.Zero);
        Assert.That((await ConsumerAsync(source, "first")).NumAckPending, Is.Zero, "every source message acked after its PubAck");

        // A second consumer re-reads the same sequences, like a redelivery after a crash (a sink runs once: a new one).
        await using var again = Destination(target);
        await CopyAsync(source, "second", again);
        Assert.That(await CountAsync(target), Is.EqualTo((ulong)count), "the stream dropped the copies by Nats-Msg-Id");
        Assert.That(again.Duplicates, Is.EqualTo(count));
        Assert.That(again.Published, Is.Zero);
        Assert.That(Interlocked.Read(ref duplicatesMetric), Is.EqualTo(count), "metric nats.jetstream.duplicates, tagged with the target stream");
        Assert.That((await ConsumerAsync(source, "second")).NumAckPending, Is.Zero, "duplicates are acked too: the data is durable");
    }

    [Test]
    public async Task Pipeline_FanOutOutputsOfOneMessage_GetDistinctIdsAndStillDeduplicate()
    {
        const int count = 100;
        var source = await StreamAsync(count);
        var target = await TargetAsync();
        await using var destination = Destination(target);

        await CopyAsync(source, "first", destination, fanOut: true);
        Assert.That(await CountAsync(target), Is.EqualTo((ulong)(2 * count)), "two outputs per message never collide");

        await using var again = Destination(target);
        await CopyAsync(source, "second", again, fanOut: true);
        Assert.That(await CountAsync(target), Is.EqualTo((ulong)(2 * count)));
        Assert.That(again.Duplicates, Is.EqualTo(2 * count));
    }

    [Test]
    public async Task Pipeline_UnorderedParallelFanOutAtDefaultDestinationOptions_RunsToCompletionAndPublishesEveryOutputOnce()
    {
        const int count = 300;
        var stream = await StreamAsync(count);
        var target = await TargetAsync();
        await using var destination = Destination(target);
        await using var source = await SourceAsync(stream, o => o.Durable = "parallel");
        var pipeline = Kawa.Dataflow.Pipeline.Create("copy-run-to-completion")
            .From(source)
            .Handle(
                "twice",
                (m, _) => ValueTask.FromResult<Messages<byte[]>>(new[] { m, m.With(Encoding.UTF8.GetBytes("copy")) }),
                new StageOptions { MaxDegreeOfParallelism = 2, EnsureOrdered = false })
            .To(destination)
            .Build(new PipelineOptions { MaxInFlightMessages = 1000 });
        Assert.That(pipeline.RunsToCompletion, Is.True, "the destination takes both workers' segments at once, so default DestinationOptions do not keep the pipeline staged");

        await pipeline.RunAsync().WaitAsync(TimeSpan.FromMinutes(2));

        Assert.That(await CountAsync(target), Is.EqualTo((ulong)(2 * count)), "each fan-out output keeps its own Nats-Msg-Id on the segment path");
        Assert.That(destination.Published, Is.EqualTo(2 * count));
        Assert.That(destination.Duplicates, Is.Zero);
        var consumer = await ConsumerAsync(stream, "parallel");
        Assert.That(consumer.NumAckPending, Is.Zero);
        Assert.That(consumer.AckFloor?.StreamSeq, Is.EqualTo((ulong)count), "every source message acked after the PubAcks of both its outputs");
    }

    [Test]
    public async Task Pipeline_NoPipelineNameInBatchingOptions_BatchMetricsTaggedWithThePipeline()
    {
        const int count = 50;
        const string stage = "jetstream-sink-pipeline-tag";
        var stream = await StreamAsync(count);
        var target = await TargetAsync();
        using var metrics = new MetricCollector(stage);
        await using var destination = Destination(target, o => o.Batching = new BatchingOptions<byte[]> { MaxBatchSize = 10, StageName = stage });
        await using var source = await SourceAsync(stream, o => o.Durable = "tagged");

        await Kawa.Dataflow.Pipeline.Create("copy-tagged").From(source).To(destination).Build().RunAsync().WaitAsync(TimeSpan.FromMinutes(2));

        Assert.That(metrics.Sum("kawa.batch.size"), Is.EqualTo(count), "every message counted in a batch");
        Assert.That(metrics.Pipelines("kawa.batch.size"), Is.Not.Empty.And.All.EqualTo("copy-tagged"));
        Assert.That(metrics.Pipelines("kawa.batch.flush.duration"), Has.Count.EqualTo(metrics.Values("kawa.batch.size").Count).And.All.EqualTo("copy-tagged"));
    }

    [Test]
    public async Task Pipeline_NoStreamCapturesTheSubject_RunFailsAndSourceMessagesAreNotAcked()
    {
        var source = await StreamAsync(10);
        await using var destination = Destination("nowhere", o => o.Batching = new BatchingOptions<byte[]> { MaxBatchSize = 100, MaxRetries = 0 });

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => CopyAsync(source, "failing", destination));
        Assert.That(error!.InnerException, Is.Not.Null);

        Assert.That(error!.Stage, Is.EqualTo("destination"));
        var info = await ConsumerAsync(source, "failing");
        Assert.That(info.AckFloor?.StreamSeq ?? 0, Is.Zero, "nothing was acked: the messages were nacked and will be redelivered");
    }

    [Test]
    public async Task SendAsync_SeveralOutputsForOneToken_EachHasItsOwnMsgId()
    {
        var target = await TargetAsync();
        await using var destination = Destination(target);
        var attributes = MessageAttributes.CreateBuilder().Set(MessageAttributeKeys.Stream, "SRC").Set(MessageAttributeKeys.StreamSequence, 42UL).Build();
        var message = new Message<byte[]>("a"u8.ToArray(), Topic: "t", Attributes: attributes).With("a"u8.ToArray()) with { Attributes = attributes.With(MessageAttributeKeys.Subject, "x") };
        var acked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        await destination.SendAsync(AckToken.Create(_ => acked.TrySetResult()), new[] { message, message, message });
        await destination.FlushAsync();
        await acked.Task.WaitAsync(NatsTestHelpers.Generous);

        Assert.That(await CountAsync(target), Is.EqualTo(3UL));
        Assert.That(destination.MsgIdFor(message), Is.EqualTo("SRC:42:0"));
    }

    [Test]
    public void Options_NoSubjectAndNoSerializer_EveryProblemReported()
    {
        var options = new NatsJetStreamDestinationOptions<DateTime> { MaxOutstandingPubAcks = 0 };

        Assert.That(options.Validate(), Has.Some.StartsWith("Subject:").And.Some.StartsWith("Serializer:").And.Some.StartsWith("MaxOutstandingPubAcks:"));
        Assert.That(new NatsJetStreamDestinationOptions<byte[]> { Subject = "a.{b" }.Validate(), Has.Some.Contains("not closed"));
    }
}
