using System.Text;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>The core source contract against a real consumer: the outcome the "source saw" is the ack the server was sent,
/// observed on the wire by subscribing to the stream's ack subjects.</summary>
[NonParallelizable]
public class NatsJetStreamSourceContractTests : LiveNatsSourceContractTests<byte[]>
{
    protected override SourceContract<byte[]> Contract => new JetStreamContract(Nats.Server, Nats.Connection);

    private sealed class JetStreamContract(NatsServerProcess server, NatsConnection connection) : SourceContract<byte[]>
    {
        protected override async ValueTask<SourceUnderTest<byte[]>> CreateAsync(int messageCount, bool endAfterMessages)
        {
            var (stream, wire) = await JetStreamAckWire.StreamWithMessagesAsync(connection, messageCount, i => Encoding.UTF8.GetBytes($"m{i}"));
            var source = await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(server), JetStreamAckWire.ConsumerOptions(stream, endAfterMessages));
            return new SourceUnderTest<byte[]>
            {
                Source = source,
                OutcomeSeen = m => wire.OutcomeOf(m, MaxWait),
                Cleanup = async () =>
                {
                    await source.DisposeAsync();
                    await wire.DisposeAsync();
                },
            };
        }
    }
}
