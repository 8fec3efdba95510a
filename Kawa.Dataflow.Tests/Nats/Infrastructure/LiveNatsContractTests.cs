using Kawa.Dataflow.Tests.Contracts;

namespace Kawa.Dataflow.Tests.Nats.Infrastructure;

/// <summary>A source contract fixture against a nats-server of its own, started once for the fixture and stopped after.</summary>
[NonParallelizable]
public abstract class LiveNatsSourceContractTests<T> : SourceContractTests<T>
{
    private ConnectedNatsServer? _nats;

    private protected ConnectedNatsServer Nats => _nats ?? throw new InvalidOperationException("The fixture's nats-server is not started.");

    [OneTimeSetUp]
    public async Task StartServer() => _nats = await ConnectedNatsServer.StartAsync();

    [OneTimeTearDown]
    public ValueTask StopServer() => _nats?.DisposeAsync() ?? default;
}

/// <summary>A destination contract fixture against a nats-server of its own, started once for the fixture and stopped after.</summary>
[NonParallelizable]
public abstract class LiveNatsDestinationContractTests<T> : DestinationContractTests<T>
{
    private ConnectedNatsServer? _nats;

    private protected ConnectedNatsServer Nats => _nats ?? throw new InvalidOperationException("The fixture's nats-server is not started.");

    [OneTimeSetUp]
    public async Task StartServer() => _nats = await ConnectedNatsServer.StartAsync();

    [OneTimeTearDown]
    public ValueTask StopServer() => _nats?.DisposeAsync() ?? default;
}
