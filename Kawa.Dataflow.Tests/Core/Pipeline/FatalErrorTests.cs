using System.Collections.Concurrent;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

public class FatalErrorTests
{
    private sealed class Boom(string message) : Exception(message);

    /// <summary>Every token settled once; an ack only for a message the destination wrote.</summary>
    private static void AssertNothingUnfinishedAcked(TestSource<int> source, IEnumerable<int> written)
    {
        var durable = written.ToHashSet();
        Assert.That(source.Tokens.Select(t => t.Completions), Is.All.EqualTo(1));
        foreach (var token in source.Tokens.Where(t => t.Outcome == AckOutcome.Acked))
        {
            Assert.That(durable, Does.Contain(token.Id), $"message {token.Id} acked without being written");
        }
    }

    [Test]
    public async Task RunAsync_SourceThrows_StageSourceWithOriginalInnerAndInFlightNacked()
    {
        var boom = new Boom("broker gone");
        var delivered = 0;
        var tokens = new ConcurrentQueue<RecordingToken>();
        var source = new SourceFunc<int>(_ =>
        {
            if (delivered == 5)
            {
                throw boom;
            }

            var token = new RecordingToken(delivered);
            tokens.Enqueue(token);
            return new ValueTask<Delivery<int>>(new Delivery<int>(new Message<int>(delivered++), token));
        });
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var destination = new DestinationFunc<int>(async (ack, _, ct) =>
        {
            await gate.Task.WaitAsync(ct);
            ack.Ack();
        });
        var pipeline = Kawa.Dataflow.Pipeline.Create("fatal-source").From(source).To(destination).Build(new PipelineOptions { SegmentSize = 1 });

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(TestMessages.Generous));

        Assert.That(error!.Stage, Is.EqualTo("source"));
        Assert.That(error.Pipeline, Is.EqualTo("fatal-source"));
        Assert.That(error.InnerException, Is.SameAs(boom));
        Assert.That(error.Message, Does.Contain("source").And.Contain("fatal-source").And.Contain("broker gone"));
        Assert.That(tokens, Has.Count.EqualTo(5));
        Assert.That(tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Negative()));
    }

    [Test]
    [TestCase(false)]
    [TestCase(true)]
    public async Task RunAsync_HandlerThrowsUnderFatal_StageHandlerNameAndNothingUnfinishedAcked(bool map)
    {
        // Handler.Map takes the stage's own loop for map delegates: the same rules must hold there.
        var boom = new Boom("bad record");
        var source = new TestSource<int>(TestMessages.Ints(100));
        var destination = new RecordingDestination<int>();
        var handler = map
            ? Handler.Map<int, int>(m => m.Value == 40 ? throw boom : m)
            : new HandlerFunc<int, int>((m, _) => m.Value == 40 ? throw boom : new ValueTask<Messages<int>>(m));
        var pipeline = Kawa.Dataflow.Pipeline.Create("fatal-handler")
            .From(source)
            .Handle("parse", handler)
            .To(destination)
            .Build(new PipelineOptions { SegmentSize = 4 });

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(TestMessages.Generous));

        Assert.That(error!.Stage, Is.EqualTo("handler:parse"));
        Assert.That(error.InnerException, Is.SameAs(boom));
        Assert.That(source.Tokens.Single(t => t.Id == 40).Outcome, Is.EqualTo(AckOutcome.Negative()));
        AssertNothingUnfinishedAcked(source, destination.Written.Select(m => m.Value));
        Assert.That(destination.Flushes, Is.EqualTo(1), "the destination is still told to settle what it holds");
    }

    [Test]
    public async Task RunAsync_AbortWhileAMapStageIsMidSegment_RestOfTheSegmentNackedNotHandled()
    {
        // Run to completion, segments of four: one worker holds 0-3, the other 4-5 and 6-7. Message 5 fails (fatal);
        // the map of message 1 waits until the run has stopped reading, so 2 and 3 meet an aborting run.
        var boom = new Boom("bad record");
        var source = new TestSource<int>(TestMessages.Ints(8), endless: true);
        var destination = new RecordingDestination<int>();
        var handled = new System.Collections.Concurrent.ConcurrentBag<int>();
        Kawa.Dataflow.Pipeline? pipeline = null;
        pipeline = Kawa.Dataflow.Pipeline.Create("abort-map")
            .From(source)
            .Handle("parse", Handler.Map<int, int>(m =>
            {
                handled.Add(m.Value);
                if (m.Value == 1)
                {
                    // Reading stops a moment before the run counts as aborting (the stop token is cancelled first):
                    // wait for the abort itself, or 2 may slip in between.
                    source.ReceiveCancelled.Wait(TestMessages.Generous);
                    SpinWait.SpinUntil(() => pipeline!.CurrentRun?.IsAborting == true, TestMessages.Generous);
                }

                return m.Value == 5 ? throw boom : m;
            }), new StageOptions { MaxDegreeOfParallelism = 2, EnsureOrdered = false })
            .To(destination, new DestinationOptions { MaxDegreeOfParallelism = 2 })
            .Build(new PipelineOptions { SegmentSize = 4 });
        Assert.That(pipeline.RunsToCompletion, Is.True);

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(TestMessages.Generous));

        Assert.That(error!.InnerException, Is.SameAs(boom));
        Assert.That(handled, Does.Not.Contain(2).And.Not.Contain(3), "not handled once the run aborts");
        Assert.That(source.Tokens.Where(t => t.Id is 2 or 3 or 5).Select(t => t.Outcome), Has.All.EqualTo(AckOutcome.Negative()));
        Assert.That(source.Tokens.Select(t => t.Completions), Has.All.EqualTo(1), "every token read has exactly one outcome");
        AssertNothingUnfinishedAcked(source, destination.Written.Select(m => m.Value));
    }

    /// <summary>Acks what it is sent; its drain flush throws.</summary>
    private sealed class FlushThrowingDestination(Action onFlush) : IDestination<int>
    {
        public ValueTask SendAsync(AckToken ack, Messages<int> messages, CancellationToken cancellationToken = default)
        {
            ack.Ack();
            return default;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default)
        {
            onFlush();
            throw new Boom("third failure: flush");
        }
    }

    [Test]
    public async Task RunAsync_SecondStageFailsAfterTheFirst_OnlyTheFirstSurfacesWithItsStage()
    {
        var first = new Boom("first failure");
        var secondThrew = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var flushThrew = 0;
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var source = new TestSource<int>(TestMessages.Ints(2));
        var destination = new FlushThrowingDestination(() => Interlocked.Increment(ref flushThrew));
        var pipeline = Kawa.Dataflow.Pipeline.Create("fatal-first-wins")
            .From(source)
            .Handle<int>("first", async (m, _) =>
            {
                if (m.Value == 1)
                {
                    await entered.Task; // message 0 is inside the second stage
                    throw first;
                }

                return m;
            })
            .Handle<int>("second", async (m, ct) =>
            {
                entered.TrySetResult();
                try
                {
                    await Task.Delay(Timeout.Infinite, ct);
                }
                catch (OperationCanceledException)
                {
                    // Fails for real (not a cancellation) once the first failure stopped the run.
                    secondThrew.TrySetResult();
                    throw new Boom("second failure");
                }

                return m;
            })
            .To(destination)
            .Build(new PipelineOptions { SegmentSize = 1 });

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(TestMessages.Generous));

        Assert.That(secondThrew.Task.IsCompleted, Is.True, "the second stage did fail, after the first");
        Assert.That(flushThrew, Is.EqualTo(1), "and so did the destination's flush");
        Assert.That(error!.Stage, Is.EqualTo("handler:first"));
        Assert.That(error.InnerException, Is.SameAs(first));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Negative()));
    }

    [Test]
    public async Task RunAsync_DestinationThrows_StageDestinationAndTokenNacked()
    {
        var boom = new Boom("disk full");
        var source = new TestSource<int>(TestMessages.Ints(100));
        var written = new ConcurrentQueue<int>();
        var destination = new DestinationFunc<int>((ack, messages, _) =>
        {
            if (messages[0].Value == 30)
            {
                throw boom;
            }

            written.Enqueue(messages[0].Value);
            ack.Ack();
            return default;
        });
        var pipeline = Kawa.Dataflow.Pipeline.Create("fatal-destination").From(source).To(destination).Build(new PipelineOptions { SegmentSize = 8 });

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(TestMessages.Generous));

        Assert.That(error!.Stage, Is.EqualTo("destination"));
        Assert.That(error.InnerException, Is.SameAs(boom));
        Assert.That(source.Tokens.Single(t => t.Id == 30).Outcome, Is.EqualTo(AckOutcome.Negative()));
        Assert.That(source.Tokens.Where(t => t.Id > 30).Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Negative()));
        AssertNothingUnfinishedAcked(source, written);
    }

    [Test]
    public async Task RunAsync_FatalWhileAnotherThreadIsSettlingAToken_ReturnsOnlyAfterThatOutcomeIsDelivered()
    {
        // Message 0's ack is under way on another thread (its outcome decided, its callback still running) when the
        // send of message 1 fails. Nobody can negatively ack message 0 any more, so the run must wait for that ack to
        // finish rather than return with the message looking unsettled.
        var callbackEntered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseCallback = new ManualResetEventSlim();
        var runWaits = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tokens = new[] { new GatedToken(callbackEntered, releaseCallback), new GatedToken(null, null) };
        var next = 0;
        var source = new SourceFunc<int>(_ => next < tokens.Length
            ? new ValueTask<Delivery<int>>(new Delivery<int>(new Message<int>(next), tokens[next++]))
            : new ValueTask<Delivery<int>>(Delivery<int>.EndOfStream));
        var destination = new DestinationFunc<int>(async (ack, messages, cancellationToken) =>
        {
            if (messages[0].Value == 0)
            {
                _ = Task.Run(ack.Ack, CancellationToken.None);
                return;
            }

            await callbackEntered.Task.WaitAsync(cancellationToken);
            throw new Boom("disk full");
        });
        var pipeline = Kawa.Dataflow.Pipeline.Create("fatal-settling").From(source).To(destination).Build(new PipelineOptions { SegmentSize = 1 });
        pipeline.OnWaitingForStragglers = () => runWaits.TrySetResult();

        var run = pipeline.RunAsync();
        var first = await Task.WhenAny(run, runWaits.Task).WaitAsync(TestMessages.Generous);
        releaseCallback.Set();

        Assert.That(first, Is.SameAs(runWaits.Task), "the run returned while message 0's ack was still being delivered");
        var error = await Assert.ThrowsAsync<PipelineStageException>(() => run.WaitAsync(TestMessages.Generous));
        Assert.That(error!.Stage, Is.EqualTo("destination"));
        Assert.That(tokens[0].Delivered, Is.EqualTo(AckOutcome.Acked));
        Assert.That(tokens[1].Delivered, Is.EqualTo(AckOutcome.Negative()));
    }

    /// <summary>A source token whose outcome callback can be held open (as a slow settlement on another thread is).</summary>
    private sealed class GatedToken(TaskCompletionSource? entered, ManualResetEventSlim? release) : AckToken
    {
        private volatile object? _delivered;

        public AckOutcome? Delivered => (AckOutcome?)_delivered;

        protected override void OnCompleted(AckOutcome outcome)
        {
            entered?.TrySetResult();
            release?.Wait(TestMessages.Generous);
            _delivered = outcome;
        }
    }

    [Test]
    public async Task RunAsync_FlushThrows_StageDestination()
    {
        var boom = new Boom("commit failed");
        var held = new List<AckToken>();
        var destination = new FlushFailingDestination(held, boom);
        var source = new TestSource<int>(TestMessages.Ints(3));
        var pipeline = Kawa.Dataflow.Pipeline.Create("fatal-flush").From(source).To(destination).Build();

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(TestMessages.Generous));

        Assert.That(error!.Stage, Is.EqualTo("destination"));
        Assert.That(error.InnerException, Is.SameAs(boom));

        // The flush threw while holding the tokens: the pipeline cannot settle what it does not hold, and nothing was acked.
        Assert.That(source.Tokens.Any(t => t.Outcome == AckOutcome.Acked), Is.False);
    }

    [Test]
    public async Task RunAsync_SourceReturnsSameTokenTwice_FailsAsSourceError()
    {
        var token = new RecordingToken(0);
        var source = new SourceFunc<int>(_ => new ValueTask<Delivery<int>>(new Delivery<int>(new Message<int>(1), token)));
        var gate = new TaskCompletionSource();
        var pipeline = Kawa.Dataflow.Pipeline.Create("fatal-reused-token")
            .From(source)
            .To(new DestinationFunc<int>(async (ack, _, ct) =>
            {
                await gate.Task.WaitAsync(ct);
                ack.Ack();
            }))
            .Build(new PipelineOptions { SegmentSize = 1 });

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(TestMessages.Generous));

        Assert.That(error!.Stage, Is.EqualTo("source"));
        Assert.That(error.InnerException, Is.TypeOf<InvalidOperationException>());
        Assert.That(token.Outcome, Is.EqualTo(AckOutcome.Negative()));
        Assert.That(token.Completions, Is.EqualTo(1));
    }

    private sealed class FlushFailingDestination(List<AckToken> held, Exception failure) : IDestination<int>
    {
        public ValueTask SendAsync(AckToken ack, Messages<int> messages, CancellationToken cancellationToken = default)
        {
            held.Add(ack);
            return default;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.FromException(failure);
    }
}
