using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Parquet.Writing;

/// <summary>
/// Writes rows given as <c>object?[]</c> (values in column order) against a schema declared at run time with
/// <see cref="ParquetSchemaBuilder"/>. Same file layout, limits and batch semantics as <see cref="ParquetWriter{T}"/>.
/// </summary>
/// <remarks>
/// Each value must have its column's .NET type (<see cref="ParquetValueType"/>); Timestamp columns take
/// <see cref="DateTime"/> or <see cref="DateTimeOffset"/>. A wrong type, wrong row length or null in a
/// non-nullable column throws <see cref="ParquetWriteException"/> naming the column, and none of the batch is kept.
/// </remarks>
public sealed class ParquetRowWriter : IAsyncDisposable
{
    private readonly ParquetFileWriter _file;
    private readonly ValueWriter<object?>[] _columns;
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private bool _disposed;

    /// <summary>Creates a writer.</summary>
    /// <param name="stream">Writable destination.</param>
    /// <param name="schema">A flat schema from <see cref="ParquetSchemaBuilder"/>.</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <param name="leaveOpen">True to leave <paramref name="stream"/> open after disposal.</param>
    public ParquetRowWriter(Stream stream, ParquetSchema schema, ParquetWriterOptions? options = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(schema);
        Schema = schema;
        _file = new ParquetFileWriter(stream, schema, options ?? new ParquetWriterOptions());
        _columns = WriterFactory.CreateDynamic(schema, _file.Columns);
        _stream = stream;
        _leaveOpen = leaveOpen;
    }

    /// <summary>The schema written.</summary>
    public ParquetSchema Schema { get; }

    /// <summary>Bytes written to the stream so far.</summary>
    public long Position => _file.Position;

    /// <summary>Estimated file size if completed now.</summary>
    public long EstimatedSize => _file.Position + _file.BufferedBytes;

    /// <summary>Rows buffered in the current row group.</summary>
    public int BufferedRows => _file.BufferedRows;

    /// <summary>Rows accepted so far.</summary>
    public long RowCount => _file.TotalRows;

    /// <summary>Adds rows to the current row group, flushing row groups as they fill.</summary>
    /// <param name="rows">Rows; each an array with one value per column.</param>
    /// <param name="cancellationToken">Cancels a flush in progress.</param>
    /// <returns>A task that completes when the rows are buffered.</returns>
    /// <exception cref="ParquetWriteException">A value cannot be written; nothing of this batch is kept.</exception>
    public async ValueTask WriteAsync(IReadOnlyList<object?[]> rows, CancellationToken cancellationToken = default)
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
                var row = rows[i];
                if (row is null || row.Length != _columns.Length)
                {
                    throw new ParquetWriteException($"Row {i} has {row?.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no"} values; the schema has {_columns.Length} columns.");
                }

                for (int c = 0; c < _columns.Length; c++)
                {
                    _columns[c].Write(row[c], 0, 0);
                }
            }
        }
        catch (Exception ex)
        {
            // Any failure (bad value, or a property getter throwing) undoes the whole batch.
            throw _file.FailBatch(i, ex);
        }

        await _file.AfterBatchAsync(rows.Count, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes the buffered rows as a row group now.</summary>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when written.</returns>
    public ValueTask FlushRowGroupAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _file.FlushRowGroupAsync(cancellationToken);
    }

    /// <summary>Writes the remaining rows and the footer. Idempotent.</summary>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the file is complete.</returns>
    public ValueTask CompleteAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _file.CompleteAsync(cancellationToken);
    }

    /// <summary>Completes the file (if not yet) and disposes the stream unless left open.</summary>
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
