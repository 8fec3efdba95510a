using Kawa.Dataflow.Nats.JetStream;

namespace Kawa.Dataflow.Tests.Nats.Infrastructure;

/// <summary>A fixture that shares one nats-server with JetStream, and one connection to it, across its tests.</summary>
[NonParallelizable]
public abstract class ConnectedJetStreamTests
{
    private protected ConnectedNatsServer NatsServer { get; private set; } = null!;

    private protected JetStreamContext Js { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartServer()
    {
        NatsServer = await ConnectedNatsServer.StartAsync();
        Js = new JetStreamContext(NatsServer.Connection);
    }

    [OneTimeTearDown]
    public ValueTask StopServer() => NatsServer.DisposeAsync();
}
