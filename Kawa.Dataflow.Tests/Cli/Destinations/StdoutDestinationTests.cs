using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Cli.Destinations;
using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Tests.Cli.Destinations;

public class StdoutDestinationTests
{
    [Test]
    public async Task Send_Json_WritesFieldsInOrderThenAcks()
    {
        using var output = new MemoryStream();
        using var destination = new StdoutDestination(output, "json");
        using var nested = JsonDocument.Parse("""{"k":[1]}""");
        var record = new EventRecord().Set("s", "x\"y").Set("n", 3L).Set("d", double.NaN).Set("b", true)
            .Set("ts", new DateTimeOffset(2015, 5, 17, 10, 5, 3, TimeSpan.Zero)).Set("z", (string?)null)
            .Set("j", FieldValue.FromJson(nested.RootElement));
        AckOutcome? outcome = null;

        await destination.SendAsync(AckToken.Create(o => outcome = o), new Message<EventRecord>(record));

        Assert.That(Encoding.UTF8.GetString(output.ToArray()),
            Is.EqualTo("{\"s\":\"x\\u0022y\",\"n\":3,\"d\":\"NaN\",\"b\":true,\"ts\":\"2015-05-17T10:05:03.0000000\\u002B00:00\",\"z\":null,\"j\":{\"k\":[1]}}\n"));
        Assert.That(outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task Send_Raw_WritesPayloadLines()
    {
        using var output = new MemoryStream();
        using var destination = new StdoutDestination(output, "raw");
        Message<EventRecord>[] messages = [new(new EventRecord("one\n"u8.ToArray())), new(new EventRecord("two"u8.ToArray()))];

        await destination.SendAsync(AckToken.None(), messages);

        Assert.That(Encoding.UTF8.GetString(output.ToArray()), Is.EqualTo("one\ntwo\n"));
    }

    [Test]
    public async Task Send_WriteFails_ThrowsAndDoesNotAck()
    {
        using var destination = new StdoutDestination(new FailingStream(), "raw");
        var token = AckToken.Create(_ => { });

        await Assert.ThrowsAsync<IOException>(async () => await destination.SendAsync(token, new Message<EventRecord>(new EventRecord("x"u8.ToArray()))));
        Assert.That(token.IsCompleted, Is.False, "the pipeline nacks a token whose send threw");
    }

    private sealed class FailingStream : MemoryStream
    {
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
            => ValueTask.FromException(new IOException("broken pipe"));
    }
}
