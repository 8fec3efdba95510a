namespace Kawa.Dataflow.Tests.Nats.Infrastructure;

/// <summary>A cluster of nats-server processes routed on loopback, each with JetStream and its own store.</summary>
public sealed class NatsCluster : IAsyncDisposable
{
    private NatsCluster(IReadOnlyList<NatsServerProcess> servers, IReadOnlyList<string> names)
    {
        Servers = servers;
        Names = names;
    }

    public IReadOnlyList<NatsServerProcess> Servers { get; }

    /// <summary>Each server's <c>server_name</c>, in the order of <see cref="Servers"/> (what JetStream names a leader by).</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The server named <paramref name="serverName"/> (for example a stream's or consumer's leader).</summary>
    public NatsServerProcess ByName(string serverName)
    {
        var index = Names.ToList().IndexOf(serverName);
        return index >= 0 ? Servers[index] : throw new ArgumentException($"No server named '{serverName}' in the cluster ({string.Join(", ", Names)}).", nameof(serverName));
    }

    public static async Task<NatsCluster> StartAsync(int size = 3)
    {
        var clientPorts = Enumerable.Range(0, size).Select(_ => NatsServerProcess.FreePort()).ToArray();
        var routePorts = Enumerable.Range(0, size).Select(_ => NatsServerProcess.FreePort()).ToArray();
        var name = "kc" + Guid.NewGuid().ToString("N")[..6];
        var names = Enumerable.Range(0, size).Select(i => $"{name}-n{i}").ToArray();
        var starts = new List<Task<NatsServerProcess>>();
        for (var i = 0; i < size; i++)
        {
            var routes = string.Join(", ", routePorts.Where((_, j) => j != i).Select(p => $"nats://127.0.0.1:{p}"));
            var config = $"server_name: {names[i]}\ncluster {{\n  name: {name}\n  listen: 127.0.0.1:{routePorts[i]}\n  routes: [{routes}]\n}}\n";
            starts.Add(NatsServerProcess.StartAsync(config, clientPorts[i]));
        }

        return new NatsCluster(await Task.WhenAll(starts), names);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in Servers)
        {
            await server.DisposeAsync();
        }
    }
}
