using System.Collections.Concurrent;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

public class KeyOrderTests
{
    [Test]
    public async Task Handle_KeyOrdered_SameKeyInArrivalOrderNeverConcurrentDifferentKeysConcurrent()
    {
        const int keys = 1000;
        const int perKey = 5;
        var messages = Enumerable.Range(0, keys * perKey)
            .Select(i => new Message<int>(i, "key-" + (i % keys)))
            .ToArray();
        var active = 0;
        var maxActive = 0;
        var activePerKey = new ConcurrentDictionary<string, int>();
        var sameKeyOverlap = 0;
        var order = new ConcurrentDictionary<string, ConcurrentQueue<int>>();
        var twoAtOnce = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = 1;

        async ValueTask<Messages<int>> HandleAsync(Message<int> message, CancellationToken cancellationToken)
        {
            var now = Interlocked.Increment(ref active);
            InterlockedMax(ref maxActive, now);
            if (now >= 2)
            {
                twoAtOnce.TrySetResult();
            }

            if (activePerKey.AddOrUpdate(message.Key!, 1, (_, n) => n + 1) > 1)
            {
                Interlocked.Increment(ref sameKeyOverlap);
            }

            order.GetOrAdd(message.Key!, _ => new ConcurrentQueue<int>()).Enqueue(message.Value);
            if (Interlocked.Exchange(ref first, 0) == 1)
            {
                // The very first message holds its lane until another lane is demonstrably running at the same time.
                await twoAtOnce.Task.WaitAsync(TestMessages.Generous, cancellationToken);
            }

            for (var i = Random.Shared.Next(4); i > 0; i--)
            {
                await Task.Yield();
            }

            activePerKey.AddOrUpdate(message.Key!, 0, (_, n) => n - 1);
            Interlocked.Decrement(ref active);
            return message;
        }

        var source = new TestSource<int>(messages);
        var destination = new RecordingDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("key-order")
            .From(source)
            .Handle<int>("ordered", HandleAsync, new StageOptions { KeyOrdered = true, MaxDegreeOfParallelism = 4 })
            .To(destination)
            .Build(new PipelineOptions { SegmentSize = 16 });

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(sameKeyOverlap, Is.Zero, "two messages with the same key ran at once");
        Assert.That(maxActive, Is.GreaterThan(1), "different keys never ran in parallel");
        foreach (var (key, values) in order)
        {
            Assert.That(values, Is.Ordered, $"key {key} handled out of arrival order");
        }

        var written = destination.Written.GroupBy(m => m.Key!).ToDictionary(g => g.Key, g => g.Select(m => m.Value).ToArray());
        Assert.That(written, Has.Count.EqualTo(keys));
        Assert.That(written.Values, Has.All.Ordered, "per-key order lost on the way to the destination");
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task Handle_KeyOrderedNullKeys_AllHandledAndAcked()
    {
        var source = new TestSource<int>(TestMessages.Ints(200, i => i % 2 == 0 ? null : "k" + (i % 7)));
        var destination = new RecordingDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("key-order-null")
            .From(source)
            .Handle("ordered", Handler.Pipe<int>(), new StageOptions { KeyOrdered = true, MaxDegreeOfParallelism = 3 })
            .To(destination)
            .Build(new PipelineOptions { SegmentSize = 8 });

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(destination.Written.Select(m => m.Value).Order(), Is.EqualTo(Enumerable.Range(0, 200)));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        var seen = Volatile.Read(ref target);
        while (value > seen)
        {
            var previous = Interlocked.CompareExchange(ref target, value, seen);
            if (previous == seen)
            {
                return;
            }

            seen = previous;
        }
    }
}
