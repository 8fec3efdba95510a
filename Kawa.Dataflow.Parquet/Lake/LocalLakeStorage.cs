using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>A data lake in a local or mounted directory, with atomic, durable commits.</summary>
/// <remarks>
/// <para>Commit protocol: the bytes go to a temporary file in the target directory, named
/// <c>.&lt;final name&gt;.tmp-&lt;instance&gt;-&lt;random&gt;.a&lt;seconds&gt;</c> (the last token declares
/// <see cref="LocalLakeStorageOptions.MaxFileAge"/>) so that readers skip it;
/// commit flushes and fsyncs it, renames it to the final name without overwriting (atomic on POSIX file
/// systems), then fsyncs the directory so the new name is durable. Readers therefore see either nothing or the
/// whole file. New partition directories are created on demand and their parents fsynced.</para>
/// <para>After a crash the temporary file stays behind, invisible to readers; <see cref="CleanupAsync"/> removes
/// it when the same instance starts again, or any instance once it was last written longer ago than twice the larger
/// of the cleaner's <see cref="LocalLakeStorageOptions.MaxFileAge"/> and the one declared in its name (a name of the
/// earlier format declares none: the cleaner's own age applies). The temporary files any storage in this process has open are never
/// removed by its own cleanup.</para>
/// <para>Symbolic links inside the root are followed as the OS does; the root check is lexical.</para>
/// <para>The file system calls are synchronous (the returned tasks are complete): a commit blocks its caller for the
/// fsyncs, which is what makes the ack that follows safe. <see cref="CleanupAsync"/> walks the whole root.</para>
/// </remarks>
public sealed class LocalLakeStorage : ILakeStorage
{
    private static readonly EnumerationOptions AllFilesRecursive = new()
    {
        RecurseSubdirectories = true,
        // Names starting with '.' count as hidden on Unix; the default options would skip exactly our temp files.
        AttributesToSkip = 0,
        IgnoreInaccessible = true,
        MatchType = MatchType.Simple,
    };

    private readonly LocalLakeStorageOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;

    /// <summary>Creates the storage; the root directory is created if missing.</summary>
    /// <param name="options">The options; validated here.</param>
    /// <param name="loggerFactory">Logs cleanup and failures. Default: none.</param>
    /// <param name="timeProvider">The clock for cleanup ages. Default: <see cref="TimeProvider.System"/>.</param>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The options are invalid (every problem listed).</exception>
    public LocalLakeStorage(LocalLakeStorageOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();
        _options = options;
        RootPath = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.RootPath));
        InstanceId = LakeInstanceId.Sanitize(options.InstanceId ?? LakeInstanceId.CreateDefault(RootPath));
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<LocalLakeStorage>();
        _timeProvider = timeProvider ?? TimeProvider.System;
        Directory.CreateDirectory(RootPath);
    }

    /// <summary>The full path of the lake root.</summary>
    public string RootPath { get; }

    /// <inheritdoc/>
    public string InstanceId { get; }

    /// <inheritdoc/>
    public TimeSpan MaxFileAge => _options.MaxFileAge;

    /// <summary>The fsync mode in use.</summary>
    public FsyncMode Fsync => _options.Fsync;

    /// <summary>The write buffer of each open file, in bytes.</summary>
    internal int BufferSize => _options.BufferSize;

    /// <summary>Memory held by the write buffers of this storage's open files, now and at most.</summary>
    internal LakeMemoryGauge Memory { get; } = new();

    /// <summary>Test hook: called at each commit step with the temporary path (the fault host blocks here to be killed).</summary>
    internal Action<LocalCommitStep, string>? CommitStepReached { get; set; }

    /// <inheritdoc/>
    public ValueTask<ILakeFile> CreateAsync(string relativePath, CancellationToken cancellationToken = default)
    {
        LakePaths.Validate(relativePath);
        cancellationToken.ThrowIfCancellationRequested();
        var finalPath = LakePaths.Resolve(RootPath, relativePath);
        var directory = Path.GetDirectoryName(finalPath)!;
        var tempPath = Path.Combine(directory, LakeTempNames.Create(Path.GetFileName(finalPath), InstanceId, _options.MaxFileAge));
        FileStream stream;
        // Registered before the file exists, so that a cleanup running meanwhile cannot remove it.
        LakeOpenFiles.Add(Path.GetFullPath(tempPath));
        try
        {
            EnsureDirectory(directory);
            stream = new FileStream(tempPath, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.Read,
                BufferSize = _options.BufferSize,
            });
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            Release(tempPath);
            var failure = LakeWriteException.From(relativePath, "created", error);
            LakeLog.WriteFailed(_logger, relativePath, failure.Failure, error);
            LakeTelemetry.Failed("local", InstanceId, failure.Failure);
            throw failure;
        }
        return new ValueTask<ILakeFile>(new LocalLakeFile(this, relativePath, finalPath, tempPath, stream));
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<LakeFileInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        LakePaths.ValidatePrefix(prefix);
        await Task.Yield();
        var lastSlash = prefix.LastIndexOf('/');
        var start = lastSlash < 0 ? RootPath : LakePaths.Resolve(RootPath, prefix[..lastSlash]);
        if (!Directory.Exists(start))
        {
            yield break;
        }
        foreach (var path in Directory.EnumerateFiles(start, "*", AllFilesRecursive))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var relative = Path.GetRelativePath(RootPath, path).Replace(Path.DirectorySeparatorChar, '/');
            if (IsHidden(relative) || !relative.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                continue;
            }
            yield return new LakeFileInfo(relative, info.Length, new DateTimeOffset(info.LastWriteTimeUtc, TimeSpan.Zero));
        }
    }

    /// <inheritdoc/>
    public ValueTask<bool> DeleteAsync(string relativePath, CancellationToken cancellationToken = default)
    {
        LakePaths.Validate(relativePath);
        cancellationToken.ThrowIfCancellationRequested();
        var path = LakePaths.Resolve(RootPath, relativePath);
        if (!File.Exists(path))
        {
            return new ValueTask<bool>(false);
        }
        File.Delete(path);
        if (_options.Fsync == FsyncMode.Full)
        {
            PosixFileSystem.FsyncDirectory(Path.GetDirectoryName(path)!);
        }
        return new ValueTask<bool>(true);
    }

    /// <inheritdoc/>
    public ValueTask<LakeCleanupResult> CleanupAsync(CancellationToken cancellationToken = default)
    {
        var now = _timeProvider.GetUtcNow();
        int removed = 0, failed = 0, kept = 0;
        foreach (var path in Directory.EnumerateFiles(RootPath, ".*", AllFilesRecursive))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var name = Path.GetFileName(path);
            if (!LakeTempNames.IsTemporary(name))
            {
                continue;
            }
            var owner = LakeTempNames.InstanceOf(name);
            if (LakeOpenFiles.Contains(Path.GetFullPath(path)))
            {
                // Being written in this process right now (another sink, or another storage object on the same root).
                kept++;
                LakeLog.LeftoverKept(_logger, path, owner);
                continue;
            }
            DateTimeOffset lastWrite;
            try
            {
                lastWrite = new DateTimeOffset(File.GetLastWriteTimeUtc(path), TimeSpan.Zero);
            }
            catch (IOException)
            {
                continue; // gone meanwhile (committed or aborted by its writer)
            }
            // A live writer created its temp file less than its MaxFileAge ago (writers commit within it), and a file is
            // never last written before its creation, so a live writer's file is newer than twice that age. The name
            // declares the writer's age; a name of the earlier format declares none and follows this storage's age.
            if (!string.Equals(owner, InstanceId, StringComparison.Ordinal)
                && lastWrite >= LakeCleanupAge.Cutoff(now, _options.MaxFileAge, LakeTempNames.DeclaredAgeOf(name)))
            {
                kept++;
                LakeLog.LeftoverKept(_logger, path, owner);
                continue;
            }
            try
            {
                File.Delete(path);
                removed++;
                LakeLog.LeftoverRemoved(_logger, path, owner, InstanceId, lastWrite);
            }
            catch (Exception error) when (error is IOException or UnauthorizedAccessException)
            {
                failed++;
                LakeLog.LeftoverRemoveFailed(_logger, path, error);
            }
        }
        LakeLog.CleanupFinished(_logger, InstanceId, removed, failed, kept);
        LakeTelemetry.Cleaned("local", InstanceId, removed);
        return new ValueTask<LakeCleanupResult>(new LakeCleanupResult(removed, failed, kept));
    }

    internal ILogger Logger => _logger;

    internal TimeProvider TimeProvider => _timeProvider;

    /// <summary>A file of this storage was committed, aborted or failed: its temporary name is no longer in use.</summary>
    internal static void Release(string tempPath) => LakeOpenFiles.Remove(Path.GetFullPath(tempPath));

    internal void ReachStep(LocalCommitStep step, string tempPath) => CommitStepReached?.Invoke(step, tempPath);

    private static bool IsHidden(string relative)
    {
        foreach (var segment in relative.Split('/'))
        {
            if (segment.Length > 0 && segment[0] == '.')
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Creates <paramref name="directory"/> and any missing ancestors; with full fsync, makes each new entry durable in its parent.</summary>
    private void EnsureDirectory(string directory)
    {
        if (Directory.Exists(directory))
        {
            return;
        }
        var missing = new List<string>();
        for (var current = directory; current is not null && !Directory.Exists(current); current = Path.GetDirectoryName(current))
        {
            missing.Add(current);
        }
        Directory.CreateDirectory(directory);
        if (_options.Fsync != FsyncMode.Full)
        {
            return;
        }
        // Parents first, so each new directory is recorded before its children are.
        for (var i = missing.Count - 1; i >= 0; i--)
        {
            PosixFileSystem.FsyncDirectory(Path.GetDirectoryName(missing[i])!);
        }
    }
}

/// <summary>The steps of a local commit, for fault injection in tests.</summary>
internal enum LocalCommitStep
{
    /// <summary>All bytes are handed to the OS; nothing is fsynced yet.</summary>
    AfterWriteBeforeFsync,

    /// <summary>The file is fsynced; it still has its temporary name.</summary>
    AfterFsyncBeforeRename,

    /// <summary>The file is visible under its final name; the directory is not yet fsynced.</summary>
    AfterRenameBeforeDirectorySync,
}
