namespace Kawa.Dataflow.Cli.Configuration;

/// <summary>A destination; <see cref="Type"/> picks the concrete options class.</summary>
internal abstract class KawaDestinationOptions
{
    /// <summary><c>parquet</c>, <c>nats-jetstream</c> or <c>stdout</c>. Required.</summary>
    public string Type { get; set; } = string.Empty;
}

/// <summary>Parquet files in a local directory or S3, partitioned by a path template; acks at each file commit.</summary>
internal sealed class ParquetDestinationOptions : KawaDestinationOptions
{
    /// <summary>A local directory or <c>s3://bucket/prefix</c>. Required.</summary>
    public string? Path { get; set; }

    /// <summary>S3 connection settings for an <c>s3://</c> path (region or endpoint required there).</summary>
    public S3Options? S3 { get; set; }

    /// <summary>The columns. Default (none given): <c>received_at</c>, <c>subject</c>, <c>sequence</c>, <c>key</c>, <c>payload</c>.</summary>
    public List<ParquetColumnOptions?> Columns { get; set; } = [];

    /// <summary>
    /// A JSON column that receives the fields no column maps, or <see langword="null"/> to drop them and count them
    /// (<c>ColumnMapper.UnmappedFields</c>). Default <see langword="null"/>.
    /// </summary>
    public string? ExtraColumn { get; set; }

    /// <summary>Partition path template, e.g. <c>dt={ts:yyyy-MM-dd}/hour={ts:HH}</c>. Default none (one directory).</summary>
    public string? PartitionBy { get; set; }

    /// <summary><c>snappy</c>, <c>gzip</c> or <c>none</c>. Default <c>snappy</c>.</summary>
    public string Codec { get; set; } = "snappy";

    /// <summary>Rows per file before it is committed. Default 25,000: half the default in-flight window
    /// (<c>limits.maxInFlightMessages</c>, 50,000), since a file's messages stay unacked until it commits; a file then
    /// rolls at its row count while the next one fills, instead of being cut when the window is full.</summary>
    public long RollRows { get; set; } = 25_000;

    /// <summary>Bytes per file before it is committed. Default 128 MiB; at least 1 KiB.</summary>
    public long RollBytes { get; set; } = 128L * 1024 * 1024;

    /// <summary>Age at which an open file is committed (and its messages acked). Default 1 min; below the source's ack wait.</summary>
    public TimeSpan RollAge { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>fsync each local file and its directory before acking. Default true.</summary>
    public bool Fsync { get; set; } = true;

    /// <summary>Rows per row group: a row group is written out to the open file when it has this many. Default 122,880,
    /// the Parquet writer's and sink's default (DuckDB's row-group size; see docs/parquet.md).</summary>
    public int RowGroupRows { get; set; } = Kawa.Dataflow.Parquet.Writing.ParquetWriterOptions.DefaultRowGroupMaxRows;

    /// <summary>
    /// This writer's id in file names and temporary files (<c>[A-Za-z0-9_-]</c>, at most 48 characters). Default: for a
    /// local lake, a free id derived from host and lake (several processes may share a lake: each takes its own);
    /// for S3, one derived from host, bucket and prefix, so processes sharing an S3 lake must each set their own.
    /// </summary>
    public string? InstanceId { get; set; }
}

/// <summary>S3 (or S3-compatible) connection settings.</summary>
internal sealed class S3Options
{
    /// <summary>A custom endpoint (MinIO, s3rver), <c>http(s)://host:port</c>.</summary>
    public string? Endpoint { get; set; }

    /// <summary>The AWS region.</summary>
    public string? Region { get; set; }

    /// <summary>Path-style addressing (most S3-compatible servers need it). Default false.</summary>
    public bool ForcePathStyle { get; set; }

    /// <summary>Access key id; default: the AWS SDK's credential chain.</summary>
    public string? AccessKey { get; set; }

    /// <summary>Secret access key (secret); needs <see cref="AccessKey"/>.</summary>
    public string? SecretKey { get; set; }
}

/// <summary>One Parquet column.</summary>
internal sealed class ParquetColumnOptions
{
    /// <summary>The column name. Required; unique.</summary>
    public string? Name { get; set; }

    /// <summary><c>string</c>, <c>long</c>, <c>int</c>, <c>double</c>, <c>bool</c>, <c>timestamp</c>, <c>json</c> or <c>binary</c>. Default <c>string</c>.</summary>
    public string Type { get; set; } = "string";

    /// <summary>The field it reads, or a message property (<c>$receivedAt</c>, <c>$subject</c>, <c>$sequence</c>, <c>$key</c>, <c>$raw</c>, …). Default: <see cref="Name"/>.</summary>
    public string? Source { get; set; }

    /// <summary>Whether the column may be null (a missing field is null). Default true; a missing field in a non-nullable column is an error for that message.</summary>
    public bool Nullable { get; set; } = true;
}

/// <summary>Publishes each message to JetStream and acks the source after the stream's publish ack.</summary>
internal sealed class NatsJetStreamDestinationOptions : KawaDestinationOptions, INatsConnectionOptions
{
    /// <summary>Server URLs. Default <c>nats://127.0.0.1:4222</c>.</summary>
    public List<string> Servers { get; set; } = ["nats://127.0.0.1:4222"];

    /// <summary>Credentials. Default none.</summary>
    public NatsAuthOptions? Auth { get; set; }

    /// <summary>TLS. Default none.</summary>
    public NatsTlsOptions? Tls { get; set; }

    /// <summary>The subject per message, e.g. <c>logs.{status}</c>. Required.</summary>
    public string? SubjectTemplate { get; set; }
}

/// <summary>Writes each message as a line to standard output (debugging, piping).</summary>
internal sealed class StdoutDestinationOptions : KawaDestinationOptions
{
    /// <summary><c>json</c> (the fields as one JSON object) or <c>raw</c> (the payload). Default <c>json</c>.</summary>
    public string Format { get; set; } = "json";
}
