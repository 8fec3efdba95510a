using System.Collections.Concurrent;
using Kawa.Dataflow.Tests.Infrastructure;

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
            HighWaterMark.Raise(ref maxActive, now);
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
    public async Task Handle_KeyOrderedRetry_RetriesInPlaceKeyWaitsOtherKeysRun()
    {
        var time = new FakeTimeProvider();
        var calls = new ConcurrentQueue<string>();
        var otherHandled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var failed = 0;
        var messages = new List<Message<int>> { new(1, "busy"), new(2, "busy") };
        messages.AddRange(Enumerable.Range(100, 16).Select(i => new Message<int>(i, "other-" + i)));
        var source = new TestSource<int>(messages);
        var destination = new RecordingDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("key-order-retry")
            .From(source)
            .Handle<int>(
                "flaky",
                (m, _) =>
                {
                    calls.Enqueue(m.Key == "busy" ? $"busy:{m.Value}" : "other");
                    if (m.Value == 1 && Interlocked.Increment(ref failed) == 1)
                    {
                        throw new InvalidOperationException("transient");
                    }

                    if (m.Key != "busy")
                    {
                        otherHandled.TrySetResult();
                    }

                    return new ValueTask<Messages<int>>(m);
                },
                new StageOptions { KeyOrdered = true, MaxDegreeOfParallelism = 4, BoundedCapacity = 100, ErrorPolicy = ErrorPolicy.Retry(1, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1)) })
            .To(destination)
            .Build(new PipelineOptions { TimeProvider = time, SegmentSize = 1 });

        var run = pipeline.RunAsync();
        await time.WaitForTimersCreatedAsync(1).WaitAsync(TestMessages.Generous);

        // 16 other keys over 4 lanes: some lane other than the busy key's runs while the busy key backs off.
        await otherHandled.Task.WaitAsync(TestMessages.Generous);
        Assert.That(calls, Does.Not.Contain("busy:2"), "the busy key's next message waits for the retry");
        time.Advance(TimeSpan.FromMinutes(1));
        await run.WaitAsync(TestMessages.Generous);

        Assert.That(calls.Where(c => c.StartsWith("busy", StringComparison.Ordinal)), Is.EqualTo(new[] { "busy:1", "busy:1", "busy:2" }), "retried in place, before the next message of its key");
        Assert.That(destination.Written.Where(m => m.Key == "busy").Select(m => m.Value), Is.EqualTo(new[] { 1, 2 }));
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
}
