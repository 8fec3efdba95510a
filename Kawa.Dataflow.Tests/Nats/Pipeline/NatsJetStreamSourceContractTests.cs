using System.Collections.Concurrent;
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

            // Every ack the source sends is published on $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>...: watch them.
            var acks = await connection.SubscribeAsync($"$JS.ACK.{stream}.>");
            await connection.FlushAsync();
            var seen = new ConcurrentDictionary<ulong, AckOutcome>();
            var watcher = Task.Run(async () =>
            {
                await foreach (var ack in acks.ReadAllAsync())
                {
                    var sequence = AckMetadata.Parse(ack.Subject).StreamSequence;
                    var body = Encoding.UTF8.GetString(ack.Data);
                    AckOutcome? outcome = body switch
                    {
                        "+ACK" => AckOutcome.Acked,
                        "+TERM" => AckOutcome.Terminated,
                        _ when body.StartsWith("-NAK", StringComparison.Ordinal) => AckOutcome.Negative(ParseDelay(body)),
                        _ => null, // +WPI is not an outcome
                    };
                    if (outcome is { } o)
                    {
                        seen.TryAdd(sequence, o);
                    }
                }
            });

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
                OutcomeSeen = m =>
                {
                    // The ack travels to the server asynchronously: a bounded wait for it to appear on the wire.
                    var sequence = m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence);
                    var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
                    AckOutcome outcome;
                    while (!seen.TryGetValue(sequence, out outcome) && DateTime.UtcNow < deadline)
                    {
                        Thread.Yield();
                    }

                    return seen.TryGetValue(sequence, out outcome) ? outcome : null;
                },
                Cleanup = async () =>
                {
                    await source.DisposeAsync();
                    await acks.DisposeAsync();
                    await watcher;
                },
            };
        }

        private static TimeSpan ParseDelay(string body)
        {
            var start = body.IndexOf(':', StringComparison.Ordinal);
            return start < 0 ? TimeSpan.Zero : TimeSpan.FromTicks(long.Parse(body[(start + 1)..].TrimEnd('}', ' '), System.Globalization.CultureInfo.InvariantCulture) / 100);
        }
    }
}
