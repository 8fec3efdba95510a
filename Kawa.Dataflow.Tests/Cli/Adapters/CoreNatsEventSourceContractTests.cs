using Kawa.Dataflow.Cli.Adapters;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;
using Kawa.Dataflow.Tests.Nats.Infrastructure;
using Kawa.Dataflow.Tests.Nats.Pipeline;

namespace Kawa.Dataflow.Tests.Cli.Adapters;

/// <summary>The core source contract against kawa's <c>nats</c> source (core NATS seen as events) on a real server,
/// declared at-most-once like the source it wraps (see <see cref="NatsSourceContractTests"/>).</summary>
[NonParallelizable]
internal sealed class CoreNatsEventSourceContractTests : LiveNatsSourceContractTests<EventRecord>
{
    protected override SourceContract<EventRecord> Contract => new EventContract(Nats) { OutcomesReachSource = false, RedeliversNegativeAcks = false };

    private sealed class EventContract(ConnectedNatsServer nats) : SourceContract<EventRecord>
    {
        protected override async ValueTask<SourceUnderTest<EventRecord>> CreateAsync(int messageCount, bool endAfterMessages)
        {
            var source = new CoreNatsEventSource(await NatsSourceContractTests.StartWithMessagesAsync(nats.Server, nats.Connection, messageCount, endAfterMessages));
            return new SourceUnderTest<EventRecord> { Source = source, OutcomeSeen = _ => null, Cleanup = source.DisposeAsync };
        }
    }
}
