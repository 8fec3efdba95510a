using System.Buffers;
using System.Text;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.Protocol;

namespace Kawa.Dataflow.Tests.Nats.Protocol;

public class NatsProtocolWriterTests
{
    private static string Write(Action<IBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    [Test]
    public void WritePublish_WithoutHeaders_WritesPub()
        => Assert.That(
            Write(w => NatsProtocolWriter.WritePublish(w, "a.b", "r", null, new ReadOnlySequence<byte>("hi"u8.ToArray()))),
            Is.EqualTo("PUB a.b r 2\r\nhi\r\n"));

    [Test]
    public void WritePublish_Utf8SubjectAndBody_WritesPubWithoutReply()
        => Assert.That(
            Write(w => NatsProtocolWriter.WritePublish(w, "$JS.ACK.S.c.1.2.3.4.0"u8, "+ACK"u8)),
            Is.EqualTo("PUB $JS.ACK.S.c.1.2.3.4.0 4\r\n+ACK\r\n"));

    [Test]
    public void WritePublish_Utf8EmptyBody_WritesZeroSize()
        => Assert.That(Write(w => NatsProtocolWriter.WritePublish(w, "a"u8, ReadOnlySpan<byte>.Empty)), Is.EqualTo("PUB a 0\r\n\r\n"));

    [Test]
    public void WritePublish_WithHeaders_WritesHpubWithSizes()
    {
        var headers = new NatsHeaders();
        headers.Add("Nats-Msg-Id", "42");

        var text = Write(w => NatsProtocolWriter.WritePublish(w, "a", null, headers, new ReadOnlySequence<byte>("hi"u8.ToArray())));

        Assert.That(text, Is.EqualTo("HPUB a 29 31\r\nNATS/1.0\r\nNats-Msg-Id: 42\r\n\r\nhi\r\n"));
    }

    [Test]
    public void WriteSubscribeAndUnsubscribe_WithQueueAndMax()
    {
        Assert.That(Write(w => NatsProtocolWriter.WriteSubscribe(w, "a.*", "workers", 7)), Is.EqualTo("SUB a.* workers 7\r\n"));
        Assert.That(Write(w => NatsProtocolWriter.WriteUnsubscribe(w, 7, 10)), Is.EqualTo("UNSUB 7 10\r\n"));
        Assert.That(Write(w => NatsProtocolWriter.WriteUnsubscribe(w, 7, null)), Is.EqualTo("UNSUB 7\r\n"));
    }

    [TestCase("")]
    [TestCase("a b")]
    [TestCase("a..b")]
    [TestCase("a.*")]
    [TestCase("a.>")]
    public void ValidateSubject_InvalidForPublish_Throws(string subject)
        => Assert.Throws<ArgumentException>(() => NatsProtocolWriter.ValidateSubject(subject, "subject", allowWildcards: false));

    [Test]
    public void Headers_ParseStatusLineAndFields()
    {
        var headers = NatsHeaders.Parse("NATS/1.0 409 Consumer Deleted\r\nNats-Pending-Messages: 5\r\nX: 1\r\nX: 2\r\n\r\n"u8);

        Assert.That(headers.StatusCode, Is.EqualTo(409));
        Assert.That(headers.StatusDescription, Is.EqualTo("Consumer Deleted"));
        Assert.That(headers["nats-pending-messages"], Is.EqualTo("5"));
        Assert.That(headers.GetValues("X"), Is.EqualTo(new[] { "1", "2" }));
    }

    [Test]
    public void ConnectJson_HasProtocolFlagsAndNoSecretsInToString()
    {
        var connect = new ConnectOptions { Name = "app", User = "alice", Pass = "pw-SECRET", AuthToken = "tok-SECRET" };

        var json = System.Text.Json.JsonDocument.Parse(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(connect, ProtocolJsonContext.Default.ConnectOptions)).RootElement;

        Assert.That(json.GetProperty("headers").GetBoolean(), Is.True);
        Assert.That(json.GetProperty("no_responders").GetBoolean(), Is.True);
        Assert.That(json.GetProperty("verbose").GetBoolean(), Is.False);
        Assert.That(json.GetProperty("pedantic").GetBoolean(), Is.False);
        Assert.That(json.GetProperty("lang").GetString(), Is.Not.Empty);
        Assert.That(json.GetProperty("version").GetString(), Is.Not.Empty);
        Assert.That(json.GetProperty("name").GetString(), Is.EqualTo("app"));
        Assert.That(json.TryGetProperty("nkey", out _), Is.False, "unset auth fields are omitted");
        Assert.That(connect.ToString(), Does.Not.Contain("SECRET"));
    }

    [Test]
    public void Headers_MalformedBlock_ToleratedNotThrown()
    {
        var headers = NatsHeaders.Parse("GARBAGE\r\nno colon here\r\nGood: yes\r\n\r\n"u8);

        Assert.That(headers.StatusCode, Is.Zero);
        Assert.That(headers["Good"], Is.EqualTo("yes"));
        Assert.That(headers.Count, Is.EqualTo(1));
    }

    [Test]
    public void OutboundBacklog_DropsPingsAndPongsKeepsPublishesEvenWithPingInPayload()
    {
        var backlog = "PUB a 6\r\nPING\r\n\r\nPING\r\nSUB b 1\r\nPONG\r\nHPUB c 12 16\r\nNATS/1.0\r\n\r\nPONG\r\nPING\r\n"u8.ToArray();
        var sequence = new ReadOnlySequence<byte>(backlog);

        var kept = string.Concat(OutboundBacklog.KeptRanges(sequence).Select(r => Encoding.ASCII.GetString(sequence.Slice(r.Start, r.End).ToArray())));

        Assert.That(kept, Is.EqualTo("PUB a 6\r\nPING\r\n\r\nSUB b 1\r\nHPUB c 12 16\r\nNATS/1.0\r\n\r\nPONG\r\n"));
    }
}
