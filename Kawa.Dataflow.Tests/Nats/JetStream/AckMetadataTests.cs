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
    [TestCase("$JS.ACK.S.C.+1.2.3.4.5")]
    [TestCase("$JS.ACK.S.C.1.2.3.4. 5")]
    [TestCase("$JS.ACK..C.1.2.3.4.5")]
    [TestCase("$JS.ACK.S.C.1.2.3.99999999999999999999.5")]
    public void TryParse_NotAnAckSubject_False(string? subject)
    {
        Assert.That(AckMetadata.TryParse(subject, out _), Is.False);
        Assert.Throws<FormatException>(() => AckMetadata.Parse(subject));
    }

    [Test]
    public void TryParse_Utf8WithKnownNames_ReusesThoseStringsInsteadOfNewOnes()
    {
        var stream = new string("ORDERS".AsSpan());
        var consumer = new string("proc".AsSpan());

        Assert.That(AckMetadata.TryParse("$JS.ACK.ORDERS.proc.3.1042.17.1700000000123456789.250"u8, stream, consumer, out var metadata), Is.True);
        Assert.That(metadata!.Stream, Is.SameAs(stream));
        Assert.That(metadata.Consumer, Is.SameAs(consumer));
        Assert.That(metadata.StreamSequence, Is.EqualTo(1042UL));
        Assert.That(metadata.NumPending, Is.EqualTo(250UL));
    }

    [Test]
    public void TryParse_Utf8NamingOtherStream_MakesItsOwnNames()
    {
        Assert.That(AckMetadata.TryParse("$JS.ACK.OTHER.proc.1.2.3.4.5"u8, "ORDERS", "proc2", out var metadata), Is.True);
        Assert.That(metadata!.Stream, Is.EqualTo("OTHER"));
        Assert.That(metadata.Consumer, Is.EqualTo("proc"));
    }
}
