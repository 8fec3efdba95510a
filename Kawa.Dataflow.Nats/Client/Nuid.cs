using System.Security.Cryptography;

namespace Kawa.Dataflow.Nats.Client;

/// <summary>Unique random tokens for inbox subjects.</summary>
internal static class Nuid
{
    private const string Digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    public static string Next() => RandomNumberGenerator.GetString(Digits, 22);
}
