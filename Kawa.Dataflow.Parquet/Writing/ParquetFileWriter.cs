using System.Reflection;
using Kawa.Dataflow.Parquet.Format;
using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Parquet.Writing;

/// <summary>The file-level writer behind the public writers: buffers a row group in column writers, writes chunks and the footer.</summary>
internal sealed class ParquetFileWriter
{
    internal static readonly string CreatedBy = $"Kawa.Dataflow.Parquet version {Version()}";

    private static readonly byte[] Magic = "PAR1"u8.ToArray();
    private readonly Stream _stream;
    private readonly ParquetSchema _schema;
    private readonly ParquetWriterOptions _options;
    private readonly ChunkContext _ctx;
    private ChunkContext[] _workerContexts = [];
    private ColumnWriter[] _encodeOrder = [];
    private ColumnChunk[] _encoded = [];
    private ColumnWriter[]? _spare;
    private Task? _pending;
    private long _pendingBytes;
    private System.Runtime.ExceptionServices.ExceptionDispatchInfo? _faulted;
    private readonly List<RowGroup> _rowGroups = [];
    private readonly ColumnMark[] _marks;
    private long _position;
    private long _totalRows;
    private bool _started;
    private bool _completed;

    public ParquetFileWriter(Stream stream, ParquetSchema schema, ParquetWriterOptions options)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite)
        {
            throw new ArgumentException("The stream must be writable.", nameof(stream));
        }

        options.Validate();
        _stream = stream;
        _schema = schema;
        _options = options;
        Columns = WriterFactory.CreateColumns(schema, options.DictionaryMaxBytes);
        _marks = new ColumnMark[Columns.Length];
        _ctx = new ChunkContext(Codec(options.Compression), options.PageSize, options.DictionaryMaxBytes, options.StatisticsMaxBytes, options.DataPageVersion == ParquetDataPageVersion.V2);
    }

    public ColumnWriter[] Columns { get; }

    public int BufferedRows { get; private set; }

    public long Position => _position;

    public long TotalRows => _totalRows + BufferedRows;

    public int RowGroupCount => _rowGroups.Count;

    public long BufferedBytes
    {
        get
        {
            long total = 0;
            foreach (var c in Columns)
            {
                total += c.EstimatedBytes;
            }

            // A row group being written in the background still holds its buffers.
            return total + Volatile.Read(ref _pendingBytes);
        }
    }

    public bool IsCompleted => _completed;

    /// <summary>Flushes when the next batch would exceed the row limit.</summary>
    public ValueTask BeforeBatchAsync(int batchRows, CancellationToken cancellationToken)
    {
        ThrowIfCompleted();
        return BufferedRows > 0 && (long)BufferedRows + batchRows > _options.RowGroupMaxRows
            ? FlushRowGroupAsync(cancellationToken)
            : ValueTask.CompletedTask;
    }

    public void MarkBatch()
    {
        for (int i = 0; i < Columns.Length; i++)
        {
            _marks[i] = Columns[i].Mark();
        }
    }

    public void RollbackBatch()
    {
        for (int i = 0; i < Columns.Length; i++)
        {
            Columns[i].Rollback(_marks[i]);
        }
    }

    /// <summary>Undoes the batch after <paramref name="failure"/> at row <paramref name="row"/>; returns what the
    /// writer throws: the failure itself when it already names its row, else a <see cref="ParquetWriteException"/> that does.</summary>
    public ParquetWriteException FailBatch(int row, Exception failure)
    {
        RollbackBatch();
        return failure is ParquetWriteException pwe && pwe.Message.StartsWith("Row ", StringComparison.Ordinal)
            ? pwe
            : new ParquetWriteException($"Row {row} of the batch: {failure.Message} The batch was not written.", failure);
    }

    public ValueTask AfterBatchAsync(int batchRows, CancellationToken cancellationToken)
    {
        BufferedRows += batchRows;
        if (BufferedRows < _options.RowGroupMaxRows && BufferedBytes < _options.RowGroupMaxBytes)
        {
            return ValueTask.CompletedTask;
        }

        return _options.MaxDegreeOfParallelism > 1 && BytesOf(Columns) >= ParallelMinBytes
            ? FlushInBackgroundAsync(cancellationToken)
            : FlushRowGroupAsync(cancellationToken);
    }

    public async ValueTask FlushRowGroupAsync(CancellationToken cancellationToken)
    {
        ThrowIfCompleted();
        await DrainAsync().ConfigureAwait(false);
        if (BufferedRows == 0)
        {
            return;
        }

        int rows = BufferedRows;
        await WriteGroupAsync(Columns, rows, cancellationToken).ConfigureAwait(false);
        _totalRows += rows;
        BufferedRows = 0;
    }

    /// <summary>
    /// A row group that filled up while rows were added: its buffers are swapped with a spare set of column writers
    /// and it is encoded and written on the thread pool while the caller goes on adding rows to the (now empty)
    /// current set. At most one row group is in flight; the next flush, <see cref="FlushRowGroupAsync"/> and
    /// <see cref="CompleteAsync"/> wait for it, and its failure is thrown from there.
    /// </summary>
    private async ValueTask FlushInBackgroundAsync(CancellationToken cancellationToken)
    {
        ThrowIfCompleted();
        await DrainAsync().ConfigureAwait(false);
        await StartAsync(cancellationToken).ConfigureAwait(false);
        var spare = _spare ??= WriterFactory.CreateColumns(_schema, _options.DictionaryMaxBytes);
        for (int i = 0; i < Columns.Length; i++)
        {
            Columns[i].SwapWith(spare[i]);
        }

        int rows = BufferedRows;
        _totalRows += rows;
        BufferedRows = 0;
        Volatile.Write(ref _pendingBytes, BytesOf(spare));

        // The caller's token belongs to the call that returns now; the write finishes (or fails) on its own.
        _pending = Task.Run(() => WriteGroupAsync(spare, rows, CancellationToken.None).AsTask(), CancellationToken.None);
    }

    private async ValueTask DrainAsync()
    {
        _faulted?.Throw();
        if (_pending is { } pending)
        {
            _pending = null;
            try
            {
                await pending.ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // The stream is torn: every later call fails with the same error; the file must be discarded.
                _faulted = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex);
                throw;
            }
            finally
            {
                Volatile.Write(ref _pendingBytes, 0);
            }
        }
    }

    private static long BytesOf(ColumnWriter[] columns)
    {
        long total = 0;
        foreach (var c in columns)
        {
            total += c.EstimatedBytes;
        }

        return total;
    }

    /// <summary>Encodes <paramref name="columns"/> as one row group of <paramref name="rows"/> rows and writes it to the stream.</summary>
    private async ValueTask WriteGroupAsync(ColumnWriter[] columns, int rows, CancellationToken cancellationToken)
    {
        await StartAsync(cancellationToken).ConfigureAwait(false);
        long groupStart = _position;
        var group = new RowGroup { NumRows = rows, FileOffset = groupStart, Ordinal = (short)Math.Min(_rowGroups.Count, short.MaxValue) };
        long uncompressed = 0;
        int workers = Math.Min(_options.MaxDegreeOfParallelism, columns.Length);
        if (workers > 1 && BytesOf(columns) >= ParallelMinBytes)
        {
            // Chunks are encoded (dictionary, levels, compression) concurrently into each column's own buffer at
            // offset 0, then written in schema order with their offsets moved to where they land in the file.
            await EncodeInParallelAsync(columns, workers).ConfigureAwait(false);
            for (int i = 0; i < columns.Length; i++)
            {
                var column = columns[i];
                var chunk = _encoded[i];
                _encoded[i] = null!;
                Relocate(chunk, _position);
                await _stream.WriteAsync(column.ParallelOutput.WrittenMemory, cancellationToken).ConfigureAwait(false);
                _position += column.ParallelOutput.Length;
                uncompressed += chunk.MetaData!.TotalUncompressedSize;
                group.Columns.Add(chunk);
                column.Reset();
            }
        }
        else
        {
            foreach (var column in columns)
            {
                var chunk = column.WriteChunk(_ctx, _ctx.Chunk, _position);
                await _stream.WriteAsync(_ctx.Chunk.WrittenMemory, cancellationToken).ConfigureAwait(false);
                _position += _ctx.Chunk.Length;
                uncompressed += chunk.MetaData!.TotalUncompressedSize;
                group.Columns.Add(chunk);
                column.Reset();
            }
        }

        group.TotalByteSize = uncompressed;
        group.TotalCompressedSize = _position - groupStart;
        _rowGroups.Add(group);
    }

    /// <summary>Below this many buffered bytes a row group is encoded on the calling thread: handing off costs more than it saves.</summary>
    internal const long ParallelMinBytes = 256 * 1024;

    private async Task EncodeInParallelAsync(ColumnWriter[] columns, int workers)
    {
        if (_workerContexts.Length < workers)
        {
            var contexts = new ChunkContext[workers];
            _workerContexts.CopyTo(contexts, 0);
            contexts[0] = _ctx;
            for (int w = 1; w < workers; w++)
            {
                contexts[w] ??= new ChunkContext(_ctx.Codec, _ctx.PageSize, _ctx.DictionaryMaxBytes, _ctx.StatisticsMaxBytes, _ctx.DataPageV2);
            }

            _workerContexts = contexts;
            _encoded = new ColumnChunk[Columns.Length];
            _encodeOrder = new ColumnWriter[Columns.Length];
        }

        // Largest columns first, so the last ones to start are short and the workers finish together.
        columns.CopyTo(_encodeOrder, 0);
        Array.Sort(_encodeOrder, static (a, b) => b.EstimatedBytes.CompareTo(a.EstimatedBytes));
        int next = -1;
        void Work(ChunkContext ctx)
        {
            int k;
            while ((k = Interlocked.Increment(ref next)) < _encodeOrder.Length)
            {
                var column = _encodeOrder[k];
                _encoded[Array.IndexOf(columns, column)] = column.WriteChunk(ctx, column.ParallelOutput, 0);
            }
        }

        var helpers = new Task[workers - 1];
        for (int w = 1; w < workers; w++)
        {
            var ctx = _workerContexts[w];
            helpers[w - 1] = Task.Run(() => Work(ctx));
        }

        Exception? error = null;
        try
        {
            Work(_ctx);
        }
        catch (Exception ex)
        {
            error = ex;
            Volatile.Write(ref next, int.MaxValue - workers);
        }

        try
        {
            await Task.WhenAll(helpers).ConfigureAwait(false);
        }
        catch (Exception) when (error is not null)
        {
            // The calling thread's failure is the one reported.
        }

        if (error is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }
    }

    private static void Relocate(ColumnChunk chunk, long offset)
    {
        var meta = chunk.MetaData!;
        meta.DataPageOffset += offset;
        if (meta.DictionaryPageOffset is long d)
        {
            meta.DictionaryPageOffset = d + offset;
        }

        chunk.FileOffset += offset;
    }

    public async ValueTask CompleteAsync(CancellationToken cancellationToken)
    {
        if (_completed)
        {
            return;
        }

        await FlushRowGroupAsync(cancellationToken).ConfigureAwait(false);
        await StartAsync(cancellationToken).ConfigureAwait(false);
        var meta = new FileMetaData
        {
            Version = _ctx.DataPageV2 ? 2 : 1,
            Schema = SchemaConverter.ToElements(_schema),
            NumRows = _totalRows,
            RowGroups = _rowGroups,
            CreatedBy = CreatedBy,
            KeyValueMetadata = _options.KeyValueMetadata.Select(kv => new KeyValue { Key = kv.Key, Value = kv.Value }).ToList(),
            TypeDefinedColumnOrders = Columns.Length,
        };
        var buffer = new ByteBuffer(4096);
        meta.Write(new ThriftCompactWriter(buffer));
        int footerLength = buffer.Length;
        buffer.WriteInt32LittleEndian(footerLength);
        buffer.Write(Magic);
        await _stream.WriteAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
        _position += buffer.Length;
        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        _completed = true;
        Release();
    }

    /// <summary>Returns pooled buffers; called once the file is complete or abandoned.</summary>
    public void Release()
    {
        foreach (var c in Columns)
        {
            c.Release();
        }

        foreach (var c in _spare ?? [])
        {
            c.Release();
        }

        _ctx.Release();
        for (int w = 1; w < _workerContexts.Length; w++)
        {
            _workerContexts[w].Release();
        }
    }

    private async ValueTask StartAsync(CancellationToken cancellationToken)
    {
        if (!_started)
        {
            await _stream.WriteAsync(Magic, cancellationToken).ConfigureAwait(false);
            _position += Magic.Length;
            _started = true;
        }
    }

    private void ThrowIfCompleted()
    {
        if (_completed)
        {
            throw new InvalidOperationException("The Parquet file is complete (its footer is written); no more rows can be added.");
        }
    }

    private static CompressionCodec Codec(ParquetCompression c) => c switch
    {
        ParquetCompression.Uncompressed => CompressionCodec.Uncompressed,
        ParquetCompression.Snappy => CompressionCodec.Snappy,
        ParquetCompression.Gzip => CompressionCodec.Gzip,
        ParquetCompression.Brotli => CompressionCodec.Brotli,
        _ => throw new NotSupportedException($"Compression {c} is not supported."),
    };

    private static string Version()
    {
        var v = typeof(ParquetFileWriter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        int plus = v.IndexOf('+', StringComparison.Ordinal);
        return plus >= 0 ? v[..plus] : v;
    }
}
