namespace Kawa.Dataflow.Tests.Nats.Infrastructure;

/// <summary>A cluster of nats-server processes routed on loopback, each with JetStream and its own store.</summary>
public sealed class NatsCluster : IAsyncDisposable
{
    private NatsCluster(IReadOnlyList<NatsServerProcess> servers) => Servers = servers;

    public IReadOnlyList<NatsServerProcess> Servers { get; }

    public static async Task<NatsCluster> StartAsync(int size = 3)
    {
        var clientPorts = Enumerable.Range(0, size).Select(_ => NatsServerProcess.FreePort()).ToArray();
        var routePorts = Enumerable.Range(0, size).Select(_ => NatsServerProcess.FreePort()).ToArray();
        var name = "kc" + Guid.NewGuid().ToString("N")[..6];
        var starts = new List<Task<NatsServerProcess>>();
        for (var i = 0; i < size; i++)
        {
            var routes = string.Join(", ", routePorts.Where((_, j) => j != i).Select(p => $"nats://127.0.0.1:{p}"));
            var config = $"server_name: {name}-n{i}\ncluster {{\n  name: {name}\n  listen: 127.0.0.1:{routePorts[i]}\n  routes: [{routes}]\n}}\n";
            starts.Add(NatsServerProcess.StartAsync(config, clientPorts[i]));
        }

        return new NatsCluster(await Task.WhenAll(starts));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in Servers)
        {
            await server.DisposeAsync();
        }
    }
}
