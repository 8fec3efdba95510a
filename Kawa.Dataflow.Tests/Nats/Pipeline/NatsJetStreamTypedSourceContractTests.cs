using System.Text.Json;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>The core source contract against the decoding <see cref="NatsJetStreamSource{T}"/> with a JSON codec on a real
/// consumer: decoding must keep every rule of the raw source (fresh tokens, cancellation, stable end, outcomes reaching
/// the server, seen on the wire).</summary>
[NonParallelizable]
public class NatsJetStreamTypedSourceContractTests : LiveNatsSourceContractTests<TypedOrder>
{
    protected override SourceContract<TypedOrder> Contract => new TypedJetStreamContract(Nats.Server, Nats.Connection);

    private sealed class TypedJetStreamContract(NatsServerProcess server, NatsConnection connection) : SourceContract<TypedOrder>
    {
        protected override async ValueTask<SourceUnderTest<TypedOrder>> CreateAsync(int messageCount, bool endAfterMessages)
        {
            var (stream, wire) = await JetStreamAckWire.StreamWithMessagesAsync(
                connection, messageCount, i => JsonSerializer.SerializeToUtf8Bytes(new TypedOrder($"o{i}", i), TypedOrderJsonContext.Default.TypedOrder));
            var source = await NatsJetStreamSource<TypedOrder>.StartAsync(
                NatsTestHelpers.Options(server), JetStreamAckWire.ConsumerOptions(stream, endAfterMessages), NatsPayloadCodec.Json(TypedOrderJsonContext.Default.TypedOrder));
            return new SourceUnderTest<TypedOrder>
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
