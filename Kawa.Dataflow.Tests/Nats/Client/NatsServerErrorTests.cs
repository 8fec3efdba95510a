using System.Buffers;
using System.Collections.Concurrent;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Client;

/// <summary>-ERR after the handshake: a refused operation keeps the connection, any other error reconnects.</summary>
[NonParallelizable]
public class NatsServerErrorTests
{
    private const string Config = """
        max_subscriptions: 2
        authorization {
          users = [
            { user: "limited", password: "limited-pw", permissions: { publish: { allow: ["ok.>"] } } }
          ]
        }

        """;

    private NatsServerProcess _server = null!;

    [OneTimeSetUp]
    public async Task StartServer() => _server = await NatsServerProcess.StartAsync(Config);

    [OneTimeTearDown]
    public async Task StopServer() => await _server.DisposeAsync();

    private Task<NatsConnection> ConnectAsync() => NatsTestHelpers.ConnectAsync(_server, o =>
    {
        o.User = "limited";
        o.Password = "limited-pw";
    });

    private static async Task<NatsMsg> NextAsync(NatsSubscription subscription)
        => await subscription.Messages.ReadAsync().AsTask().WaitAsync(NatsTestHelpers.Generous);

    [Test]
    public async Task Publish_PermissionsViolation_ConnectionKeptAndLaterPublishesArrive()
    {
        await using var connection = await ConnectAsync();
        await using var subscription = await connection.SubscribeAsync("ok.x");
        await connection.FlushAsync();
        var changes = new ConcurrentQueue<NatsConnectionStateChangedEventArgs>();
        connection.StateChanged += (_, e) => changes.Enqueue(e);

        await connection.PublishAsync("denied.x", new byte[] { 1 });
        await connection.FlushAsync(); // the server answers the PING after the -ERR for the PUB before it
        await connection.PublishAsync("ok.x", new byte[] { 2 });

        Assert.That((await NextAsync(subscription)).Data, Is.EqualTo(new byte[] { 2 }));
        Assert.That(connection.ServerErrors, Is.EqualTo(1), "the server did refuse the publish");
        Assert.That(connection.ReconnectCount, Is.Zero);
        Assert.That(connection.State, Is.EqualTo(NatsConnectionState.Connected));
        Assert.That(changes.Select(c => c.Current), Is.Empty);
    }

    [Test]
    public async Task Subscribe_BeyondMaxSubscriptions_ConnectionKeptAndEarlierSubscriptionsDeliver()
    {
        await using var connection = await ConnectAsync();
        await using var first = await connection.SubscribeAsync("ok.first");
        await using var second = await connection.SubscribeAsync("ok.second");
        await using var refused = await connection.SubscribeAsync("ok.third");
        await connection.FlushAsync();

        await connection.PublishAsync("ok.first", new byte[] { 1 });
        await connection.PublishAsync("ok.second", new byte[] { 2 });

        Assert.That((await NextAsync(first)).Data, Is.EqualTo(new byte[] { 1 }));
        Assert.That((await NextAsync(second)).Data, Is.EqualTo(new byte[] { 2 }));
        Assert.That(connection.ServerErrors, Is.EqualTo(1), "the server refused the third subscription");
        Assert.That(connection.ReconnectCount, Is.Zero, "a reconnect would re-subscribe all three and be refused again, in a loop");
        Assert.That(connection.State, Is.EqualTo(NatsConnectionState.Connected));
    }

    [Test]
    public async Task UnknownOperation_ServerErr_ReconnectsAndConnectionWorksAgain()
    {
        await using var connection = await ConnectAsync();
        await using var subscription = await connection.SubscribeAsync("ok.after");
        await connection.FlushAsync();

        // Written raw (the client never sends it): the server answers -ERR 'Unknown Protocol Operation' and closes.
        await connection.WriteAsync(16, 0, 0, static (writer, _) => writer.Write("BOGUS\r\n"u8));
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(connection.ReconnectCount == 1), what: "the reconnect after the -ERR");
        await connection.PublishAsync("ok.after", new byte[] { 3 });

        Assert.That((await NextAsync(subscription)).Data, Is.EqualTo(new byte[] { 3 }), "re-subscribed after the reconnect");
        Assert.That(connection.ServerErrors, Is.EqualTo(1), "the -ERR was read before the connection went");
    }

    [TestCase("Permissions Violation for Publish to \"denied.x\"", false)]
    [TestCase("Permissions Violation for Subscription to \"secret.>\"", false)]
    [TestCase("Invalid Subject", false)]
    [TestCase("Invalid Publish Subject", false)]
    [TestCase("maximum subscriptions exceeded", false)]
    [TestCase("Stale Connection", true)]
    [TestCase("Maximum Payload Violation", true)]
    [TestCase("Unknown Protocol Operation", true)]
    [TestCase("Parser Error", true)]
    [TestCase("Authorization Violation", true)]
    [TestCase("User Authentication Expired", true)]
    [TestCase("Slow Consumer", true)]
    [TestCase("Maximum Connections Exceeded", true)]
    public void IsConnectionFatal_ServerError_FatalUnlessTheServerKeepsTheConnection(string message, bool fatal)
        => Assert.That(NatsConnection.IsConnectionFatal(message), Is.EqualTo(fatal));
}
