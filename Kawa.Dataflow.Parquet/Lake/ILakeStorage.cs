namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>
/// Where a data lake keeps its files: a local (or mounted) directory, or an S3 bucket.
/// Files become visible to readers only whole, at <see cref="ILakeFile.CommitAsync"/>.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Paths are relative to the lake root, use <c>/</c> as the separator, and must stay under the root: an
/// absolute path or a <c>..</c> segment is rejected with <see cref="ArgumentException"/>.</item>
/// <item>A file is written through <see cref="CreateAsync"/>: its bytes go to a place readers skip (a temporary
/// name starting with <c>.</c>, or an incomplete S3 multipart upload) and appear under the final name only when
/// <see cref="ILakeFile.CommitAsync"/> returns. A sink acks the messages in a file only after that call returned.</item>
/// <item>Commit never overwrites: an existing file with the same name fails the commit.</item>
/// <item>Write and commit failures throw <see cref="LakeWriteException"/> naming the file and the cause; the partial
/// data is removed before the exception surfaces.</item>
/// <item>Call <see cref="CleanupAsync"/> once at start, before writing, to remove what a crashed earlier run of this
/// instance left behind (<c>ParquetDestination</c> does it before its first file). It never touches another live
/// writer's files, provided every writer keeps each file open less than its own storage's <see cref="MaxFileAge"/>,
/// which its temporary names declare (see <see cref="CleanupAsync"/>); writers with different ages may share a lake.</item>
/// <item>Implementations are safe for concurrent use; each <see cref="ILakeFile"/> is used by one writer at a time.</item>
/// </list>
/// </remarks>
public interface ILakeStorage
{
    /// <summary>A stable, file-name-safe identity of this writer, embedded in temporary names and file names.</summary>
    string InstanceId { get; }

    /// <summary>
    /// The longest this writer keeps a file open (from its creation to its commit). Its temporary names declare it, and
    /// <see cref="CleanupAsync"/> of any instance removes another instance's temporary data only when it is older than
    /// twice the larger of this and the age declared in its name.
    /// </summary>
    /// <remarks>A writer must commit or abort every file within this age; <c>ParquetDestination</c> refuses a
    /// <c>FileMaxAge</c> that is not below it. Processes sharing a lake may use different ages.</remarks>
    TimeSpan MaxFileAge { get; }

    /// <summary>Starts a new file at <paramref name="relativePath"/>; nothing is visible there until it is committed.</summary>
    /// <param name="relativePath">The final path under the lake root, e.g. <c>dt=2024-05-01/part-....parquet</c>.</param>
    /// <param name="cancellationToken">Cancels the creation.</param>
    /// <returns>A handle to write the bytes to, then commit or abort.</returns>
    /// <exception cref="ArgumentException"><paramref name="relativePath"/> is empty, absolute, or escapes the root.</exception>
    /// <exception cref="LakeWriteException">The storage refused to create the file (permission, space, ...).</exception>
    ValueTask<ILakeFile> CreateAsync(string relativePath, CancellationToken cancellationToken = default);

    /// <summary>Lists the committed files whose relative path starts with <paramref name="prefix"/>; temporary files are never listed.</summary>
    /// <param name="prefix">A prefix of relative paths (<c>""</c> lists everything), e.g. <c>dt=2024-05-01/</c>.</param>
    /// <param name="cancellationToken">Stops the enumeration.</param>
    IAsyncEnumerable<LakeFileInfo> ListAsync(string prefix, CancellationToken cancellationToken = default);

    /// <summary>Deletes a committed file.</summary>
    /// <param name="relativePath">The file's relative path.</param>
    /// <param name="cancellationToken">Cancels the deletion.</param>
    /// <returns><see langword="true"/> if the file existed.</returns>
    ValueTask<bool> DeleteAsync(string relativePath, CancellationToken cancellationToken = default);

    /// <summary>
    /// Removes leftovers of crashed writers: every temporary file (or pending upload) of this
    /// <see cref="InstanceId"/> that no storage in this process has open now, and any other instance's that is
    /// older than twice the larger of <see cref="MaxFileAge"/> and the age declared in its name.
    /// </summary>
    /// <remarks>
    /// Call it once at start, before the first <see cref="CreateAsync"/> of this instance. The files any storage
    /// in this process has open are never removed, so calling it later (or from several sinks) is safe.
    /// Two live processes must never share an instance id: this method treats every other temporary file of its own
    /// id as dead. Another instance's temporary file is taken for dead only when it is older than twice the larger of
    /// this storage's <see cref="MaxFileAge"/> and the one its writer declared in its name (local: the temporary file's
    /// name; S3: the upload's key, the final name made by a <see cref="LakeFileNamer"/> with a max file age), which a
    /// live writer's file never is. A name that declares no age (the format before ages were declared, a malformed
    /// token, or on S3 a name not made that way) is judged by this storage's <see cref="MaxFileAge"/> alone, so a
    /// live writer with a longer age is safe from this cleanup only if its names declare it.
    /// Best effort: a leftover that cannot be removed is logged and counted in <see cref="LakeCleanupResult.Failed"/>.
    /// </remarks>
    /// <param name="cancellationToken">Stops the cleanup.</param>
    ValueTask<LakeCleanupResult> CleanupAsync(CancellationToken cancellationToken = default);
}

/// <summary>A committed file in the lake.</summary>
/// <param name="RelativePath">Its path under the lake root, with <c>/</c> separators.</param>
/// <param name="Length">Its size in bytes.</param>
/// <param name="LastModified">When it was last written (UTC).</param>
public readonly record struct LakeFileInfo(string RelativePath, long Length, DateTimeOffset LastModified);

/// <summary>What <see cref="ILakeStorage.CleanupAsync"/> did.</summary>
/// <param name="Removed">Leftovers removed (temporary files deleted, uploads aborted).</param>
/// <param name="Failed">Leftovers that could not be removed (logged).</param>
/// <param name="Kept">Temporary files that may belong to a live writer: other instances' young enough ones, and the
/// files any storage in this process has open.</param>
public readonly record struct LakeCleanupResult(int Removed, int Failed, int Kept);
