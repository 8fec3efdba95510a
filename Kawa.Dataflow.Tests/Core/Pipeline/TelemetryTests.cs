using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

public class TelemetryTests
{
    private sealed class Boom() : Exception("boom");

    /// <summary>Sums every measurement of this pipeline by (instrument, stage); tests run in parallel, so filter by name.</summary>
    private sealed class Recorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly string _pipeline;
        private long _inFlightPeak;
        private long _inFlightNow;

        public Recorder(string pipeline)
        {
            _pipeline = pipeline;
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == Telemetry.MeterName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument.Name, value, tags));
            _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument.Name, value, tags));
            _listener.Start();
        }

        public ConcurrentDictionary<string, long> Sums { get; } = new();

        public long InFlightPeak => Volatile.Read(ref _inFlightPeak);

        public long Sum(string instrument, string? stage = null) => Sums.GetValueOrDefault(stage is null ? instrument : $"{instrument}|{stage}");

        public void Dispose() => _listener.Dispose();

        private void Record(string instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? pipeline = null;
            string? stage = null;
            foreach (var tag in tags)
            {
                if (tag.Key == Telemetry.PipelineTag)
                {
                    pipeline = tag.Value as string;
                }
                else if (tag.Key == Telemetry.StageTag)
                {
                    stage = tag.Value as string;
                }
            }

            if (pipeline != _pipeline)
            {
                return;
            }

            Sums.AddOrUpdate(instrument, value, (_, sum) => sum + value);
            if (stage is not null)
            {
                Sums.AddOrUpdate($"{instrument}|{stage}", value, (_, sum) => sum + value);
            }

            if (instrument == "kawa.messages.in_flight")
            {
                HighWaterMark.Raise(ref _inFlightPeak, Interlocked.Add(ref _inFlightNow, value));
            }
        }
    }

    [Test]
    public async Task RunAsync_BatchingSinkSettlesPerBatch_AckedAndInFlightStillCountEveryToken()
    {
        const string name = "telemetry-batching-sink";
        using var recorder = new Recorder(name);
        var source = new TestSource<byte[]>(Enumerable.Range(0, 1000).Select(_ => new Message<byte[]>(new byte[10])).ToArray());
        var sink = new BatchingDestination<byte[]>((_, _) => default, new BatchingOptions<byte[]> { MaxBatchSize = 64, MaxBatchAge = Timeout.InfiniteTimeSpan });
        var pipeline = Kawa.Dataflow.Pipeline.Create(name).From(source).To(sink).Build(new PipelineOptions { SegmentSize = 32 });

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(recorder.Sum("kawa.messages.acked"), Is.EqualTo(1000), "one per token, though a batch reports its tokens at once");
        Assert.That(recorder.Sum("kawa.messages.in_flight"), Is.Zero);
        Assert.That(recorder.Sum("kawa.bytes.in_flight"), Is.Zero);
        Assert.That(recorder.InFlightPeak, Is.InRange(1, PipelineOptions.DefaultMaxInFlightMessages));
    }

    [Test]
    public async Task RunAsync_MixedOutcomes_EveryInstrumentCountsWithPipelineAndStageTags()
    {
        const string name = "telemetry-mixed";
        using var recorder = new Recorder(name);
        var source = new TestSource<byte[]>(Enumerable.Range(0, 10).Select(i => new Message<byte[]>(new byte[10], Key: i.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray());
        var dlq = new RecordingDestination<DeadLetter<byte[]>>();
        int Id(Message<byte[]> m) => int.Parse(m.Key!, System.Globalization.CultureInfo.InvariantCulture);
        var pipeline = Kawa.Dataflow.Pipeline.Create(name)
            .From(source)
            .Handle<byte[]>(
                "work",
                (m, _) => Id(m) switch
                {
                    0 => throw new Boom(),
                    1 => new ValueTask<Messages<byte[]>>(Messages<byte[]>.None),
                    2 => new ValueTask<Messages<byte[]>>(new[] { m, m, m }),
                    _ => new ValueTask<Messages<byte[]>>(m),
                },
                new StageOptions { ErrorPolicy = ErrorPolicy.DeadLetter(dlq) })
            // A map: the stage runs those in a loop of its own, which must count the same.
            .Handle("check", Handler.Map<byte[], byte[]>(m => Id(m) == 7 ? throw new Boom() : m), new StageOptions { ErrorPolicy = ErrorPolicy.Skip })
            .To(new DestinationFunc<byte[]>((ack, messages, _) =>
            {
                switch (Id(messages[0]))
                {
                    case 5: ack.Nack(); break;
                    case 6: ack.Terminate(); break;
                    default: ack.Ack(); break;
                }

                return default;
            }))
            .Build();

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.Multiple(() =>
        {
            Assert.That(recorder.Sum("kawa.messages.received", "source"), Is.EqualTo(10));
            Assert.That(recorder.Sum("kawa.messages.handled", "handler:work"), Is.EqualTo(10));
            Assert.That(recorder.Sum("kawa.messages.emitted", "handler:work"), Is.EqualTo(10));
            Assert.That(recorder.Sum("kawa.messages.handled", "handler:check"), Is.EqualTo(10));
            Assert.That(recorder.Sum("kawa.messages.emitted", "handler:check"), Is.EqualTo(9));
            Assert.That(recorder.Sum("kawa.messages.failed", "handler:work"), Is.EqualTo(1));
            Assert.That(recorder.Sum("kawa.messages.failed", "handler:check"), Is.EqualTo(1));
            Assert.That(recorder.Sum("kawa.messages.dead_lettered", "handler:work"), Is.EqualTo(1));
            Assert.That(recorder.Sum("kawa.messages.skipped", "handler:check"), Is.EqualTo(1));
            Assert.That(recorder.Sum("kawa.messages.acked"), Is.EqualTo(8));
            Assert.That(recorder.Sum("kawa.messages.negative_acked"), Is.EqualTo(1));
            Assert.That(recorder.Sum("kawa.messages.terminated"), Is.EqualTo(1));
            Assert.That(recorder.Sum("kawa.messages.in_flight"), Is.Zero);
            Assert.That(recorder.InFlightPeak, Is.GreaterThan(0));
            Assert.That(recorder.Sum("kawa.bytes.in_flight"), Is.Zero);
        });
    }

    [Test]
    public async Task RunAsync_BytesInFlight_RisesByPayloadSizes()
    {
        const string name = "telemetry-bytes";
        using var recorder = new Recorder(name);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var bothSending = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sending = 0;
        var source = new TestSource<byte[]>([new Message<byte[]>(new byte[100]), new Message<byte[]>(new byte[23])]);
        var pipeline = Kawa.Dataflow.Pipeline.Create(name)
            .From(source)
            .To(
                new DestinationFunc<byte[]>(async (ack, _, _) =>
                {
                    if (Interlocked.Increment(ref sending) == 2)
                    {
                        bothSending.TrySetResult();
                    }

                    await gate.Task;
                    ack.Ack();
                }),
                new DestinationOptions { MaxDegreeOfParallelism = 2 })
            .Build(new PipelineOptions { SegmentSize = 1 });

        var run = pipeline.RunAsync();
        await bothSending.Task.WaitAsync(TestMessages.Generous);

        // Both messages reached the destination, so both were counted in (before they were handed on) and neither settled.
        Assert.That(recorder.Sum("kawa.bytes.in_flight"), Is.EqualTo(123));
        Assert.That(recorder.Sum("kawa.messages.in_flight"), Is.EqualTo(2));
        gate.SetResult();
        await run.WaitAsync(TestMessages.Generous);

        Assert.That(recorder.Sum("kawa.bytes.in_flight"), Is.Zero);
    }

    [Test]
    public async Task RunAsync_ActivityListenerAttached_ReceiveHandleAndSendSpansTaggedWithPipelineAndStage()
    {
        const string name = "telemetry-activities";
        var activities = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == Telemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (a.GetTagItem(Telemetry.PipelineTag) as string == name)
                {
                    activities.Enqueue(a);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        var source = new TestSource<int>(TestMessages.Ints(3));
        var pipeline = Kawa.Dataflow.Pipeline.Create(name)
            .From(source)
            .Handle<int>("pipe", (m, _) => m.Value == 1 ? throw new Boom() : new ValueTask<Messages<int>>(m), new StageOptions { ErrorPolicy = ErrorPolicy.Skip })
            .To(new RecordingDestination<int>())
            .Build();

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        var spans = activities.ToArray();
        string? Stage(Activity a) => a.GetTagItem(Telemetry.StageTag) as string;
        var receives = spans.Where(a => a.OperationName == "kawa.receive").ToArray();
        var handles = spans.Where(a => a.OperationName == "kawa.handle").ToArray();
        var sends = spans.Where(a => a.OperationName == "kawa.send").ToArray();
        Assert.That(receives, Has.Length.EqualTo(4), "three messages, then the receive that found the end of the stream");
        Assert.That(receives.Select(Stage), Is.All.EqualTo("source"));
        Assert.That(receives.Select(a => a.Kind), Is.All.EqualTo(ActivityKind.Consumer));
        Assert.That(receives.Where(a => a.Parent?.OperationName == "kawa.receive"), Is.Empty, "receive spans are siblings, not nested");
        Assert.That(handles, Has.Length.EqualTo(3));
        Assert.That(handles.Select(Stage), Is.All.EqualTo("handler:pipe"));
        Assert.That(handles.Count(a => a.Status == ActivityStatusCode.Error), Is.EqualTo(1), "the failed handling is marked as an error");
        Assert.That(sends, Has.Length.EqualTo(2), "the skipped message is not sent");
        Assert.That(sends.Select(Stage), Is.All.EqualTo("destination"));
        Assert.That(sends.Select(a => a.Kind), Is.All.EqualTo(ActivityKind.Producer));
    }

    /// <summary>Every measurement of one pipeline, with its stage tag, as doubles.</summary>
    private sealed class MeasurementLog : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentQueue<(string Instrument, string? Stage, double Value)> _measurements = new();

        public MeasurementLog(string pipeline)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == Telemetry.MeterName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
            {
                string? seenPipeline = null;
                string? stage = null;
                foreach (var tag in tags)
                {
                    if (tag.Key == Telemetry.PipelineTag)
                    {
                        seenPipeline = tag.Value as string;
                    }
                    else if (tag.Key == Telemetry.StageTag)
                    {
                        stage = tag.Value as string;
                    }
                }

                if (seenPipeline == pipeline)
                {
                    _measurements.Enqueue((instrument.Name, stage, value));
                }
            }

            _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
            _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
            _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
            _listener.Start();
        }

        public double[] Values(string instrument, string? stage)
            => [.. _measurements.Where(m => m.Instrument == instrument && m.Stage == stage).Select(m => m.Value)];

        public void Dispose() => _listener.Dispose();
    }

    [Test]
    public async Task RunAsync_BatchingSinkInAPipeline_BatchSizeAndFlushDurationTaggedWithThePipeline()
    {
        const string name = "telemetry-batch-histograms";
        using var log = new MeasurementLog(name);
        var time = new Kawa.Dataflow.Tests.Infrastructure.FakeTimeProvider();
        var source = new TestSource<int>(TestMessages.Ints(10));
        var sink = new BatchingDestination<int>(
            (_, _) =>
            {
                time.Advance(TimeSpan.FromMilliseconds(250)); // each flush takes 250 ms on the sink's clock
                return default;
            },
            new BatchingOptions<int> { MaxBatchSize = 4, MaxBatchAge = Timeout.InfiniteTimeSpan },
            time);
        var pipeline = Kawa.Dataflow.Pipeline.Create(name).From(source).To(sink).Build(new PipelineOptions { SegmentSize = 4 });

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(log.Values("kawa.batch.size", "destination"), Is.EqualTo(new double[] { 4, 4, 2 }), "two full batches, then the rest at the drain");
        Assert.That(log.Values("kawa.batch.flush.duration", "destination"), Is.EqualTo(new[] { 0.25, 0.25, 0.25 }));
        Assert.That(log.Values("kawa.messages.acked", null).Sum(), Is.EqualTo(10));
    }

    [Test]
    public async Task RunAsync_BatchingSinkFlushRaises_FailedCountsTheBatchsMessagesOnce()
    {
        // The sink counts the failed batch's messages; the same error then stops the run, which must not count it again.
        const string name = "telemetry-batch-failed";
        using var log = new MeasurementLog(name);
        var source = new TestSource<int>(TestMessages.Ints(3));
        var sink = new BatchingDestination<int>(
            (_, _) => throw new Boom(),
            new BatchingOptions<int> { MaxBatchSize = 3, MaxBatchAge = Timeout.InfiniteTimeSpan, MaxRetries = 0 });
        var pipeline = Kawa.Dataflow.Pipeline.Create(name).From(source).To(sink).Build(new PipelineOptions { SegmentSize = 3 });

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(TestMessages.Generous));

        Assert.That(error!.InnerException, Is.TypeOf<BatchFlushException>());
        Assert.That(log.Values("kawa.messages.failed", "destination"), Is.EqualTo(new double[] { 3 }));
        Assert.That(source.Tokens.Select(t => t.Outcome?.Kind), Is.All.EqualTo(AckKind.Nack));
    }

    [Test]
    public async Task RunAsync_DestinationThrows_FailedCountedOnceForTheDestinationStage()
    {
        const string name = "telemetry-destination-failed";
        using var log = new MeasurementLog(name);
        var source = new TestSource<int>(TestMessages.Ints(3));
        var pipeline = Kawa.Dataflow.Pipeline.Create(name)
            .From(source)
            .To(new DestinationFunc<int>((ack, messages, _) => messages[0].Value == 1 ? throw new Boom() : Ack(ack)))
            .Build(new PipelineOptions { SegmentSize = 1 });

        await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(TestMessages.Generous));

        Assert.That(log.Values("kawa.messages.failed", "destination"), Is.EqualTo(new double[] { 1 }));
        Assert.That(log.Values("kawa.messages.negative_acked", null).Sum(), Is.EqualTo(source.Tokens.Count(t => t.Outcome?.Kind == AckKind.Nack)));
        Assert.That(log.Values("kawa.messages.acked", null).Sum(), Is.EqualTo(source.Tokens.Count(t => t.Outcome?.Kind == AckKind.Ack)));

        static ValueTask Ack(AckToken ack)
        {
            ack.Ack();
            return default;
        }
    }
}
