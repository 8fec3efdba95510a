using System.Text;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>The core source contract against a real core NATS subscription. Core NATS is at-most-once (its tokens are
/// no-ops: the server keeps nothing to ack or redeliver), so the contract declares
/// <see cref="SourceContract{T}.OutcomesReachSource"/> = <see langword="false"/> and is held to that instead: every outcome
/// is accepted once, nothing is recorded, and a negatively acked message never comes back
/// (<see cref="SourceContract{T}.RedeliversNegativeAcks"/> = <see langword="false"/> too).</summary>
[NonParallelizable]
public class NatsSourceContractTests : LiveNatsSourceContractTests<byte[]>
{
    protected override SourceContract<byte[]> Contract => new CoreNatsContract(Nats.Server, Nats.Connection) { OutcomesReachSource = false, RedeliversNegativeAcks = false };

    /// <summary>A core NATS source on its own connection holding <paramref name="count"/> messages, then ending (its
    /// connection drained) or staying open.</summary>
    internal static async Task<NatsSource> StartWithMessagesAsync(NatsServerProcess server, NatsConnection publisher, int count, bool endAfterMessages)
    {
        var subject = "core." + Guid.NewGuid().ToString("N")[..10];
        var connection = await NatsTestHelpers.ConnectAsync(server);
        var source = await NatsSource.StartAsync(connection, ownsConnection: true, new NatsSourceOptions { Subject = subject });
        for (var i = 0; i < count; i++)
        {
            await publisher.PublishAsync(subject, Encoding.UTF8.GetBytes($"{{\"n\":{i}}}"));
        }

        // The server has routed every publish once the publisher's PONG is back; the subscriber's own PONG comes after
        // those messages on its socket, so once it is back they are all in the source's buffer.
        await publisher.FlushAsync();
        await connection.FlushAsync();
        if (endAfterMessages)
        {
            // Core NATS ends a subscription only when its connection is closed on purpose; what is buffered is still read.
            await connection.DrainAsync();
        }

        return source;
    }

    private sealed class CoreNatsContract(NatsServerProcess server, NatsConnection publisher) : SourceContract<byte[]>
    {
        protected override async ValueTask<SourceUnderTest<byte[]>> CreateAsync(int messageCount, bool endAfterMessages)
        {
            var source = await StartWithMessagesAsync(server, publisher, messageCount, endAfterMessages);

            // Nothing to observe: a core NATS token sends nothing anywhere.
            return new SourceUnderTest<byte[]> { Source = source, OutcomeSeen = _ => null, Cleanup = source.DisposeAsync };
        }
    }
}
