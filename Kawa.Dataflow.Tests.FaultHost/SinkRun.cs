using System.Text.Json;
using Amazon.S3;
using Amazon.S3.Model;
using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Sink;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Tests.FaultHost;

/// <summary>A row of the <c>sink-run</c> command: an id and <see cref="SinkRunSpec.PayloadBytes"/> pseudo-random bytes.</summary>
public sealed class PayloadRow
{
    /// <summary>The row's number.</summary>
    public long Id { get; set; }

    /// <summary>The bytes of <see cref="Payload(long, int)"/> for this id (barely compressible).</summary>
    public byte[] Data { get; set; } = [];

    /// <summary>The payload of row <paramref name="id"/>: the same in the host and in the tests.</summary>
    public static byte[] Payload(long id, int size)
    {
        var bytes = new byte[size];
        new Random((int)id).NextBytes(bytes);
        return bytes;
    }
}

/// <summary>What the <c>sink-run</c> command does; passed as one JSON argument.</summary>
public sealed class SinkRunSpec
{
    /// <summary>The local lake root; null when <see cref="S3Url"/> is set.</summary>
    public string? Root { get; set; }

    /// <summary>The S3 endpoint (s3rver on loopback); null for a local lake.</summary>
    public string? S3Url { get; set; }

    /// <summary>The bucket, with <see cref="S3Url"/>.</summary>
    public string? Bucket { get; set; }

    /// <summary>The S3 part size, with <see cref="S3Url"/>.</summary>
    public int PartSize { get; set; } = S3LakeStorageOptions.MinimumPartSize;

    /// <summary>The storage's instance id.</summary>
    public string Instance { get; set; } = "sink-run";

    /// <summary>Where every ack outcome is appended as a line <c>ack &lt;id&gt;</c> or <c>nack &lt;id&gt;</c>.</summary>
    public string AckLog { get; set; } = "";

    /// <summary>Rows 0 .. Rows-1 are sent in order.</summary>
    public int Rows { get; set; }

    /// <summary>Bytes of each row's payload.</summary>
    public int PayloadBytes { get; set; }

    /// <summary>The sink's flush size (<c>Batching.MaxBatchSize</c>).</summary>
    public int BatchSize { get; set; } = 5;

    /// <summary><c>FileMaxRows</c>.</summary>
    public long FileMaxRows { get; set; } = 10;

    /// <summary><c>RowGroupMaxRows</c>.</summary>
    public int RowGroupMaxRows { get; set; } = Kawa.Dataflow.Parquet.Writing.ParquetWriterOptions.DefaultRowGroupMaxRows;

    /// <summary>Which time the fault point named by <c>KAWA_FAULT</c> is reached that blocks (1 = the first).</summary>
    public int FaultOccurrence { get; set; } = 1;
}

internal static partial class Program
{
    private static readonly JsonSerializerOptions SpecJson = new() { PropertyNameCaseInsensitive = true };

    /// <summary>
    /// <c>sink-run &lt;spec json&gt;</c>: sends rows 0 .. Rows-1 through a <see cref="ParquetDestination{T}"/> over a local
    /// lake (after the startup cleanup) or S3, appending every ack outcome to the ack log as it happens; then drains and
    /// prints <c>{ok, failures:[{file, failure, message}], remaining, cleanup}</c>. A failed flush is not retried and its
    /// batch is negatively acked (<c>BatchErrorHandler.NegativeAck</c>), so later rows still go on; each failure is reported.
    /// <c>KAWA_FAULT</c> names a point where the host blocks (READY) at its <c>FaultOccurrence</c>-th time: a sink point
    /// (<c>mid-batch</c>, <c>after-row-group</c>, <c>before-rename</c>, <c>after-rename</c>), a local commit step
    /// (<c>after-write-before-fsync</c>, <c>after-fsync-before-rename</c>, <c>after-rename-before-dirsync</c>) or, on S3,
    /// <c>mid-upload</c> (a part was uploaded).
    /// </summary>
    private static async Task<int> SinkRunAsync(string specJson, string? fault)
    {
        var spec = JsonSerializer.Deserialize<SinkRunSpec>(specJson, SpecJson)!;
        var reached = 0;
        var where = spec.Root ?? spec.Bucket ?? "";
        void Reach(string point, string? at)
        {
            if (point == fault && Interlocked.Increment(ref reached) == spec.FaultOccurrence)
            {
                Block(point, at ?? where);
            }
        }

        using var client = spec.S3Url is null ? null : new FaultS3Client(spec.S3Url, key => Reach("mid-upload", key));
        ILakeStorage storage;
        LakeCleanupResult? cleanup = null;
        if (client is not null)
        {
            storage = new S3LakeStorage(client, new S3LakeStorageOptions { BucketName = spec.Bucket!, InstanceId = spec.Instance, PartSize = spec.PartSize });
        }
        else
        {
            var local = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = spec.Root!, InstanceId = spec.Instance });
            local.CommitStepReached = (step, temp) => Reach(
                step switch
                {
                    LocalCommitStep.AfterWriteBeforeFsync => "after-write-before-fsync",
                    LocalCommitStep.AfterFsyncBeforeRename => "after-fsync-before-rename",
                    _ => "after-rename-before-dirsync",
                },
                temp);
            cleanup = await local.CleanupAsync().ConfigureAwait(false);
            storage = local;
        }

        var failures = new List<object>();
        var gate = new Lock();
        var options = new ParquetDestinationOptions<PayloadRow>
        {
            Storage = storage,
            FileMaxRows = spec.FileMaxRows,
            RowGroupMaxRows = spec.RowGroupMaxRows,
            FileMaxAge = TimeSpan.FromMinutes(30),
            CleanupAtStart = false, // the local lake above ran its own cleanup and reported it
            KeepAliveInterval = Timeout.InfiniteTimeSpan,
            FaultPointReached = point => Reach(point, null),
            Batching = new BatchingOptions<PayloadRow>
            {
                MaxBatchSize = spec.BatchSize,
                MaxBatchAge = Timeout.InfiniteTimeSpan,
                FlushTimeout = Timeout.InfiniteTimeSpan,
                // Never retried: the sink asks IsRetryable only while retries are left, and the hook says no after
                // recording what the flush failed with.
                MaxRetries = 1,
                IsRetryable = error =>
                {
                    lock (gate)
                    {
                        failures.Add(Describe(error));
                    }

                    return false;
                },
                OnError = BatchErrorHandler<PayloadRow>.NegativeAck(),
            },
        };

        var ok = true;
        using var logs = new StderrLoggerFactory();
        await using (var destination = new ParquetDestination<PayloadRow>(options, loggerFactory: logs))
        {
            for (var i = 0; i < spec.Rows; i++)
            {
                var id = i;
                var token = AckToken.Create(outcome =>
                {
                    lock (gate)
                    {
                        // One write(2) per outcome, before the flush goes on: a SIGKILL cannot lose an ack that happened.
                        File.AppendAllText(spec.AckLog, (outcome.Kind == AckKind.Ack ? "ack " : "nack ") + id + "\n");
                    }
                });
                await destination.SendAsync(token, new Message<PayloadRow>(new PayloadRow { Id = id, Data = PayloadRow.Payload(id, spec.PayloadBytes) })).ConfigureAwait(false);
            }

            try
            {
                await destination.FlushAsync().ConfigureAwait(false);
            }
            catch (Exception error)
            {
                ok = false;
                lock (gate)
                {
                    failures.Add(Describe(error));
                }
            }
        }

        Emit(new { ok = ok && failures.Count == 0, failures, remaining = spec.Root is null ? [] : Remaining(spec.Root), cleanup });
        return 0;
    }

    private static object Describe(Exception error)
    {
        var lake = error as LakeWriteException ?? error.InnerException as LakeWriteException;
        return new { file = lake?.RelativePath, failure = lake?.Failure.ToString() ?? error.GetType().Name, message = (lake ?? error).Message };
    }

    /// <summary>A client that calls back after each part it uploaded (the <c>mid-upload</c> fault point).</summary>
    private sealed class FaultS3Client(string serviceUrl, Action<string> partUploaded) : AmazonS3Client(
        new Amazon.Runtime.BasicAWSCredentials("S3RVER", "S3RVER"),
        new AmazonS3Config
        {
            ServiceURL = serviceUrl,
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
            RequestChecksumCalculation = Amazon.Runtime.RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = Amazon.Runtime.ResponseChecksumValidation.WHEN_REQUIRED,
        })
    {
        public override async Task<UploadPartResponse> UploadPartAsync(UploadPartRequest request, CancellationToken cancellationToken = default)
        {
            var response = await base.UploadPartAsync(request, cancellationToken).ConfigureAwait(false);
            partUploaded(request.Key);
            return response;
        }
    }

    /// <summary>Every log entry to stderr, so a failing test shows what the sink saw.</summary>
    private sealed class StderrLoggerFactory : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => new StderrLogger();

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public void Dispose()
        {
        }

        private sealed class StderrLogger : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                Console.Error.WriteLine($"{logLevel} {eventId.Id} {formatter(state, exception)}{(exception is null ? "" : " | " + exception)}");
        }
    }
}
