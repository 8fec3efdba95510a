namespace Kawa.Dataflow.Cli.Configuration;

/// <summary>Decides which configuration values are secret and masks them in anything printed.</summary>
/// <remarks>
/// A key is secret by its last segment's name (case-insensitive), wherever it appears, so a secret given through an
/// environment variable or an unknown place in the tree is masked too. URLs lose the password of their user info.
/// </remarks>
internal static class Secrets
{
    /// <summary>What a masked value prints as.</summary>
    public const string Mask = "***";

    private static readonly HashSet<string> s_secretKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "password", "token", "nkey", "seed", "creds", "secretKey", "sessionToken", "secret",
    };

    /// <summary>Whether a key (a configuration key or its last segment) names a secret.</summary>
    public static bool IsSecretKey(string key)
    {
        var last = key.LastIndexOfAny([':', '.']);
        return s_secretKeys.Contains(last >= 0 ? key[(last + 1)..] : key);
    }

    /// <summary>The value as it may be printed for <paramref name="key"/>.</summary>
    public static string? Show(string key, string? value)
        => value is null ? null : IsSecretKey(key) ? Mask : MaskUrl(value);

    /// <summary>Masks the password (or a lone token) in the user info of a URL-looking value: <c>nats://u:***@h</c>.</summary>
    public static string MaskUrl(string value)
    {
        var scheme = value.IndexOf("://", StringComparison.Ordinal);
        if (scheme < 0)
        {
            return value;
        }

        var start = scheme + 3;
        var end = value.IndexOfAny(['/', '?', '#'], start);
        var authority = end < 0 ? value[start..] : value[start..end];
        var at = authority.LastIndexOf('@');
        if (at < 0)
        {
            return value;
        }

        var userInfo = authority[..at];
        var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
        var masked = colon >= 0 ? userInfo[..(colon + 1)] + Mask : Mask;
        return value[..start] + masked + authority[at..] + (end < 0 ? string.Empty : value[end..]);
    }
}
