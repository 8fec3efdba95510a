using System.Text;
using System.Text.Json.Serialization;
using Kawa.Dataflow.Tests.Core.Pipeline;

namespace Kawa.Dataflow.Tests.Core.Serialization;

public sealed record LogEvent(string Host, int Status);

[JsonSerializable(typeof(LogEvent))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
public sealed partial class TestJsonContext : JsonSerializerContext;

public class JsonHandlersTests
{
    private static readonly MessageAttributes Attributes = MessageAttributes.Empty.With(MessageAttributeKeys.StreamSequence, 9UL);

    [Test]
    public async Task Deserialize_ValidBytes_ParsesAndKeepsMetadata()
    {
        var handler = JsonHandlers.Deserialize(TestJsonContext.Default.LogEvent);

        var output = await handler.HandleAsync(new Message<byte[]>("""{"host":"web-1","status":200}"""u8.ToArray(), "k", "t", Attributes));

        Assert.That(output.Single().Value, Is.EqualTo(new LogEvent("web-1", 200)));
        Assert.That(output[0].Key, Is.EqualTo("k"));
        Assert.That(output[0].Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(9UL));
    }

    [Test]
    public async Task Deserialize_InvalidJson_ThrowsPayloadFormatExceptionWithRawBytesAndPosition()
    {
        var raw = Encoding.UTF8.GetBytes("{\"host\":\"web-1\",\n\"status\": oops}");
        var handler = JsonHandlers.Deserialize(TestJsonContext.Default.LogEvent);

        var error = await Assert.ThrowsAsync<PayloadFormatException>(async () => await handler.HandleAsync(new Message<byte[]>(raw)));

        Assert.That(error!.RawPayload.ToArray(), Is.EqualTo(raw));
        Assert.That(error.LineNumber, Is.EqualTo(1));
        Assert.That(error.BytePositionInLine, Is.GreaterThan(0));
        Assert.That(error.TargetType, Is.EqualTo(typeof(LogEvent)));
        Assert.That(error.Message, Does.Contain(nameof(LogEvent)));
    }

    [Test]
    public async Task Deserialize_WrongTypeForProperty_ThrowsWithPath()
    {
        var handler = JsonHandlers.Deserialize(TestJsonContext.Default.LogEvent);

        var error = await Assert.ThrowsAsync<PayloadFormatException>(async () => await handler.HandleAsync(new Message<byte[]>("""{"host":"a","status":"ok"}"""u8.ToArray())));

        Assert.That(error!.Path, Is.EqualTo("$.status"));
    }

    [Test]
    public void Deserialize_JsonNull_ThrowsPayloadFormatException()
    {
        var handler = JsonHandlers.Deserialize(TestJsonContext.Default.LogEvent);

        Assert.That(async () => await handler.HandleAsync(new Message<byte[]>("null"u8.ToArray())), Throws.InstanceOf<PayloadFormatException>().With.Message.Contains("null"));
    }

    [Test]
    public async Task DeserializeString_And_DeserializeMemory_Parse()
    {
        var fromString = await JsonHandlers.DeserializeString(TestJsonContext.Default.LogEvent).HandleAsync(new Message<string>("""{"host":"h","status":1}"""));
        var fromMemory = await JsonHandlers.DeserializeMemory(TestJsonContext.Default.LogEvent).HandleAsync(new Message<ReadOnlyMemory<byte>>("""{"host":"h","status":1}"""u8.ToArray()));

        Assert.That(fromString[0].Value, Is.EqualTo(new LogEvent("h", 1)));
        Assert.That(fromMemory[0].Value, Is.EqualTo(new LogEvent("h", 1)));
    }

    [Test]
    public async Task DeserializeString_Invalid_KeepsUtf8Bytes()
    {
        var handler = JsonHandlers.DeserializeString(TestJsonContext.Default.LogEvent);

        var error = await Assert.ThrowsAsync<PayloadFormatException>(async () => await handler.HandleAsync(new Message<string>("not json é")));

        Assert.That(Encoding.UTF8.GetString(error!.RawPayload.Span), Is.EqualTo("not json é"));
    }

    [Test]
    public async Task RunAsync_PayloadThatDoesNotParseWithDeadLetterPolicy_DeadLetterKeepsTheRawBytesAndTheOriginalIsAcked()
    {
        var raw = Encoding.UTF8.GetBytes("{\"host\":\"web-2\",\"status\":");
        var source = new TestSource<byte[]>(
        [
            new Message<byte[]>("""{"host":"web-1","status":200}"""u8.ToArray(), Key: "a"),
            new Message<byte[]>(raw, Key: "b", Attributes: Attributes),
            new Message<byte[]>("""{"host":"web-3","status":503}"""u8.ToArray(), Key: "c"),
        ]);
        var deadLetters = new RecordingDestination<DeadLetter<byte[]>>();
        var parsed = new RecordingDestination<LogEvent>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("json-dead-letter")
            .From(source)
            .Handle("parse", JsonHandlers.Deserialize(TestJsonContext.Default.LogEvent), new StageOptions { ErrorPolicy = ErrorPolicy.DeadLetter(deadLetters) })
            .To(parsed)
            .Build();

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(parsed.Written.Select(m => m.Value.Host), Is.EquivalentTo(new[] { "web-1", "web-3" }));
        var letter = deadLetters.Written.Single().Value;
        Assert.That(letter.Original.Value, Is.EqualTo(raw), "the raw bytes, exactly as received");
        Assert.That(letter.Original.Key, Is.EqualTo("b"));
        Assert.That(letter.Original.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(9UL));
        Assert.That(letter.Stage, Is.EqualTo("handler:parse"));
        Assert.That(letter.ErrorType, Is.EqualTo(typeof(PayloadFormatException).FullName));
        Assert.That(letter.Reason, Does.Contain(nameof(LogEvent)));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked), "the bad payload is acked once its dead letter is written");
    }

    [Test]
    public async Task RunAsync_PayloadThatDoesNotParseWithDefaultPolicy_FailsNamingTheStageAndNegativelyAcks()
    {
        var raw = "not json"u8.ToArray();
        var source = new TestSource<byte[]>([new Message<byte[]>(raw)]);
        var pipeline = Kawa.Dataflow.Pipeline.Create("json-fatal")
            .From(source)
            .Handle("parse", JsonHandlers.Deserialize(TestJsonContext.Default.LogEvent))
            .To(new RecordingDestination<LogEvent>())
            .Build();

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(TestMessages.Generous));

        Assert.That(error!.Stage, Is.EqualTo("handler:parse"));
        Assert.That(error.InnerException, Is.TypeOf<PayloadFormatException>());
        Assert.That(((PayloadFormatException)error.InnerException!).RawPayload.ToArray(), Is.EqualTo(raw));
        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Negative()), "fatal: redelivered, never acked");
    }

    [Test]
    public async Task Serialize_RoundTrips()
    {
        var bytes = await JsonHandlers.Serialize(TestJsonContext.Default.LogEvent).HandleAsync(new Message<LogEvent>(new LogEvent("h", 503), Key: "k"));
        var text = await JsonHandlers.SerializeToString(TestJsonContext.Default.LogEvent).HandleAsync(new Message<LogEvent>(new LogEvent("h", 503)));

        Assert.That(Encoding.UTF8.GetString(bytes[0].Value), Is.EqualTo("""{"host":"h","status":503}"""));
        Assert.That(bytes[0].Key, Is.EqualTo("k"));
        Assert.That(text[0].Value, Is.EqualTo("""{"host":"h","status":503}"""));
    }

    [Test]
    public async Task Deserialize_ReflectionOverload_UsesWebDefaults()
    {
        var output = await JsonHandlers.Deserialize<LogEvent>().HandleAsync(new Message<byte[]>("""{"host":"h","status":2}"""u8.ToArray()));

        Assert.That(output[0].Value, Is.EqualTo(new LogEvent("h", 2)));
    }
}
