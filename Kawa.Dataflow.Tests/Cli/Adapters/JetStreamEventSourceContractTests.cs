using System.Text;
using Kawa.Dataflow.Cli.Adapters;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;
using Kawa.Dataflow.Tests.Nats.Infrastructure;
using Kawa.Dataflow.Tests.Nats.Pipeline;

namespace Kawa.Dataflow.Tests.Cli.Adapters;

/// <summary>The core source contract against kawa's <c>jetstream</c> source (the raw JetStream source seen as events) on
/// a real consumer: wrapping each payload in an event must keep every rule, outcomes checked on the wire.</summary>
[NonParallelizable]
internal sealed class JetStreamEventSourceContractTests : LiveNatsSourceContractTests<EventRecord>
{
    protected override SourceContract<EventRecord> Contract => new EventContract(Nats);

    private sealed class EventContract(ConnectedNatsServer nats) : SourceContract<EventRecord>
    {
        protected override async ValueTask<SourceUnderTest<EventRecord>> CreateAsync(int messageCount, bool endAfterMessages)
        {
            var (stream, wire) = await JetStreamAckWire.StreamWithMessagesAsync(nats.Connection, messageCount, i => Encoding.UTF8.GetBytes($"{{\"n\":{i}}}"));
            var source = new JetStreamEventSource(await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(nats.Server), JetStreamAckWire.ConsumerOptions(stream, endAfterMessages)));
            return new SourceUnderTest<EventRecord>
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
