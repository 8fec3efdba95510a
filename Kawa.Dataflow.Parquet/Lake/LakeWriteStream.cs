namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>What a <see cref="LakeWriteStream"/> reports failures to.</summary>
internal interface ILakeFileSink
{
    /// <summary>Discards the partial file and returns the exception to throw, naming the file and the cause.</summary>
    Task<LakeWriteException> FailAsync(Exception error, string operation);

    /// <summary>Throws <see cref="ObjectDisposedException"/> once the file is committed, aborted or failed.</summary>
    void ThrowIfFinished();
}

/// <summary>
/// The write-only stream handed to format writers: counts bytes and turns any I/O failure into a
/// <see cref="LakeWriteException"/> after the partial file has been removed.
/// </summary>
/// <remarks>Prefer the async methods: with S3 a write that fills a part uploads it, and the sync path blocks on that.</remarks>
internal sealed class LakeWriteStream(ILakeFileSink owner, Stream inner) : Stream
{
    public long BytesWritten { get; private set; }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => BytesWritten;

    public override long Position
    {
        get => BytesWritten;
        set => throw new NotSupportedException("A lake file is written sequentially.");
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        owner.ThrowIfFinished();
        try
        {
            inner.Write(buffer);
        }
        catch (Exception error) when (error is not (LakeWriteException or ObjectDisposedException))
        {
            throw owner.FailAsync(error, "written").GetAwaiter().GetResult();
        }
        BytesWritten += buffer.Length;
    }

    public override void WriteByte(byte value) => Write([value]);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        owner.ThrowIfFinished();
        try
        {
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception error) when (error is not (LakeWriteException or ObjectDisposedException))
        {
            throw await owner.FailAsync(error, "written").ConfigureAwait(false);
        }
        BytesWritten += buffer.Length;
    }

    /// <summary>Hands buffered bytes on (no fsync; durability is the commit's job).</summary>
    public override void Flush()
    {
        owner.ThrowIfFinished();
        try
        {
            inner.Flush();
        }
        catch (Exception error) when (error is not (LakeWriteException or ObjectDisposedException))
        {
            throw owner.FailAsync(error, "written").GetAwaiter().GetResult();
        }
    }

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        owner.ThrowIfFinished();
        try
        {
            await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception error) when (error is not (LakeWriteException or ObjectDisposedException))
        {
            throw await owner.FailAsync(error, "written").ConfigureAwait(false);
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("A lake file stream is write-only.");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("A lake file is written sequentially.");

    public override void SetLength(long value) => throw new NotSupportedException("A lake file is written sequentially.");

    /// <summary>Disposing the stream does not commit or abort; the <see cref="ILakeFile"/> owns the file.</summary>
    protected override void Dispose(bool disposing) => base.Dispose(disposing);
}
