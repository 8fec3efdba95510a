using System.Collections.Concurrent;
using System.Text;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>max_deliver against a real server: the failing message is nacked until its last delivery, then dead-lettered
/// and terminated by the stage's poison policy instead of being dropped by the server.</summary>
[NonParallelizable]
public class NatsJetStreamPoisonTests : JetStreamTestBase
{
    [Test]
    public async Task Pipeline_MessageFailsOnEveryDelivery_NackedThenDeadLetteredAndTerminatedAtMaxDeliver()
    {
        var stream = await StreamAsync(3); // payloads "0", "1", "2"; "1" always fails
        var acks = await Connection.SubscribeAsync($"$JS.ACK.{stream}.>");
        await Connection.FlushAsync();
        var wire = new ConcurrentQueue<(ulong Sequence, string Body)>();
        var watcher = Task.Run(async () =>
        {
            await foreach (var ack in acks.ReadAllAsync())
            {
                wire.Enqueue((AckMetadata.Parse(ack.Subject).StreamSequence, Encoding.UTF8.GetString(ack.Data)));
            }
        });
        await using var source = await SourceAsync(stream, o => o.MaxDeliver = 2);
        var deadLetters = new ConcurrentQueue<DeadLetter<byte[]>>();
        var dlq = new DestinationFunc<DeadLetter<byte[]>>((ack, messages, _) =>
        {
            foreach (var m in messages)
            {
                deadLetters.Enqueue(m.Value);
            }

            ack.Ack();
            return default;
        });
        var destination = new RecordingDestination();
        var pipeline = Kawa.Dataflow.Pipeline.Create("poison")
            .From(source)
            .Handle<byte[]>("check", (m, _) => m.Value.AsSpan().SequenceEqual("1"u8) ? throw new InvalidDataException("bad record") : new ValueTask<Messages<byte[]>>(m), new StageOptions
            {
                ErrorPolicy = ErrorPolicy.NegativeAck(),
                PoisonPolicy = ErrorPolicy.DeadLetter(dlq),
            })
            .To(destination)
            .Build();

        await pipeline.RunAsync().WaitAsync(TimeSpan.FromMinutes(1));

        var letter = deadLetters.Single();
        Assert.That(letter.Original.Value, Is.EqualTo("1"u8.ToArray()));
        Assert.That(letter.Original.Attributes.GetOrDefault(MessageAttributeKeys.DeliveryCount), Is.EqualTo(2));
        Assert.That(letter.Reason, Is.EqualTo("bad record"));
        Assert.That(destination.Seen.Select(s => s.Sequence).Order(), Is.EqualTo(new ulong[] { 1, 3 }));
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(wire.Count(w => w.Sequence == 2) == 2), what: "both outcomes of message 2");
        Assert.That(wire.Where(w => w.Sequence == 2).Select(w => w.Body), Is.EqualTo(new[] { "-NAK", "+TERM" }), "nacked on the first delivery, terminated on the last");
        var info = await ConsumerAsync(stream);
        Assert.That((info.NumPending, info.NumAckPending), Is.EqualTo((0L, 0L)));
        await acks.DisposeAsync();
        await watcher;
    }
}
