namespace Kawa.Dataflow.Cli.Handlers;

/// <summary>The fields the <c>combined</c> parser produces, in order.</summary>
internal static class CombinedLogFields
{
    /// <summary>Client address (<c>%h</c>).</summary>
    public const string Host = "host";

    /// <summary>identd name (<c>%l</c>), null for <c>-</c>.</summary>
    public const string Ident = "ident";

    /// <summary>Authenticated user (<c>%u</c>), null for <c>-</c>.</summary>
    public const string User = "user";

    /// <summary>Request time (<c>%t</c>) as a UTC timestamp.</summary>
    public const string Timestamp = "ts";

    /// <summary>Request method, from the request line.</summary>
    public const string Method = "method";

    /// <summary>Request target, from the request line.</summary>
    public const string Path = "path";

    /// <summary>Protocol, from the request line (null when the line has none).</summary>
    public const string Protocol = "protocol";

    /// <summary>Final status (<c>%&gt;s</c>), a long.</summary>
    public const string Status = "status";

    /// <summary>Response body bytes (<c>%b</c>), a long; <c>-</c> (no body) is 0.</summary>
    public const string Bytes = "bytes";

    /// <summary>Referer header, null for <c>-</c>.</summary>
    public const string Referrer = "referrer";

    /// <summary>User-Agent header, null for <c>-</c>.</summary>
    public const string Agent = "agent";

    /// <summary>All of them, in order.</summary>
    public static readonly IReadOnlyList<string> All = [Host, Ident, User, Timestamp, Method, Path, Protocol, Status, Bytes, Referrer, Agent];
}
