using System.Threading.Channels;
using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Core.Destinations;

public class ChannelDestinationTests
{
    [Test]
    public async Task SendAsync_Messages_WrittenInOrderThenAcked()
    {
        var channel = Channel.CreateUnbounded<Message<int>>();
        var destination = new ChannelDestination<int>(channel.Writer);
        var probe = new AckProbe();

        await destination.SendAsync(probe, new Messages<int>([new Message<int>(1), new Message<int>(2)]));

        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
        Assert.That(channel.Reader.TryRead(out var a) && channel.Reader.TryRead(out var b) && a.Value == 1 && b.Value == 2, Is.True);
    }

    [Test]
    public async Task SendAsync_BoundedChannelFull_WaitsAndAcksOnlyAfterWrite()
    {
        var channel = Channel.CreateBounded<Message<int>>(1);
        var destination = new ChannelDestination<int>(channel.Writer);
        await destination.SendAsync(AckToken.None(), new Message<int>(1));
        var probe = new AckProbe();

        var send = destination.SendAsync(probe, new Message<int>(2)).AsTask();
        Assert.That(send.IsCompleted || probe.IsCompleted, Is.False);

        await channel.Reader.ReadAsync();
        await send.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task SendAsync_ChannelClosed_ThrowsWithoutAcking()
    {
        var channel = Channel.CreateUnbounded<Message<int>>();
        channel.Writer.Complete();
        var destination = new ChannelDestination<int>(channel.Writer);
        var probe = new AckProbe();

        await Assert.ThrowsAsync<ChannelClosedException>(async () => await destination.SendAsync(probe, new Message<int>(1)));
        Assert.That(probe.IsCompleted, Is.False);
    }
}
