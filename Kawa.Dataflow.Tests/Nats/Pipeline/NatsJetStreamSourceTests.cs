using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Nats.Protocol;
using Kawa.Dataflow.Tests.Infrastructure;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

[NonParallelizable]
public class NatsJetStreamSourceTests : JetStreamTestBase
{
    private static Kawa.Dataflow.Pipeline Build(ISource<byte[]> source, IDestination<byte[]> destination, int maxInFlight = 1000)
        => Kawa.Dataflow.Pipeline.Create("nats-test").From(source).To(destination).Build(new PipelineOptions { MaxInFlightMessages = maxInFlight });

    [Test]
    public async Task Pipeline_TenThousandMessagesInDrainMode_EndsByItselfWithEverythingAcked()
    {
        const int count = 10_000;
        var stream = await StreamAsync(count);
        await using var source = await SourceAsync(stream);
        var destination = new RecordingDestination();

        await Build(source, destination).RunAsync().WaitAsync(TimeSpan.FromMinutes(2));

        var sequences = destination.Seen.Select(s => s.Sequence).ToList();
        Assert.That(sequences, Has.Count.EqualTo(count));
        Assert.That(sequences.Distinct().Count(), Is.EqualTo(count));
        var info = await ConsumerAsync(stream);
        Assert.That(info.NumAckPending, Is.Zero);
        Assert.That(info.NumPending, Is.Zero);
        Assert.That(source.Outstanding, Is.Zero);
    }

    [Test]
    public async Task Pipeline_HundredThousandMessagesThroughHandlerAndBatchingSink_EachProcessedOnceAndConsumerLeftEmpty()
    {
        const int count = 100_000;
        var stream = await StreamAsync(0);
        var publishing = Stopwatch.StartNew();
        await NatsTestHelpers.PublishWindowedAsync(Js, $"{stream}.m", 0, count);
        publishing.Stop();
        Assert.That((await Js.GetStreamAsync(stream)).State?.Messages, Is.EqualTo((ulong)count));

        await using var source = await SourceAsync(stream, o => o.PrefetchMessages = 1000);
        long handled = 0;
        var flushed = new ConcurrentQueue<ulong>();
        await using var sink = new BatchingDestination<byte[]>(
            (batch, _) =>
            {
                foreach (var m in batch)
                {
                    flushed.Enqueue(m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence));
                }

                return ValueTask.CompletedTask;
            },
            new BatchingOptions<byte[]> { MaxBatchSize = 500, MaxBatchAge = TimeSpan.FromMilliseconds(200) });
        var pipeline = Kawa.Dataflow.Pipeline.Create("nats-100k").From(source)
            .Handle<byte[]>("count", (m, _) =>
            {
                Interlocked.Increment(ref handled);
                return ValueTask.FromResult<Messages<byte[]>>(m);
            })
            .To(sink)
            .Build(new PipelineOptions { MaxInFlightMessages = 8192 });
        source.ValidateAgainst(pipeline);

        var consuming = Stopwatch.StartNew();
        await pipeline.RunAsync().WaitAsync(TimeSpan.FromMinutes(3));
        consuming.Stop();
        TestContext.Progress.WriteLine($"100,000 messages: published in {publishing.Elapsed.TotalSeconds:0.0} s, consumed in {consuming.Elapsed.TotalSeconds:0.0} s");

        Assert.That(Interlocked.Read(ref handled), Is.EqualTo(count), "each message went through the handler once");
        var sequences = flushed.ToArray();
        Assert.That(sequences, Has.Length.EqualTo(count), "each message was flushed once");
        Assert.That(sequences.Distinct().Count(), Is.EqualTo(count));
        Assert.That(sequences.Min(), Is.EqualTo(1UL));
        Assert.That(sequences.Max(), Is.EqualTo((ulong)count));
        var info = await ConsumerAsync(stream);
        Assert.That(info.NumAckPending, Is.Zero, "every message acked");
        Assert.That(info.NumPending, Is.Zero, "nothing left undelivered");
        Assert.That(info.NumRedelivered, Is.Zero, "nothing redelivered: every ack arrived within the ack wait");
        Assert.That(info.AckFloor?.StreamSeq, Is.EqualTo((ulong)count));
        Assert.That(source.Outstanding, Is.Zero);
    }

    [Test]
    public async Task ReceiveAsync_JetStreamMessage_CarriesSubjectSequencesHeadersAndSizes()
    {
        var stream = await StreamAsync(0);
        var headers = new NatsHeaders();
        headers.Add("X-Trace", "abc");
        await Js.PublishAsync($"{stream}.orders", Encoding.UTF8.GetBytes("hello"), headers);
        await using var source = await SourceAsync(stream, o => o.MaxDeliver = 1);

        using var cts = new CancellationTokenSource(NatsTestHelpers.Generous);
        var delivery = await source.ReceiveAsync(cts.Token);
        var a = delivery.Message.Attributes;

        Assert.That(delivery.Message.Value, Is.EqualTo("hello"u8.ToArray()));
        Assert.That(delivery.Message.Topic, Is.EqualTo($"{stream}.orders"));
        Assert.That(a.GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo($"{stream}.orders"));
        Assert.That(a.GetOrDefault(MessageAttributeKeys.Stream, ""), Is.EqualTo(stream));
        Assert.That(a.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(1UL));
        Assert.That(a.GetOrDefault(MessageAttributeKeys.ConsumerSequence), Is.EqualTo(1UL));
        Assert.That(a.GetOrDefault(MessageAttributeKeys.DeliveryCount), Is.EqualTo(1));
        Assert.That(a.GetOrDefault(MessageAttributeKeys.PayloadSize), Is.EqualTo(5));
        Assert.That(a.GetOrDefault(MessageAttributeKeys.Timestamp), Is.GreaterThan(DateTimeOffset.UnixEpoch));
        Assert.That(a.GetOrDefault(MessageAttributeKeys.ReceivedAt), Is.GreaterThan(DateTimeOffset.UnixEpoch));
        Assert.That(a.TryGet(MessageAttributeKeys.Headers, out var h) ? h : [], Does.Contain(new KeyValuePair<string, string>("X-Trace", "abc")));
        Assert.That(a.GetOrDefault(NatsAttributeKeys.Consumer, ""), Is.EqualTo("d"));
        Assert.That(a.GetOrDefault(NatsAttributeKeys.LastDelivery), Is.True, "MaxDeliver = 1: the first delivery is the last");

        // Read on demand, the attributes still enumerate and look up by name like stored ones, in the documented order.
        Assert.That(a.Select(e => e.Key), Is.EqualTo(new[]
        {
            "subject", "stream", "stream.sequence", "consumer.sequence", "delivery.count", "timestamp", "received.at",
            "payload.size", "nats.consumer", "last.delivery", "headers",
        }));
        Assert.That(a.TryGetValue("stream.sequence", out var boxed) ? boxed : null, Is.EqualTo(1UL));
        Assert.That(a.TryGet(new AttributeKey<long>("stream.sequence"), out _), Is.False, "a key of another value type is not found");
        var derived = a.With(MessageAttributeKeys.OutputPath, "1");
        Assert.That(derived.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(1UL));
        Assert.That(derived.GetOrDefault(MessageAttributeKeys.OutputPath, ""), Is.EqualTo("1"));
        delivery.Ack.Ack();
    }

    [Test]
    public async Task Pipeline_NackWithDelay_RedeliveredWithDeliveryCountTwo()
    {
        var stream = await StreamAsync(20);
        await using var source = await SourceAsync(stream);
        var destination = new RecordingDestination((m, ack) =>
        {
            var first = m.Attributes.GetOrDefault(MessageAttributeKeys.DeliveryCount) == 1;
            if (m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence) == 5 && first)
            {
                ack.Nack(TimeSpan.FromSeconds(1));
            }
            else
            {
                ack.Ack();
            }

            return ValueTask.CompletedTask;
        });

        await Build(source, destination).RunAsync().WaitAsync(TimeSpan.FromMinutes(1));

        Assert.That(destination.Seen.Where(s => s.Sequence == 5).Select(s => s.Deliveries), Is.EqualTo(new long[] { 1, 2 }));
        var times = destination.Times.Where(t => t.Sequence == 5).Select(t => t.ReceivedAt).ToArray();
        Assert.That(times[1] - times[0], Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(900)), "the server held the redelivery for the nack's 1 s delay (lower bound only)");
        Assert.That(destination.Seen.Where(s => s.Sequence != 5).Select(s => s.Deliveries), Is.All.EqualTo(1));
        Assert.That((await ConsumerAsync(stream)).NumAckPending, Is.Zero, "the drain waited for the redelivery and its ack");
    }

    [Test]
    public async Task Pipeline_Terminate_NeverRedelivered()
    {
        var stream = await StreamAsync(20);
        await using var source = await SourceAsync(stream, o => o.AckWait = TimeSpan.FromSeconds(1));
        var destination = new RecordingDestination((m, ack) =>
        {
            if (m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence) == 7)
            {
                ack.Terminate();
            }
            else
            {
                ack.Ack();
            }

            return ValueTask.CompletedTask;
        });

        await Build(source, destination).RunAsync().WaitAsync(TimeSpan.FromMinutes(1));

        Assert.That(destination.Seen.Count(s => s.Sequence == 7), Is.EqualTo(1));
        var info = await ConsumerAsync(stream);
        Assert.That(info.NumAckPending, Is.Zero, "+TERM removed it from the pending set (an ack wait of 1 s has passed long before the drain ended otherwise)");
        Assert.That(info.NumRedelivered, Is.Zero);
    }

    [Test]
    public async Task Pipeline_SlowMessage_KeptAliveByAutomaticInProgressPastAckWait()
    {
        var stream = await StreamAsync(5);
        await using var source = await SourceAsync(stream, o =>
        {
            o.AckWait = TimeSpan.FromSeconds(2);
            o.AutoInProgressFraction = 0.5;
        });
        var held = new TaskCompletionSource<AckToken>(TaskCreationOptions.RunContinuationsAsynchronously);
        var destination = new RecordingDestination((m, ack) =>
        {
            if (m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence) == 1)
            {
                held.TrySetResult(ack); // settled later, after the ack wait has passed several times over
            }
            else
            {
                ack.Ack();
            }

            return ValueTask.CompletedTask;
        });

        var run = Build(source, destination).RunAsync();
        var token = await held.Task.WaitAsync(NatsTestHelpers.Generous);
        // Real signal: keep-alives are sent every second; 4 of them span twice the 2 s ack wait.
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(source.InProgressSent >= 4), what: "automatic +WPI keep-alives");
        var info = await ConsumerAsync(stream);
        Assert.That(info.NumRedelivered, Is.Zero, "the held message was not redelivered");
        token.Ack();
        await run.WaitAsync(NatsTestHelpers.Generous);

        Assert.That(destination.Seen.Count(s => s.Sequence == 1), Is.EqualTo(1));
        Assert.That((await ConsumerAsync(stream)).NumAckPending, Is.Zero);
    }

    [Test]
    public async Task InProgress_AskedAgainWithinATenthOfAckWait_CoalescedIntoOneWpi()
    {
        var stream = await StreamAsync(1);
        var time = new FakeTimeProvider();
        var options = new NatsJetStreamSourceOptions { Stream = stream, Durable = "d", StopAtEnd = true, AckWait = TimeSpan.FromSeconds(30), AutoInProgressFraction = 0 };
        await using var source = await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), options, timeProvider: time);
        var delivery = await source.ReceiveAsync().AsTask().WaitAsync(NatsTestHelpers.Generous);

        // Just delivered: the server's ack timer has just started, so a keep-alive now would add nothing.
        for (var i = 0; i < 5; i++)
        {
            delivery.Ack.InProgress();
        }

        Assert.That(source.InProgressSent, Is.Zero);
        Assert.That(source.InProgressCoalesced, Is.EqualTo(5));

        // A tenth of the ack wait later, four holders (say, the outputs of a fan-out in one sink) ask at once: one +WPI.
        time.Advance(TimeSpan.FromSeconds(3));
        for (var i = 0; i < 4; i++)
        {
            delivery.Ack.InProgress();
        }

        Assert.That(source.InProgressSent, Is.EqualTo(1));
        Assert.That(source.InProgressCoalesced, Is.EqualTo(8));

        delivery.Ack.Ack();
        time.Advance(TimeSpan.FromSeconds(3));
        delivery.Ack.InProgress();
        Assert.That(source.InProgressSent, Is.EqualTo(1), "nothing after the final outcome");
        Assert.That(source.InProgressCoalesced, Is.EqualTo(8));
    }

    [Test]
    public async Task Pipelines_TwoSharingOneDurable_SplitTheStreamWithoutDuplicates()
    {
        const int count = 4000;
        var stream = await StreamAsync(count);
        await using var first = await SourceAsync(stream, o => o.PrefetchMessages = 50);
        await using var second = await SourceAsync(stream, o => o.PrefetchMessages = 50);
        var a = new RecordingDestination();
        var b = new RecordingDestination();

        await Task.WhenAll(Build(first, a, 100).RunAsync(), Build(second, b, 100).RunAsync()).WaitAsync(TimeSpan.FromMinutes(2));

        var all = a.Seen.Concat(b.Seen).Select(s => s.Sequence).ToList();
        Assert.That(all, Has.Count.EqualTo(count));
        Assert.That(all.Distinct().Count(), Is.EqualTo(count), "no message processed twice");
        Assert.That(a.Seen, Is.Not.Empty);
        Assert.That(b.Seen, Is.Not.Empty);
    }

    [Test]
    public async Task ReceiveAsync_DrainModeOnEmptyStream_EndsAtOnce()
    {
        var stream = await StreamAsync(0);
        await using var source = await SourceAsync(stream);
        using var cts = new CancellationTokenSource(NatsTestHelpers.Generous);

        Assert.That((await source.ReceiveAsync(cts.Token)).IsEndOfStream, Is.True);
        Assert.That((await source.ReceiveAsync(cts.Token)).IsEndOfStream, Is.True);
    }

    [Test]
    public async Task Build_PipelineHoldsMoreThanMaxAckPending_ThrowsNamingBothFigures()
    {
        var stream = await StreamAsync(0);
        await using var source = await SourceAsync(stream, o => { o.MaxAckPending = 500; o.PrefetchMessages = 100; });

        var error = Assert.Throws<InvalidOperationException>(() => Build(source, new RecordingDestination(), maxInFlight: 1000));
        Assert.That(error!.Message, Does.Contain("1100").And.Contain("max_ack_pending 500"));
    }

    [Test]
    public async Task ValidateAgainst_PipelineHoldsMoreThanMaxAckPending_ThrowsNamingBothFigures()
    {
        // The same check on request, against a pipeline built over another source.
        var stream = await StreamAsync(0);
        await using var source = await SourceAsync(stream, o => { o.MaxAckPending = 500; o.PrefetchMessages = 100; });
        var pipeline = Kawa.Dataflow.Pipeline.Create("other").From(new SourceFunc<byte[]>(_ => ValueTask.FromResult(Delivery<byte[]>.EndOfStream)))
            .To(new RecordingDestination()).Build(new PipelineOptions { MaxInFlightMessages = 1000 });

        var error = Assert.Throws<InvalidOperationException>(() => source.ValidateAgainst(pipeline));
        Assert.That(error!.Message, Does.Contain("1100").And.Contain("max_ack_pending 500"));
    }

    [Test]
    public async Task ValidateAgainst_SinkHoldsLongerThanAckWait_Throws()
    {
        var stream = await StreamAsync(0);
        await using var source = await SourceAsync(stream, o => o.AckWait = TimeSpan.FromSeconds(30));
        var pipeline = Build(source, new RecordingDestination(), maxInFlight: 100);

        var error = Assert.Throws<InvalidOperationException>(() => source.ValidateAgainst(pipeline, TimeSpan.FromMinutes(5)));
        Assert.That(error!.Message, Does.Contain("ack wait"));
        Assert.DoesNotThrow(() => source.ValidateAgainst(pipeline, TimeSpan.FromSeconds(10)), "fits: 100 + 200 <= 20000, 10 s < 30 s");
    }

    [Test]
    public async Task Build_LibrarySinkHoldsLongerThanAckWait_ThrowsWithoutValidateAgainst()
    {
        // The batching sink says how long it holds a message (its batch age): building the pipeline runs the ack-wait
        // check on it, so a user who never calls ValidateAgainst still learns of the misfit before anything is redelivered.
        var stream = await StreamAsync(0);
        await using var source = await SourceAsync(stream, o => o.AckWait = TimeSpan.FromSeconds(30));
        var slow = new BatchingDestination<byte[]>((_, _) => default, new BatchingOptions<byte[]> { MaxBatchAge = TimeSpan.FromMinutes(1) });
        var quick = new BatchingDestination<byte[]>((_, _) => default, new BatchingOptions<byte[]> { MaxBatchAge = TimeSpan.FromSeconds(5) });

        var error = Assert.Throws<InvalidOperationException>(() => Build(source, slow, maxInFlight: 100));
        Assert.That(error!.Message, Does.Contain("00:01:00").And.Contain("ack wait 00:00:30"));
        var pipeline = Build(source, quick, maxInFlight: 100);
        Assert.DoesNotThrow(() => source.ValidateAgainst(pipeline));
        Assert.Throws<InvalidOperationException>(() => source.ValidateAgainst(Build(new SourceFunc<byte[]>(_ => ValueTask.FromResult(Delivery<byte[]>.EndOfStream)), slow, maxInFlight: 100)), "ValidateAgainst checks the pipeline's own hold too");
    }

    [Test]
    public async Task StartAsync_AckAll_RefusedWithReason()
    {
        var options = new NatsJetStreamSourceOptions { Stream = "s", Durable = "d", AckPolicy = JetStreamAckPolicy.All };

        var error = await Assert.ThrowsAsync<ArgumentException>(() => NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), options));
        Assert.That(error!.Message, Does.Contain("AckPolicy").And.Contain("share a durable"));
    }

    [Test]
    public void Validate_EveryProblem_ReportedWithItsProperty()
    {
        var options = new NatsJetStreamSourceOptions { Stream = "a.b", Durable = "", PrefetchMessages = 0, MaxDeliver = 0 };

        Assert.That(options.Validate(), Has.Some.StartsWith("Stream:").And.Some.StartsWith("Durable:").And.Some.StartsWith("PrefetchMessages:").And.Some.StartsWith("MaxDeliver:"));
    }

    [Test]
    public async Task StartAsync_SeveralFilterSubjectsOnServerBefore210_ThrowsNamingTheVersion()
    {
        var stream = await StreamAsync(0);
        var options = new NatsJetStreamSourceOptions { Stream = stream, Durable = "multi" };
        options.FilterSubjects.Add($"{stream}.a");
        options.FilterSubjects.Add($"{stream}.b");

        var error = await Assert.ThrowsAsync<NotSupportedException>(() => NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), options));
        Assert.That(error!.Message, Does.Contain("2.10").And.Contain("2.9"));
    }

    [Test]
    public async Task StartAsync_BindToExistingAckAllConsumer_RefusedWithReason()
    {
        var stream = await StreamAsync(0);
        await Js.CreateConsumerAsync(stream, new Kawa.Dataflow.Nats.JetStream.ConsumerConfig { DurableName = "all", AckPolicy = Kawa.Dataflow.Nats.JetStream.AckPolicy.All });
        var options = new NatsJetStreamSourceOptions { Stream = stream, Durable = "all", CreateOrUpdate = false };

        var error = await Assert.ThrowsAsync<NotSupportedException>(() => NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), options));
        Assert.That(error!.Message, Does.Contain("'all'").And.Contain("only explicit acks"));
    }

    [Test]
    public async Task StartAsync_BindToMissingConsumer_ThrowsFromServer()
    {
        var stream = await StreamAsync(0);
        var options = new NatsJetStreamSourceOptions { Stream = stream, Durable = "missing", CreateOrUpdate = false };

        var error = await Assert.ThrowsAsync<Kawa.Dataflow.Nats.JetStreamApiException>(() => NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), options));
        Assert.That(error!.Message, Does.Contain("consumer").IgnoreCase);
    }
}
