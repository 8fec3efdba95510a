using System.Text.Json.Nodes;
using Kawa.Dataflow.Nats.Auth;

namespace Kawa.Dataflow.Tests.Nats.Infrastructure;

/// <summary>
/// A nats-server in operator mode (memory resolver) whose one account may use JetStream, and a user of that account
/// whose <c>.creds</c> contents are <see cref="Creds"/>.
/// </summary>
internal sealed class OperatorModeServer : IAsyncDisposable
{
    private readonly string _directory;

    private OperatorModeServer(NatsServerProcess server, string directory, string jwt, NKeyPair user)
    {
        Server = server;
        _directory = directory;
        Jwt = jwt;
        Creds = TestJwt.Creds(jwt, user);
        Seed = user.EncodeSeed();
    }

    public NatsServerProcess Server { get; }

    /// <summary>The user's .creds file contents (JWT and seed).</summary>
    public string Creds { get; }

    /// <summary>The user's JWT, signed by the account.</summary>
    public string Jwt { get; }

    /// <summary>The user's seed (also to check it never shows in output).</summary>
    public string Seed { get; }

    public static async Task<OperatorModeServer> StartAsync()
    {
        var op = NKeyPair.Create(NKeyType.Operator);
        var account = NKeyPair.Create(NKeyType.Account);
        var system = NKeyPair.Create(NKeyType.Account);
        var user = NKeyPair.Create(NKeyType.User);
        var directory = Path.Combine(Path.GetTempPath(), "kawa-op-js-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        var operatorJwt = Path.Combine(directory, "operator.jwt");
        await File.WriteAllTextAsync(operatorJwt, TestJwt.Operator(op));
        var accountJwt = TestJwt.Encode(op, account.PublicKey, "js-account", new JsonObject
        {
            ["limits"] = new JsonObject
            {
                ["subs"] = -1, ["data"] = -1, ["payload"] = -1, ["imports"] = -1, ["exports"] = -1,
                ["wildcards"] = true, ["conn"] = -1, ["leaf"] = -1,
                // JetStream for this account (unlimited): without these it is off in operator mode.
                ["mem_storage"] = -1, ["disk_storage"] = -1, ["streams"] = -1, ["consumer"] = -1,
            },
            ["type"] = "account",
            ["version"] = 2,
        });
        var config = $"operator: \"{operatorJwt}\"\nsystem_account: {system.PublicKey}\nresolver: MEMORY\nresolver_preload: {{\n" +
            $"  {account.PublicKey}: \"{accountJwt}\"\n  {system.PublicKey}: \"{TestJwt.Account(op, system)}\"\n}}\n";
        var server = await NatsServerProcess.StartAsync(config, directory: directory);
        return new OperatorModeServer(server, directory, TestJwt.User(account, user), user);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
