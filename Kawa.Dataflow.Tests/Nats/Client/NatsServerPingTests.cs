using System.Collections.Concurrent;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Client;

/// <summary>The server's keep-alive: it PINGs every 100 ms and drops a client that leaves two PINGs unanswered.</summary>
[NonParallelizable]
public class NatsServerPingTests
{
    [Test]
    public async Task ServerPings_IdleConnection_AnsweredWithPongAndConnectionKept()
    {
        await using var server = await NatsServerProcess.StartAsync("ping_interval: \"100ms\"\nping_max: 2\n");
        await using var connection = await NatsTestHelpers.ConnectAsync(server);
        var changes = new ConcurrentQueue<NatsConnectionStateChangedEventArgs>();
        connection.StateChanged += (_, e) => changes.Enqueue(e);

        // Ten server PINGs take about a second; without PONGs the server closes the connection after the third.
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(connection.ServerPingsAnswered >= 10), what: "ten server PINGs answered");
        await connection.FlushAsync();

        Assert.That(connection.ReconnectCount, Is.Zero, "the server never dropped the connection");
        Assert.That(connection.State, Is.EqualTo(NatsConnectionState.Connected));
        Assert.That(changes.Select(c => c.Current), Is.Empty, "no state change after connecting");
    }
}
