using System.Globalization;
using Amazon;
using Amazon.Runtime;
using Amazon.S3;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Mapping;
using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Schema;
using Kawa.Dataflow.Parquet.Sink;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Cli.Adapters;

/// <summary>
/// Builds the daemon's <c>parquet</c> destination: a dynamic-row <see cref="ParquetDestination{T}"/> whose columns come
/// from <see cref="ColumnMapper"/>, over a local or S3 lake cleaned of a crashed run's leftovers before first use.
/// </summary>
internal static class ParquetEventDestination
{
    /// <summary>Creates the destination (and cleans up the lake's abandoned temporary files).</summary>
    /// <param name="options">Validated destination options.</param>
    /// <param name="deadLetter">Whether it receives dead letters (default columns then describe the failure).</param>
    /// <param name="timeProvider">The clock for rolls and partition fallbacks.</param>
    /// <param name="loggerFactory">Where the sink and the lake log: commits, and failed writes or commits (whose messages are negatively acked).</param>
    /// <param name="cancellationToken">Cancels the startup cleanup.</param>
    public static async Task<IDestination<EventRecord>> CreateAsync(ParquetDestinationOptions options, bool deadLetter, TimeProvider timeProvider, Microsoft.Extensions.Logging.ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var mapper = ColumnMapper.From(options, deadLetter);
        Monitoring.CliTelemetry.Track(mapper);
        var schema = SchemaOf(mapper);
        var storage = CreateStorage(options, timeProvider, loggerFactory, out var s3Client);
        // A crashed run's temporary files were never acked: remove them before writing (their messages are redelivered).
        await storage.CleanupAsync(cancellationToken).ConfigureAwait(false);
        if (s3Client is not null)
        {
            await CheckS3AccessAsync(s3Client, (S3LakeStorage)storage, cancellationToken).ConfigureAwait(false);
        }

        var sinkOptions = new ParquetDestinationOptions<EventRecord>
        {
            Storage = storage,
            Partitioning = PartitionOf(options.PartitionBy, timeProvider),
            Compression = options.Codec.ToLowerInvariant() switch
            {
                "gzip" => ParquetCompression.Gzip,
                "none" => ParquetCompression.Uncompressed,
                _ => ParquetCompression.Snappy,
            },
            FileMaxRows = options.RollRows,
            FileMaxBytes = options.RollBytes,
            FileMaxAge = options.RollAge,
            // Cleaned above, at start and before the S3 access check; the sink need not walk the lake again.
            CleanupAtStart = false,
            RowGroupMaxRows = options.RowGroupRows,
            // Test-only crash injection (KAWA_FAULT_POINT), on the main destination only; null unless the variable is set.
            FaultPointReached = deadLetter ? null : Running.TestFaultPoint.FromEnvironment(Console.Error),
        };
        sinkOptions.KeyValueMetadata["kawa.columns"] = string.Join(",", mapper.Columns.Select(c => c.Name));
        return ParquetDestination<EventRecord>.CreateDynamic(sinkOptions, m => new DynamicRow(schema, mapper.Map(m)), timeProvider, loggerFactory);
    }

    /// <summary>The Parquet schema of the mapper's columns (JSON columns are strings).</summary>
    internal static ParquetSchema SchemaOf(ColumnMapper mapper)
    {
        var builder = new ParquetSchemaBuilder();
        foreach (var column in mapper.Columns)
        {
            builder.Add(column.Name, column.Type switch
            {
                ColumnType.Long => ParquetValueType.Int64,
                ColumnType.Int => ParquetValueType.Int32,
                ColumnType.Double => ParquetValueType.Double,
                ColumnType.Bool => ParquetValueType.Boolean,
                ColumnType.Timestamp => ParquetValueType.Timestamp,
                ColumnType.Binary => ParquetValueType.Binary,
                _ => ParquetValueType.String,
            }, column.Nullable);
        }

        return builder.Build();
    }

    /// <summary>The lake partitioner for a daemon <c>partitionBy</c> template (<see langword="null"/> or empty: none).</summary>
    /// <param name="template">A validated daemon template: <c>{ts:FORMAT}</c>, <c>{field}</c>, <c>{field:FORMAT}</c>, <c>{$property[:FORMAT]}</c>.</param>
    /// <param name="timeProvider">The clock the partitioner falls back to.</param>
    internal static PartitionPath<EventRecord> PartitionOf(string? template, TimeProvider timeProvider) =>
        string.IsNullOrEmpty(template)
            ? PartitionPath<EventRecord>.None
            : PartitionPath<EventRecord>.Parse(ToLakeTemplate(template), new PartitionPathOptions<EventRecord>
            {
                Timestamp = EventTime,
                Field = static (m, name) => name.StartsWith('$') ? MessageProperties.Get(m, name).ToObject() : m.Value[name].ToObject(),
                TimeProvider = timeProvider,
            });

    /// <summary>
    /// Rewrites the daemon's template syntax (the one <c>validate</c> checks and subjectTemplate shares) into the lake's
    /// partition tokens: <c>{ts:FORMAT}</c> stays (the fast, cached event-time path), <c>{$subject}</c> and <c>{$key}</c>
    /// become <c>{subject}</c> and <c>{key}</c>, and any other field or <c>$</c> property becomes <c>{field:NAME[:FORMAT]}</c>,
    /// read through <see cref="PartitionOf"/>'s field reader. Timestamps are always formatted in UTC.
    /// </summary>
    internal static string ToLakeTemplate(string template)
    {
        _ = Templates.FieldTemplate.Parse(template); // the same syntax errors, with positions, as validate reports
        var builder = new System.Text.StringBuilder(template.Length + 16);
        var position = 0;
        for (var open = template.IndexOf('{', StringComparison.Ordinal); open >= 0; open = template.IndexOf('{', position))
        {
            var close = template.IndexOf('}', open + 1);
            var inner = template[(open + 1)..close];
            var colon = inner.IndexOf(':', StringComparison.Ordinal);
            var field = (colon >= 0 ? inner[..colon] : inner).Trim();
            var format = colon >= 0 ? inner[(colon + 1)..] : null;
            builder.Append(template, position, open - position);
            builder.Append((field, format) switch
            {
                ("ts", not null) => $"{{ts:{format}}}",
                ("$subject", null) => "{subject}",
                ("$key", null) => "{key}",
                (_, null) => $"{{field:{field}}}",
                _ => $"{{field:{field}:{format}}}",
            });
            position = close + 1;
        }

        builder.Append(template, position, template.Length - position);
        return builder.ToString();
    }

    /// <summary>
    /// The event time for <c>{ts:...}</c>: the record's <c>ts</c> field (a timestamp, or ISO 8601 text), else
    /// <see langword="null"/> so the partitioner falls back to the message's timestamp attribute, then the clock.
    /// </summary>
    private static DateTimeOffset? EventTime(Message<EventRecord> message)
    {
        if (!message.Value.TryGet("ts", out var ts))
        {
            return null;
        }

        return ts.Kind switch
        {
            FieldKind.Timestamp => ts.AsTimestamp(),
            FieldKind.String when EventTimestamps.TryParse(ts.AsString(), out var parsed) => parsed,
            _ => null,
        };
    }

    /// <summary>
    /// Fails at start, not at the first commit, when S3 refuses the credentials or the bucket is missing: the cleanup
    /// before it only logs such errors, and a refused commit would negatively ack and redeliver the same rows forever.
    /// </summary>
    /// <exception cref="InvalidOperationException">S3 refused; the inner <see cref="AmazonS3Exception"/> carries the status (401/403 map to exit 4).</exception>
    private static async Task CheckS3AccessAsync(AmazonS3Client client, S3LakeStorage storage, CancellationToken cancellationToken)
    {
        try
        {
            await client.ListObjectsV2Async(new Amazon.S3.Model.ListObjectsV2Request { BucketName = storage.BucketName, Prefix = storage.KeyPrefix, MaxKeys = 1 }, cancellationToken).ConfigureAwait(false);
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode is System.Net.HttpStatusCode.Unauthorized or System.Net.HttpStatusCode.Forbidden or System.Net.HttpStatusCode.NotFound)
        {
            var what = ex.StatusCode == System.Net.HttpStatusCode.NotFound
                ? "check that the bucket exists"
                : "check s3.accessKey/s3.secretKey (or the AWS credential chain) and that they may list and write that prefix";
            throw new InvalidOperationException($"S3 refused s3://{storage.BucketName}/{storage.KeyPrefix} ({ex.ErrorCode}, HTTP {(int)ex.StatusCode}): {what}", ex);
        }
    }

    /// <summary>
    /// The lake's <see cref="ILakeStorage.MaxFileAge"/> for a <c>rollAge</c>: twice the roll age, and at least the roll age
    /// plus 5 minutes. A file lives its roll age plus the time its commit takes (waiting for a running flush, an S3
    /// upload). The lake's names declare this age, and another kawa's startup cleanup removes temporary files only past
    /// twice the larger of its own age and the declared one, so never a live one, whatever rollAge either process has.
    /// </summary>
    internal static TimeSpan LakeMaxFileAge(TimeSpan rollAge) => rollAge + TimeSpan.FromTicks(Math.Max(rollAge.Ticks, TimeSpan.FromMinutes(5).Ticks));

    /// <summary>The lake of a <c>parquet</c> destination: local directory or S3 bucket, its max file age from <c>rollAge</c>.</summary>
    internal static ILakeStorage CreateStorage(ParquetDestinationOptions options, TimeProvider timeProvider, Microsoft.Extensions.Logging.ILoggerFactory loggerFactory, out AmazonS3Client? s3Client)
    {
        s3Client = null;
        var path = options.Path!;
        if (!path.StartsWith("s3://", StringComparison.OrdinalIgnoreCase))
        {
            // Each process takes an instance id of its own (see LakeInstanceSlots): the startup cleanup then never
            // deletes the temporary files of another kawa process writing to the same lake.
            var root = Path.GetFullPath(path);
            return new LocalLakeStorage(
                new LocalLakeStorageOptions { RootPath = root, InstanceId = LakeInstanceSlots.Acquire(root, options.InstanceId), Fsync = options.Fsync ? FsyncMode.Full : FsyncMode.None, MaxFileAge = LakeMaxFileAge(options.RollAge) },
                loggerFactory: loggerFactory,
                timeProvider: timeProvider);
        }

        var rest = path["s3://".Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var bucket = slash < 0 ? rest : rest[..slash];
        var prefix = slash < 0 ? "" : rest[(slash + 1)..].Trim('/');
        var s3 = options.S3 ?? new S3Options();
        var config = new AmazonS3Config { ForcePathStyle = s3.ForcePathStyle };
        if (s3.Endpoint is not null)
        {
            config.ServiceURL = s3.Endpoint;
            config.AuthenticationRegion = s3.Region ?? "us-east-1";
            // S3-compatible stores (MinIO, s3rver, ...) often lack the SDK v4 default flexible checksums.
            config.RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED;
            config.ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED;
        }
        else if (s3.Region is not null)
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(s3.Region);
        }

        var client = s3.AccessKey is not null
            ? new AmazonS3Client(new BasicAWSCredentials(s3.AccessKey, s3.SecretKey), config)
            : new AmazonS3Client(config);
        s3Client = client;
        return new S3LakeStorage(client, new S3LakeStorageOptions { BucketName = bucket, Prefix = prefix, InstanceId = options.InstanceId, MaxFileAge = LakeMaxFileAge(options.RollAge) }, loggerFactory, timeProvider);
    }
}
