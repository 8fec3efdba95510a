using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Parquet.Writing;

/// <summary>
/// Writes rows of <typeparamref name="T"/> (a class or record) to a Parquet file on a stream. Columns come from
/// <typeparamref name="T"/>'s public properties (see <see cref="ParquetSchema.FromType{T}"/>); values are
/// shredded by compiled accessors, without reflection or boxing per row.
/// </summary>
/// <typeparam name="T">The row type.</typeparam>
/// <remarks>
/// <para>Rows are buffered in memory as one row group and written when it reaches
/// <see cref="ParquetWriterOptions.RowGroupMaxRows"/> or <see cref="ParquetWriterOptions.RowGroupMaxBytes"/>, or on
/// <see cref="FlushRowGroupAsync"/>. <see cref="CompleteAsync"/> (or <see cref="DisposeAsync"/>) writes the footer;
/// a file without its footer is not readable.</para>
/// <para>A batch is all or nothing: if any value of a <see cref="WriteAsync"/> batch cannot be written
/// (<see cref="ParquetWriteException"/>), none of the batch is kept and the writer stays usable.</para>
/// <para>Not thread-safe: one caller at a time. Cancellation of a write may leave the stream partially written;
/// the file must then be discarded.</para>
/// </remarks>
public sealed class ParquetWriter<T> : IAsyncDisposable
{
    private readonly ParquetFileWriter _file;
    private readonly GroupWriter<T> _root;
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private bool _disposed;

    /// <summary>Creates a writer on <paramref name="stream"/>.</summary>
    /// <param name="stream">Writable destination; the file starts at its current position.</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <param name="leaveOpen">True to leave <paramref name="stream"/> open after disposal.</param>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> has a property that cannot be mapped (the message names it), or ZSTD was requested.</exception>
    public ParquetWriter(Stream stream, ParquetWriterOptions? options = null, bool leaveOpen = false)
    {
        options ??= new ParquetWriterOptions();
        Schema = ClrSchemaFactory.Build(typeof(T), options.TimestampUnit);
        _file = new ParquetFileWriter(stream, Schema, options);
        _root = WriterFactory.CreateTyped<T>(Schema, _file.Columns);
        _stream = stream;
        _leaveOpen = leaveOpen;
    }

    /// <summary>The schema written.</summary>
    public ParquetSchema Schema { get; }

    /// <summary>Bytes written to the stream so far (complete row groups; the footer once completed).</summary>
    public long Position => _file.Position;

    /// <summary>Estimated file size if completed now: <see cref="Position"/> plus the buffered row group's uncompressed size.</summary>
    public long EstimatedSize => _file.Position + _file.BufferedBytes;

    /// <summary>Rows buffered in the current row group.</summary>
    public int BufferedRows => _file.BufferedRows;

    /// <summary>Rows accepted so far (written and buffered).</summary>
    public long RowCount => _file.TotalRows;

    /// <summary>Row groups written so far.</summary>
    public int RowGroupCount => _file.RowGroupCount;

    /// <summary>Adds <paramref name="rows"/> to the current row group, flushing row groups as they fill.</summary>
    /// <param name="rows">The rows; none may be null.</param>
    /// <param name="cancellationToken">Cancels a flush in progress.</param>
    /// <returns>A task that completes when the rows are buffered and any full row group is written, or (when
    /// <see cref="ParquetWriterOptions.MaxDegreeOfParallelism"/> is above 1) handed to a background write whose
    /// failure is thrown by the next flush, <see cref="FlushRowGroupAsync"/> or <see cref="CompleteAsync"/>.</returns>
    /// <exception cref="ParquetWriteException">A value cannot be written; nothing of this batch is kept.</exception>
    public async ValueTask WriteAsync(IReadOnlyList<T> rows, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (rows.Count == 0)
        {
            return;
        }

        await _file.BeforeBatchAsync(rows.Count, cancellationToken).ConfigureAwait(false);
        _file.MarkBatch();
        int i = 0;
        try
        {
            for (; i < rows.Count; i++)
            {
                var row = rows[i] ?? throw new ParquetWriteException($"Row {i} of the batch is null.");
                _root.Write(row, 0, 0);
            }
        }
        catch (Exception ex)
        {
            // Any failure (bad value, or a property getter throwing) undoes the whole batch.
            throw _file.FailBatch(i, ex);
        }

        await _file.AfterBatchAsync(rows.Count, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes the buffered rows as a row group now (no-op when none are buffered).</summary>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the row group is written to the stream.</returns>
    public ValueTask FlushRowGroupAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _file.FlushRowGroupAsync(cancellationToken);
    }

    /// <summary>Writes the remaining rows and the footer, and flushes the stream. Idempotent.</summary>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the file is complete.</returns>
    public ValueTask CompleteAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _file.CompleteAsync(cancellationToken);
    }

    /// <summary>Completes the file (if not yet) and disposes the stream unless it was left open.</summary>
    /// <returns>A task that completes when done.</returns>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            await _file.CompleteAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            if (!_leaveOpen)
            {
                await _stream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
