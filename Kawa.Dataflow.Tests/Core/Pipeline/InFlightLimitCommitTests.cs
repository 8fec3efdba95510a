using System.Collections.Concurrent;
using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

/// <summary>
/// A sink that acks only when it commits can hold every message the in-flight limit lets the pump read (a batch or a
/// file larger than the window, many open partitions). Then only a commit can free room: the pump, parked at the limit
/// with everything read already at the destination, has the destinations commit what they hold instead of waiting
/// for messages it will never read.
/// </summary>
public class InFlightLimitCommitTests
{
    [Test]
    public async Task RunAsync_SinkHoldsWholeWindowUntilCommit_CommitsAtEachLimitAndAcksAll()
    {
        var source = new TestSource<int>(TestMessages.Ints(1000));
        var destination = new HoldingDestination<int>();

        await Kawa.Dataflow.Pipeline.Create("limit-commit")
            .From(source)
            .To(destination)
            .Build(new PipelineOptions { MaxInFlightMessages = 100, SegmentSize = 8 })
            .RunAsync()
            .WaitAsync(TestMessages.Generous);

        // Nothing settles by itself here, so each commit comes exactly when the window is full and held.
        var settles = destination.Events.Where(e => !e.StartsWith("send ", StringComparison.Ordinal)).ToArray();
        Assert.That(settles, Is.EqualTo(Enumerable.Repeat("commit 100", 10).Append("flush 0")));
        Assert.That(source.Tokens, Has.Count.EqualTo(1000));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(source.Tokens.Select(t => t.Completions), Is.All.EqualTo(1));
    }

    [Test]
    public async Task RunAsync_BatchLargerThanWindowAndNoAgeTrigger_BatchingSinkFlushesAtLimitAndRunCompletes()
    {
        // Fake time never moves, so the batch age can never flush; the batch size is ten times the window.
        var time = new FakeTimeProvider();
        var batches = new ConcurrentQueue<int>();
        await using var sink = new BatchingDestination<int>(
            (messages, _) =>
            {
                batches.Enqueue(messages.Count);
                return default;
            },
            new BatchingOptions<int> { MaxBatchSize = 1000, MaxBatchAge = TimeSpan.FromHours(1) },
            time);
        var source = new TestSource<int>(TestMessages.Ints(950));

        await Kawa.Dataflow.Pipeline.Create("limit-commit-batching")
            .From(source)
            .To(sink)
            .Build(new PipelineOptions { MaxInFlightMessages = 100 })
            .RunAsync()
            .WaitAsync(TestMessages.Generous);

        Assert.That(batches.Sum(), Is.EqualTo(950));
        Assert.That(batches, Is.All.LessThanOrEqualTo(100), "no batch can hold more than the window");
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(source.Tokens.Select(t => t.Completions), Is.All.EqualTo(1));
    }

    [Test]
    public async Task RunAsync_CommitFreesNothingYet_CommitsOnceThenWaitsForTheAcks()
    {
        // Like a publisher awaiting its server's acks: a commit hands everything on, but the acks come later.
        var source = new TestSource<int>(TestMessages.Ints(150));
        var destination = new LateAckDestination();
        var pipeline = Kawa.Dataflow.Pipeline.Create("limit-commit-late")
            .From(source)
            .To(destination)
            .Build(new PipelineOptions { MaxInFlightMessages = 100, SegmentSize = 10 });
        var parked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        pipeline.OnPumpWaitingForRoom = () => parked.TrySetResult();

        var run = pipeline.RunAsync();
        await parked.Task.WaitAsync(TestMessages.Generous);

        // Parked after one commit, not spinning on commits that cannot help.
        Assert.That(destination.Commits, Is.EqualTo(1));
        Assert.That(source.Received, Is.EqualTo(100));

        destination.AckAll();
        await run.WaitAsync(TestMessages.Generous);

        Assert.That(source.Tokens, Has.Count.EqualTo(150));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(source.Tokens.Select(t => t.Completions), Is.All.EqualTo(1));
    }

    [Test]
    public async Task RunAsync_CommitAtLimitFails_RunFailsAtDestinationAndHeldMessagesAreNegativelyAcked()
    {
        var source = new TestSource<int>(TestMessages.Ints(1000));
        var destination = new HoldingDestination<int> { CommitFailure = new IOException("disk full") };

        var error = await Assert.ThrowsAsync<PipelineStageException>(async () =>
            await Kawa.Dataflow.Pipeline.Create("limit-commit-fail")
                .From(source)
                .To(destination)
                .Build(new PipelineOptions { MaxInFlightMessages = 100 })
                .RunAsync()
                .WaitAsync(TestMessages.Generous));

        Assert.That(error!.Stage, Is.EqualTo("destination"));
        Assert.That(error.InnerException, Is.TypeOf<IOException>());
        Assert.That(source.Received, Is.EqualTo(100), "the failed commit stopped the source at the limit");
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Negative()), "redelivered, never acked");
        Assert.That(source.Tokens.Select(t => t.Completions), Is.All.EqualTo(1));
    }

    /// <summary>Holds every token; commits count but settle nothing; the test (or the final flush) acks them.</summary>
    private sealed class LateAckDestination : IDestination<int>
    {
        private readonly List<AckToken> _held = [];
        private int _commits;

        public int Commits => Volatile.Read(ref _commits);

        public ValueTask SendAsync(AckToken ack, Messages<int> messages, CancellationToken cancellationToken = default)
        {
            lock (_held)
            {
                _held.Add(ack);
            }

            return default;
        }

        public ValueTask CommitHeldAsync(CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _commits);
            return default;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default)
        {
            AckAll();
            return default;
        }

        public void AckAll()
        {
            lock (_held)
            {
                foreach (var token in _held)
                {
                    token.Ack();
                }

                _held.Clear();
            }
        }
    }
}
