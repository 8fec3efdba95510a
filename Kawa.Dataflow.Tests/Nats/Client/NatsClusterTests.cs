using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Client;

[NonParallelizable]
public class NatsClusterTests
{
    [Test]
    public async Task SeedServerKilled_ReconnectsToServerAnnouncedInInfo_SubscriptionKeepsWorking()
    {
        await using var cluster = await NatsCluster.StartAsync(3);
        var seed = cluster.Servers[0];
        await using var connection = await NatsTestHelpers.ConnectAsync(seed);
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(connection.KnownServers.Count >= 3), what: "the cluster to announce its other servers");
        await using var subscription = await connection.SubscribeAsync("cluster.x");
        var others = cluster.Servers.Skip(1).Select(s => s.Url).ToArray();
        await using var publisher = new NatsConnection(NatsTestHelpers.Options(cluster.Servers[2]));
        await publisher.ConnectAsync();

        var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.StateChanged += (_, e) =>
        {
            if (e.Previous == NatsConnectionState.Reconnecting && e.Current == NatsConnectionState.Connected)
            {
                reconnected.TrySetResult();
            }
        };
        await seed.KillAsync();
        await reconnected.Task.WaitAsync(NatsTestHelpers.Generous);
        await connection.FlushAsync();

        // The route may need a moment to carry the re-established interest to the publisher's server.
        NatsMsg? received = null;
        await NatsTestHelpers.WaitUntilAsync(async () =>
        {
            await publisher.PublishAsync("cluster.x", "after-failover"u8.ToArray());
            await publisher.FlushAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            try
            {
                received = await subscription.Messages.ReadAsync(cts.Token);
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }, what: "a message through the new server");

        Assert.That(connection.ConnectedUrl, Is.AnyOf(others.Select(u => (object)u).ToArray()));
        Assert.That(received!.Data, Is.EqualTo("after-failover"u8.ToArray()));
    }
}

[NonParallelizable]
public class NatsJetStreamClusterTests
{
    [Test]
    public async Task ReplicatedStream_ConnectedServerKilled_PullConsumptionContinues_EverySequenceProcessed()
    {
        await using var cluster = await NatsCluster.StartAsync(3);
        await using var connection = new Kawa.Dataflow.Nats.Client.NatsConnection(NatsTestHelpers.Options(cluster.Servers[0], o =>
        {
            o.Servers = cluster.Servers.Select(s => s.Url).ToList();
            o.RequestTimeout = TimeSpan.FromSeconds(5);
        }));
        await connection.ConnectAsync();
        var js = new Kawa.Dataflow.Nats.JetStream.JetStreamContext(connection);

        // The meta leader needs a moment after the cluster forms: retry the create (bounded wait on external processes).
        await NatsTestHelpers.WaitUntilAsync(async () =>
        {
            try
            {
                await js.CreateStreamAsync(new Kawa.Dataflow.Nats.JetStream.StreamConfig { Name = "R3", Subjects = ["r3.>"], NumReplicas = 3 });
                return true;
            }
            catch (NatsException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), "the R3 stream to be created");
        await js.CreateConsumerAsync("R3", new Kawa.Dataflow.Nats.JetStream.ConsumerConfig
        {
            DurableName = "c", AckPolicy = Kawa.Dataflow.Nats.JetStream.AckPolicy.Explicit, AckWait = TimeSpan.FromSeconds(3), NumReplicas = 3,
        });
        const int published = 600;
        for (var i = 0; i < published; i++)
        {
            await js.PublishAsync("r3.x", System.Text.Encoding.UTF8.GetBytes(i.ToString()));
        }

        await using var consumer = js.CreatePullConsumer("R3", "c", new Kawa.Dataflow.Nats.JetStream.NatsPullConsumerOptions
        {
            BatchSize = 50, Expires = TimeSpan.FromSeconds(4), IdleHeartbeat = TimeSpan.FromSeconds(1),
        });
        await consumer.StartAsync();
        var processed = new HashSet<ulong>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        while (processed.Count < 200)
        {
            var msg = await consumer.NextAsync(cts.Token);
            processed.Add(msg.Metadata.StreamSequence);
            await msg.AckAsync(cts.Token);
        }

        var victim = cluster.Servers.Single(s => s.Url == connection.ConnectedUrl);
        await victim.KillAsync();

        while (processed.Count < published)
        {
            var msg = await consumer.NextAsync(cts.Token);
            processed.Add(msg.Metadata.StreamSequence);
            await msg.AckAsync(cts.Token);
        }

        Assert.That(processed, Is.EquivalentTo(Enumerable.Range(1, published).Select(i => (ulong)i)));
        Assert.That(connection.ConnectedUrl, Is.Not.EqualTo(victim.Url));
    }
}
