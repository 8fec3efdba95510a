using System.Net;
using System.Runtime.CompilerServices;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>A data lake in an S3 bucket (or an S3-compatible store).</summary>
/// <remarks>
/// <para>Commit protocol: bytes are buffered one part at a time (<see cref="S3LakeStorageOptions.PartSize"/>), in pooled
/// 16 KiB chunks taken as bytes arrive and returned when the part is uploaded; the first full part starts a multipart
/// upload and every full part is uploaded as it fills, so an open file holds at most one part (its bytes not yet
/// uploaded, rounded up to 16 KiB), and <c>ParquetDestination</c> counts it against its memory budget. Commit uploads
/// the rest and completes the upload (CompleteMultipartUpload), which makes the object visible atomically; a file that never filled a part is sent with one PutObject. S3 acknowledges both only after the object
/// is durably stored. Abort, or any failure, aborts the upload, so no object appears.</para>
/// <para>A crashed writer leaves an incomplete multipart upload: invisible, but billed. <see cref="CleanupAsync"/> aborts
/// this instance's pending uploads under the prefix (recognized by the instance id in names made by
/// <see cref="LakeFileNamer"/>), except the ones any storage in this process has open, and any other instance's started
/// longer ago than twice the larger of <see cref="S3LakeStorageOptions.MaxFileAge"/> and the age its file name declares
/// (a name made by a <see cref="LakeFileNamer"/> with a max file age; other names declare none, and this storage's age
/// applies). Also configure a
/// bucket lifecycle rule <c>AbortIncompleteMultipartUpload</c> as a backstop.</para>
/// <para>The client is the caller's (<see cref="IAmazonS3"/>): credentials, region, endpoint and retries are configured
/// there. This storage does not dispose it.</para>
/// </remarks>
public sealed class S3LakeStorage : ILakeStorage
{
    private readonly IAmazonS3 _client;
    private readonly S3LakeStorageOptions _options;
    private readonly TimeProvider _timeProvider;

    /// <summary>Creates the storage.</summary>
    /// <param name="client">The S3 client; not disposed by this storage.</param>
    /// <param name="options">The options; validated here.</param>
    /// <param name="loggerFactory">Logs cleanup and failures. Default: none.</param>
    /// <param name="timeProvider">The clock for cleanup ages. Default: <see cref="TimeProvider.System"/>.</param>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The options are invalid (every problem listed).</exception>
    public S3LakeStorage(IAmazonS3 client, S3LakeStorageOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();
        _client = client;
        _options = options;
        KeyPrefix = options.Prefix.Length == 0 || options.Prefix.EndsWith('/') ? options.Prefix : options.Prefix + "/";
        InstanceId = LakeInstanceId.Sanitize(options.InstanceId ?? LakeInstanceId.CreateDefault($"s3://{options.BucketName}/{KeyPrefix}"));
        Logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<S3LakeStorage>();
        _timeProvider = timeProvider ?? TimeProvider.System;
    }

    /// <inheritdoc/>
    public string InstanceId { get; }

    /// <inheritdoc/>
    public TimeSpan MaxFileAge => _options.MaxFileAge;

    /// <summary>The bucket.</summary>
    public string BucketName => _options.BucketName;

    /// <summary>The key prefix of the lake, empty or ending with <c>/</c>.</summary>
    public string KeyPrefix { get; }

    internal IAmazonS3 Client => _client;

    internal S3LakeStorageOptions Options => _options;

    internal ILogger Logger { get; }

    internal TimeProvider TimeProvider => _timeProvider;

    /// <summary>Memory held by the part buffers of this storage's open files, now and at most.</summary>
    internal LakeMemoryGauge Memory { get; } = new();

    /// <inheritdoc/>
    public ValueTask<ILakeFile> CreateAsync(string relativePath, CancellationToken cancellationToken = default)
    {
        LakePaths.Validate(relativePath);
        cancellationToken.ThrowIfCancellationRequested();
        return new ValueTask<ILakeFile>(new S3LakeFile(this, relativePath, KeyPrefix + relativePath));
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<LakeFileInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        LakePaths.ValidatePrefix(prefix);
        var request = new ListObjectsV2Request { BucketName = BucketName, Prefix = KeyPrefix + prefix };
        while (true)
        {
            var response = await _client.ListObjectsV2Async(request, cancellationToken).ConfigureAwait(false);
            foreach (var item in response.S3Objects ?? [])
            {
                var relative = item.Key[KeyPrefix.Length..];
                if (relative.Length == 0 || relative.EndsWith('/'))
                {
                    continue;
                }
                yield return new LakeFileInfo(relative, item.Size ?? 0, new DateTimeOffset(DateTime.SpecifyKind(item.LastModified ?? default, DateTimeKind.Utc)));
            }
            if (response.IsTruncated != true || string.IsNullOrEmpty(response.NextContinuationToken))
            {
                yield break;
            }
            request.ContinuationToken = response.NextContinuationToken;
        }
    }

    /// <inheritdoc/>
    public async ValueTask<bool> DeleteAsync(string relativePath, CancellationToken cancellationToken = default)
    {
        LakePaths.Validate(relativePath);
        var key = KeyPrefix + relativePath;
        try
        {
            await _client.GetObjectMetadataAsync(BucketName, key, cancellationToken).ConfigureAwait(false);
        }
        catch (AmazonS3Exception error) when (error.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
        await _client.DeleteObjectAsync(BucketName, key, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <inheritdoc/>
    public async ValueTask<LakeCleanupResult> CleanupAsync(CancellationToken cancellationToken = default)
    {
        var now = _timeProvider.GetUtcNow();
        int removed = 0, failed = 0, kept = 0;
        var request = new ListMultipartUploadsRequest { BucketName = BucketName, Prefix = KeyPrefix };
        while (true)
        {
            ListMultipartUploadsResponse response;
            try
            {
                response = await _client.ListMultipartUploadsAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (AmazonServiceException error)
            {
                LakeLog.ListUploadsFailed(Logger, KeyPrefix, error);
                failed++;
                break;
            }
            foreach (var upload in response.MultipartUploads ?? [])
            {
                cancellationToken.ThrowIfCancellationRequested();
                var fileName = upload.Key[(upload.Key.LastIndexOf('/') + 1)..];
                var owner = LakeFileNamer.TryParse(fileName, out var instance, out _, out _) ? instance : null;
                var initiated = new DateTimeOffset(DateTime.SpecifyKind(upload.Initiated ?? DateTime.MinValue, DateTimeKind.Utc));
                var live = IsOpen(upload.Key);
                // The key's file name declares its writer's MaxFileAge (LakeFileNamer); one without (a name of the
                // earlier format, or not made by the namer) follows this storage's age.
                if (live || (!string.Equals(owner, InstanceId, StringComparison.Ordinal)
                    && initiated >= LakeCleanupAge.Cutoff(now, _options.MaxFileAge, LakeFileNamer.DeclaredAgeOf(fileName))))
                {
                    kept++;
                    LakeLog.LeftoverKept(Logger, upload.Key, owner);
                    continue;
                }
                try
                {
                    await _client.AbortMultipartUploadAsync(BucketName, upload.Key, upload.UploadId, cancellationToken).ConfigureAwait(false);
                    removed++;
                    LakeLog.UploadAborted(Logger, upload.UploadId, BucketName, upload.Key, owner, InstanceId, initiated);
                }
                catch (AmazonServiceException error)
                {
                    failed++;
                    LakeLog.UploadAbortFailed(Logger, upload.UploadId, BucketName, upload.Key, error);
                }
            }
            if (response.IsTruncated != true)
            {
                break;
            }
            request.KeyMarker = response.NextKeyMarker;
            request.UploadIdMarker = response.NextUploadIdMarker;
        }
        LakeLog.CleanupFinished(Logger, InstanceId, removed, failed, kept);
        LakeTelemetry.Cleaned("s3", InstanceId, removed);
        return new LakeCleanupResult(removed, failed, kept);
    }

    /// <summary>A file in this process is about to start a multipart upload to <paramref name="key"/>: every cleanup in
    /// this process leaves it alone until it finishes.</summary>
    internal void UploadStarted(string key) => LakeOpenFiles.Add(OpenKey(key));

    /// <summary>Whether a file in this process is writing to <paramref name="key"/> now.</summary>
    private bool IsOpen(string? key) => key is not null && LakeOpenFiles.Contains(OpenKey(key));

    /// <summary>The upload was completed or aborted (or is being aborted).</summary>
    internal void UploadFinished(string key) => LakeOpenFiles.Remove(OpenKey(key));

    // Keys are unique file names, so a bucket and key name one upload.
    private string OpenKey(string key) => BucketName + "/" + key;

    internal static LakeWriteException ToLakeException(string relativePath, string operation, Exception error)
    {
        var failure = error switch
        {
            AmazonServiceException { StatusCode: HttpStatusCode.Forbidden } => LakeWriteFailure.PermissionDenied,
            AmazonServiceException { StatusCode: HttpStatusCode.PreconditionFailed or HttpStatusCode.Conflict } => LakeWriteFailure.AlreadyExists,
            AmazonServiceException { StatusCode: 0 } or HttpRequestException => LakeWriteFailure.Unavailable,
            AmazonServiceException => LakeWriteFailure.StorageError,
            AmazonClientException { InnerException: HttpRequestException } => LakeWriteFailure.Unavailable,
            // The SDK reports its request timeout as a TimeoutException (HttpClient's as a cancellation wrapping one):
            // the store did not answer, which is not a cancellation by the caller.
            TimeoutException or OperationCanceledException { InnerException: TimeoutException } => LakeWriteFailure.Unavailable,
            _ => LakeWriteException.Classify(error),
        };
        var message = $"Lake file '{relativePath}' could not be {operation}: {LakeWriteException.Describe(failure)}. {error.Message}";
        return new LakeWriteException(relativePath, failure, message, error);
    }
}
