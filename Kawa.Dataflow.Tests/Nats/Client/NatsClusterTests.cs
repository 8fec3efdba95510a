using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Tests.Nats.Pipeline;
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

    [Test]
    public async Task PipelineWithOneSeedUrl_ConnectedNodeAndConsumerLeaderKilled_SourceContinuesThroughDiscoveredNode_NothingLost()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using var cluster = await NatsCluster.StartAsync(3);
        const int published = 3000;
        NatsServerProcess seed;
        await using (var admin = await NatsTestHelpers.ConnectAsync(cluster.Servers[0], o => o.RequestTimeout = TimeSpan.FromSeconds(5)))
        {
            var adminJs = new JetStreamContext(admin);
            await NatsTestHelpers.WaitUntilAsync(async () =>
            {
                try
                {
                    await adminJs.CreateStreamAsync(new StreamConfig { Name = "P3", Subjects = ["p3.>"], NumReplicas = 3 });
                    return true;
                }
                catch (NatsException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(60), "the R3 stream to be created");
            await NatsTestHelpers.PublishWindowedAsync(adminJs, "p3.m", 0, published, window: 250);
            var created = await adminJs.CreateConsumerAsync("P3", new ConsumerConfig
            {
                DurableName = "d", AckPolicy = AckPolicy.Explicit, AckWait = TimeSpan.FromSeconds(5), MaxAckPending = 20_000, NumReplicas = 3,
            });

            // The client's only seed is the node leading the consumer: killing it takes both the connection and the
            // consumer's leader (which serves pulls and acks) away at once.
            seed = cluster.ByName(created.Cluster?.Leader ?? throw new AssertionException("the R3 consumer reports no leader"));
        }

        await using var connection = await NatsTestHelpers.ConnectAsync(seed, o => o.RequestTimeout = TimeSpan.FromSeconds(5));
        Assert.That(connection.Options.Servers, Is.EqualTo(new[] { seed.Url }), "only the seed is configured");

        // The other nodes are known only from the seed's INFO connect_urls.
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(connection.KnownServers.Count >= 3), what: "the cluster to announce its other servers");
        var options = new NatsJetStreamSourceOptions { Stream = "P3", Durable = "d", CreateOrUpdate = false, StopAtEnd = true, PrefetchMessages = 200 };
        await using var source = await NatsJetStreamSource.StartAsync(connection, ownsConnection: false, options);
        var sink = new HoldingDestination();
        var pipeline = Kawa.Dataflow.Pipeline.Create("nats-cluster").From(source).To(sink).Build(new PipelineOptions { MaxInFlightMessages = 1000 });
        source.ValidateAgainst(pipeline);
        var run = pipeline.RunAsync();

        // Mid-stream: the sink holds the acks of what was read so far, and most of the stream is still to come.
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(source.Outstanding >= 500 || run.IsCompleted), what: "500 messages handed out");
        Assert.That(run.IsCompleted, Is.False);
        var victim = cluster.Servers.Single(s => s.Url == connection.ConnectedUrl);
        Assert.That(victim, Is.SameAs(seed));
        var victimName = cluster.Names[cluster.Servers.ToList().IndexOf(victim)];
        Assert.That((await new JetStreamContext(connection).GetConsumerAsync("P3", "d")).Cluster?.Leader, Is.EqualTo(victimName), "still the consumer's leader");
        var read = sink.Seen.Count;
        var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.StateChanged += (_, e) =>
        {
            if (e.Previous == NatsConnectionState.Reconnecting && e.Current == NatsConnectionState.Connected)
            {
                reconnected.TrySetResult();
            }
        };
        var killedAt = clock.Elapsed;
        await victim.KillAsync();
        await reconnected.Task.WaitAsync(NatsTestHelpers.Generous);
        var reconnectedAt = clock.Elapsed;
        Assert.That(connection.ConnectedUrl, Is.Not.EqualTo(victim.Url));

        // No consumer leader yet: a pull sent now would get no answer, so the source looks the consumer up until it has a
        // leader again and pulls then. Acks sent before that are lost: the server redelivers those after the ack wait.
        sink.Release();

        await run.WaitAsync(TimeSpan.FromMinutes(2));
        var endedAt = clock.Elapsed;
        var survivor = cluster.Servers.Single(s => s.Url == connection.ConnectedUrl);
        await using var check = await NatsTestHelpers.ConnectAsync(survivor);
        var info = await new JetStreamContext(check).GetConsumerAsync("P3", "d");
        clock.Stop();
        TestContext.Progress.WriteLine($"killed {victimName} (client's node and consumer leader) with {read} read; {sink.Seen.Count} deliveries ({sink.Redeliveries} counted as redeliveries) for {published} messages; killed at {killedAt.TotalSeconds:0.0} s, reconnected at {reconnectedAt.TotalSeconds:0.0} s, run ended at {endedAt.TotalSeconds:0.0} s; {source.PullConsumer.LeaderProbes} leader lookup(s), {source.PullConsumer.MissedHeartbeatReissues} missed-heartbeat re-pull(s)");

        Assert.That(sink.Seen.Distinct(), Is.EquivalentTo(Enumerable.Range(1, published).Select(i => (ulong)i)), "every published message processed");
        Assert.That(info.Cluster?.Leader, Is.Not.Null.And.Not.EqualTo(victimName), "a surviving node leads the consumer");
        Assert.That(info.NumAckPending, Is.Zero, "every message acked");
        Assert.That(info.NumPending, Is.Zero);
        Assert.That(source.Outstanding, Is.Zero);
        Assert.That(source.PullConsumer.LeaderProbes, Is.GreaterThan(0), "the reconnect waited for a consumer leader");
        Assert.That(source.PullConsumer.MissedHeartbeatReissues, Is.Zero, "pulling resumed once the new leader was up, not after missed heartbeats");
    }
}
