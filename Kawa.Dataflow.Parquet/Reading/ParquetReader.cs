using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Kawa.Dataflow.Parquet.Format;
using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Parquet.Reading;

/// <summary>
/// Reads a Parquet file from a seekable stream: footer metadata, schema, and rows either as dynamic values
/// (<c>object?[]</c> per row; nested groups as <c>Dictionary&lt;string, object?&gt;</c>, lists as <c>object?[]</c>,
/// maps as <c>Dictionary&lt;object, object?&gt;</c>) or bound to a .NET type.
/// </summary>
/// <remarks>
/// Reads what <see cref="Writing.ParquetWriter{T}"/> writes and files from other writers such as DuckDB:
/// data pages v1 and v2; PLAIN, dictionary, RLE, DELTA_* and BYTE_STREAM_SPLIT encodings; UNCOMPRESSED,
/// SNAPPY, GZIP and BROTLI. ZSTD and LZ4 files fail with <see cref="NotSupportedException"/>. A row group is
/// decoded into memory at a time. Not thread-safe.
/// </remarks>
public sealed class ParquetReader : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly FileMetaData _meta;

    private ParquetReader(Stream stream, bool leaveOpen, FileMetaData meta)
    {
        _stream = stream;
        _leaveOpen = leaveOpen;
        _meta = meta;
        Schema = SchemaConverter.FromElements(meta.Schema);
        RowGroups = meta.RowGroups.Select(g => new ParquetRowGroupInfo(g)).ToArray();
        KeyValueMetadata = (meta.KeyValueMetadata ?? []).GroupBy(kv => kv.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Last().Value, StringComparer.Ordinal);
    }

    /// <summary>The file's schema.</summary>
    public ParquetSchema Schema { get; }

    /// <summary>Total rows in the file.</summary>
    public long RowCount => _meta.NumRows;

    /// <summary>The writer that created the file (footer <c>created_by</c>).</summary>
    public string? CreatedBy => _meta.CreatedBy;

    /// <summary>Footer key-value metadata.</summary>
    public IReadOnlyDictionary<string, string?> KeyValueMetadata { get; }

    /// <summary>Row groups with their column chunk metadata (codec, encodings, statistics).</summary>
    public IReadOnlyList<ParquetRowGroupInfo> RowGroups { get; }

    /// <summary>True when the footer declares TypeDefinedOrder column orders.</summary>
    public bool HasTypeDefinedColumnOrders => _meta.TypeDefinedColumnOrders == Schema.Columns.Count;

    /// <summary>Opens a file and reads its footer.</summary>
    /// <param name="stream">A readable, seekable stream holding the whole file.</param>
    /// <param name="leaveOpen">True to leave the stream open when the reader is disposed.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The reader.</returns>
    /// <exception cref="InvalidDataException">The stream is not a Parquet file, or its footer is corrupt.</exception>
    public static async Task<ParquetReader> OpenAsync(Stream stream, bool leaveOpen = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek || !stream.CanRead)
        {
            throw new ArgumentException("ParquetReader needs a readable, seekable stream.", nameof(stream));
        }

        long length = stream.Length;
        if (length < 12)
        {
            throw new InvalidDataException($"The stream is {length} bytes long; a Parquet file has at least 12 (magic, footer length, magic).");
        }

        var tail = new byte[8];
        stream.Position = length - 8;
        await stream.ReadExactlyAsync(tail, cancellationToken).ConfigureAwait(false);
        if (!tail.AsSpan(4).SequenceEqual("PAR1"u8))
        {
            throw new InvalidDataException(tail.AsSpan(4).SequenceEqual("PARE"u8)
                ? "The Parquet file has an encrypted footer, which is not supported."
                : "The stream does not end with the Parquet magic 'PAR1'; it is not a (complete) Parquet file.");
        }

        int footerLength = BinaryPrimitives.ReadInt32LittleEndian(tail);
        if (footerLength <= 0 || footerLength > length - 12)
        {
            throw new InvalidDataException($"The Parquet footer length {footerLength} does not fit the {length}-byte file; the file is corrupt.");
        }

        var footer = new byte[footerLength];
        stream.Position = length - 8 - footerLength;
        await stream.ReadExactlyAsync(footer, cancellationToken).ConfigureAwait(false);
        var meta = FileMetaData.Read(footer);
        return new ParquetReader(stream, leaveOpen, meta);
    }

    /// <summary>Opens a file by path.</summary>
    /// <param name="path">File path.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The reader (owns the file stream).</returns>
    public static Task<ParquetReader> OpenAsync(string path, CancellationToken cancellationToken = default) =>
        OpenAsync(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true), leaveOpen: false, cancellationToken);

    /// <summary>Reads one row group as dynamic rows (one value per top-level field).</summary>
    /// <param name="index">Row group index.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The rows.</returns>
    public async Task<IReadOnlyList<object?[]>> ReadRowGroupAsync(int index, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _meta.RowGroups.Count);
        var group = _meta.RowGroups[index];
        var columns = Schema.Columns;
        if (group.Columns.Count != columns.Count)
        {
            throw new InvalidDataException($"Row group {index} has {group.Columns.Count} column chunks; the schema has {columns.Count} columns.");
        }

        var data = new ColumnData[columns.Count];
        for (int c = 0; c < columns.Count; c++)
        {
            var meta = group.Columns[c].MetaData ?? throw new InvalidDataException($"Row group {index} column {c} has no metadata.");
            long start = meta.DictionaryPageOffset is > 0 && meta.DictionaryPageOffset < meta.DataPageOffset ? meta.DictionaryPageOffset.Value : meta.DataPageOffset;
            if (start < 4 || meta.TotalCompressedSize < 0 || start + meta.TotalCompressedSize > _stream.Length || meta.TotalCompressedSize > int.MaxValue)
            {
                throw new InvalidDataException($"Column chunk '{columns[c].DottedPath}' of row group {index} lies outside the file; the file is corrupt.");
            }

            var bytes = new byte[meta.TotalCompressedSize];
            _stream.Position = start;
            await _stream.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
            data[c] = ColumnChunkReader.Read(bytes, columns[c], meta);
        }

        var assembler = new RecordAssembler(Schema, data);
        var rows = new object?[group.NumRows][];
        for (long r = 0; r < group.NumRows; r++)
        {
            rows[r] = assembler.Next();
        }

        return rows;
    }

    /// <summary>Reads all rows as dynamic values.</summary>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The rows, row group by row group.</returns>
    public async IAsyncEnumerable<object?[]> ReadRowsAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        for (int g = 0; g < _meta.RowGroups.Count; g++)
        {
            foreach (var row in await ReadRowGroupAsync(g, cancellationToken).ConfigureAwait(false))
            {
                yield return row;
            }
        }
    }

    /// <summary>Reads all rows bound to <typeparamref name="T"/> (properties matched by column name).</summary>
    /// <typeparam name="T">A class or record with settable (or init) properties.</typeparam>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The rows.</returns>
    public async IAsyncEnumerable<T> ReadAsync<T>([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var row in ReadRowsAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return RowBinder.BindRow<T>(Schema.Fields, row);
        }
    }

    /// <summary>Reads all rows bound to <typeparamref name="T"/> into a list.</summary>
    /// <typeparam name="T">A class or record.</typeparam>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The rows.</returns>
    public async Task<List<T>> ReadAllAsync<T>(CancellationToken cancellationToken = default)
    {
        var list = new List<T>();
        await foreach (var row in ReadAsync<T>(cancellationToken).ConfigureAwait(false))
        {
            list.Add(row);
        }

        return list;
    }

    /// <summary>Disposes the stream unless it was left open.</summary>
    /// <returns>A task that completes when done.</returns>
    public ValueTask DisposeAsync() => _leaveOpen ? ValueTask.CompletedTask : _stream.DisposeAsync();
}

/// <summary>Metadata of one row group.</summary>
public sealed class ParquetRowGroupInfo
{
    internal ParquetRowGroupInfo(RowGroup group)
    {
        RowCount = group.NumRows;
        TotalByteSize = group.TotalByteSize;
        Columns = group.Columns.Select(c => new ParquetColumnChunkInfo(c.MetaData!)).ToArray();
    }

    /// <summary>Rows in the group.</summary>
    public long RowCount { get; }

    /// <summary>Uncompressed size of the group's column data.</summary>
    public long TotalByteSize { get; }

    /// <summary>Column chunks in schema leaf order.</summary>
    public IReadOnlyList<ParquetColumnChunkInfo> Columns { get; }
}

/// <summary>Metadata of one column chunk.</summary>
public sealed class ParquetColumnChunkInfo
{
    internal ParquetColumnChunkInfo(ColumnMetaData meta)
    {
        Path = string.Join('.', meta.PathInSchema);
        Codec = meta.Codec.ToString().ToUpperInvariant();
        Encodings = meta.Encodings.Select(e => e.ToString()).ToArray();
        ValueCount = meta.NumValues;
        CompressedSize = meta.TotalCompressedSize;
        UncompressedSize = meta.TotalUncompressedSize;
        NullCount = meta.Statistics?.NullCount;
        MinValue = meta.Statistics?.MinValue is { } min ? min : null;
        MaxValue = meta.Statistics?.MaxValue is { } max ? max : null;
        HasDictionaryPage = meta.DictionaryPageOffset is not null;
    }

    /// <summary>Dotted path in the schema.</summary>
    public string Path { get; }

    /// <summary>Compression codec name as in parquet.thrift (for example SNAPPY).</summary>
    public string Codec { get; }

    /// <summary>Encodings used in the chunk.</summary>
    public IReadOnlyList<string> Encodings { get; }

    /// <summary>Level entries (values and nulls).</summary>
    public long ValueCount { get; }

    /// <summary>Bytes on disk including page headers.</summary>
    public long CompressedSize { get; }

    /// <summary>Uncompressed bytes including page headers.</summary>
    public long UncompressedSize { get; }

    /// <summary>Statistics null count, when written.</summary>
    public long? NullCount { get; }

    /// <summary>Statistics <c>min_value</c> in Parquet's plain encoding, when written.</summary>
    public ReadOnlyMemory<byte>? MinValue { get; }

    /// <summary>Statistics <c>max_value</c> in Parquet's plain encoding, when written.</summary>
    public ReadOnlyMemory<byte>? MaxValue { get; }

    /// <summary>True when the chunk starts with a dictionary page.</summary>
    public bool HasDictionaryPage { get; }
}
