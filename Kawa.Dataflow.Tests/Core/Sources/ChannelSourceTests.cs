using System.Threading.Channels;
using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Core.Sources;

public class ChannelSourceTests
{
    [Test]
    public async Task ReceiveAsync_CompletedEmptyChannel_EndsAtOnce()
    {
        var channel = Channel.CreateUnbounded<Message<int>>();
        channel.Writer.Complete();

        Assert.That((await new ChannelSource<int>(channel.Reader).ReceiveAsync()).IsEndOfStream, Is.True);
    }

    [Test]
    public async Task ReceiveAsync_MessagesThenCompletion_DeliversInOrderThenEndsForGood()
    {
        var channel = Channel.CreateUnbounded<Message<int>>();
        channel.Writer.TryWrite(new Message<int>(1));
        channel.Writer.TryWrite(new Message<int>(2));
        channel.Writer.Complete();
        var source = new ChannelSource<int>(channel.Reader);

        Assert.That((await source.ReceiveAsync()).Message.Value, Is.EqualTo(1));
        Assert.That((await source.ReceiveAsync()).Message.Value, Is.EqualTo(2));
        Assert.That((await source.ReceiveAsync()).IsEndOfStream, Is.True);
        Assert.That((await source.ReceiveAsync()).IsEndOfStream, Is.True);
    }

    [Test]
    public async Task ReceiveAsync_Settled_OutcomeReachesCallback()
    {
        var channel = Channel.CreateUnbounded<Message<string>>();
        channel.Writer.TryWrite(new Message<string>("a"));
        var seen = new List<(string, AckOutcome)>();
        var source = new ChannelSource<string>(channel.Reader, (m, o) => seen.Add((m.Value, o)));

        var delivery = await source.ReceiveAsync();
        delivery.Ack.Nack(TimeSpan.FromSeconds(1));

        Assert.That(seen, Is.EqualTo(new[] { ("a", AckOutcome.Negative(TimeSpan.FromSeconds(1))) }));
    }

    [Test]
    public async Task ReceiveAsync_EmptyChannelCancelled_ThrowsOperationCanceled()
    {
        var source = new ChannelSource<int>(Channel.CreateUnbounded<Message<int>>().Reader);
        using var cts = new CancellationTokenSource();

        var receive = source.ReceiveAsync(cts.Token).AsTask();
        Assert.That(receive.IsCompleted, Is.False);
        await cts.CancelAsync();

        Assert.That(async () => await receive, Throws.InstanceOf<OperationCanceledException>());
    }

    [Test]
    public void ReceiveAsync_ChannelCompletedWithError_RethrowsIt()
    {
        var channel = Channel.CreateUnbounded<Message<int>>();
        channel.Writer.Complete(new IOException("producer died"));
        var source = new ChannelSource<int>(channel.Reader);

        Assert.That(async () => await source.ReceiveAsync(), Throws.InstanceOf<IOException>().With.Message.EqualTo("producer died"));
    }
}
