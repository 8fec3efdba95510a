using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Kawa.Dataflow.Nats.Auth;

namespace Kawa.Dataflow.Tests.Nats.Infrastructure;

/// <summary>Issues operator, account and user JWTs (ed25519-nkey) for operator-mode tests.</summary>
internal static class TestJwt
{
    public static string Encode(NKeyPair issuer, string subject, string name, JsonObject nats)
    {
        var header = new JsonObject { ["typ"] = "JWT", ["alg"] = "ed25519-nkey" };
        var claims = new JsonObject
        {
            ["jti"] = Base32Jti(),
            ["iat"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 10,
            ["iss"] = issuer.PublicKey,
            ["name"] = name,
            ["sub"] = subject,
            ["nats"] = nats,
        };
        var signingInput = B64(Encoding.UTF8.GetBytes(header.ToJsonString())) + "." + B64(Encoding.UTF8.GetBytes(claims.ToJsonString()));
        return signingInput + "." + B64(issuer.Sign(Encoding.ASCII.GetBytes(signingInput)));
    }

    public static string Operator(NKeyPair op) => Encode(op, op.PublicKey, "test-operator", new JsonObject { ["type"] = "operator", ["version"] = 2 });

    public static string Account(NKeyPair op, NKeyPair account) => Encode(op, account.PublicKey, "test-account", new JsonObject
    {
        ["limits"] = new JsonObject
        {
            ["subs"] = -1, ["data"] = -1, ["payload"] = -1, ["imports"] = -1, ["exports"] = -1,
            ["wildcards"] = true, ["conn"] = -1, ["leaf"] = -1,
        },
        ["type"] = "account",
        ["version"] = 2,
    });

    public static string User(NKeyPair account, NKeyPair user) => Encode(account, user.PublicKey, "test-user", new JsonObject
    {
        ["pub"] = new JsonObject(),
        ["sub"] = new JsonObject(),
        ["subs"] = -1,
        ["data"] = -1,
        ["payload"] = -1,
        ["type"] = "user",
        ["version"] = 2,
    });

    public static string Creds(string userJwt, NKeyPair user) => $"""
        -----BEGIN NATS USER JWT-----
        {userJwt}
        ------END NATS USER JWT------

        ************************* IMPORTANT *************************
        NKEY Seed printed below can be used to sign and prove identity.
        NKEYs are sensitive and should be treated as secrets.

        -----BEGIN USER NKEY SEED-----
        {user.EncodeSeed()}
        ------END USER NKEY SEED------

        *************************************************************
        """;

    private static string B64(byte[] data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string Base32Jti() => Convert.ToHexString(RandomNumberGenerator.GetBytes(26));
}
