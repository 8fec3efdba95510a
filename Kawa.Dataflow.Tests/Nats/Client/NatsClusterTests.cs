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
