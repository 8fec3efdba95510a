using System.Collections.Concurrent;
using System.Text;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Nats.Protocol;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

[NonParallelizable]
public class NatsCoreAdapterTests : JetStreamTestBase
{
    [Test]
    public async Task Pipeline_CoreSourceToCoreDestination_RepublishesEveryMessageUnderTheTemplate()
    {
        const int count = 200;
        var prefix = "c" + Guid.NewGuid().ToString("N")[..8];
        await using var output = await Connection.SubscribeAsync($"out.{prefix}.>", capacity: count * 2);
        await using var source = await NatsSource.StartAsync(NatsTestHelpers.Options(Server), new NatsSourceOptions { Subject = $"{prefix}.>" });
        await using var destination = await NatsDestination<byte[]>.ConnectAsync(NatsTestHelpers.Options(Server), new NatsDestinationOptions<byte[]> { Subject = "out.{subject}" });
        using var stop = new CancellationTokenSource();
        var run = Kawa.Dataflow.Pipeline.Create("core").From(source).To(destination).Build().RunAsync(stop.Token);
        await Connection.FlushAsync(); // our SUB is live; the source's is live once its start returned

        for (var i = 0; i < count; i++)
        {
            await Connection.PublishAsync($"{prefix}.in", Encoding.UTF8.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        var received = new List<string>();
        using var timeout = new CancellationTokenSource(NatsTestHelpers.Generous);
        while (received.Count < count)
        {
            var msg = await output.Messages.ReadAsync(timeout.Token);
            Assert.That(msg.Subject, Is.EqualTo($"out.{prefix}.in"));
            received.Add(Encoding.UTF8.GetString(msg.Data));
        }

        await stop.CancelAsync();
        await run.WaitAsync(NatsTestHelpers.Generous);
        Assert.That(received, Is.EquivalentTo(Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
    }

    [Test]
    public async Task ReceiveAsync_TwoSourcesInOneQueueGroup_EachMessageGoesToOne()
    {
        const int count = 300;
        var subject = "q" + Guid.NewGuid().ToString("N")[..8];
        await using var a = await NatsSource.StartAsync(NatsTestHelpers.Options(Server), new NatsSourceOptions { Subject = subject, QueueGroup = "workers" });
        await using var b = await NatsSource.StartAsync(NatsTestHelpers.Options(Server), new NatsSourceOptions { Subject = subject, QueueGroup = "workers" });
        var seen = new ConcurrentQueue<string>();
        using var done = new CancellationTokenSource(NatsTestHelpers.Generous);

        async Task ReadAsync(NatsSource source)
        {
            try
            {
                while (true)
                {
                    var delivery = await source.ReceiveAsync(done.Token);
                    seen.Enqueue(Encoding.UTF8.GetString(delivery.Message.Value));
                    delivery.Ack.Ack(); // a no-op for core NATS: nothing to tell the server
                    if (seen.Count >= count)
                    {
                        await done.CancelAsync();
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        var readers = Task.WhenAll(ReadAsync(a), ReadAsync(b));
        for (var i = 0; i < count; i++)
        {
            await Connection.PublishAsync(subject, Encoding.UTF8.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        await readers;
        Assert.That(seen, Has.Count.EqualTo(count));
        Assert.That(seen.Distinct().Count(), Is.EqualTo(count), "a queue group delivers each message to one member");
    }

    [Test]
    public async Task ReceiveAsync_CoreMessage_CarriesSubjectHeadersReplyAndSize()
    {
        var subject = "h" + Guid.NewGuid().ToString("N")[..8];
        await using var source = await NatsSource.StartAsync(NatsTestHelpers.Options(Server), new NatsSourceOptions { Subject = subject });
        var headers = new NatsHeaders();
        headers.Add("X-A", "1");
        await Connection.PublishAsync(subject, "abc"u8.ToArray(), headers, "reply.here");

        using var cts = new CancellationTokenSource(NatsTestHelpers.Generous);
        var delivery = await source.ReceiveAsync(cts.Token);

        var attributes = delivery.Message.Attributes;
        Assert.That(attributes.GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo(subject));
        Assert.That(attributes.GetOrDefault(NatsAttributeKeys.ReplyTo, ""), Is.EqualTo("reply.here"));
        Assert.That(attributes.GetOrDefault(MessageAttributeKeys.PayloadSize), Is.EqualTo(3));
        Assert.That(attributes.TryGet(MessageAttributeKeys.Headers, out var h) ? h : [], Does.Contain(new KeyValuePair<string, string>("X-A", "1")));
    }

    [Test]
    public void Options_Invalid_EveryProblemReported()
    {
        Assert.That(new NatsSourceOptions { Subject = "", QueueGroup = "", Capacity = 0 }.Validate(),
            Has.Some.StartsWith("Subject:").And.Some.StartsWith("QueueGroup:").And.Some.StartsWith("Capacity:"));
    }
}
