namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>One file being written to an <see cref="ILakeStorage"/>: write to <see cref="Stream"/>, then commit or abort.</summary>
/// <remarks>
/// <list type="bullet">
/// <item>Until <see cref="CommitAsync"/> returns, readers of the lake cannot see the file at all.</item>
/// <item>After <see cref="CommitAsync"/> returns, the file is complete under <see cref="RelativePath"/> and durable
/// (unless durability was switched off, see <see cref="FsyncMode"/>): only now may the messages in it be acked.</item>
/// <item>If a write through <see cref="Stream"/> or the commit fails, a <see cref="LakeWriteException"/> is thrown and the
/// partial data is already removed; the handle is then finished (further writes throw <see cref="ObjectDisposedException"/>).
/// The sink must not ack the messages of that file.</item>
/// <item>Disposing without committing aborts. <see cref="AbortAsync"/> and disposal never throw.</item>
/// </list>
/// </remarks>
public interface ILakeFile : IAsyncDisposable
{
    /// <summary>The final path under the lake root.</summary>
    string RelativePath { get; }

    /// <summary>The write-only stream the file's bytes go to.</summary>
    Stream Stream { get; }

    /// <summary>Bytes written so far.</summary>
    long BytesWritten { get; }

    /// <summary>Makes the file durable and atomically visible under <see cref="RelativePath"/>.</summary>
    /// <param name="cancellationToken">Cancels before the file becomes visible; the partial data is then removed.</param>
    /// <exception cref="LakeWriteException">The commit failed (the file is not visible and the partial data is removed).</exception>
    ValueTask CommitAsync(CancellationToken cancellationToken = default);

    /// <summary>Discards the file: removes the temporary data. Does nothing after a commit.</summary>
    ValueTask AbortAsync();
}
