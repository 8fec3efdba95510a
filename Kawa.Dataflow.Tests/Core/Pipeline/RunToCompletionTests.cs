using System.Collections.Concurrent;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

/// <summary>
/// <see cref="PipelineOptions.RunToCompletion"/>: unordered stages at one parallelism are run by workers that each carry
/// a segment from the source to the destination. The rules of the staged pipeline must all still hold.
/// </summary>
public class RunToCompletionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    public enum Shape
    {
        UnorderedAtOneParallelism,
        BatchingSinkAtParallelismOne,
        OrderedStage,
        KeyOrderedStage,
        SingleWorker,
        StagesAtDifferentParallelism,
        DestinationTakesFewerSends,
        OptedOut,
        NoHandlerStage,
    }

    [TestCase(Shape.UnorderedAtOneParallelism, true)]
    [TestCase(Shape.BatchingSinkAtParallelismOne, true)]
    [TestCase(Shape.OrderedStage, false)]
    [TestCase(Shape.KeyOrderedStage, false)]
    [TestCase(Shape.SingleWorker, false)]
    [TestCase(Shape.StagesAtDifferentParallelism, false)]
    [TestCase(Shape.DestinationTakesFewerSends, false)]
    [TestCase(Shape.OptedOut, false)]
    [TestCase(Shape.NoHandlerStage, false)]
    public async Task Build_Shape_RunsToCompletionOnlyWhenEveryStageAllowsIt(Shape shape, bool expected)
    {
        var unordered = new StageOptions { MaxDegreeOfParallelism = 2, EnsureOrdered = false };
        var second = shape switch
        {
            Shape.OrderedStage => new StageOptions { MaxDegreeOfParallelism = 2 },
            Shape.KeyOrderedStage => new StageOptions { MaxDegreeOfParallelism = 2, EnsureOrdered = false, KeyOrdered = true },
            Shape.SingleWorker => new StageOptions { MaxDegreeOfParallelism = 1, EnsureOrdered = false },
            Shape.StagesAtDifferentParallelism => new StageOptions { MaxDegreeOfParallelism = 3, EnsureOrdered = false },
            _ => unordered,
        };
        var first = shape == Shape.SingleWorker ? second : unordered;
        var destinationParallelism = shape == Shape.DestinationTakesFewerSends ? 1 : 2;
        await using var batching = new BatchingDestination<int>((_, _) => ValueTask.CompletedTask);
        var source = new TestSource<int>(TestMessages.Ints(10));
        var builder = Kawa.Dataflow.Pipeline.Create("shape").From(source);
        var definition = shape switch
        {
            Shape.NoHandlerStage => builder.To(new RecordingDestination<int>(), new DestinationOptions { MaxDegreeOfParallelism = 2 }),
            Shape.BatchingSinkAtParallelismOne => builder.Handle("a", Handler.Pipe<int>(), first).Handle("b", Handler.Pipe<int>(), second).To(batching),
            _ => builder.Handle("a", Handler.Pipe<int>(), first).Handle("b", Handler.Pipe<int>(), second)
                .To(new RecordingDestination<int>(), new DestinationOptions { MaxDegreeOfParallelism = destinationParallelism }),
        };

        var pipeline = definition.Build(new PipelineOptions { RunToCompletion = shape != Shape.OptedOut });
        Assert.That(pipeline.RunsToCompletion, Is.EqualTo(expected));

        // Either way the run delivers everything.
        await pipeline.RunAsync().WaitAsync(Wait);
        Assert.That(source.Tokens.Select(t => t.Outcome).ToList(), Has.Count.EqualTo(10).And.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_RunToCompletion_EachMessageIsHandledAndSentOnOneThread()
    {
        const int count = 20_000;
        var firstThread = new int[count];
        var secondThread = new int[count];
        var sendThread = new int[count];
        var destination = new DestinationFunc<int>((ack, messages, _) =>
        {
            foreach (var message in messages)
            {
                sendThread[message.Value] = Environment.CurrentManagedThreadId;
            }

            ack.Ack();
            return ValueTask.CompletedTask;
        });
        var options = new StageOptions { MaxDegreeOfParallelism = 2, EnsureOrdered = false };
        var source = new TestSource<int>(TestMessages.Ints(count));
        var pipeline = Kawa.Dataflow.Pipeline.Create("one-thread")
            .From(source)
            .Handle("first", Handler.Map<int, int>(m => { firstThread[m.Value] = Environment.CurrentManagedThreadId; return m; }), options)
            .Handle("second", Handler.Map<int, int>(m => { secondThread[m.Value] = Environment.CurrentManagedThreadId; return m; }), options)
            .To(destination, new DestinationOptions { MaxDegreeOfParallelism = 2 })
            .Build(new PipelineOptions { SegmentSize = 16 });

        await pipeline.RunAsync().WaitAsync(Wait);

        var moved = Enumerable.Range(0, count).Count(i => firstThread[i] != secondThread[i] || secondThread[i] != sendThread[i]);
        Assert.That(moved, Is.Zero, "messages that changed threads between stages");
        Assert.That(source.Tokens.Select(t => t.Outcome).ToList(), Has.Count.EqualTo(count).And.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_RunToCompletionWithPlentyReady_EachWorkerCarriesTheWholeSegmentItReadAndShortOnesAreShared()
    {
        // 20 messages ready at once, segments of 8, two workers: two full segments go whole (one per worker's turn at
        // the source); the last read, 4 before the end, is split between the workers. Splitting full segments too would
        // make the workers finish together and queue at the source every round.
        var destination = new SegmentRecordingDestination<int>();
        var source = new TestSource<int>(TestMessages.Ints(20));
        var pipeline = Kawa.Dataflow.Pipeline.Create("whole-segments")
            .From(source)
            .Handle("work", Handler.Pipe<int>(), new StageOptions { MaxDegreeOfParallelism = 2, EnsureOrdered = false })
            .To(destination)
            .Build(new PipelineOptions { SegmentSize = 8 });
        Assert.That(pipeline.RunsToCompletion, Is.True);

        await pipeline.RunAsync().WaitAsync(Wait);

        Assert.That(destination.SegmentSizes.Order(), Is.EqualTo(new[] { 2, 2, 8, 8 }));
        Assert.That(source.Tokens.Select(t => t.Outcome).ToList(), Has.Count.EqualTo(20).And.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_RunToCompletionWithABurstOfExactlyASegment_SharesItOutToEveryWorker()
    {
        // Three messages, a segment of three, then nothing ready: the segment is full, but no other worker has anything
        // to read, so it must be shared. Each handler call waits until all three are inside at once.
        const int parallelism = 3;
        var (handler, allIn) = AllInsideAtOnce(parallelism);
        var source = new TestSource<int>(TestMessages.Ints(parallelism), endless: true);
        var pipeline = Kawa.Dataflow.Pipeline.Create("burst")
            .From(source)
            .Handle("work", handler, new StageOptions { MaxDegreeOfParallelism = parallelism, EnsureOrdered = false })
            .To(new RecordingDestination<int>(), new DestinationOptions { MaxDegreeOfParallelism = parallelism })
            .Build(new PipelineOptions { SegmentSize = parallelism });
        Assert.That(pipeline.RunsToCompletion, Is.True);
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(stop.Token);

        await allIn.WaitAsync(Wait);
        await stop.CancelAsync();
        await run.WaitAsync(Wait);

        Assert.That(source.Tokens.Select(t => t.Outcome).ToList(), Has.Count.EqualTo(parallelism).And.All.EqualTo(AckOutcome.Acked));
    }

    [TestCase(true)]
    [TestCase(false)]
    public async Task RunAsync_SourceReturnsPooledValueTasks_EachIsReadOnceAndTheRunEnds(bool runToCompletion)
    {
        // A source may back its completed tasks with one reusable IValueTaskSource, which allows one read per task.
        var source = new PooledTaskSource(25);
        var destination = new RecordingDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("pooled")
            .From(source)
            .Handle("work", Handler.Pipe<int>(), new StageOptions { MaxDegreeOfParallelism = 2, EnsureOrdered = false })
            .To(destination, new DestinationOptions { MaxDegreeOfParallelism = 2 })
            .Build(new PipelineOptions { SegmentSize = 8, RunToCompletion = runToCompletion });

        await pipeline.RunAsync().WaitAsync(Wait);

        Assert.That(destination.Written.Select(m => m.Value).Order(), Is.EqualTo(Enumerable.Range(0, 25)));
        Assert.That(source.Tokens.Select(t => t.Outcome), Has.All.EqualTo(AckOutcome.Acked));
    }

    /// <summary>
    /// Hands out messages, then end of stream, each in a completed task backed by one reused
    /// <see cref="System.Threading.Tasks.Sources.IValueTaskSource{TResult}"/> that throws when a task is read twice.
    /// </summary>
    private sealed class PooledTaskSource(int count) : ISource<int>, System.Threading.Tasks.Sources.IValueTaskSource<Delivery<int>>
    {
        private readonly ConcurrentQueue<RecordingToken> _tokens = new();
        private Delivery<int> _current;
        private short _version;
        private bool _read = true;
        private int _next;

        public IReadOnlyCollection<RecordingToken> Tokens => _tokens;

        public ValueTask<Delivery<int>> ReceiveAsync(CancellationToken cancellationToken = default)
        {
            if (!_read)
            {
                throw new InvalidOperationException("a receive before the last task was read");
            }

            if (_next < count)
            {
                var token = new RecordingToken(_next);
                _tokens.Enqueue(token);
                _current = new Delivery<int>(new Message<int>(_next++), token);
            }
            else
            {
                _current = Delivery<int>.EndOfStream;
            }

            _read = false;
            return new ValueTask<Delivery<int>>(this, ++_version);
        }

        public Delivery<int> GetResult(short token)
        {
            if (token != _version || _read)
            {
                throw new InvalidOperationException("a pooled task was read twice");
            }

            _read = true;
            return _current;
        }

        public System.Threading.Tasks.Sources.ValueTaskSourceStatus GetStatus(short token) => System.Threading.Tasks.Sources.ValueTaskSourceStatus.Succeeded;

        public void OnCompleted(Action<object?> continuation, object? state, short token, System.Threading.Tasks.Sources.ValueTaskSourceOnCompletedFlags flags)
            => throw new InvalidOperationException("always completed");
    }

    /// <summary>
    /// A handler whose every call waits until <paramref name="parallelism"/> calls are inside it at once, and the task
    /// that completes when they are: only a pipeline that really runs that many at once gets through.
    /// </summary>
    private static (HandlerFunc<int, int> Handler, Task AllIn) AllInsideAtOnce(int parallelism)
    {
        var inside = 0;
        var allIn = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new HandlerFunc<int, int>(async (message, ct) =>
        {
            if (Interlocked.Increment(ref inside) == parallelism)
            {
                allIn.TrySetResult();
            }

            await allIn.Task.WaitAsync(ct);
            return new Messages<int>(message);
        });
        return (handler, allIn.Task);
    }

    /// <summary>Takes whole segments (as the pipeline's own sinks do), records each one's size, and acks its tokens.</summary>
    private sealed class SegmentRecordingDestination<T> : IDestination<T>, ISegmentDestination<T>
    {
        private readonly ConcurrentQueue<int> _sizes = new();

        public IReadOnlyCollection<int> SegmentSizes => _sizes;

        public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
            => throw new InvalidOperationException("the pipeline sends segments to a segment destination");

        public ValueTask SendSegmentAsync(Envelope<T>[] items, int count, CancellationToken cancellationToken)
        {
            _sizes.Enqueue(count);
            for (var i = 0; i < count; i++)
            {
                items[i].Ack.Ack();
            }

            return default;
        }
    }

    [Test]
    public async Task RunAsync_RunToCompletionWithFewerMessagesReadyThanASegment_SharesThemOutToEveryWorker()
    {
        // Three messages, read by one worker in one go (the segment holds 64): each handler call waits until all
        // three are inside at once, which only happens if that worker shared them out.
        const int parallelism = 3;
        var (handler, _) = AllInsideAtOnce(parallelism);
        var source = new TestSource<int>(TestMessages.Ints(parallelism));
        var pipeline = Kawa.Dataflow.Pipeline.Create("shares")
            .From(source)
            .Handle("work", handler, new StageOptions { MaxDegreeOfParallelism = parallelism, EnsureOrdered = false })
            .To(new RecordingDestination<int>(), new DestinationOptions { MaxDegreeOfParallelism = parallelism })
            .Build();
        Assert.That(pipeline.RunsToCompletion, Is.True);

        await pipeline.RunAsync().WaitAsync(Wait);

        Assert.That(source.Tokens.Select(t => t.Outcome).ToList(), Has.Count.EqualTo(parallelism).And.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_RunToCompletion_NoStageRunsMoreOftenThanItsParallelismAndAllWorkersRun()
    {
        const int parallelism = 3;
        var handling = 0;
        var maxHandling = 0;
        var sending = 0;
        var maxSending = 0;
        var allIn = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new HandlerFunc<int, int>(async (message, ct) =>
        {
            var now = Interlocked.Increment(ref handling);
            HighWaterMark.Raise(ref maxHandling, now);
            if (now == parallelism)
            {
                allIn.TrySetResult();
            }

            // The first messages wait until every worker is inside the handler at once: proof they run in parallel.
            if (message.Value < parallelism)
            {
                await allIn.Task.WaitAsync(ct);
            }

            Interlocked.Decrement(ref handling);
            return new Messages<int>(message);
        });
        var destination = new DestinationFunc<int>(async (ack, _, _) =>
        {
            HighWaterMark.Raise(ref maxSending, Interlocked.Increment(ref sending));
            await Task.Yield();
            Interlocked.Decrement(ref sending);
            ack.Ack();
        });

        // The test source throws if it is called concurrently.
        var source = new TestSource<int>(TestMessages.Ints(2_000));
        var pipeline = Kawa.Dataflow.Pipeline.Create("limits")
            .From(source)
            .Handle("work", handler, new StageOptions { MaxDegreeOfParallelism = parallelism, EnsureOrdered = false })
            .To(destination, new DestinationOptions { MaxDegreeOfParallelism = parallelism })
            .Build(new PipelineOptions { SegmentSize = 1 });
        Assert.That(pipeline.RunsToCompletion, Is.True);

        await pipeline.RunAsync().WaitAsync(Wait);

        Assert.That(maxHandling, Is.EqualTo(parallelism));
        Assert.That(maxSending, Is.InRange(1, parallelism));
        Assert.That(source.Tokens.Select(t => t.Outcome).ToList(), Has.Count.EqualTo(2_000).And.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_RunToCompletionWithSinkHoldingEverything_ReadsExactlyMaxInFlightThenWaits()
    {
        var source = new TestSource<int>(TestMessages.Ints(1_000));
        var destination = new HoldingDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("limit")
            .From(source)
            .Handle("pipe", Handler.Pipe<int>(), new StageOptions { MaxDegreeOfParallelism = 2, EnsureOrdered = false })
            .To(destination, new DestinationOptions { MaxDegreeOfParallelism = 2 })
            .Build(new PipelineOptions { MaxInFlightMessages = 37, SegmentSize = 8 });
        Assert.That(pipeline.RunsToCompletion, Is.True);
        var maxUnsettled = 0;
        source.OnReceived = n => maxUnsettled = Math.Max(maxUnsettled, n - source.Tokens.Count(t => t.IsCompleted));

        // The sink holds every token until it is asked to commit; at the limit the pipeline asks it (everything read
        // has reached it), so the run still reads all 1,000, 37 at a time.
        await pipeline.RunAsync().WaitAsync(Wait);

        Assert.That(maxUnsettled, Is.EqualTo(37));
        Assert.That(destination.Events.Count(e => e.StartsWith("commit", StringComparison.Ordinal)), Is.GreaterThanOrEqualTo(1_000 / 37));
        Assert.That(source.Tokens.Select(t => t.Outcome).ToList(), Has.Count.EqualTo(1_000).And.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_RunToCompletionIdleWhileAWorkerStillHandles_CommitsOnlyAfterEveryMessageReachedTheDestinationOrWasSettled()
    {
        var source = new IdleScriptSource<int>().Send(0, 1, 2, 3).Idle().AwaitOutcomes();
        var destination = new HoldingDestination<int>();

        // Message 0 is still in the first worker's handler when the second worker reads the rest and the source says
        // Idle: the commit must wait for it. 0 fans out to two outputs, 1 is filtered out (acked by the stage).
        var handler = new HandlerFunc<int, int>(async (message, ct) =>
        {
            if (message.Value == 0)
            {
                await source.IdleReturned.WaitAsync(ct);
            }

            return message.Value switch
            {
                0 => new Messages<int>([new Message<int>(0), new Message<int>(100)]),
                1 => Messages<int>.None,
                _ => new Messages<int>(message),
            };
        });
        var pipeline = Kawa.Dataflow.Pipeline.Create("idle-wait").From(source)
            .Handle("work", handler, new StageOptions { MaxDegreeOfParallelism = 2, EnsureOrdered = false })
            .To(destination, new DestinationOptions { MaxDegreeOfParallelism = 2 })
            .Build(new PipelineOptions { SegmentSize = 1 });
        Assert.That(pipeline.RunsToCompletion, Is.True);

        await pipeline.RunAsync().WaitAsync(Wait);

        var events = destination.Events;
        Assert.That(events[^2..], Is.EqualTo(new[] { "commit 4", "flush 0" }), "one commit, after all four outputs were sent");
        Assert.That(events[..^2], Is.EquivalentTo(new[] { "send 0", "send 100", "send 2", "send 3" }));
        Assert.That(source.Outcomes(), Is.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_RunToCompletionWithSourceSometimesNotReady_EveryMessageHandledOnceAndAcked()
    {
        const int count = 5_000;
        var source = new SometimesLateSource(count);
        var handled = new ConcurrentDictionary<int, int>();
        var written = new ConcurrentDictionary<int, int>();
        await using var sink = new BatchingDestination<int>(
            (batch, _) =>
            {
                foreach (var message in batch)
                {
                    written.AddOrUpdate(message.Value, 1, (_, n) => n + 1);
                }

                return ValueTask.CompletedTask;
            },
            new BatchingOptions<int> { MaxBatchSize = 100 });
        var pipeline = Kawa.Dataflow.Pipeline.Create("late")
            .From(source)
            .Handle("count", Handler.Map<int, int>(m => { handled.AddOrUpdate(m.Value, 1, (_, n) => n + 1); return m; }), new StageOptions { MaxDegreeOfParallelism = 2, EnsureOrdered = false })
            .To(sink)
            .Build(new PipelineOptions { SegmentSize = 32, MaxInFlightMessages = 300 });
        Assert.That(pipeline.RunsToCompletion, Is.True);

        await pipeline.RunAsync().WaitAsync(Wait);

        Assert.That(handled, Has.Count.EqualTo(count));
        Assert.That(handled.Values, Is.All.EqualTo(1));
        Assert.That(written, Has.Count.EqualTo(count));
        Assert.That(written.Values, Is.All.EqualTo(1));
        Assert.That(source.Outcomes, Has.Count.EqualTo(count).And.All.EqualTo(AckKind.Ack));
        Assert.That(source.LateReceives, Is.GreaterThan(0), "some receives completed asynchronously");
    }

    [Test]
    public async Task RunAsync_RunToCompletionHandlerFails_SurfacesStageAndAcksNothingUnfinished()
    {
        var source = new TestSource<int>(TestMessages.Ints(500));
        var destination = new RecordingDestination<int>();
        var handler = new HandlerFunc<int, int>((message, _) => message.Value == 250
            ? throw new InvalidDataException("bad 250")
            : new ValueTask<Messages<int>>(new Messages<int>(message)));
        var pipeline = Kawa.Dataflow.Pipeline.Create("fails")
            .From(source)
            .Handle("parse", handler, new StageOptions { MaxDegreeOfParallelism = 2, EnsureOrdered = false })
            .To(destination, new DestinationOptions { MaxDegreeOfParallelism = 2 })
            .Build(new PipelineOptions { SegmentSize = 10 });
        Assert.That(pipeline.RunsToCompletion, Is.True);

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(Wait));

        Assert.That(error!.Stage, Is.EqualTo("handler:parse"));
        Assert.That(error.InnerException, Is.TypeOf<InvalidDataException>());
        var written = destination.Written.Select(m => m.Value).ToHashSet();
        foreach (var token in source.Tokens)
        {
            Assert.That(token.Completions, Is.EqualTo(1), $"message {token.Id}");
            if (token.Outcome == AckOutcome.Acked)
            {
                Assert.That(written, Does.Contain(token.Id), $"message {token.Id} acked but not written");
            }
        }

        Assert.That(source.Tokens.Single(t => t.Id == 250).Outcome!.Value.Kind, Is.EqualTo(AckKind.Nack));
    }

    [Test]
    public async Task RunAsync_RunToCompletionCancelled_DrainsAndSettlesEveryMessageRead()
    {
        using var cts = new CancellationTokenSource();
        var source = new TestSource<int>(TestMessages.Ints(100_000)) { OnReceived = n => { if (n == 3_000) { cts.Cancel(); } } };
        var destination = new RecordingDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("drain")
            .From(source)
            .Handle("pipe", Handler.Pipe<int>(), new StageOptions { MaxDegreeOfParallelism = 2, EnsureOrdered = false })
            .To(destination, new DestinationOptions { MaxDegreeOfParallelism = 2 })
            .Build(new PipelineOptions { SegmentSize = 64 });
        Assert.That(pipeline.RunsToCompletion, Is.True);

        await pipeline.RunAsync(cts.Token).WaitAsync(Wait);

        // Receiving stopped soon after the cancel (what was read by then is at most a segment per worker more) and
        // everything read was written and acked.
        Assert.That(source.Received, Is.InRange(3_000, 3_000 + 64));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(destination.Written.Select(m => m.Value).Order(), Is.EqualTo(Enumerable.Range(0, source.Received)));
    }

    /// <summary>Messages 0..count-1; every seventh receive completes later, on another thread.</summary>
    private sealed class SometimesLateSource(int count) : ISource<int>
    {
        private readonly ConcurrentQueue<AckKind> _outcomes = new();
        private int _next;
        private int _pending;

        public IReadOnlyCollection<AckKind> Outcomes => _outcomes;

        public int LateReceives { get; private set; }

        public ValueTask<Delivery<int>> ReceiveAsync(CancellationToken cancellationToken = default)
        {
            if (Interlocked.Exchange(ref _pending, 1) != 0)
            {
                throw new InvalidOperationException("ReceiveAsync called concurrently.");
            }

            if (_next % 7 == 3)
            {
                LateReceives++;
                return LateAsync();
            }

            return new(Next());
        }

        private async ValueTask<Delivery<int>> LateAsync()
        {
            await Task.Yield();
            return Next();
        }

        private Delivery<int> Next()
        {
            var value = _next;
            Delivery<int> delivery = value >= count
                ? Delivery<int>.EndOfStream
                : new(new Message<int>(value), AckToken.Create(outcome => _outcomes.Enqueue(outcome.Kind)));
            if (value < count)
            {
                _next = value + 1;
            }

            Volatile.Write(ref _pending, 0);
            return delivery;
        }
    }
}
