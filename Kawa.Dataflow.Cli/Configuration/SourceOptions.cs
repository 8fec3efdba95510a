namespace Kawa.Dataflow.Cli.Configuration;

/// <summary>A source; <see cref="Type"/> picks the concrete options class.</summary>
internal abstract class SourceOptions
{
    /// <summary>The source type: <c>nats-jetstream</c>, <c>nats</c>, <c>file</c> or <c>stdin</c>. Required.</summary>
    public string Type { get; set; } = string.Empty;
}

/// <summary>Connection settings shared by everything that talks to NATS.</summary>
internal interface INatsConnectionOptions
{
    /// <summary>Server URLs (<c>nats://host:4222</c>, <c>tls://…</c>).</summary>
    List<string> Servers { get; }

    /// <summary>Credentials, if the server needs them.</summary>
    NatsAuthOptions? Auth { get; }

    /// <summary>TLS settings, if used.</summary>
    NatsTlsOptions? Tls { get; }
}

/// <summary>NATS credentials: exactly one method (token, user and password, NKey seed, or a creds file or its contents).</summary>
internal sealed class NatsAuthOptions
{
    /// <summary>A token (secret).</summary>
    public string? Token { get; set; }

    /// <summary>A user name; needs <see cref="Password"/>.</summary>
    public string? User { get; set; }

    /// <summary>The user's password (secret).</summary>
    public string? Password { get; set; }

    /// <summary>An NKey seed, <c>SU…</c> (secret).</summary>
    public string? Nkey { get; set; }

    /// <summary>Path of a <c>.creds</c> file (JWT and seed).</summary>
    public string? CredsFile { get; set; }

    /// <summary>The contents of a <c>.creds</c> file, for secrets injected as environment variables (secret).</summary>
    public string? Creds { get; set; }
}

/// <summary>TLS to the NATS servers.</summary>
internal sealed class NatsTlsOptions
{
    /// <summary>PEM file of the CA that signed the server certificate. Default: the system trust store.</summary>
    public string? Ca { get; set; }

    /// <summary>PEM client certificate for mutual TLS; needs <see cref="Key"/>.</summary>
    public string? Cert { get; set; }

    /// <summary>PEM private key of <see cref="Cert"/>.</summary>
    public string? Key { get; set; }
}

/// <summary>A durable JetStream pull consumer: at-least-once, acked after the destination's durable write.</summary>
internal sealed class NatsJetStreamSourceOptions : SourceOptions, INatsConnectionOptions
{
    /// <summary>Server URLs. Default <c>nats://127.0.0.1:4222</c>.</summary>
    public List<string> Servers { get; set; } = ["nats://127.0.0.1:4222"];

    /// <summary>Credentials. Default none.</summary>
    public NatsAuthOptions? Auth { get; set; }

    /// <summary>TLS. Default none (plain, unless a <c>tls://</c> URL).</summary>
    public NatsTlsOptions? Tls { get; set; }

    /// <summary>The stream to consume. Required.</summary>
    public string? Stream { get; set; }

    /// <summary>The durable consumer's name (created if missing). Required: it is what survives a restart.</summary>
    public string? Durable { get; set; }

    /// <summary>Subjects to consume within the stream. Default: all of the stream's.</summary>
    public List<string> FilterSubjects { get; set; } = [];

    /// <summary>Where a new consumer starts: <c>all</c>, <c>last</c>, <c>new</c>, <c>lastPerSubject</c>, <c>byStartSequence</c>, <c>byStartTime</c>. Default <c>all</c>.</summary>
    public string DeliverPolicy { get; set; } = "all";

    /// <summary>Start sequence for <c>byStartSequence</c>.</summary>
    public ulong? OptStartSeq { get; set; }

    /// <summary>Start time for <c>byStartTime</c>.</summary>
    public DateTimeOffset? OptStartTime { get; set; }

    /// <summary>How long the server waits for an ack before redelivering. Default 2 min: above a Parquet destination's
    /// default roll age (1 min), since its messages are acked only when their file commits.</summary>
    public TimeSpan AckWait { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Unacked messages the server allows the consumer, across every process sharing the durable. Must be at
    /// least <c>limits.maxInFlightMessages</c> + <see cref="Prefetch"/> (validated: the library's start-up rule). Default
    /// 120,000: two processes with the default limits (50,000 + 256 each) fit.</summary>
    public int MaxAckPending { get; set; } = 120_000;

    /// <summary>Messages requested per pull. Default 256; at most <see cref="MaxAckPending"/>.</summary>
    public int Prefetch { get; set; } = 256;
}

/// <summary>A core NATS subscription (at-most-once: core NATS has no acks).</summary>
internal sealed class NatsSourceOptions : SourceOptions, INatsConnectionOptions
{
    /// <summary>Server URLs. Default <c>nats://127.0.0.1:4222</c>.</summary>
    public List<string> Servers { get; set; } = ["nats://127.0.0.1:4222"];

    /// <summary>Credentials. Default none.</summary>
    public NatsAuthOptions? Auth { get; set; }

    /// <summary>TLS. Default none.</summary>
    public NatsTlsOptions? Tls { get; set; }

    /// <summary>The subject to subscribe to; wildcards allowed. Required.</summary>
    public string? Subject { get; set; }

    /// <summary>Queue group to share the subject's messages with other instances. Default none.</summary>
    public string? QueueGroup { get; set; }
}

/// <summary>A file: read once, or followed like <c>tail -F</c> with its position saved.</summary>
internal sealed class FileSourceOptions : SourceOptions
{
    /// <summary>The file to read. Required.</summary>
    public string? Path { get; set; }

    /// <summary><c>read</c> (to the end, then the pipeline drains and stops) or <c>follow</c>. Default <c>read</c>.</summary>
    public string Mode { get; set; } = "read";

    /// <summary><c>lines</c> (each line is one message) or <c>ndjson</c> (each line is one JSON document). Default <c>lines</c>.</summary>
    public string Format { get; set; } = "lines";

    /// <summary>Where <c>follow</c> saves the acked position so a restart resumes there. Required for <c>follow</c>.</summary>
    public string? OffsetFile { get; set; }
}

/// <summary>Standard input, one message per line, until end of input.</summary>
internal sealed class StdinSourceOptions : SourceOptions
{
    /// <summary><c>lines</c> or <c>ndjson</c>. Default <c>lines</c>.</summary>
    public string Format { get; set; } = "lines";
}
