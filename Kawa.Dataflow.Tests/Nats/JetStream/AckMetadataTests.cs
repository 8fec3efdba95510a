using Kawa.Dataflow.Nats.JetStream;

namespace Kawa.Dataflow.Tests.Nats.JetStream;

public class AckMetadataTests
{
    [Test]
    public void Parse_V1Form_ReadsEveryField()
    {
        var metadata = AckMetadata.Parse("$JS.ACK.ORDERS.proc.3.1042.17.1700000000123456789.250");

        Assert.That(metadata.Domain, Is.Null);
        Assert.That(metadata.AccountHash, Is.Null);
        Assert.That(metadata.Stream, Is.EqualTo("ORDERS"));
        Assert.That(metadata.Consumer, Is.EqualTo("proc"));
        Assert.That(metadata.NumDelivered, Is.EqualTo(3));
        Assert.That(metadata.StreamSequence, Is.EqualTo(1042UL));
        Assert.That(metadata.ConsumerSequence, Is.EqualTo(17UL));
        Assert.That(metadata.TimestampNanoseconds, Is.EqualTo(1700000000123456789L));
        Assert.That(metadata.Timestamp, Is.EqualTo(DateTimeOffset.FromUnixTimeMilliseconds(1700000000123).AddTicks(4567)));
        Assert.That(metadata.NumPending, Is.EqualTo(250UL));
    }

    [Test]
    public void Parse_V2FormWithDomainAndRandomToken_ReadsEveryField()
    {
        var metadata = AckMetadata.Parse("$JS.ACK.hub.ACCHASH123.ORDERS.proc.1.5.6.1700000000000000000.0.r4nd0m");

        Assert.That(metadata.Domain, Is.EqualTo("hub"));
        Assert.That(metadata.AccountHash, Is.EqualTo("ACCHASH123"));
        Assert.That(metadata.Stream, Is.EqualTo("ORDERS"));
        Assert.That(metadata.Consumer, Is.EqualTo("proc"));
        Assert.That(metadata.NumDelivered, Is.EqualTo(1));
        Assert.That(metadata.StreamSequence, Is.EqualTo(5UL));
        Assert.That(metadata.ConsumerSequence, Is.EqualTo(6UL));
        Assert.That(metadata.NumPending, Is.Zero);
    }

    [Test]
    public void Parse_V2FormUnderscoreDomainWithoutRandomToken_NoDomain()
    {
        var metadata = AckMetadata.Parse("$JS.ACK._.HASH.S.C.2.9.8.1.7");

        Assert.That(metadata.Domain, Is.Null);
        Assert.That(metadata.Stream, Is.EqualTo("S"));
        Assert.That(metadata.NumDelivered, Is.EqualTo(2));
        Assert.That(metadata.NumPending, Is.EqualTo(7UL));
    }

    [TestCase(null)]
    [TestCase("_INBOX.abc.1")]
    [TestCase("$JS.ACK.S.C.1.2.3.4")]
    [TestCase("$JS.ACK.S.C.x.2.3.4.5")]
    [TestCase("$JS.ACK.S.C.1.2.3.4.5.6")]
    public void TryParse_NotAnAckSubject_False(string? subject)
    {
        Assert.That(AckMetadata.TryParse(subject, out _), Is.False);
        Assert.Throws<FormatException>(() => AckMetadata.Parse(subject));
    }
}
