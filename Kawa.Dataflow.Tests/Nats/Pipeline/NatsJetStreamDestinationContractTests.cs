using System.Text;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>The core destination contract against a real JetStream stream: durable means the stream holds it.</summary>
[NonParallelizable]
public class NatsJetStreamDestinationContractTests : LiveNatsDestinationContractTests<byte[]>
{
    protected override DestinationContract<byte[]> Contract => new JetStreamContract(Nats.Connection);

    private sealed class JetStreamContract(NatsConnection connection) : DestinationContract<byte[]>
    {
        private readonly JetStreamContext _js = new(connection);

        protected override Message<byte[]> CreateMessage(int index) => new(Encoding.UTF8.GetBytes($"payload-{index}"), Key: $"k{index}");

        protected override async ValueTask<DestinationUnderTest<byte[]>> CreateAsync()
        {
            var stream = "C" + Guid.NewGuid().ToString("N")[..10];
            await _js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"{stream}.>"] });
            var destination = NatsJetStreamDestination<byte[]>.Create(connection, new NatsJetStreamDestinationOptions<byte[]>
            {
                Subject = stream + ".{key}",
                PubAckTimeout = TimeSpan.FromSeconds(2),
                Batching = new BatchingOptions<byte[]> { MaxBatchSize = 3, MaxRetries = 0 },
            });
            return new DestinationUnderTest<byte[]>
            {
                Destination = destination,
                // Durable = the stream returns it (synchronous by the contract's shape; called off the read loop).
                IsDurable = m => StoredPayload(stream, m.Key!) is { } stored && stored.SequenceEqual(m.Value),
                BreakWrites = () => _js.DeleteStreamAsync(stream).GetAwaiter().GetResult(),
                Cleanup = () => destination.DisposeAsync(),
            };
        }

        private byte[]? StoredPayload(string stream, string key)
        {
            var request = Encoding.UTF8.GetBytes($"{{\"last_by_subj\":\"{stream}.{key}\"}}");
            var reply = connection.RequestAsync($"$JS.API.STREAM.MSG.GET.{stream}", request).GetAwaiter().GetResult();
            using var json = System.Text.Json.JsonDocument.Parse(reply.Data);
            return json.RootElement.TryGetProperty("message", out var message) && message.TryGetProperty("data", out var data)
                ? data.GetBytesFromBase64()
                : null;
        }
    }
}
