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
