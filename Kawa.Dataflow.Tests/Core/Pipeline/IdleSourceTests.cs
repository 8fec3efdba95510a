using System.Collections.Concurrent;
using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

/// <summary>
/// A source that says <see cref="Delivery{T}.Idle"/>: the pipeline must have its destinations commit what they hold, so
/// a drain-mode source waiting for outcomes ends promptly instead of waiting for a sink's size or age limit.
/// </summary>
public class IdleSourceTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Test]
    public async Task RunAsync_SourceIdle_DestinationCommitsHeldAndRunCompletes()
    {
        var source = new IdleScriptSource<int>().Send(0, 1, 2).Idle().AwaitOutcomes();
        var destination = new HoldingDestination<int>();

        await Kawa.Dataflow.Pipeline.Create("idle-commit").From(source).To(destination).Build().RunAsync().WaitAsync(Wait);

        // Without the commit the tokens would stay held until the final flush, which only comes after end of stream:
        // the source's wait for outcomes would time out and fail the run.
        Assert.That(destination.Events, Is.EqualTo(new[] { "send 0", "send 1", "send 2", "commit 3", "flush 0" }));
        Assert.That(source.Outcomes(), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(source.Probes.Select(p => p.Completions), Is.All.EqualTo(1));
    }

    [Test]
    public async Task RunAsync_IdleWhileHandlersStillWork_CommitsOnlyAfterEveryMessageReachedTheDestinationOrWasSettled()
    {
        var source = new IdleScriptSource<int>().Send(0, 1, 2, 3).Idle().AwaitOutcomes();
        var destination = new HoldingDestination<int>();

        // The handler finishes only after the source returned Idle, so a pipeline that committed at once would commit
        // nothing and leave every token held. 0 fans out to two outputs, 1 is filtered out (acked by the stage).
        var handler = new HandlerFunc<int, int>(async (message, ct) =>
        {
            await source.IdleReturned.WaitAsync(ct);
            return message.Value switch
            {
                0 => new Messages<int>([new Message<int>(0), new Message<int>(100)]),
                1 => Messages<int>.None,
                _ => new Messages<int>(message),
            };
        });

        var options = new PipelineOptions { SegmentSize = 1 };
        await Kawa.Dataflow.Pipeline.Create("idle-wait").From(source)
            .Handle("work", handler, new StageOptions { MaxDegreeOfParallelism = 2 })
            .To(destination)
            .Build(options)
            .RunAsync()
            .WaitAsync(Wait);

        var events = destination.Events;
        Assert.That(events[^2..], Is.EqualTo(new[] { "commit 4", "flush 0" }), "one commit, after all four outputs were sent");
        Assert.That(events[..^2], Is.EquivalentTo(new[] { "send 0", "send 100", "send 2", "send 3" }));
        Assert.That(source.Outcomes(), Is.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_IdleWithNothingInFlightAndIdleRepeated_CommitsEachTimeAndLosesNothing()
    {
        var source = new IdleScriptSource<int>()
            .Idle().Idle()
            .Send(0, 1).Idle().AwaitOutcomes()
            .Send(2).Idle().AwaitOutcomes();
        var destination = new HoldingDestination<int>();

        await Kawa.Dataflow.Pipeline.Create("idle-repeat").From(source).To(destination).Build().RunAsync().WaitAsync(Wait);

        Assert.That(destination.Events, Is.EqualTo(new[]
        {
            "commit 0", "commit 0",
            "send 0", "send 1", "commit 2",
            "send 2", "commit 1",
            "flush 0",
        }));
        Assert.That(source.Outcomes(), Has.Length.EqualTo(3).And.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_IdleWithDeadLetterPolicy_CommitsTheDeadLetterDestinationToo()
    {
        var source = new IdleScriptSource<int>().Send(0, 1).Idle().AwaitOutcomes();
        var destination = new HoldingDestination<int>();
        var deadLetters = new HoldingDestination<DeadLetter<int>>();
        var handler = new HandlerFunc<int, int>((message, _) => message.Value == 1
            ? throw new FormatException("bad")
            : ValueTask.FromResult(new Messages<int>(message)));

        await Kawa.Dataflow.Pipeline.Create("idle-dead-letter").From(source)
            .Handle("parse", handler, new StageOptions { ErrorPolicy = ErrorPolicy.DeadLetter(deadLetters) })
            .To(destination)
            .Build()
            .RunAsync()
            .WaitAsync(Wait);

        Assert.That(destination.Events, Is.EqualTo(new[] { "send 0", "commit 1", "flush 0" }));
        Assert.That(deadLetters.Events[0], Does.StartWith("send DeadLetter { Original = Message { Value = 1,"));
        Assert.That(deadLetters.Events[1..], Is.EqualTo(new[] { "commit 1", "flush 0" }), "the held dead letter is committed, acking its original");
        Assert.That(source.Outcomes(), Is.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_CommitHeldThrows_RunFailsAtDestinationAndHeldTokensAreNegativelyAcked()
    {
        var source = new IdleScriptSource<int>().Send(0, 1).Idle().AwaitOutcomes();
        var destination = new HoldingDestination<int> { CommitFailure = new IOException("disk full") };

        var error = await Assert.ThrowsAsync<PipelineStageException>(async () =>
            await Kawa.Dataflow.Pipeline.Create("idle-fail").From(source).To(destination).Build().RunAsync().WaitAsync(Wait));

        Assert.That(error!.Stage, Is.EqualTo("destination"));
        Assert.That(error.InnerException, Is.TypeOf<IOException>());

        // The destination nacked what it could not commit (the contract), so the source redelivers it; never acked.
        Assert.That(source.Outcomes(), Is.All.EqualTo(AckOutcome.Negative()));
        Assert.That(source.Probes.Select(p => p.Completions), Is.All.EqualTo(1));
    }

    [Test]
    public async Task RunAsync_SourceIdle_BatchingSinkFlushesPartialBatchWithoutItsAgeAndAcksAll()
    {
        var time = new FakeTimeProvider();
        var start = time.GetUtcNow();
        var batches = new ConcurrentQueue<int[]>();
        var sink = new BatchingDestination<int>(
            (messages, _) =>
            {
                batches.Enqueue([.. messages.Select(m => m.Value)]);
                return default;
            },
            new BatchingOptions<int> { MaxBatchSize = 100, MaxBatchAge = TimeSpan.FromHours(1) },
            time);
        var source = new IdleScriptSource<int>().Send(0, 1, 2, 3, 4).Idle().AwaitOutcomes();

        await Kawa.Dataflow.Pipeline.Create("idle-batching").From(source).To(sink).Build().RunAsync().WaitAsync(Wait);

        Assert.That(time.GetUtcNow(), Is.EqualTo(start), "fake time never moved: the age trigger cannot have fired");
        Assert.That(batches, Has.Count.EqualTo(1));
        Assert.That(batches.Single(), Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));
        Assert.That(source.Outcomes(), Is.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_SourceIdle_FlusherHoldingDeferredAcksCommitsThemAndRunContinues()
    {
        var time = new FakeTimeProvider();
        var held = new ConcurrentQueue<DeferredAcks>();
        var commits = 0;
        var flusher = new DeferringFlusher<int>(held, () => Interlocked.Increment(ref commits));
        var sink = new BatchingDestination<int>(flusher, new BatchingOptions<int> { MaxBatchSize = 2, MaxBatchAge = TimeSpan.FromHours(1) }, time);
        var source = new IdleScriptSource<int>().Send(0, 1, 2).Idle().AwaitOutcomes().Send(3).Idle().AwaitOutcomes();

        await Kawa.Dataflow.Pipeline.Create("idle-deferred").From(source).To(sink).Build().RunAsync().WaitAsync(Wait);

        // A full batch [0,1] and the partial [2] are flushed with their acks deferred, then the flusher's checkpoint
        // commits them; the same again for [3]. The drain finds nothing left.
        Assert.That(flusher.Batches, Is.EqualTo(new[] { new[] { 0, 1 }, new[] { 2 }, new[] { 3 } }));
        Assert.That(Volatile.Read(ref commits), Is.EqualTo(2));
        Assert.That(source.Outcomes(), Has.Length.EqualTo(4).And.All.EqualTo(AckOutcome.Acked));
    }

    /// <summary>A flusher that defers every batch's acks and settles them only at the checkpoint (or the drain).</summary>
    private sealed class DeferringFlusher<T>(ConcurrentQueue<DeferredAcks> held, Action onCommit) : IBatchFlusher<T>
    {
        public List<T[]> Batches { get; } = [];

        public ValueTask FlushAsync(Batch<T> batch, CancellationToken cancellationToken)
        {
            lock (Batches)
            {
                Batches.Add([.. batch.Messages.Select(m => m.Value)]);
            }

            held.Enqueue(batch.DeferAcks());
            return default;
        }

        public ValueTask CommitHeldAsync(CancellationToken cancellationToken)
        {
            onCommit();
            return CompleteAsync(cancellationToken);
        }

        public ValueTask CompleteAsync(CancellationToken cancellationToken)
        {
            while (held.TryDequeue(out var acks))
            {
                acks.Ack();
            }

            return default;
        }
    }
}

/// <summary>
/// A scripted source: messages, <see cref="Delivery{T}.Idle"/>, and "await outcomes" steps (the next receive waits until
/// every token handed out so far has its final outcome, failing after a generous bound instead of hanging), then end of
/// stream. The shape of a drain-mode source.
/// </summary>
public sealed class IdleScriptSource<T> : ISource<T>
{
    private readonly Queue<(int Kind, T Value)> _steps = new();
    private readonly List<AckProbe> _probes = [];
    private readonly TaskCompletionSource _idleReturned = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the source first returned Idle.</summary>
    public Task IdleReturned => _idleReturned.Task;

    public IReadOnlyList<AckProbe> Probes
    {
        get
        {
            lock (_probes)
            {
                return [.. _probes];
            }
        }
    }

    public IdleScriptSource<T> Send(params T[] values)
    {
        foreach (var value in values)
        {
            _steps.Enqueue((0, value));
        }

        return this;
    }

    public IdleScriptSource<T> Idle()
    {
        _steps.Enqueue((1, default!));
        return this;
    }

    public IdleScriptSource<T> AwaitOutcomes()
    {
        _steps.Enqueue((2, default!));
        return this;
    }

    public AckOutcome?[] Outcomes() => [.. Probes.Select(p => p.Outcome)];

    public async ValueTask<Delivery<T>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        while (_steps.TryDequeue(out var step))
        {
            switch (step.Kind)
            {
                case 0:
                    var probe = new AckProbe();
                    lock (_probes)
                    {
                        _probes.Add(probe);
                    }

                    return new Delivery<T>(new Message<T>(step.Value), probe);
                case 1:
                    _idleReturned.TrySetResult();
                    return Delivery<T>.Idle;
                default:
                    try
                    {
                        await Task.WhenAll(Probes.Select(p => p.Settled)).WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
                    }
                    catch (TimeoutException)
                    {
                        throw new TimeoutException("The tokens handed out were not settled after the source said Idle: nothing committed what the destination held.");
                    }

                    break;
            }
        }

        return Delivery<T>.EndOfStream;
    }
}

/// <summary>
/// A destination that holds every token until <see cref="CommitHeldAsync"/> or <see cref="FlushAsync"/> (the shape of
/// a file sink acking at commit), logging "send V", "commit N" and "flush N" in order.
/// </summary>
public sealed class HoldingDestination<T> : IDestination<T>
{
    private readonly List<AckToken> _held = [];
    private readonly List<string> _events = [];

    /// <summary>When set, a commit negatively acks what it holds and throws this.</summary>
    public Exception? CommitFailure { get; init; }

    public string[] Events
    {
        get
        {
            lock (_events)
            {
                return [.. _events];
            }
        }
    }

    public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
    {
        lock (_events)
        {
            foreach (var message in messages)
            {
                _events.Add("send " + message.Value);
            }

            _held.Add(ack);
        }

        return default;
    }

    public ValueTask CommitHeldAsync(CancellationToken cancellationToken = default) => Settle("commit", CommitFailure);

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => Settle("flush", null);

    private ValueTask Settle(string what, Exception? failure)
    {
        lock (_events)
        {
            _events.Add($"{what} {_held.Count}");
            foreach (var token in _held)
            {
                token.Complete(failure is null ? AckOutcome.Acked : AckOutcome.Negative());
            }

            _held.Clear();
        }

        return failure is null ? default : ValueTask.FromException(failure);
    }
}
