using System.Collections.Concurrent;
using System.Text;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>One real nats-server per fixture; each test uses its own stream.</summary>
public abstract class JetStreamTestBase
{
    protected NatsServerProcess Server { get; private set; } = null!;

    private protected NatsConnection Connection { get; private set; } = null!;

    private protected JetStreamContext Js { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartServer()
    {
        Server = await NatsServerProcess.StartAsync();
        Connection = await NatsTestHelpers.ConnectAsync(Server);
        Js = new JetStreamContext(Connection);
    }

    [OneTimeTearDown]
    public async Task StopServer()
    {
        await Connection.DisposeAsync();
        await Server.DisposeAsync();
    }

    protected async Task<string> StreamAsync(int messages, TimeSpan? duplicateWindow = null)
    {
        var stream = "S" + Guid.NewGuid().ToString("N")[..10];
        await Js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"{stream}.>"], DuplicateWindow = duplicateWindow ?? TimeSpan.Zero });
        await PublishAsync(stream, 0, messages);
        return stream;
    }

    protected async Task PublishAsync(string stream, int from, int count)
    {
        for (var i = from; i < from + count; i++)
        {
            await Js.PublishAsync($"{stream}.m", Encoding.UTF8.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
    }

    protected Task<NatsJetStreamSource> SourceAsync(string stream, Action<NatsJetStreamSourceOptions>? configure = null)
    {
        var options = new NatsJetStreamSourceOptions { Stream = stream, Durable = "d", StopAtEnd = true, AckWait = TimeSpan.FromSeconds(30), MaxAckPending = 20_000, PrefetchMessages = 200 };
        configure?.Invoke(options);
        return NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), options);
    }

    private protected Task<ConsumerInfo> ConsumerAsync(string stream, string durable = "d") => Js.GetConsumerAsync(stream, durable);

    /// <summary>Records every delivery (sequence, delivery count) and decides each outcome.</summary>
    protected sealed class RecordingDestination(Func<Message<byte[]>, AckToken, ValueTask>? decide = null) : IDestination<byte[]>
    {
        public ConcurrentQueue<(ulong Sequence, long Deliveries)> Seen { get; } = new();

        public ConcurrentQueue<(ulong Sequence, DateTimeOffset ReceivedAt)> Times { get; } = new();

        public async ValueTask SendAsync(AckToken ack, Messages<byte[]> messages, CancellationToken cancellationToken = default)
        {
            foreach (var m in messages)
            {
                Seen.Enqueue((m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), m.Attributes.GetOrDefault(MessageAttributeKeys.DeliveryCount)));
                Times.Enqueue((m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), m.Attributes.GetOrDefault(MessageAttributeKeys.ReceivedAt)));
            }

            if (decide is null)
            {
                ack.Ack();
            }
            else
            {
                await decide(messages[0], ack);
            }
        }
    }
}
