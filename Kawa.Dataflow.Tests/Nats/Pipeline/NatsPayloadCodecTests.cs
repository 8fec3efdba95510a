using System.Text.Json.Serialization;
using Kawa.Dataflow.Nats.Pipeline;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

public class NatsPayloadCodecTests
{
    [Test]
    public void Json_RoundTrip_ReturnsTheSameValue()
    {
        var codec = NatsPayloadCodec.Json(TypedOrderJsonContext.Default.TypedOrder);
        var order = new TypedOrder("x-1", 42);

        Assert.That(codec.Decode(codec.Encode(order)), Is.EqualTo(order));
        Assert.That(codec.Name, Is.EqualTo("json:TypedOrder"));
    }

    [TestCase("")]
    [TestCase("{\"Id\":")]
    [TestCase("[1,2]")]
    public void Json_InvalidPayload_ThrowsFormatExceptionNamingTheCodec(string payload)
    {
        var codec = NatsPayloadCodec.Json(TypedOrderJsonContext.Default.TypedOrder);

        var error = Assert.Throws<FormatException>(() => codec.Decode(System.Text.Encoding.UTF8.GetBytes(payload)));

        Assert.That(error!.Message, Does.Contain("json:TypedOrder"));
        Assert.That(error.InnerException, Is.Not.Null);
    }

    [Test]
    public void Utf8String_InvalidUtf8_ThrowsInsteadOfReplacementCharacters()
    {
        Assert.Throws<FormatException>(() => NatsPayloadCodec.Utf8String.Decode(new byte[] { 0x61, 0xC3, 0x28 }));
        Assert.That(NatsPayloadCodec.Utf8String.Decode("ok ✓"u8.ToArray()), Is.EqualTo("ok ✓"));
    }

    [Test]
    public void Bytes_Decode_CopiesSoTheMessageOwnsItsPayload()
    {
        var buffer = new byte[] { 1, 2, 3 };

        var decoded = NatsPayloadCodec.Bytes.Decode(buffer);
        buffer[0] = 9;

        Assert.That(decoded, Is.EqualTo(new byte[] { 1, 2, 3 }));
    }

    [Test]
    public void Create_CustomFunctions_AreUsedAndErrorsBecomeFormatExceptions()
    {
        var codec = NatsPayloadCodec.Create("int32", p => BitConverter.ToInt32(p.Span), v => BitConverter.GetBytes(v));

        Assert.That(codec.Decode(codec.Encode(7)), Is.EqualTo(7));
        Assert.Throws<FormatException>(() => codec.Decode(new byte[] { 1 }));
    }
}
