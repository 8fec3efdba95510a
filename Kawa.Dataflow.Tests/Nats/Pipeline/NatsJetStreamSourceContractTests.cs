using System.Text;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>The core source contract against a real consumer: the outcome the "source saw" is the ack the server was sent,
/// observed on the wire by subscribing to the stream's ack subjects.</summary>
[NonParallelizable]
public class NatsJetStreamSourceContractTests : SourceContractTests<byte[]>
{
    private ConnectedNatsServer _nats = null!;

    [OneTimeSetUp]
    public async Task StartServer()
    {
        _nats = await ConnectedNatsServer.StartAsync();
    }

    [OneTimeTearDown]
    public ValueTask StopServer() => _nats.DisposeAsync();

    protected override SourceContract<byte[]> Contract => new JetStreamContract(_nats.Server, _nats.Connection);

    private sealed class JetStreamContract(NatsServerProcess server, NatsConnection connection) : SourceContract<byte[]>
    {
        protected override async ValueTask<SourceUnderTest<byte[]>> CreateAsync(int messageCount, bool endAfterMessages)
        {
            var js = new JetStreamContext(connection);
            var stream = "K" + Guid.NewGuid().ToString("N")[..10];
            await js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"{stream}.>"] });
            for (var i = 0; i < messageCount; i++)
            {
                await js.PublishAsync($"{stream}.m", Encoding.UTF8.GetBytes($"m{i}"));
            }

            var wire = await JetStreamAckWire.WatchAsync(connection, stream);
            var source = await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(server), new NatsJetStreamSourceOptions
            {
                Stream = stream,
                Durable = "contract",
                StopAtEnd = endAfterMessages,
                AckWait = TimeSpan.FromSeconds(30),
            });
            return new SourceUnderTest<byte[]>
            {
                Source = source,
                OutcomeSeen = m => wire.OutcomeOf(m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), MaxWait),
                Cleanup = async () =>
                {
                    await source.DisposeAsync();
                    await wire.DisposeAsync();
                },
            };
        }
    }
}
