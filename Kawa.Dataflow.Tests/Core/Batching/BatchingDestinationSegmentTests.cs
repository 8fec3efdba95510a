using System.Collections.Concurrent;
using Kawa.Dataflow.Tests.Core.Pipeline;
using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Core.Batching;

/// <summary>
/// The pipeline's segment path into <see cref="BatchingDestination{T}"/> (one call per segment, one token per envelope),
/// batches larger than one storage chunk, and a disposal that must not leave a sender waiting for room.
/// </summary>
public class BatchingDestinationSegmentTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static BatchingOptions<string> Options(Action<BatchingOptions<string>>? configure = null)
    {
        var options = new BatchingOptions<string>
        {
            MaxBatchSize = 3,
            MaxBatchAge = Timeout.InfiniteTimeSpan,
            FlushTimeout = Timeout.InfiniteTimeSpan,
            RetryJitter = false,
            StageName = "batching-segment-test-" + Guid.NewGuid().ToString("N"),
        };
        configure?.Invoke(options);
        return options;
    }

    private static (Envelope<string>[] Items, AckProbe[] Probes) Segment(params string[] values)
    {
        var probes = values.Select(_ => new AckProbe()).ToArray();
        return (values.Select((v, i) => new Envelope<string>(new Message<string>(v), probes[i])).ToArray(), probes);
    }

    [Test]
    public async Task SendSegmentAsync_FiveEnvelopes_EachAckedOnlyAfterItsOwnBatchFlushed()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options());
        var (items, probes) = Segment("m0", "m1", "m2", "m3", "m4");

        await ((ISegmentDestination<string>)sink).SendSegmentAsync(items, items.Length, CancellationToken.None).AsTask().WaitAsync(Wait);

        var first = await flusher.NextAsync();
        Assert.That(first.Values, Is.EqualTo(new[] { "m0", "m1", "m2" }));
        Assert.That(probes.Select(p => p.IsCompleted), Is.All.False, "nothing is acked before its flush returned");
        first.Succeed();
        for (var i = 0; i < 3; i++)
        {
            Assert.That(await probes[i].WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        }

        Assert.That(probes[3].IsCompleted || probes[4].IsCompleted, Is.False, "m3 and m4 wait in the open batch");
        var drain = sink.FlushAsync().AsTask();
        var second = await flusher.NextAsync();
        Assert.That(second.Values, Is.EqualTo(new[] { "m3", "m4" }));
        second.Succeed();
        await drain.WaitAsync(Wait);
        Assert.That(probes.Select(p => p.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(probes.Select(p => p.Completions), Is.All.EqualTo(1));
    }

    [Test]
    public async Task SendSegmentAsync_CancelledAfterPartTaken_ReturnsAndNacksOnlyTheEnvelopesNotTaken()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.BufferedBatches = 0; }));
        using var cts = new CancellationTokenSource();
        var (items, probes) = Segment("a", "b", "c");

        var send = ((ISegmentDestination<string>)sink).SendSegmentAsync(items, items.Length, cts.Token).AsTask();
        var first = await flusher.NextAsync(); // "a" is flushing, "b" is buffered, "c" waits for room
        Assert.That(send.IsCompleted, Is.False);
        await cts.CancelAsync();
        await send.WaitAsync(Wait);

        Assert.That(probes[2].Outcome, Is.EqualTo(AckOutcome.Negative()), "c was never taken: the sink nacks it, having returned rather than thrown");
        Assert.That(probes[0].IsCompleted || probes[1].IsCompleted, Is.False, "a and b are still held");
        first.Succeed();
        (await flusher.NextAsync()).Succeed();
        Assert.That(await probes[0].WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        Assert.That(await probes[1].WaitAsync(), Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task SendSegmentAsync_CancelledBeforeAnyTaken_ThrowsAndLeavesEveryToken()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.BufferedBatches = 0; }));
        await sink.SendAsync(AckToken.None(), new Message<string>("flushing"));
        var call = await flusher.NextAsync();
        await sink.SendAsync(AckToken.None(), new Message<string>("buffered")).AsTask().WaitAsync(Wait);
        using var cts = new CancellationTokenSource();
        var (items, probes) = Segment("x", "y");

        var blocked = ((ISegmentDestination<string>)sink).SendSegmentAsync(items, items.Length, cts.Token).AsTask();
        await cts.CancelAsync();

        Assert.That(async () => await blocked.WaitAsync(Wait), Throws.InstanceOf<OperationCanceledException>());
        call.Succeed();
        (await flusher.NextAsync()).Succeed();
        await sink.FlushAsync().AsTask().WaitAsync(Wait);
        Assert.That(probes.Select(p => p.IsCompleted), Is.All.False, "a segment send that throws leaves every token to the caller");
    }

    [Test]
    public async Task SendSegmentAsync_AfterFlushAsync_ThrowsAndLeavesEveryToken()
    {
        await using var sink = new BatchingDestination<string>(new ScriptedFlusher<string>(), Options());
        await sink.FlushAsync();
        var (items, probes) = Segment("late", "later");

        Assert.That(
            async () => await ((ISegmentDestination<string>)sink).SendSegmentAsync(items, items.Length, CancellationToken.None),
            Throws.InstanceOf<InvalidOperationException>());
        Assert.That(probes.Select(p => p.IsCompleted), Is.All.False);
    }

    [Test]
    public async Task MaxBatchSize_LargerThanOneStorageChunk_FlusherSeesEveryMessageInOrderByIndexAndEnumeration()
    {
        const int count = 5000; // Message<string> is 32 bytes: more than one 64 KiB chunk
        var seen = new List<(int Count, string[] ByIndex, string[] Enumerated)>();
        await using var sink = new BatchingDestination<string>(
            (batch, _) =>
            {
                seen.Add((batch.Count, Enumerable.Range(0, batch.Count).Select(i => batch[i].Value).ToArray(), batch.Select(m => m.Value).ToArray()));
                return default;
            },
            Options(o => o.MaxBatchSize = count));
        var probes = new List<AckProbe>();
        for (var i = 0; i < count + 10; i++)
        {
            var probe = new AckProbe();
            probes.Add(probe);
            await sink.SendAsync(probe, new Message<string>($"m{i}"));
        }

        await sink.FlushAsync().AsTask().WaitAsync(Wait);

        var expected = Enumerable.Range(0, count + 10).Select(i => $"m{i}").ToArray();
        Assert.That(seen.Select(s => s.Count), Is.EqualTo(new[] { count, 10 }));
        Assert.That(seen.SelectMany(s => s.ByIndex), Is.EqualTo(expected));
        Assert.That(seen.SelectMany(s => s.Enumerated), Is.EqualTo(expected));
        Assert.That(probes.Select(p => p.Outcome), Is.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task DisposeAsync_SenderWaitingForRoom_IsWokenThrowsAndLeavesItsTokenWhileHeldOnesAreNacked()
    {
        var flusher = new ScriptedFlusher<string>();
        var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.BufferedBatches = 0; }));
        var flushing = new AckProbe();
        var buffered = new AckProbe();
        var waiting = new AckProbe();
        await sink.SendAsync(flushing, new Message<string>("a"));
        await flusher.NextAsync();
        await sink.SendAsync(buffered, new Message<string>("b")).AsTask().WaitAsync(Wait);
        var blocked = sink.SendAsync(waiting, new Message<string>("c")).AsTask();
        Assert.That(blocked.IsCompleted, Is.False);

        await sink.DisposeAsync().AsTask().WaitAsync(Wait);

        Assert.That(async () => await blocked.WaitAsync(Wait), Throws.InstanceOf<ObjectDisposedException>());
        Assert.That(waiting.IsCompleted, Is.False, "its send threw: the token is the caller's");
        Assert.That(flushing.Outcome, Is.EqualTo(AckOutcome.Negative()));
        Assert.That(buffered.Outcome, Is.EqualTo(AckOutcome.Negative()));
    }

    [Test]
    public async Task OnErrorDeadLetter_EveryDeadLetterSettled_BatchNoLongerTrackedSoALongRunDoesNotAccumulateThem()
    {
        var flusher = new ScriptedFlusher<string>();
        var letters = new ConcurrentQueue<AckToken>();
        var bothLettersSent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var dlq = new DestinationFunc<DeadLetter<string>>((ack, _, _) =>
        {
            letters.Enqueue(ack);
            if (letters.Count == 2)
            {
                bothLettersSent.TrySetResult();
            }

            return default;
        });
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 2; o.MaxRetries = 0; o.OnError = BatchErrorHandler<string>.DeadLetter(dlq); }));
        var probes = new[] { new AckProbe(), new AckProbe() };
        await sink.SendAsync(probes[0], new Message<string>("a"));
        await sink.SendAsync(probes[1], new Message<string>("b"));

        (await flusher.NextAsync()).Fail(new InvalidDataException("row rejected"));
        await bothLettersSent.Task.WaitAsync(Wait);

        Assert.That(sink.UnsettledBatchCount, Is.EqualTo(1), "the dead letters are not durable yet");
        foreach (var letter in letters)
        {
            letter.Ack();
        }

        Assert.That(probes.Select(p => p.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(sink.UnsettledBatchCount, Is.Zero);
    }

    [Test]
    public async Task Pipeline_BatchingSink_EveryMessageFlushedOnceAndEveryTokenAckedOnce()
    {
        var flushed = new ConcurrentQueue<int>();
        var source = new TestSource<int>(TestMessages.Ints(5000));
        var sink = new BatchingDestination<int>(
            (batch, _) =>
            {
                foreach (var message in batch)
                {
                    flushed.Enqueue(message.Value);
                }

                return default;
            },
            new BatchingOptions<int> { MaxBatchSize = 97, MaxBatchAge = Timeout.InfiniteTimeSpan });
        var pipeline = Kawa.Dataflow.Pipeline.Create("segment-batching").From(source).To(sink).Build(new PipelineOptions { SegmentSize = 64 });

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(flushed.Order(), Is.EqualTo(Enumerable.Range(0, 5000)));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(source.Tokens.Select(t => t.Completions), Is.All.EqualTo(1));
    }

    [Test]
    public async Task Pipeline_BatchingSinkRaisesOnFailedFlush_RunFailsAtDestinationAndNothingUnflushedIsAcked()
    {
        var boom = new IOException("disk full");
        var flushed = new ConcurrentQueue<int>();
        var source = new TestSource<int>(TestMessages.Ints(2000));
        var sink = new BatchingDestination<int>(
            (batch, _) =>
            {
                if (batch[0].Value >= 500)
                {
                    throw boom;
                }

                foreach (var message in batch)
                {
                    flushed.Enqueue(message.Value);
                }

                return default;
            },
            new BatchingOptions<int> { MaxBatchSize = 100, MaxBatchAge = Timeout.InfiniteTimeSpan, MaxRetries = 0 });
        var pipeline = Kawa.Dataflow.Pipeline.Create("segment-batching-raise").From(source).To(sink).Build(new PipelineOptions { SegmentSize = 32 });

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(TestMessages.Generous));

        Assert.That(error!.Stage, Is.EqualTo("destination"));
        Assert.That(error.InnerException, Is.InstanceOf<BatchFlushException>());
        var durable = flushed.ToHashSet();
        Assert.That(source.Tokens.Where(t => t.Outcome == AckOutcome.Acked).Select(t => t.Id), Is.SubsetOf(durable), "only flushed messages are acked");
        Assert.That(source.Tokens.Where(t => !durable.Contains(t.Id)).Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Negative()));
        Assert.That(source.Tokens.Select(t => t.Completions), Is.All.EqualTo(1));
    }
}
