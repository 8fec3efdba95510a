using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Serialization;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

public sealed record TypedOrder(string Id, int Quantity);

[JsonSerializable(typeof(TypedOrder))]
internal sealed partial class TypedOrderJsonContext : JsonSerializerContext;

/// <summary>The decoding JetStream source against a real server: decoded values reach the sink, undecodable payloads are
/// terminated (seen as <c>+TERM</c> on the wire) or stop the run, and nothing stays pending.</summary>
[NonParallelizable]
public class NatsJetStreamTypedSourceTests : JetStreamTestBase
{
    private async Task<string> StreamWithPayloadsAsync(params string[] payloads)
    {
        var stream = await StreamAsync(0);
        foreach (var payload in payloads)
        {
            await Js.PublishAsync($"{stream}.orders", Encoding.UTF8.GetBytes(payload));
        }

        return stream;
    }

    private Task<NatsJetStreamSource<T>> TypedSourceAsync<T>(string stream, NatsPayloadCodec<T> codec, NatsDecodeFailure onFailure = NatsDecodeFailure.Terminate)
        => NatsJetStreamSource<T>.StartAsync(
            NatsTestHelpers.Options(Server),
            new NatsJetStreamSourceOptions { Stream = stream, Durable = "d", StopAtEnd = true, AckWait = TimeSpan.FromSeconds(30), DecodeFailure = onFailure },
            codec);

    /// <summary>Every final outcome the server was sent for <paramref name="stream"/>, by stream sequence.</summary>
    private async Task<(ConcurrentDictionary<ulong, string> Seen, Func<Task> Stop)> WatchAcksAsync(string stream)
    {
        var acks = await Connection.SubscribeAsync($"$JS.ACK.{stream}.>");
        await Connection.FlushAsync();
        var seen = new ConcurrentDictionary<ulong, string>();
        var watcher = Task.Run(async () =>
        {
            await foreach (var ack in acks.ReadAllAsync())
            {
                seen[AckMetadata.Parse(ack.Subject).StreamSequence] = Encoding.UTF8.GetString(ack.Data);
            }
        });
        return (seen, async () =>
        {
            await acks.DisposeAsync();
            await watcher;
        });
    }

    [Test]
    public async Task Pipeline_JsonCodecWithOneMalformedPayload_DecodesTheRestAndTerminatesTheMalformedOne()
    {
        var stream = await StreamWithPayloadsAsync(
            """{"Id":"a","Quantity":1}""",
            """{"Id":"b","Quantity":""", // cut off: never valid
            """{"Id":"c","Quantity":3}""");
        var (wire, stopWatching) = await WatchAcksAsync(stream);
        await using var source = await TypedSourceAsync(stream, NatsPayloadCodec.Json(TypedOrderJsonContext.Default.TypedOrder));
        var received = new ConcurrentQueue<TypedOrder>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("typed").From(source).To(new DestinationFunc<TypedOrder>((ack, messages, _) =>
        {
            foreach (var m in messages)
            {
                received.Enqueue(m.Value);
            }

            ack.Ack();
            return ValueTask.CompletedTask;
        })).Build();

        await pipeline.RunAsync().WaitAsync(NatsTestHelpers.Generous);

        Assert.That(received.OrderBy(o => o.Id), Is.EqualTo(new[] { new TypedOrder("a", 1), new TypedOrder("c", 3) }));
        Assert.That(source.DecodeFailures, Is.EqualTo(1));
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(wire.Count == 3), what: "three outcomes on the wire");
        Assert.That(wire[2], Is.EqualTo("+TERM"), "the malformed payload is terminated, never redelivered");
        Assert.That(wire[1], Is.EqualTo("+ACK"));
        Assert.That(wire[3], Is.EqualTo("+ACK"));
        var info = await ConsumerAsync(stream);
        Assert.That((info.NumPending, info.NumAckPending), Is.EqualTo((0L, 0L)));
        await stopWatching();
    }

    [Test]
    public async Task Pipeline_DecodeFailureFatal_StopsAsSourceErrorAndNacksThePayload()
    {
        var stream = await StreamWithPayloadsAsync("\"ok\"", "not json");
        var (wire, stopWatching) = await WatchAcksAsync(stream);
        await using var source = await TypedSourceAsync(stream, NatsPayloadCodec.Json(TypedStringJsonContext.Default.String), NatsDecodeFailure.Fatal);
        var pipeline = Kawa.Dataflow.Pipeline.Create("typed-fatal").From(source).To(new DestinationFunc<string>((ack, _, _) =>
        {
            ack.Ack();
            return ValueTask.CompletedTask;
        })).Build();

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(NatsTestHelpers.Generous));

        Assert.That(error!.Stage, Is.EqualTo("source"));
        Assert.That(error.InnerException, Is.TypeOf<FormatException>());
        Assert.That(error.InnerException!.Message, Does.Contain("Message 2").And.Contain(stream + ".orders").And.Contain("json:String"));
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(wire.ContainsKey(2)), what: "the outcome of message 2");
        Assert.That(wire[2], Does.StartWith("-NAK"), "a fatal decode failure leaves the message for the next run");
        await stopWatching();
    }

    [Test]
    public async Task Pipeline_DrainModeSinkAcksOnlyWhenToldToCommit_IdleReachesTheSinkAndTheRunEnds()
    {
        var stream = await StreamWithPayloadsAsync("\"a\"", "\"b\"");
        await using var source = await TypedSourceAsync(stream, NatsPayloadCodec.Json(TypedStringJsonContext.Default.String));
        var sink = new CommitOnlyDestination();

        // Without the source's Idle passing through the decoding layer, nothing would ever be acked and the drain never ends.
        await Kawa.Dataflow.Pipeline.Create("typed-idle").From(source).To(sink).Build().RunAsync().WaitAsync(NatsTestHelpers.Generous);

        Assert.That(sink.Committed.Order(), Is.EqualTo(new[] { "a", "b" }));
        var info = await ConsumerAsync(stream);
        Assert.That((info.NumPending, info.NumAckPending), Is.EqualTo((0UL, 0L)));
    }

    /// <summary>Holds every token until the pipeline asks it to commit (as a file sink does).</summary>
    private sealed class CommitOnlyDestination : IDestination<string>
    {
        private readonly List<(AckToken Ack, string Value)> _held = [];

        public List<string> Committed { get; } = [];

        public ValueTask SendAsync(AckToken ack, Messages<string> messages, CancellationToken cancellationToken = default)
        {
            lock (_held)
            {
                _held.Add((ack, messages[0].Value));
            }

            return default;
        }

        public ValueTask CommitHeldAsync(CancellationToken cancellationToken = default) => FlushAsync(cancellationToken);

        public ValueTask FlushAsync(CancellationToken cancellationToken = default)
        {
            lock (_held)
            {
                foreach (var (ack, value) in _held)
                {
                    Committed.Add(value);
                    ack.Ack();
                }

                _held.Clear();
            }

            return default;
        }
    }

    [Test]
    public async Task ReceiveAsync_Utf8Codec_DecodesTextAndKeepsAttributes()
    {
        var stream = await StreamWithPayloadsAsync("grüße");
        await using var source = await TypedSourceAsync(stream, NatsPayloadCodec.Utf8String);
        using var cts = new CancellationTokenSource(NatsTestHelpers.Generous);

        var delivery = await source.ReceiveAsync(cts.Token);

        Assert.That(delivery.Message.Value, Is.EqualTo("grüße"));
        Assert.That(delivery.Message.Topic, Is.EqualTo($"{stream}.orders"));
        Assert.That(delivery.Message.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(1UL));
        delivery.Ack.Ack();
    }
}

[JsonSerializable(typeof(string))]
internal sealed partial class TypedStringJsonContext : JsonSerializerContext;
