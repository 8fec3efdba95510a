using System.Collections.Concurrent;
using Kawa.Dataflow.Tests.Infrastructure;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

public class PipelineRunTests
{
    [Test]
    public async Task RunAsync_FiniteSource_DeliversEverythingInOrderAcksAllAndFlushesOnce()
    {
        var source = new TestSource<int>(TestMessages.Ints(1000));
        var destination = new RecordingDestination<string>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("run-finite")
            .From(source)
            .Handle("format", Handler.Map<int, string>(m => m.With(m.Value.ToString(System.Globalization.CultureInfo.InvariantCulture))))
            .To(destination)
            .Build();

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(destination.Written.Select(m => m.Value), Is.EqualTo(Enumerable.Range(0, 1000).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(source.Tokens.Select(t => t.Completions), Is.All.EqualTo(1));
        Assert.That(destination.Flushes, Is.EqualTo(1));
    }

    [Test]
    public async Task RunAsync_DestinationKeepsATokenPastItsFlush_ReturnsAndLogsTheMessageLeftUnsettled()
    {
        // A destination that breaks its contract (a token neither settled nor settled by its flush) must not hang a
        // finite run: the run waits its short grace for late outcomes, then logs what is left to the source's redelivery.
        var source = new TestSource<int>(TestMessages.Ints(5));
        var kept = new ConcurrentQueue<AckToken>();
        var destination = new DestinationFunc<int>((ack, messages, _) =>
        {
            if (messages[0].Value == 3)
            {
                kept.Enqueue(ack);
            }
            else
            {
                ack.Ack();
            }

            return default;
        });
        var logs = new CapturingLoggerFactory();
        var pipeline = Kawa.Dataflow.Pipeline.Create("run-kept")
            .From(source)
            .To(destination)
            .Build(new PipelineOptions { LoggerFactory = logs });
        pipeline.StragglerGrace = TimeSpan.FromMilliseconds(50);

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(source.Tokens.Where(t => t.Id != 3).Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(source.Tokens.Single(t => t.Id == 3).Completions, Is.Zero);
        Assert.That(
            logs.Entries.Where(e => e.Level == LogLevel.Warning).Select(e => e.Message),
            Has.One.Contains("1 message(s) still unsettled"));
    }

    [Test]
    public async Task RunAsync_HandlerEmitsNothing_PipelineAcksInput()
    {
        var source = new TestSource<int>(TestMessages.Ints(10));
        var destination = new RecordingDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("run-filter")
            .From(source)
            .Handle("odd", Handler.Filter<int>(m => m.Value % 2 == 1))
            .To(destination)
            .Build();

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(destination.Written.Select(m => m.Value), Is.EqualTo(new[] { 1, 3, 5, 7, 9 }));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_Twice_Throws()
    {
        var pipeline = Kawa.Dataflow.Pipeline.Create("run-twice").From(new TestSource<int>([])).To(new RecordingDestination<int>()).Build();
        await pipeline.RunAsync();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => pipeline.RunAsync());
        Assert.That(error!.Message, Does.Contain("run-twice"));
    }

    [TestCase(true)]
    [TestCase(false)]
    public async Task Handle_ParallelStageLaterMessagesFinishFirst_EnsureOrderedDecidesOutputOrder(bool ensureOrdered)
    {
        const int count = 4;
        var release = Enumerable.Range(0, count).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        var finished = Enumerable.Range(0, count).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        var allInside = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstWritten = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var inside = 0;
        var written = new List<int>();
        var destination = new DestinationFunc<int>((ack, messages, _) =>
        {
            lock (written)
            {
                written.Add(messages[0].Value);
                firstWritten.TrySetResult(messages[0].Value);
            }

            ack.Ack();
            return default;
        });
        var pipeline = Kawa.Dataflow.Pipeline.Create("run-ensure-ordered-" + ensureOrdered)
            .From(new TestSource<int>(TestMessages.Ints(count)))
            .Handle<int>(
                "slow",
                async (m, _) =>
                {
                    if (Interlocked.Increment(ref inside) == count)
                    {
                        allInside.TrySetResult();
                    }

                    await release[m.Value].Task;
                    finished[m.Value].TrySetResult();
                    return m;
                },
                new StageOptions { MaxDegreeOfParallelism = count, EnsureOrdered = ensureOrdered })
            .To(destination)
            .Build(new PipelineOptions { SegmentSize = 1 });

        var run = pipeline.RunAsync();
        await allInside.Task.WaitAsync(TestMessages.Generous);

        // Finish them last to first: 3, then 2, then 1; message 0 is still running.
        for (var i = count - 1; i > 0; i--)
        {
            release[i].SetResult();
            await finished[i].Task.WaitAsync(TestMessages.Generous);
        }

        if (ensureOrdered)
        {
            Assert.That(firstWritten.Task.IsCompleted, Is.False, "nothing may pass message 0 while it runs");
        }
        else
        {
            // Unordered, a finished output leaves at once: proof that the ordered case really had something to reorder.
            Assert.That(await firstWritten.Task.WaitAsync(TestMessages.Generous), Is.Not.EqualTo(0));
        }

        release[0].SetResult();
        await run.WaitAsync(TestMessages.Generous);
        if (ensureOrdered)
        {
            Assert.That(written, Is.EqualTo(new[] { 0, 1, 2, 3 }));
        }
        else
        {
            Assert.That(written, Is.EquivalentTo(new[] { 0, 1, 2, 3 }));
        }
    }

    [Test]
    public async Task Handle_ParallelStageFewMessagesInOneSegment_HandlesThemConcurrently()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var allInside = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inside = 0;
        var source = new TestSource<int>(TestMessages.Ints(4));
        var destination = new RecordingDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("run-parallel-split")
            .From(source)
            .Handle<int>(
                "slow",
                async (m, _) =>
                {
                    if (Interlocked.Increment(ref inside) == 4)
                    {
                        allInside.TrySetResult();
                    }

                    await gate.Task;
                    return m;
                },
                new StageOptions { MaxDegreeOfParallelism = 4 })
            .To(destination)
            .Build(new PipelineOptions { SegmentSize = 64 });

        var run = pipeline.RunAsync();

        // All four are inside the handler at once although the pump read them into one segment.
        await allInside.Task.WaitAsync(TestMessages.Generous);
        gate.SetResult();
        await run.WaitAsync(TestMessages.Generous);
        Assert.That(destination.Written.Select(m => m.Value), Is.EqualTo(new[] { 0, 1, 2, 3 }), "EnsureOrdered keeps arrival order");
    }
}
