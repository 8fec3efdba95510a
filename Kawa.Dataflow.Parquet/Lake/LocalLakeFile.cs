namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>A file of <see cref="LocalLakeStorage"/> being written under its temporary name.</summary>
/// <remarks>While open it counts its file stream's write buffer (<see cref="LocalLakeStorageOptions.BufferSize"/>) as
/// held memory, in the storage's gauge and in <see cref="BufferedBytes"/> (which the Parquet sink counts against its
/// budget), until it is committed, aborted, failed or disposed.</remarks>
internal sealed class LocalLakeFile : ILakeFile, ILakeFileSink, IBufferingLakeFile
{
    private readonly LocalLakeStorage _storage;
    private readonly string _finalPath;
    private readonly string _tempPath;
    private readonly FileStream _file;
    private readonly LakeWriteStream _stream;
    private bool _finished;
    private long _held;

    public LocalLakeFile(LocalLakeStorage storage, string relativePath, string finalPath, string tempPath, FileStream file)
    {
        _storage = storage;
        RelativePath = relativePath;
        _finalPath = finalPath;
        _tempPath = tempPath;
        _file = file;
        _stream = new LakeWriteStream(this, file);
        // FileStream takes its buffer at the first write and keeps it until disposed; sizes 0 and 1 mean unbuffered.
        // Counted from the start: a file is created to be written.
        _held = storage.BufferSize > 1 ? storage.BufferSize : 0;
        storage.Memory.Add(_held);
    }

    /// <inheritdoc/>
    public long BufferedBytes => Interlocked.Read(ref _held);

    public string RelativePath { get; }

    public Stream Stream => _stream;

    public long BytesWritten => _stream.BytesWritten;

    /// <summary>The temporary file's full path (for tests and the fault host).</summary>
    internal string TemporaryPath => _tempPath;

    public ValueTask CommitAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        var started = _storage.TimeProvider.GetTimestamp();
        var fsync = _storage.Fsync;
        try
        {
            _file.Flush(flushToDisk: false);
            _storage.ReachStep(LocalCommitStep.AfterWriteBeforeFsync, _tempPath);
            if (fsync != FsyncMode.None)
            {
                _file.Flush(flushToDisk: true);
            }
            _storage.ReachStep(LocalCommitStep.AfterFsyncBeforeRename, _tempPath);
            _file.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            // One atomic step that never replaces: an existing file fails with EEXIST, and the final name appears
            // with the complete content.
            PosixFileSystem.MoveNoReplace(_tempPath, _finalPath);
        }
        catch (Exception error) when (IsWriteFailure(error) || error is OperationCanceledException)
        {
            throw Fail(error, "committed");
        }
        Finish();
        _storage.ReachStep(LocalCommitStep.AfterRenameBeforeDirectorySync, _tempPath);
        if (fsync == FsyncMode.Full)
        {
            try
            {
                PosixFileSystem.FsyncDirectory(Path.GetDirectoryName(_finalPath)!);
            }
            catch (IOException error)
            {
                // The name may not survive a power loss; take the file back so nobody acks it and a retry rewrites it.
                TryDelete(_finalPath);
                throw Report(LakeWriteException.From(RelativePath, "committed (directory fsync failed)", error));
            }
        }
        LakeTelemetry.Committed("local", _storage.InstanceId, BytesWritten, _storage.TimeProvider.GetElapsedTime(started));
        return default;
    }

    public ValueTask AbortAsync()
    {
        if (!_finished)
        {
            Finish();
            try
            {
                _file.Dispose();
            }
            catch (Exception error) when (IsWriteFailure(error))
            {
                // Flushing the last buffered bytes failed; the file is being discarded anyway.
            }
            TryDelete(_tempPath);
        }
        return default;
    }

    public ValueTask DisposeAsync() => AbortAsync();

    /// <summary>Called by the stream when a write fails: removes the temporary file and describes the failure.</summary>
    public Task<LakeWriteException> FailAsync(Exception error, string operation) => Task.FromResult(Fail(error, operation));

    private LakeWriteException Fail(Exception error, string operation)
    {
        if (error is LakeWriteException already)
        {
            return already;
        }
        Finish();
        try
        {
            _file.Dispose();
        }
        catch (Exception disposeError) when (IsWriteFailure(disposeError))
        {
            // The buffered rest cannot be written either (disposing flushes it, and fails as the write did, e.g. EFBIG);
            // the file is removed below.
        }
        TryDelete(_tempPath);
        return Report(error is OperationCanceledException
            ? new LakeWriteException(RelativePath, LakeWriteFailure.Other, $"Lake file '{RelativePath}' could not be {operation}: the operation was canceled; the partial file was removed.", error)
            : error is ArgumentOutOfRangeException
                // FileStream reports EFBIG (a size limit such as ulimit -f) as ArgumentOutOfRangeException.
                ? new LakeWriteException(RelativePath, LakeWriteFailure.FileTooLarge,
                    $"Lake file '{RelativePath}' could not be {operation}: {LakeWriteException.Describe(LakeWriteFailure.FileTooLarge)}. {error.Message}", error)
                : LakeWriteException.From(RelativePath, operation, error));
    }

    private void Finish()
    {
        _finished = true;
        LocalLakeStorage.Release(_tempPath);
        // The stream is disposed (or about to be, by the caller) on every path that finishes the file.
        _storage.Memory.Add(-Interlocked.Exchange(ref _held, 0));
    }

    public void ThrowIfFinished() => ObjectDisposedException.ThrowIf(_finished, this);

    /// <summary>What a write, flush or close of the file throws when the OS refuses it. FileStream reports EFBIG (a
    /// file-size limit such as <c>ulimit -f</c>) as <see cref="ArgumentOutOfRangeException"/>.</summary>
    private static bool IsWriteFailure(Exception error) => error is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException;

    private LakeWriteException Report(LakeWriteException exception)
    {
        LakeLog.WriteFailed(_storage.Logger, RelativePath, exception.Failure, exception);
        LakeTelemetry.Failed("local", _storage.InstanceId, exception.Failure);
        return exception;
    }

    private void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            LakeLog.AbortFailed(_storage.Logger, RelativePath, path, error);
        }
    }
}
