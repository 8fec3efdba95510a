using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;

namespace Kawa.Dataflow.Tests.Nats.Infrastructure;

internal static class NatsTestHelpers
{
    public static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    public static NatsConnectionOptions Options(NatsServerProcess server, Action<NatsConnectionOptions>? configure = null)
    {
        var options = new NatsConnectionOptions
        {
            Servers = [server.Url],
            Name = "kawa-tests",
            ReconnectWait = TimeSpan.FromMilliseconds(100),
            ReconnectJitter = TimeSpan.FromMilliseconds(20),
        };
        configure?.Invoke(options);
        return options;
    }

    public static async Task<NatsConnection> ConnectAsync(NatsServerProcess server, Action<NatsConnectionOptions>? configure = null)
    {
        var connection = new NatsConnection(Options(server, configure));
        await connection.ConnectAsync();
        return connection;
    }

    /// <summary>Bounded wait for a condition that depends on an external process.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan? timeout = null, string? what = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Generous);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting for {what ?? "condition"}");
            }

            await Task.Delay(50);
        }
    }
}
