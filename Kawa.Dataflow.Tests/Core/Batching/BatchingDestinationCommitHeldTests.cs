using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Core.Batching;

/// <summary><see cref="BatchingDestination{T}.CommitHeldAsync"/>: the checkpoint a pipeline takes when its source is idle.</summary>
public class BatchingDestinationCommitHeldTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static BatchingOptions<string> Options() => new()
    {
        MaxBatchSize = 3,
        MaxBatchAge = TimeSpan.FromHours(1),
        FlushTimeout = Timeout.InfiniteTimeSpan,
        StageName = "commit-held-test-" + Guid.NewGuid().ToString("N"),
    };

    [Test]
    public async Task CommitHeldAsync_PartialBatch_FlushedAtOnceWithoutItsAgeAndAcked()
    {
        var time = new FakeTimeProvider();
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(), time);
        var probe = new AckProbe();
        await sink.SendAsync(probe, new Message<string>("a"));

        var commit = sink.CommitHeldAsync().AsTask();
        var call = await flusher.NextAsync();
        Assert.That(call.Values, Is.EqualTo(new[] { "a" }), "the partial batch leaves at once; fake time never moved");
        Assert.That(commit.IsCompleted, Is.False, "the checkpoint waits for the flush it started");

        call.Succeed();
        await commit.WaitAsync(Wait);
        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task CommitHeldAsync_FlushesStillRunning_FlusherCommitsOnlyAfterAllReturned()
    {
        var order = new List<string>();
        var flusher = new ScriptedFlusher<string>
        {
            OnCall = call => call.Deferred = call.Batch.DeferAcks(),
            OnCommitHeld = _ =>
            {
                lock (order)
                {
                    order.Add("commit");
                }

                return default;
            },
        };
        var options = Options();
        options.FlushParallelism = 2;
        await using var sink = new BatchingDestination<string>(flusher, options);
        var full = new[] { new AckProbe(), new AckProbe(), new AckProbe() };
        for (var i = 0; i < 3; i++)
        {
            await sink.SendAsync(full[i], new Message<string>("f" + i));
        }

        var fullCall = await flusher.NextAsync();
        var partial = new AckProbe();
        await sink.SendAsync(partial, new Message<string>("p"));

        var commit = sink.CommitHeldAsync().AsTask();
        var partialCall = await flusher.NextAsync();
        partialCall.Succeed();
        lock (order)
        {
            order.Add("partial flushed");
        }

        Assert.That(commit.IsCompleted, Is.False, "the full batch's flush is still running");
        fullCall.Succeed();
        await commit.WaitAsync(Wait);

        Assert.That(order, Is.EqualTo(new[] { "partial flushed", "commit" }));

        // The flusher deferred every ack: they are its to settle at its commit (here the test plays the flusher).
        Assert.That(full.Concat([partial]).Select(p => p.IsCompleted), Is.All.False);
        fullCall.Deferred!.Ack();
        partialCall.Deferred!.Ack();
        Assert.That(await partial.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task CommitHeldAsync_NothingHeldAndRepeated_CallsTheFlusherEachTimeAndKeepsAccepting()
    {
        var commits = 0;
        var flusher = new ScriptedFlusher<string> { OnCommitHeld = _ => { Interlocked.Increment(ref commits); return default; } };
        await using var sink = new BatchingDestination<string>(flusher, Options());

        await sink.CommitHeldAsync().AsTask().WaitAsync(Wait);
        await sink.CommitHeldAsync().AsTask().WaitAsync(Wait);
        Assert.That(flusher.Started, Is.Zero, "no batch to flush");

        var probe = new AckProbe();
        await sink.SendAsync(probe, new Message<string>("after"));
        var commit = sink.CommitHeldAsync().AsTask();
        (await flusher.NextAsync()).Succeed();
        await commit.WaitAsync(Wait);

        Assert.That(Volatile.Read(ref commits), Is.EqualTo(3));
        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task CommitHeldAsync_FlusherCommitFails_ThrowsAndTheFlusherNackedItsBatch()
    {
        DeferredAcks? held = null;
        var flusher = new ScriptedFlusher<string>
        {
            OnCall = call => held = call.Batch.DeferAcks(),
            OnCommitHeld = _ =>
            {
                // The contract: settle what could not be made durable (nack, so it is redelivered), then throw.
                held!.Nack();
                throw new IOException("commit failed");
            },
        };
        await using var sink = new BatchingDestination<string>(flusher, Options());
        var probe = new AckProbe();
        await sink.SendAsync(probe, new Message<string>("a"));

        var commit = sink.CommitHeldAsync().AsTask();
        (await flusher.NextAsync()).Succeed();

        await Assert.ThrowsAsync<IOException>(() => commit.WaitAsync(Wait));
        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Negative()), "never acked: the source redelivers it");
    }

    [Test]
    public async Task CommitHeldAsync_AfterTheDrain_DoesNothing()
    {
        var commits = 0;
        var flusher = new ScriptedFlusher<string> { OnCommitHeld = _ => { Interlocked.Increment(ref commits); return default; } };
        await using var sink = new BatchingDestination<string>(flusher, Options());
        await sink.FlushAsync().AsTask().WaitAsync(Wait);

        await sink.CommitHeldAsync().AsTask().WaitAsync(Wait);

        Assert.That(Volatile.Read(ref commits), Is.Zero);
    }
}
