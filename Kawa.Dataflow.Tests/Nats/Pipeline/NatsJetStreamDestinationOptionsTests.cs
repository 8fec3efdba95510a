using System.Text;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>The destination's PubAck window, key-based ids and subject selector, against a real nats-server.</summary>
[NonParallelizable]
public class NatsJetStreamDestinationOptionsTests : JetStreamTestBase
{
    private async Task<string> TargetAsync()
    {
        var target = "T" + Guid.NewGuid().ToString("N")[..10];
        await Js.CreateStreamAsync(new StreamConfig { Name = target, Subjects = [$"{target}.>"], DuplicateWindow = TimeSpan.FromMinutes(2) });
        return target;
    }

    private NatsJetStreamDestination<byte[]> Destination(Action<NatsJetStreamDestinationOptions<byte[]>> configure)
    {
        var options = new NatsJetStreamDestinationOptions<byte[]> { Batching = new BatchingOptions<byte[]> { MaxBatchSize = 1000 } };
        configure(options);
        return NatsJetStreamDestination<byte[]>.Create(Connection, options);
    }

    /// <summary>Sends each message with its own token, flushes, and waits until every token is acked.</summary>
    private static async Task SendAllAsync(NatsJetStreamDestination<byte[]> destination, IEnumerable<Message<byte[]>> messages)
    {
        var acks = new List<Task>();
        foreach (var message in messages)
        {
            var acked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            acks.Add(acked.Task);
            await destination.SendAsync(AckToken.Create(o => { if (o.Kind == AckKind.Ack) { acked.TrySetResult(); } else { acked.TrySetException(new InvalidOperationException($"not acked: {o}")); } }), new[] { message });
        }

        await destination.FlushAsync();
        await Task.WhenAll(acks).WaitAsync(NatsTestHelpers.Generous);
    }

    private async Task<ulong> PendingOnAsync(string stream, string subject, string durable)
        => (await Js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = durable, AckPolicy = AckPolicy.Explicit, FilterSubject = subject })).NumPending;

    [Test]
    public async Task PublishBatch_ServerStalls_NoMoreThanMaxOutstandingPubAcksAwaited()
    {
        const int count = 50;
        var target = await TargetAsync();
        await using var destination = Destination(o => { o.Subject = target + ".x"; o.MaxOutstandingPubAcks = 4; o.PubAckTimeout = TimeSpan.FromSeconds(30); });
        var acked = 0;

        Task flush;
        await Server.PauseAsync();
        try
        {
            for (var i = 0; i < count; i++)
            {
                await destination.SendAsync(AckToken.Create(_ => Interlocked.Increment(ref acked)), new[] { new Message<byte[]>(new byte[] { (byte)i }) });
            }

            flush = destination.FlushAsync().AsTask();
            await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(destination.AwaitingPubAcks == 4), what: "the window to fill while the server cannot answer");
            Assert.That(destination.PeakAwaitingPubAcks, Is.EqualTo(4), "publishes stop at the window");
            Assert.That(flush.IsCompleted, Is.False);
        }
        finally
        {
            await Server.ResumeAsync();
        }

        await flush.WaitAsync(NatsTestHelpers.Generous);
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref acked) == count), what: "every token acked");

        Assert.That(destination.PeakAwaitingPubAcks, Is.EqualTo(4), "never more than MaxOutstandingPubAcks awaited at once");
        Assert.That(destination.Published, Is.EqualTo(count));
        Assert.That((await Js.GetStreamAsync(target)).State!.Messages, Is.EqualTo((ulong)count));
    }

    [Test]
    public async Task MsgIdFromKey_RepeatedKey_DroppedByTheServerAndCountedAsDuplicate()
    {
        var target = await TargetAsync();
        await using var destination = Destination(o => { o.Subject = target + ".x"; o.MsgId = NatsMsgIdMode.Key; });
        Message<byte[]> Keyed(string? key, string value) => new(Encoding.UTF8.GetBytes(value), Key: key);

        await SendAllAsync(destination, [Keyed("k1", "first"), Keyed("k2", "second"), Keyed("k1", "first again"), Keyed(null, "no key"), Keyed(null, "no key")]);

        Assert.That(destination.MsgIdFor(Keyed("k9", "v")), Is.EqualTo("k9"));
        Assert.That(destination.MsgIdFor(Keyed(null, "v")), Is.Null);
        Assert.That(destination.Duplicates, Is.EqualTo(1), "the second k1");
        Assert.That(destination.Published, Is.EqualTo(4), "k1, k2 and both keyless messages (no id, no de-duplication)");
        Assert.That((await Js.GetStreamAsync(target)).State!.Messages, Is.EqualTo(4UL));
    }

    [Test]
    public async Task SubjectSelector_PicksEachMessagesSubjectOverTheTemplate()
    {
        var target = await TargetAsync();
        await using var destination = Destination(o =>
        {
            o.Subject = target + ".template";
            o.SubjectSelector = m => $"{target}.{(m.Key == "left" ? "l" : "r")}";
        });

        await SendAllAsync(destination, [new("1"u8.ToArray(), Key: "left"), new("2"u8.ToArray(), Key: "right"), new("3"u8.ToArray(), Key: "left")]);

        Assert.That(await PendingOnAsync(target, $"{target}.l", "l"), Is.EqualTo(2UL));
        Assert.That(await PendingOnAsync(target, $"{target}.r", "r"), Is.EqualTo(1UL));
        Assert.That(await PendingOnAsync(target, $"{target}.template", "t"), Is.Zero, "the selector wins over Subject");
    }
}
