using System.Threading.Channels;

namespace Kawa.Dataflow.Tests.Core.Sources;

public class MergedSourceTests
{
    [Test]
    public async Task ReceiveAsync_SeveralSources_DeliversAllThenEndsWhenAllEnded()
    {
        var merged = Kawa.Dataflow.Sources.Merge(
            Kawa.Dataflow.Sources.FromValues(new[] { 1, 2 }),
            Kawa.Dataflow.Sources.FromValues(new[] { 10 }),
            Kawa.Dataflow.Sources.FromValues(Array.Empty<int>()));

        var values = new List<int>();
        while (true)
        {
            var delivery = await merged.ReceiveAsync();
            if (delivery.IsEndOfStream)
            {
                break;
            }

            values.Add(delivery.Message.Value);
        }

        Assert.That(values, Is.EquivalentTo(new[] { 1, 2, 10 }));
        Assert.That((await merged.ReceiveAsync()).IsEndOfStream, Is.True);
    }

    [Test]
    public async Task ReceiveAsync_OneSourceIdle_DeliversFromTheOtherAndDoesNotEndEarly()
    {
        var idle = Channel.CreateUnbounded<Message<int>>();
        var merged = Kawa.Dataflow.Sources.Merge(new ChannelSource<int>(idle.Reader), Kawa.Dataflow.Sources.FromValues(new[] { 7 }));

        Assert.That((await merged.ReceiveAsync()).Message.Value, Is.EqualTo(7));
        var next = merged.ReceiveAsync().AsTask();
        Assert.That(next.IsCompleted, Is.False, "one source has ended, the other has not");

        idle.Writer.TryWrite(new Message<int>(8));
        Assert.That((await next.WaitAsync(TimeSpan.FromSeconds(10))).Message.Value, Is.EqualTo(8));
        idle.Writer.Complete();
        Assert.That((await merged.ReceiveAsync()).IsEndOfStream, Is.True);
    }

    [Test]
    public void ReceiveAsync_ASourceThrows_IsFatal()
    {
        var failing = new SourceFunc<int>(_ => throw new IOException("connection lost"));
        var merged = Kawa.Dataflow.Sources.Merge(Kawa.Dataflow.Sources.FromValues(Array.Empty<int>()), failing);

        Assert.That(async () => await merged.ReceiveAsync(), Throws.InstanceOf<IOException>().With.Message.EqualTo("connection lost"));
    }

    [Test]
    public async Task ReceiveAsync_OneSourceThrowsWhileAnotherHoldsAMessage_RethrowsForGoodAndNacksTheHeldMessage()
    {
        var failure = new TaskCompletionSource<Delivery<int>>();
        var failing = new SourceFunc<int>(_ => new ValueTask<Delivery<int>>(failure.Task));
        var channel = Channel.CreateUnbounded<Message<int>>();
        var outcome = new TaskCompletionSource<AckOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        var healthy = new ChannelSource<int>(channel.Reader, (_, o) => outcome.SetResult(o)); // a second outcome would throw
        var merged = Kawa.Dataflow.Sources.Merge(failing, healthy);
        using (var cts = new CancellationTokenSource())
        {
            // Both sources now have a receive outstanding.
            var waiting = merged.ReceiveAsync(cts.Token).AsTask();
            await cts.CancelAsync();
            Assert.That(async () => await waiting, Throws.InstanceOf<OperationCanceledException>());
        }

        channel.Writer.TryWrite(new Message<int>(5)); // read by the healthy source's outstanding receive
        failure.SetException(new IOException("connection lost"));

        Assert.That(async () => await merged.ReceiveAsync(), Throws.InstanceOf<IOException>().With.Message.EqualTo("connection lost"));
        Assert.That(await outcome.Task.WaitAsync(TimeSpan.FromSeconds(30)), Is.EqualTo(AckOutcome.Negative()), "the message read but never delivered is negatively acked, not left unsettled");
        Assert.That(async () => await merged.ReceiveAsync(), Throws.InstanceOf<IOException>(), "the failure is final");
    }

    [Test]
    public async Task RunAsync_MergedSourceOneInputThrows_PipelineFailsNamingTheSourceAndEveryDeliveredMessageSettledOnce()
    {
        var channel = Channel.CreateUnbounded<Message<int>>();
        for (var i = 0; i < 50; i++)
        {
            channel.Writer.TryWrite(new Message<int>(i));
        }

        var outcomes = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();
        var healthy = new ChannelSource<int>(channel.Reader, (m, _) => outcomes.AddOrUpdate(m.Value, 1, (_, n) => n + 1));
        var calls = 0;
        var failing = new SourceFunc<int>(async ct =>
        {
            if (Interlocked.Increment(ref calls) > 3)
            {
                throw new IOException("connection lost");
            }

            await Task.Yield();
            return new Delivery<int>(new Message<int>(1000 + calls), AckToken.None());
        });
        await using var merged = Kawa.Dataflow.Sources.Merge<int>(healthy, failing);
        var pipeline = Kawa.Dataflow.Pipeline.Create("merged-one-throws")
            .From(merged)
            .To(new Kawa.Dataflow.Tests.Core.Pipeline.RecordingDestination<int>())
            .Build(new PipelineOptions { SegmentSize = 4 });

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(Kawa.Dataflow.Tests.Core.Pipeline.TestMessages.Generous));

        Assert.That(error!.Stage, Is.EqualTo("source"));
        Assert.That(error.InnerException, Is.InstanceOf<IOException>());
        var read = 50 - channel.Reader.Count;
        Assert.That(outcomes.Keys.Order(), Is.EqualTo(Enumerable.Range(0, read)), "every message taken from the healthy source has an outcome");
        Assert.That(outcomes.Values, Is.All.EqualTo(1));
    }

    [Test]
    public async Task ReceiveAsync_Tokens_AreTheOriginalSourcesOwn()
    {
        AckOutcome? seen = null;
        var merged = Kawa.Dataflow.Sources.Merge(new EnumerableSource<int>(new[] { new Message<int>(1) }, (_, o) => seen = o));

        (await merged.ReceiveAsync()).Ack.Ack();

        Assert.That(seen, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task ReceiveAsync_CancelledWhileWaiting_MessageArrivingLaterIsNotLost()
    {
        var channel = Channel.CreateUnbounded<Message<int>>();
        var merged = Kawa.Dataflow.Sources.Merge(new ChannelSource<int>(channel.Reader));
        using var cts = new CancellationTokenSource();
        var waiting = merged.ReceiveAsync(cts.Token).AsTask();
        await cts.CancelAsync();
        Assert.That(async () => await waiting, Throws.InstanceOf<OperationCanceledException>());

        channel.Writer.TryWrite(new Message<int>(5));

        Assert.That((await merged.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10))).Message.Value, Is.EqualTo(5));
    }

    [Test]
    public async Task DisposeAsync_MessageReceivedButNotDelivered_IsNacked()
    {
        var outcome = new TaskCompletionSource<AckOutcome>();
        var channel = Channel.CreateUnbounded<Message<int>>();
        var merged = Kawa.Dataflow.Sources.Merge(new ChannelSource<int>(channel.Reader, (_, o) => outcome.TrySetResult(o)));
        using var cts = new CancellationTokenSource();
        var waiting = merged.ReceiveAsync(cts.Token).AsTask();
        await cts.CancelAsync();
        Assert.That(async () => await waiting, Throws.InstanceOf<OperationCanceledException>());
        channel.Writer.TryWrite(new Message<int>(5)); // read by the outstanding receive, never delivered

        await merged.DisposeAsync();

        Assert.That(await outcome.Task.WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo(AckOutcome.Negative()));
    }

    [Test]
    public void Merge_NoSources_Throws()
    {
        Assert.Throws<ArgumentException>(() => Kawa.Dataflow.Sources.Merge<int>());
    }

    [Test]
    public async Task ReceiveAsync_OneSourceSaysIdle_IdleIsPassedOnAndTheMergeContinues()
    {
        var drain = new Kawa.Dataflow.Tests.Core.Pipeline.IdleScriptSource<int>().Send(1).Idle().Send(2);
        await using var merged = Kawa.Dataflow.Sources.Merge<int>(drain);

        Assert.That((await merged.ReceiveAsync()).Message.Value, Is.EqualTo(1));
        Assert.That((await merged.ReceiveAsync()).IsIdle, Is.True, "so the pipeline commits what its sink holds for that source");
        Assert.That((await merged.ReceiveAsync()).Message.Value, Is.EqualTo(2));
        Assert.That((await merged.ReceiveAsync()).IsEndOfStream, Is.True);
    }
}
