namespace Kawa.Dataflow.Tests.Core.Abstractions;

public class DeliveryTests
{
    [Test]
    public void Idle_IsNeitherAMessageNorTheEnd()
    {
        var idle = Delivery<int>.Idle;

        Assert.That(idle.IsIdle, Is.True);
        Assert.That(idle.IsEndOfStream, Is.False, "a source that is idle has not ended");
        Assert.That(idle.Ack, Is.Null, "no token to settle");
    }

    [Test]
    public void Default_IsEndOfStreamNotIdle()
    {
        Assert.That(default(Delivery<int>).IsEndOfStream, Is.True);
        Assert.That(default(Delivery<int>).IsIdle, Is.False);
        Assert.That(Delivery<int>.EndOfStream.IsIdle, Is.False);
    }

    [Test]
    public void Message_IsNeitherIdleNorTheEnd()
    {
        var token = AckToken.None();
        var delivery = new Delivery<int>(new Message<int>(5), token);

        Assert.That(delivery.IsIdle, Is.False);
        Assert.That(delivery.IsEndOfStream, Is.False);
        Assert.That(delivery.Ack, Is.SameAs(token));
        Assert.That(delivery.Message.Value, Is.EqualTo(5));
    }
}
