using Kawa.Dataflow.Nats.Client;

namespace Kawa.Dataflow.Tests.Nats.Infrastructure;

/// <summary>A fixture's own nats-server with one connection to it: started once per fixture, both stopped together.</summary>
internal sealed class ConnectedNatsServer : IAsyncDisposable
{
    private ConnectedNatsServer(NatsServerProcess server, NatsConnection connection)
    {
        Server = server;
        Connection = connection;
    }

    public NatsServerProcess Server { get; }

    public NatsConnection Connection { get; }

    public static async Task<ConnectedNatsServer> StartAsync()
    {
        var server = await NatsServerProcess.StartAsync();
        try
        {
            return new ConnectedNatsServer(server, await NatsTestHelpers.ConnectAsync(server));
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Connection.DisposeAsync();
        }
        finally
        {
            await Server.DisposeAsync();
        }
    }
}
