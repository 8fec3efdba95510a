using Amazon.S3.Model;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>A file of <see cref="S3LakeStorage"/>: the part being filled is buffered in memory (in pooled chunks, see
/// <see cref="S3PartBuffer"/>), full parts are uploaded as they fill.</summary>
internal sealed class S3LakeFile : ILakeFile, ILakeFileSink, IBufferingLakeFile
{
    private readonly S3LakeStorage _storage;
    private readonly string _key;
    private readonly LakeWriteStream _stream;
    private readonly List<PartETag> _parts = [];
    private readonly S3PartBuffer _part;
    private string? _uploadId;
    private bool _registered; // this file's key is in the process-wide set of open uploads (see S3LakeStorage)
    private bool _finished;

    public S3LakeFile(S3LakeStorage storage, string relativePath, string key)
    {
        _storage = storage;
        RelativePath = relativePath;
        _key = key;
        _part = new S3PartBuffer(storage.Memory);
        _stream = new LakeWriteStream(this, new PartStream(this));
    }

    public string RelativePath { get; }

    public Stream Stream => _stream;

    public long BytesWritten => _stream.BytesWritten;

    /// <summary>The pending multipart upload, if one was started (for tests).</summary>
    internal string? UploadId => _uploadId;

    /// <summary>Memory held by the part being filled: its bytes, rounded up to whole chunks.</summary>
    public long BufferedBytes => _part.HeldBytes;

    /// <summary>Parts uploaded so far (for tests).</summary>
    internal int PartsUploaded => _parts.Count;

    private int PartSize => _storage.Options.PartSize;

    public async ValueTask CommitAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        var started = _storage.TimeProvider.GetTimestamp();
        var client = _storage.Client;
        try
        {
            if (_uploadId is null)
            {
                using var content = _part.OpenRead();
                var put = new PutObjectRequest { BucketName = _storage.BucketName, Key = _key, InputStream = content, AutoCloseStream = false, UseChunkEncoding = _storage.Options.UseChunkEncoding };
                if (_storage.Options.PreventOverwrite)
                {
                    put.IfNoneMatch = "*";
                }
                await client.PutObjectAsync(put, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                if (_part.Length > 0)
                {
                    await UploadPartAsync(cancellationToken).ConfigureAwait(false);
                }
                var complete = new CompleteMultipartUploadRequest
                {
                    BucketName = _storage.BucketName,
                    Key = _key,
                    UploadId = _uploadId,
                    PartETags = [.. _parts],
                };
                if (_storage.Options.PreventOverwrite)
                {
                    complete.IfNoneMatch = "*";
                }
                await client.CompleteMultipartUploadAsync(complete, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception error) when (error is not ObjectDisposedException)
        {
            throw await FailAsync(error, "committed").ConfigureAwait(false);
        }
        _finished = true;
        ReturnBuffer();
        Unregister();
        LakeTelemetry.Committed("s3", _storage.InstanceId, BytesWritten, _storage.TimeProvider.GetElapsedTime(started));
    }

    public async ValueTask AbortAsync()
    {
        if (_finished)
        {
            return;
        }
        _finished = true;
        ReturnBuffer();
        await AbortUploadAsync().ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => AbortAsync();

    public async Task<LakeWriteException> FailAsync(Exception error, string operation)
    {
        if (error is LakeWriteException already)
        {
            return already;
        }
        _finished = true;
        ReturnBuffer();
        await AbortUploadAsync().ConfigureAwait(false);
        var exception = S3LakeStorage.ToLakeException(RelativePath, operation, error);
        LakeLog.WriteFailed(_storage.Logger, RelativePath, exception.Failure, exception);
        LakeTelemetry.Failed("s3", _storage.InstanceId, exception.Failure);
        return exception;
    }

    public void ThrowIfFinished() => ObjectDisposedException.ThrowIf(_finished, this);

    private void Unregister()
    {
        if (_registered)
        {
            _registered = false;
            _storage.UploadFinished(_key);
        }
    }

    private async ValueTask AbortUploadAsync()
    {
        Unregister();
        if (_uploadId is null)
        {
            return;
        }
        try
        {
            // Not the caller's token: the upload must be aborted even when the write was canceled.
            await _storage.Client.AbortMultipartUploadAsync(_storage.BucketName, _key, _uploadId).ConfigureAwait(false);
        }
        catch (Exception error)
        {
            LakeLog.UploadAbortFailed(_storage.Logger, _uploadId, _storage.BucketName, _key, error);
        }
    }

    private void ReturnBuffer() => _part.Clear();

    private async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            if (_part.Length == PartSize)
            {
                // Only now that more bytes follow is this part known not to be the last.
                await UploadPartAsync(cancellationToken).ConfigureAwait(false);
            }
            var count = Math.Min(data.Length, PartSize - _part.Length);
            _part.Append(data.Span[..count]);
            data = data[count..];
        }
    }

    private void Write(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            if (_part.Length == PartSize)
            {
                // Sync-over-async only when a part fills; format writers should prefer WriteAsync.
                UploadPartAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }
            var count = Math.Min(data.Length, PartSize - _part.Length);
            _part.Append(data[..count]);
            data = data[count..];
        }
    }

    private async ValueTask UploadPartAsync(CancellationToken cancellationToken)
    {
        var client = _storage.Client;
        if (_uploadId is null)
        {
            // Registered before the upload exists, so that a cleanup running meanwhile cannot abort it.
            if (!_registered)
            {
                _storage.UploadStarted(_key);
                _registered = true;
            }

            var started = await client.InitiateMultipartUploadAsync(
                new InitiateMultipartUploadRequest { BucketName = _storage.BucketName, Key = _key }, cancellationToken).ConfigureAwait(false);
            _uploadId = started.UploadId;
        }
        var partNumber = _parts.Count + 1;
        using var content = _part.OpenRead();
        var response = await client.UploadPartAsync(new UploadPartRequest
        {
            BucketName = _storage.BucketName,
            Key = _key,
            UploadId = _uploadId,
            PartNumber = partNumber,
            InputStream = content,
            PartSize = _part.Length,
            UseChunkEncoding = _storage.Options.UseChunkEncoding,
        }, cancellationToken).ConfigureAwait(false);
        _parts.Add(new PartETag(partNumber, response.ETag));
        // The part's memory goes back to the pool: a file holds only what it has not uploaded yet.
        _part.Clear();
    }

    /// <summary>The raw stream under <see cref="LakeWriteStream"/>: buffers and uploads parts.</summary>
    private sealed class PartStream(S3LakeFile file) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer) => file.Write(buffer);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            file.WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            file.WriteAsync(buffer, cancellationToken);

        /// <summary>Nothing to flush: bytes wait in the part buffer until it fills or the file is committed.</summary>
        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
