using NSubstitute;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

public class BackpressureTests
{
    /// <summary>A destination whose sends wait on a gate; it counts sends that are waiting.</summary>
    private sealed class GatedDestination<T> : IDestination<T>
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Open() => _gate.TrySetResult();

        public async ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
        {
            await _gate.Task.WaitAsync(cancellationToken);
            ack.Ack();
        }
    }

    [Test]
    public async Task RunAsync_StalledSink_StopsReadingAtMaxUnsettledMessages()
    {
        var source = new TestSource<int>(TestMessages.Ints(1000));
        var destination = new GatedDestination<int>();
        var maxSeen = 0L;
        var pipeline = Kawa.Dataflow.Pipeline.Create("backpressure-count")
            .From(source)
            .Handle("pipe", Handler.Pipe<int>(), new StageOptions { BoundedCapacity = 100 })
            .To(destination, new DestinationOptions { BoundedCapacity = 100 })
            .Build(new PipelineOptions { MaxInFlightMessages = 37, SegmentSize = 8 });
        var blocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        pipeline.OnPumpWaitingForRoom = () => blocked.TrySetResult();
        source.OnReceived = n => maxSeen = Math.Max(maxSeen, n - source.Tokens.Count(t => t.IsCompleted));

        var run = pipeline.RunAsync();
        await blocked.Task.WaitAsync(TestMessages.Generous);

        // The pump is parked waiting for room and nothing can settle while the sink is stalled, so this is final.
        Assert.That(pipeline.MaxUnsettledMessages, Is.EqualTo(37));
        Assert.That(source.Received, Is.EqualTo(37));
        Assert.That(source.ReceivePending, Is.False);
        Assert.That(pipeline.CurrentRun!.InFlight, Is.EqualTo(37));

        destination.Open();
        await run.WaitAsync(TestMessages.Generous);

        Assert.That(maxSeen, Is.LessThanOrEqualTo(pipeline.MaxUnsettledMessages));
        Assert.That(source.Tokens, Has.Count.EqualTo(1000));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_StalledSinkWithRoomToSpare_FullBlocksStopTheSource()
    {
        var source = new TestSource<int>(TestMessages.Ints(1000));
        var destination = new GatedDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("backpressure-blocks")
            .From(source)
            .Handle("pipe", Handler.Pipe<int>(), new StageOptions { BoundedCapacity = 1 })
            .To(destination, new DestinationOptions { BoundedCapacity = 1 })
            .Build(new PipelineOptions { SegmentSize = 1 });
        var full = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        pipeline.OnPumpWaitingForCapacity = () => full.TrySetResult();

        var run = pipeline.RunAsync();
        await full.Task.WaitAsync(TestMessages.Generous);

        // Far below the in-flight limit (4096), the pump parked on the full first stage: with every block bounded and
        // the sink stalled, only a handful of the 1000 available messages can ever have been read.
        Assert.That(source.Received, Is.LessThan(20));
        Assert.That(run.IsCompleted, Is.False);

        destination.Open();
        await run.WaitAsync(TestMessages.Generous);
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_StalledSink_StopsReadingAtMaxInFlightBytes()
    {
        var messages = Enumerable.Range(0, 100).Select(_ => new Message<byte[]>(new byte[300])).ToArray();
        var source = new TestSource<byte[]>(messages);
        var destination = new GatedDestination<byte[]>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("backpressure-bytes")
            .From(source)
            .To(destination, new DestinationOptions { BoundedCapacity = 100 })
            .Build(new PipelineOptions { MaxInFlightBytes = 1000, SegmentSize = 8 });
        var blocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        pipeline.OnPumpWaitingForRoom = () => blocked.TrySetResult();

        var run = pipeline.RunAsync();
        await blocked.Task.WaitAsync(TestMessages.Generous);

        // Reads while under 1000 bytes: 0, 300, 600, 900 -> four messages, 1200 bytes (< limit + one message).
        Assert.That(source.Received, Is.EqualTo(4));
        Assert.That(source.ReceivePending, Is.False);
        Assert.That(pipeline.CurrentRun!.InFlightBytes, Is.EqualTo(1200));
        Assert.That(pipeline.CurrentRun.InFlightBytes, Is.LessThan(pipeline.MaxInFlightBytes + 300));

        destination.Open();
        await run.WaitAsync(TestMessages.Generous);
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_PayloadSizeFunctionAndAttribute_CountTowardBytes()
    {
        var attributes = MessageAttributes.CreateBuilder().Set(MessageAttributeKeys.PayloadSize, 400).Build();
        var source = new TestSource<int>(Enumerable.Range(0, 10).Select(i => new Message<int>(i, Attributes: attributes)).ToArray());
        var destination = new GatedDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("backpressure-attribute")
            .From(source)
            .To(destination, new DestinationOptions { BoundedCapacity = 100 })
            .Build(new PipelineOptions { MaxInFlightBytes = 1000 });
        var blocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        pipeline.OnPumpWaitingForRoom = () => blocked.TrySetResult();

        var run = pipeline.RunAsync();
        await blocked.Task.WaitAsync(TestMessages.Generous);

        Assert.That(source.Received, Is.EqualTo(3));
        Assert.That(pipeline.CurrentRun!.InFlightBytes, Is.EqualTo(1200));
        destination.Open();
        await run.WaitAsync(TestMessages.Generous);
    }

    [Test]
    public async Task RunAsync_PayloadSizeFunctionGiven_ItIsWhatTheByteLimitCounts()
    {
        // The attribute says 400 and an int has no default size: only the function's 250 may be counted.
        var attributes = MessageAttributes.CreateBuilder().Set(MessageAttributeKeys.PayloadSize, 400).Build();
        var source = new TestSource<int>(Enumerable.Range(0, 10).Select(i => new Message<int>(i, Attributes: attributes)).ToArray());
        var destination = new GatedDestination<int>();
        var measured = 0;
        var pipeline = Kawa.Dataflow.Pipeline.Create("backpressure-function")
            .From(source, payloadSize: _ =>
            {
                Interlocked.Increment(ref measured);
                return 250;
            })
            .To(destination, new DestinationOptions { BoundedCapacity = 100 })
            .Build(new PipelineOptions { MaxInFlightBytes = 1000 });
        var blocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        pipeline.OnPumpWaitingForRoom = () => blocked.TrySetResult();

        var run = pipeline.RunAsync();
        await blocked.Task.WaitAsync(TestMessages.Generous);

        // Reads while under 1000 bytes: 0, 250, 500, 750 -> four messages, exactly 1000 bytes.
        Assert.That(source.Received, Is.EqualTo(4));
        Assert.That(measured, Is.EqualTo(4), "each message measured once, by the function");
        Assert.That(pipeline.CurrentRun!.InFlightBytes, Is.EqualTo(1000));
        destination.Open();
        await run.WaitAsync(TestMessages.Generous);
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_DeferredAcksHeldBySink_StillCountAsInFlight()
    {
        var held = new List<AckToken>();
        var flushed = 0;
        var destination = Substitute.For<IDestination<int>>();
        destination.SendAsync(Arg.Any<AckToken>(), Arg.Any<Messages<int>>(), Arg.Any<CancellationToken>())
            .Returns(call =>
            {
                lock (held)
                {
                    held.Add(call.Arg<AckToken>());
                }

                return ValueTask.CompletedTask;
            });
        destination.FlushAsync(Arg.Any<CancellationToken>()).Returns(_ =>
        {
            flushed++;
            lock (held)
            {
                held.ForEach(t => t.Ack());
            }

            return ValueTask.CompletedTask;
        });
        var source = new TestSource<int>(TestMessages.Ints(100), endless: true);
        var pipeline = Kawa.Dataflow.Pipeline.Create("backpressure-deferred")
            .From(source)
            .To(destination)
            .Build(new PipelineOptions { MaxInFlightMessages = 10, SegmentSize = 4 });
        var blocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        pipeline.OnPumpWaitingForRoom = () => blocked.TrySetResult();
        using var cts = new CancellationTokenSource();

        var run = pipeline.RunAsync(cts.Token);
        await blocked.Task.WaitAsync(TestMessages.Generous);

        Assert.That(source.Received, Is.EqualTo(10));
        Assert.That(source.ReceivePending, Is.False);

        await cts.CancelAsync();
        await run.WaitAsync(TestMessages.Generous);

        Assert.That(flushed, Is.EqualTo(1));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(source.Received, Is.EqualTo(10));
    }

    [Test]
    public async Task RunAsync_SinkFreesOneSlotPerArrivalAtTheLimit_KeepsReadingWithoutDeadlock()
    {
        // The sink keeps the newest 39 tokens and acks the oldest only when another arrives: at the limit of 40 exactly one
        // slot frees per message, so the pump must resume at the first free slot.
        var held = new Queue<AckToken>();
        var destination = new DestinationFunc<int>((ack, _, _) =>
        {
            lock (held)
            {
                held.Enqueue(ack);
                if (held.Count == 40)
                {
                    held.Dequeue().Ack();
                }
            }

            return default;
        });
        var flushing = new HoldingFlush(held);
        var source = new TestSource<int>(TestMessages.Ints(500));
        var pipeline = Kawa.Dataflow.Pipeline.Create("backpressure-one-slot")
            .From(source)
            .To(new FlushingDestination<int>(destination, flushing.FlushAsync))
            .Build(new PipelineOptions { MaxInFlightMessages = 40, SegmentSize = 8 });

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(source.Received, Is.EqualTo(500));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_FilterDropsEverythingWithSmallWindow_RoomReleasedAndAllAcked()
    {
        // Nothing reaches the sink: every message is settled by the handler stage itself (zero outputs = ack), and the
        // room those acks free is all that lets the pump read past the first window.
        var source = new TestSource<int>(TestMessages.Ints(1000));
        var sent = 0;
        var pipeline = Kawa.Dataflow.Pipeline.Create("backpressure-filter")
            .From(source)
            .Handle("drop-all", Handler.Filter<int>(_ => false), new StageOptions { MaxDegreeOfParallelism = 2 })
            .To(new DestinationFunc<int>((ack, _, _) =>
            {
                Interlocked.Increment(ref sent);
                ack.Ack();
                return default;
            }))
            .Build(new PipelineOptions { MaxInFlightMessages = 10, SegmentSize = 4 });

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(source.Received, Is.EqualTo(1000));
        Assert.That(sent, Is.Zero);
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
    }

    private sealed class HoldingFlush(Queue<AckToken> held)
    {
        public ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            lock (held)
            {
                while (held.Count > 0)
                {
                    held.Dequeue().Ack();
                }
            }

            return default;
        }
    }

    private sealed class FlushingDestination<T>(IDestination<T> inner, Func<CancellationToken, ValueTask> flush) : IDestination<T>
    {
        public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default) => inner.SendAsync(ack, messages, cancellationToken);

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => flush(cancellationToken);
    }
}
