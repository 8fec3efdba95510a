using System.Text;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>The core destination contract against a real server. Core NATS stores nothing, so "durable" is what
/// <see cref="NatsDestination{T}"/> documents: the server has processed the publish, seen here as a live subscriber
/// having received it. Writes are broken by closing the destination's connection.</summary>
[NonParallelizable]
public class NatsDestinationContractTests : LiveNatsDestinationContractTests<byte[]>
{
    protected override DestinationContract<byte[]> Contract => new CoreNatsContract(Nats.Server, Nats.Connection);

    private sealed class CoreNatsContract(NatsServerProcess server, NatsConnection subscriber) : DestinationContract<byte[]>
    {
        protected override Message<byte[]> CreateMessage(int index) => new(Encoding.UTF8.GetBytes($"payload-{index}"), Key: $"k{index}");

        protected override async ValueTask<DestinationUnderTest<byte[]>> CreateAsync()
        {
            var prefix = "cd" + Guid.NewGuid().ToString("N")[..10];
            var received = await subscriber.SubscribeAsync(prefix + ".>");
            await subscriber.FlushAsync();
            var seen = new Dictionary<string, byte[]>();
            var gate = new Lock(); // tokens may be settled concurrently; the subscription has one reader at a time
            var connection = await NatsTestHelpers.ConnectAsync(server);
            var destination = NatsDestination<byte[]>.Create(connection, new NatsDestinationOptions<byte[]>
            {
                Subject = prefix + ".{key}",
                Batching = new BatchingOptions<byte[]> { MaxBatchSize = 3, MaxRetries = 0 },
            });
            return new DestinationUnderTest<byte[]>
            {
                Destination = destination,
                IsDurable = m =>
                {
                    // A message the server processed was routed to the subscriber before the subscriber's PONG, so once
                    // its flush returns the message is in the subscription's buffer (called off the connections' loops).
                    subscriber.FlushAsync().GetAwaiter().GetResult();
                    lock (gate)
                    {
                        while (received.Messages.TryRead(out var msg))
                        {
                            seen[msg.Subject] = msg.Data;
                        }

                        return seen.TryGetValue($"{prefix}.{m.Key}", out var payload) && payload.SequenceEqual(m.Value);
                    }
                },
                BreakWrites = () => connection.DisposeAsync().AsTask().GetAwaiter().GetResult(),
                Cleanup = async () =>
                {
                    await destination.DisposeAsync();
                    await connection.DisposeAsync();
                    await received.DisposeAsync();
                },
            };
        }
    }
}
