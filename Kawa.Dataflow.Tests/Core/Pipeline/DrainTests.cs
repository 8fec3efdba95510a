using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

public class DrainTests
{
    [Test]
    public async Task RunAsync_CancelledWithWorkInFlight_FinishesItAcksAllFlushesAndCompletesNormally()
    {
        var source = new TestSource<int>(TestMessages.Ints(20), endless: true);
        var destination = new RecordingDestination<int>();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var allInHandler = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = 0;
        var pipeline = Kawa.Dataflow.Pipeline.Create("drain-graceful")
            .From(source)
            .Handle<int>(
                "slow",
                async (m, _) =>
                {
                    if (Interlocked.Increment(ref entered) == 20)
                    {
                        allInHandler.TrySetResult();
                    }

                    await gate.Task;
                    return m;
                },
                new StageOptions { MaxDegreeOfParallelism = 20, BoundedCapacity = 20, EnsureOrdered = false })
            .To(destination)
            .Build(new PipelineOptions { SegmentSize = 1 });
        using var cts = new CancellationTokenSource();

        var run = pipeline.RunAsync(cts.Token);
        await allInHandler.Task.WaitAsync(TestMessages.Generous);
        await cts.CancelAsync();
        gate.SetResult();
        await run.WaitAsync(TestMessages.Generous);

        Assert.That(source.Received, Is.EqualTo(20));
        Assert.That(destination.Written, Has.Count.EqualTo(20));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(destination.Flushes, Is.EqualTo(1));
    }

    [Test]
    public async Task RunAsync_CancelledWithPartialBatchInBatchingSink_FlushesItAndAcksEveryMessage()
    {
        var flushed = new List<int[]>();
        var reachedSink = 0;
        var allInSink = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sink = new BatchingDestination<int>(
            (messages, _) =>
            {
                lock (flushed)
                {
                    flushed.Add([.. messages.Select(m => m.Value)]);
                }

                return default;
            },
            new BatchingOptions<int>
            {
                // Neither size nor age can close the batch: only the drain can flush it.
                MaxBatchSize = 100,
                MaxBatchAge = Timeout.InfiniteTimeSpan,
                MaxBatchBytes = long.MaxValue,
                SizeEstimator = _ =>
                {
                    if (Interlocked.Increment(ref reachedSink) == 5)
                    {
                        allInSink.TrySetResult();
                    }

                    return 1;
                },
            });
        var source = new TestSource<int>(TestMessages.Ints(5), endless: true);
        var pipeline = Kawa.Dataflow.Pipeline.Create("drain-partial-batch").From(source).To(sink).Build();
        using var cts = new CancellationTokenSource();

        var run = pipeline.RunAsync(cts.Token);
        await allInSink.Task.WaitAsync(TestMessages.Generous);
        Assert.That(flushed, Is.Empty, "nothing flushed before the stop");
        Assert.That(source.Tokens.Any(t => t.IsCompleted), Is.False);
        await cts.CancelAsync();
        await run.WaitAsync(TestMessages.Generous);

        Assert.That(flushed.SelectMany(b => b), Is.EqualTo(new[] { 0, 1, 2, 3, 4 }), "the partial batch was flushed by the drain");
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(source.Tokens.Select(t => t.Completions), Is.All.EqualTo(1));
    }

    [Test]
    public async Task RunAsync_DrainTimeoutWithHandlersStuck_NacksEverythingUnfinishedAndThrowsCanceled()
    {
        var time = new FakeTimeProvider();
        var source = new TestSource<int>(TestMessages.Ints(50), endless: true);
        var destination = new RecordingDestination<int>();
        var stuck = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pipeline = Kawa.Dataflow.Pipeline.Create("drain-timeout")
            .From(source)
            .Handle<int>(
                "stuck",
                async (m, ct) =>
                {
                    stuck.TrySetResult();
                    await Task.Delay(Timeout.Infinite, ct);
                    return m;
                },
                new StageOptions { MaxDegreeOfParallelism = 2, BoundedCapacity = 100 })
            .To(destination)
            .Build(new PipelineOptions { TimeProvider = time, DrainTimeout = TimeSpan.FromSeconds(5), SegmentSize = 4 });
        var blocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        pipeline.OnPumpWaitingForRoom = () => blocked.TrySetResult();
        using var cts = new CancellationTokenSource();

        var run = pipeline.RunAsync(cts.Token);
        await stuck.Task.WaitAsync(TestMessages.Generous);
        await cts.CancelAsync();
        await time.WaitForTimersCreatedAsync(1).WaitAsync(TestMessages.Generous);
        Assert.That(run.IsCompleted, Is.False, "finished before the drain timeout although handlers were stuck");
        time.Advance(TimeSpan.FromSeconds(5));

        var error = await Assert.ThrowsAsync<OperationCanceledException>(() => run.WaitAsync(TestMessages.Generous));
        Assert.That(error!.Message, Does.Contain("drain-timeout"));
        Assert.That(source.Received, Is.GreaterThan(0));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Negative()));
        Assert.That(destination.Written, Is.Empty);
        Assert.That(destination.Flushes, Is.EqualTo(1));
    }

    [Test]
    public async Task RunAsync_DrainTimeoutDuringFlush_FlushTokenFiresAndSinkNacksWhatItHolds()
    {
        var time = new FakeTimeProvider();
        var held = new List<AckToken>();
        var flushing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var destination = new HoldingDestination(held, flushing);
        var source = new TestSource<int>(TestMessages.Ints(10), endless: true);
        var pipeline = Kawa.Dataflow.Pipeline.Create("drain-flush-timeout")
            .From(source)
            .To(destination)
            .Build(new PipelineOptions { TimeProvider = time, DrainTimeout = TimeSpan.FromSeconds(5) });
        var allReceived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        source.OnReceived = n =>
        {
            if (n == 10)
            {
                allReceived.TrySetResult();
            }
        };
        using var cts = new CancellationTokenSource();

        var run = pipeline.RunAsync(cts.Token);
        await allReceived.Task.WaitAsync(TestMessages.Generous);
        await cts.CancelAsync();
        await flushing.Task.WaitAsync(TestMessages.Generous);
        Assert.That(source.Tokens.Any(t => t.IsCompleted), Is.False);
        time.Advance(TimeSpan.FromSeconds(5));

        await Assert.ThrowsAsync<OperationCanceledException>(() => run.WaitAsync(TestMessages.Generous));
        Assert.That(source.Tokens, Has.Count.EqualTo(10));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Negative()));
    }

    [Test]
    public async Task RunAsync_AlreadyCancelledToken_ReadsNothingAndCompletes()
    {
        var source = new TestSource<int>(TestMessages.Ints(10));
        var destination = new RecordingDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("drain-precancelled").From(source).To(destination).Build();

        await pipeline.RunAsync(new CancellationToken(canceled: true)).WaitAsync(TestMessages.Generous);

        Assert.That(source.Received, Is.Zero);
        Assert.That(destination.Flushes, Is.EqualTo(1));
    }

    /// <summary>Holds every token; its flush waits for a durable write that never comes, until told to stop.</summary>
    private sealed class HoldingDestination(List<AckToken> held, TaskCompletionSource flushing) : IDestination<int>
    {
        public ValueTask SendAsync(AckToken ack, Messages<int> messages, CancellationToken cancellationToken = default)
        {
            lock (held)
            {
                held.Add(ack);
            }

            return default;
        }

        public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
        {
            flushing.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                lock (held)
                {
                    held.ForEach(t => t.Nack());
                }
            }
        }
    }
}
