using Kawa.Dataflow.Nats.Client;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Nats.Pipeline;

/// <summary>Opens a connection that the component built on it will own.</summary>
internal static class OwnedConnection
{
    /// <summary>
    /// Connects, then builds the component over the connection; if either step fails the connection is
    /// disposed before the error propagates, so a failed ConnectAsync never leaks a socket or read loop.
    /// </summary>
    public static async Task<TComponent> OpenAsync<TComponent>(
        NatsConnectionOptions connection,
        ILoggerFactory? loggerFactory,
        TimeProvider? timeProvider,
        Func<NatsConnection, CancellationToken, Task<TComponent>> build,
        CancellationToken cancellationToken)
    {
        var nats = new NatsConnection(connection, loggerFactory, timeProvider);
        try
        {
            await nats.ConnectAsync(cancellationToken).ConfigureAwait(false);
            return await build(nats, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await nats.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
