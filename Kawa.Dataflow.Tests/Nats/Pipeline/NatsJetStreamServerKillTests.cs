using System.Diagnostics;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>A real crash of the server under a pipeline: SIGKILL with thousands of messages delivered and unacked,
/// restart on the same port and store.</summary>
[NonParallelizable]
public class NatsJetStreamServerKillTests
{
    [Test]
    public async Task Pipeline_ServerSigkilledWithOverAThousandUnacked_RestartedOnSamePortAndStore_EveryPublishedSequenceProcessed()
    {
        const int published = 5000;
        await using var server = await NatsServerProcess.StartAsync();
        await using (var admin = await NatsTestHelpers.ConnectAsync(server))
        {
            var adminJs = new JetStreamContext(admin);
            await adminJs.CreateStreamAsync(new StreamConfig { Name = "K", Subjects = ["k.>"], Storage = StorageType.File });
            await NatsTestHelpers.PublishWindowedAsync(adminJs, "k.m", 0, published);
        }

        await using var connection = await NatsTestHelpers.ConnectAsync(server, o => o.RequestTimeout = TimeSpan.FromSeconds(2));
        var options = new NatsJetStreamSourceOptions
        {
            Stream = "K", Durable = "d", StopAtEnd = true, AckWait = TimeSpan.FromSeconds(5), MaxAckPending = 20_000, PrefetchMessages = 500,
        };
        await using var source = await NatsJetStreamSource.StartAsync(connection, ownsConnection: false, options);
        var sink = new HoldingDestination();
        var pipeline = Kawa.Dataflow.Pipeline.Create("nats-kill").From(source).To(sink).Build(new PipelineOptions { MaxInFlightMessages = 2000 });
        source.ValidateAgainst(pipeline);
        var clock = Stopwatch.StartNew();
        var run = pipeline.RunAsync();

        // The sink holds every ack: the pipeline reads up to its in-flight limit and stops there, everything it read
        // delivered and unacked on the server (which also counts the prefetched messages not handed out yet).
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(source.Outstanding >= pipeline.MaxUnsettledMessages || run.IsCompleted), what: "the pipeline full of unacked messages");
        var outstanding = source.Outstanding;
        var js = new JetStreamContext(connection);
        var before = await js.GetConsumerAsync("K", "d");
        Assert.That(outstanding, Is.GreaterThanOrEqualTo(1000), "in flight in the pipeline at the kill");
        Assert.That(before.NumAckPending, Is.GreaterThanOrEqualTo(outstanding), "the server counts them (and the prefetched ones) as delivered and unacked");

        var reconnecting = NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Reconnecting);
        await server.KillAsync();
        await reconnecting;
        var connected = NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Connected);
        await server.RestartAsync();
        await connected;
        sink.Release();

        await run.WaitAsync(TimeSpan.FromMinutes(2));
        clock.Stop();
        TestContext.Progress.WriteLine($"killed with {outstanding} handed out and {before.NumAckPending} ack-pending on the server; run took {clock.Elapsed.TotalSeconds:0.0} s, {sink.Seen.Count} deliveries ({sink.Redeliveries} counted as redeliveries) for {published} messages");

        Assert.That(sink.Seen.Distinct(), Is.EquivalentTo(Enumerable.Range(1, published).Select(i => (ulong)i)), "every published sequence processed (at least once)");
        var after = await js.GetConsumerAsync("K", "d");
        Assert.That(after.NumAckPending, Is.Zero);
        Assert.That(after.NumPending, Is.Zero);
        Assert.That(source.Outstanding, Is.Zero);
    }
}
