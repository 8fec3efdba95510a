namespace Kawa.Dataflow.Nats;

/// <summary>A parsed server URL.</summary>
internal sealed record NatsServerAddress(string Host, int Port, bool Tls)
{
    public const int DefaultPort = 4222;

    public static bool TryParse(string? url, out NatsServerAddress? address, out string? problem)
    {
        address = null;
        problem = null;
        if (string.IsNullOrWhiteSpace(url))
        {
            problem = "server URL is empty.";
            return false;
        }

        var text = url.Trim();
        if (!text.Contains("://", StringComparison.Ordinal))
        {
            text = "nats://" + text;
        }

        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            problem = $"'{Redact(url)}' is not a server URL (expected nats://host:port).";
            return false;
        }

        var tls = uri.Scheme switch
        {
            "nats" => (bool?)false,
            "tls" => true,
            _ => null,
        };
        if (tls is null)
        {
            problem = $"'{Redact(url)}' has scheme '{uri.Scheme}'; expected nats:// or tls://.";
            return false;
        }

        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            problem = $"'{Redact(url)}' carries credentials; put them in the auth options instead.";
            return false;
        }

        address = new NatsServerAddress(uri.Host.Trim('[', ']'), uri.IsDefaultPort || uri.Port < 0 ? DefaultPort : uri.Port, tls.Value);
        return true;
    }

    public static NatsServerAddress Parse(string url)
        => TryParse(url, out var address, out var problem) ? address! : throw new ArgumentException(problem, nameof(url));

    public override string ToString() => $"{(Tls ? "tls" : "nats")}://{Host}:{Port}";

    internal static string Redact(string url)
    {
        var at = url.IndexOf('@', StringComparison.Ordinal);
        var scheme = url.IndexOf("://", StringComparison.Ordinal);
        return at < 0 ? url : (scheme >= 0 ? url[..(scheme + 3)] : string.Empty) + "***" + url[at..];
    }
}
