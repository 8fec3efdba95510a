using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Nats;

namespace Kawa.Dataflow.Cli.Adapters;

/// <summary>Maps the daemon's NATS connection settings (servers, auth, TLS) onto the adapter's <see cref="NatsConnectionOptions"/>.</summary>
internal static class NatsConnectionMapping
{
    /// <summary>The adapter's connection options for <paramref name="options"/>.</summary>
    /// <param name="options">Validated connection settings.</param>
    /// <param name="name">The client name the server shows.</param>
    public static NatsConnectionOptions From(INatsConnectionOptions options, string name)
    {
        var auth = options.Auth;
        var result = new NatsConnectionOptions
        {
            Servers = [.. options.Servers],
            Name = name,
            Token = auth?.Token,
            User = auth?.User,
            Password = auth?.Password,
            NKeySeed = auth?.Nkey,
            CredsFile = auth?.CredsFile,
            Creds = auth?.Creds,
        };
        if (options.Tls is { } tls)
        {
            result.Tls = new Kawa.Dataflow.Nats.NatsTlsOptions { CaFile = tls.Ca, CertFile = tls.Cert, KeyFile = tls.Key, Required = true };
        }

        return result;
    }
}
