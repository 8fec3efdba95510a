namespace Kawa.Dataflow.Nats;

/// <summary>How to reach and authenticate to a NATS server or cluster.</summary>
/// <remarks>
/// <para>Validate once with <see cref="Validate"/>; the connection does so before connecting and reports every
/// problem at once. Secrets (<see cref="Token"/>, <see cref="Password"/>, <see cref="NKeySeed"/>, <see cref="Jwt"/>, <see cref="Creds"/>)
/// never appear in <see cref="ToString"/>, logs or exception messages.</para>
/// <para>Authentication: give at most one of <see cref="Token"/>, <see cref="User"/>/<see cref="Password"/>,
/// <see cref="NKeySeed"/>/<see cref="NKeySeedFile"/> (optionally with <see cref="Jwt"/>), <see cref="CredsFile"/> or <see cref="Creds"/>.</para>
/// <para>Reconnect: when the connection is lost the client cycles through <see cref="Servers"/> plus the servers the
/// cluster announces: the first round at once, then waiting <see cref="ReconnectWait"/> before the second round,
/// doubling each round up to 8 × <see cref="ReconnectWait"/>, plus a random extra of up to <see cref="ReconnectJitter"/>
/// each time; for at most <see cref="MaxReconnectAttempts"/> attempts per server (-1: forever). While disconnected,
/// publishes and acks are kept in a buffer of <see cref="ReconnectBufferBytes"/> and sent after the reconnect; when the
/// buffer is full a publish waits up to <see cref="ReconnectBufferTimeout"/> for the connection and then fails with
/// <see cref="NatsReconnectBufferFullException"/> (that message was not sent). Subscriptions are re-established
/// and JetStream pull consumers re-issue their pulls.</para>
/// </remarks>
public sealed class NatsConnectionOptions
{
    private static readonly System.Buffers.SearchValues<char> InvalidInboxChars = System.Buffers.SearchValues.Create(" \t\r\n*>");

    /// <summary>Server URLs, <c>nats://host:port</c> (or <c>tls://</c>); default <c>nats://127.0.0.1:4222</c>.</summary>
    public IList<string> Servers { get; set; } = ["nats://127.0.0.1:4222"];

    /// <summary>Shuffle <see cref="Servers"/> (and announced servers) before connecting, spreading clients over a
    /// cluster; default <see langword="true"/>. Set <see langword="false"/> to try them in the given order.</summary>
    public bool RandomizeServers { get; set; } = true;

    /// <summary>Connection name the server shows in monitoring; default <c>kawa-dataflow</c>.</summary>
    public string Name { get; set; } = "kawa-dataflow";

    /// <summary>Authentication token (secret); default none.</summary>
    public string? Token { get; set; }

    /// <summary>User name; default none. Requires <see cref="Password"/>.</summary>
    public string? User { get; set; }

    /// <summary>Password (secret); default none.</summary>
    public string? Password { get; set; }

    /// <summary>NKey user seed, <c>SU...</c> (secret); default none.</summary>
    public string? NKeySeed { get; set; }

    /// <summary>File holding the NKey user seed; default none.</summary>
    public string? NKeySeedFile { get; set; }

    /// <summary>User JWT for decentralized auth, signed with <see cref="NKeySeed"/> (secret); default none.</summary>
    public string? Jwt { get; set; }

    /// <summary>A <c>.creds</c> file holding a user JWT and NKey seed; default none.</summary>
    public string? CredsFile { get; set; }

    /// <summary>The contents of a <c>.creds</c> file (secret), for credentials injected through the environment or a
    /// secret store rather than a file; default none. Exclusive with <see cref="CredsFile"/>.</summary>
    public string? Creds { get; set; }

    /// <summary>TLS settings. TLS is used when the server requires it or a URL says <c>tls://</c>.</summary>
    public NatsTlsOptions Tls { get; set; } = new();

    /// <summary>How often to PING the server; default 2 minutes.</summary>
    public TimeSpan PingInterval { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Unanswered PINGs after which the connection is stale and is re-established; default 2.</summary>
    public int MaxPingsOut { get; set; } = 2;

    /// <summary>Time allowed for TCP connect, TLS and the CONNECT handshake; default 5 seconds.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Base wait between reconnect rounds, doubled each round up to 8 times this; default 2 seconds.</summary>
    public TimeSpan ReconnectWait { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Random extra wait, between 0 and this, added to every reconnect wait; default 100 ms.</summary>
    public TimeSpan ReconnectJitter { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Reconnect attempts per server before giving up; -1 (the default) retries forever.</summary>
    public int MaxReconnectAttempts { get; set; } = -1;

    /// <summary>Bytes of publishes/acks kept while disconnected; default 8 MiB.</summary>
    public int ReconnectBufferBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>How long a publish waits for room in a full reconnect buffer before failing; default 10 seconds.</summary>
    public TimeSpan ReconnectBufferTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Default timeout of a request (including JetStream API calls); default 5 seconds.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Prefix of reply subjects; default <c>_INBOX</c>.</summary>
    public string InboxPrefix { get; set; } = "_INBOX";

    /// <summary>Messages a core subscription buffers before it drops (slow consumer); default 65,536.</summary>
    public int SubscriptionCapacity { get; set; } = 65_536;

    /// <summary>JetStream domain (API prefix <c>$JS.&lt;domain&gt;.API</c>); default none.</summary>
    public string? JetStreamDomain { get; set; }

    /// <summary>JetStream API prefix, for imported JetStream; default <c>$JS.API</c>. Exclusive with <see cref="JetStreamDomain"/>.</summary>
    public string? JetStreamApiPrefix { get; set; }

    /// <summary>Checks every setting and reports all problems at once.</summary>
    /// <returns>The problems, each naming its property; empty when valid.</returns>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Servers is null || Servers.Count == 0)
        {
            errors.Add($"{nameof(Servers)}: at least one server URL is required (nats://host:port).");
        }
        else
        {
            for (var i = 0; i < Servers.Count; i++)
            {
                if (!NatsServerAddress.TryParse(Servers[i], out _, out var problem))
                {
                    errors.Add($"{nameof(Servers)}[{i}]: {problem}");
                }
            }
        }

        if (string.IsNullOrWhiteSpace(Name))
        {
            errors.Add($"{nameof(Name)}: must not be empty.");
        }

        var authModes = (Token is not null ? 1 : 0) + (User is not null || Password is not null ? 1 : 0)
            + (NKeySeed is not null || NKeySeedFile is not null ? 1 : 0) + (CredsFile is not null || Creds is not null ? 1 : 0);
        if (authModes > 1)
        {
            errors.Add("Auth: give only one of Token, User/Password, NKeySeed/NKeySeedFile (with optional Jwt), CredsFile or Creds.");
        }

        if ((User is null) != (Password is null))
        {
            errors.Add($"{nameof(User)}/{nameof(Password)}: both are required together.");
        }

        if (NKeySeed is not null && NKeySeedFile is not null)
        {
            errors.Add($"{nameof(NKeySeed)}/{nameof(NKeySeedFile)}: give one, not both.");
        }

        if (Jwt is not null && NKeySeed is null && NKeySeedFile is null)
        {
            errors.Add($"{nameof(Jwt)}: requires {nameof(NKeySeed)} or {nameof(NKeySeedFile)} to sign the server nonce.");
        }

        if (NKeySeedFile is not null && !File.Exists(NKeySeedFile))
        {
            errors.Add($"{nameof(NKeySeedFile)}: file '{NKeySeedFile}' does not exist.");
        }

        if (CredsFile is not null && !File.Exists(CredsFile))
        {
            errors.Add($"{nameof(CredsFile)}: file '{CredsFile}' does not exist.");
        }

        if (Creds is not null)
        {
            if (CredsFile is not null)
            {
                errors.Add($"{nameof(Creds)}/{nameof(CredsFile)}: give one, not both.");
            }

            try
            {
                Auth.CredsFile.Parse(Creds);
            }
            catch (FormatException ex)
            {
                // The parser's message never contains the JWT or the seed.
                errors.Add($"{nameof(Creds)}: {ex.Message}");
            }
        }

        Positive(errors, nameof(PingInterval), PingInterval);
        Positive(errors, nameof(ConnectTimeout), ConnectTimeout);
        Positive(errors, nameof(RequestTimeout), RequestTimeout);
        Positive(errors, nameof(ReconnectBufferTimeout), ReconnectBufferTimeout);
        if (ReconnectWait < TimeSpan.Zero)
        {
            errors.Add($"{nameof(ReconnectWait)}: must not be negative.");
        }

        if (ReconnectJitter < TimeSpan.Zero)
        {
            errors.Add($"{nameof(ReconnectJitter)}: must not be negative.");
        }

        if (MaxPingsOut < 1)
        {
            errors.Add($"{nameof(MaxPingsOut)}: must be at least 1.");
        }

        if (MaxReconnectAttempts < -1)
        {
            errors.Add($"{nameof(MaxReconnectAttempts)}: must be -1 (forever) or at least 0.");
        }

        if (ReconnectBufferBytes < 0)
        {
            errors.Add($"{nameof(ReconnectBufferBytes)}: must not be negative.");
        }

        if (SubscriptionCapacity < 1)
        {
            errors.Add($"{nameof(SubscriptionCapacity)}: must be at least 1.");
        }

        if (string.IsNullOrWhiteSpace(InboxPrefix) || InboxPrefix.AsSpan().IndexOfAny(InvalidInboxChars) >= 0 || InboxPrefix.EndsWith('.'))
        {
            errors.Add($"{nameof(InboxPrefix)}: must be a subject without spaces, wildcards or a trailing dot.");
        }

        if (JetStreamDomain is not null && JetStreamApiPrefix is not null)
        {
            errors.Add($"{nameof(JetStreamDomain)}/{nameof(JetStreamApiPrefix)}: give one, not both.");
        }

        if (Tls is null)
        {
            errors.Add($"{nameof(Tls)}: must not be null.");
        }
        else
        {
            Tls.Validate(errors);
        }

        return errors;
    }

    /// <summary>Throws when <see cref="Validate"/> finds problems.</summary>
    /// <exception cref="ArgumentException">Lists every problem.</exception>
    public void ThrowIfInvalid()
    {
        var errors = Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid NATS connection options: " + string.Join(" ", errors));
        }
    }

    /// <summary>A description without any secret.</summary>
    public override string ToString()
    {
        var auth = CredsFile is not null ? "creds-file"
            : Creds is not null ? "creds ***"
            : NKeySeed is not null || NKeySeedFile is not null ? (Jwt is not null ? "jwt+nkey" : "nkey")
            : User is not null ? $"user '{User}' with password ***"
            : Token is not null ? "token ***" : "none";
        return $"NatsConnectionOptions {{ Servers = [{string.Join(", ", (Servers ?? []).Select(NatsServerAddress.Redact))}], Name = {Name}, Auth = {auth}, Tls = {Tls} }}";
    }

    private static void Positive(List<string> errors, string name, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add($"{name}: must be positive.");
        }
    }
}

/// <summary>TLS settings of a NATS connection.</summary>
/// <remarks>Server certificates are verified against the system roots, or only against <see cref="CaFile"/> when given,
/// including the host name, unless <see cref="InsecureSkipVerify"/>.</remarks>
public sealed class NatsTlsOptions
{
    /// <summary>PEM file of the CA(s) to trust instead of the system roots; default none.</summary>
    public string? CaFile { get; set; }

    /// <summary>PEM client certificate for mutual TLS; default none. Requires <see cref="KeyFile"/>.</summary>
    public string? CertFile { get; set; }

    /// <summary>PEM private key of <see cref="CertFile"/>; default none.</summary>
    public string? KeyFile { get; set; }

    /// <summary>Accept any server certificate (tests only); default <see langword="false"/>.</summary>
    public bool InsecureSkipVerify { get; set; }

    /// <summary>Use TLS even when the server does not require it; default <see langword="false"/>.</summary>
    public bool Required { get; set; }

    /// <inheritdoc/>
    public override string ToString() => $"{{ CaFile = {CaFile ?? "system"}, CertFile = {CertFile ?? "none"}, InsecureSkipVerify = {InsecureSkipVerify} }}";

    internal void Validate(List<string> errors)
    {
        if ((CertFile is null) != (KeyFile is null))
        {
            errors.Add("Tls.CertFile/Tls.KeyFile: both are required together.");
        }

        foreach (var (name, file) in new[] { ("Tls.CaFile", CaFile), ("Tls.CertFile", CertFile), ("Tls.KeyFile", KeyFile) })
        {
            if (file is not null && !File.Exists(file))
            {
                errors.Add($"{name}: file '{file}' does not exist.");
            }
        }
    }
}
