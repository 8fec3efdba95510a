using Kawa.Dataflow.Parquet.Lake;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kawa.Dataflow.Parquet.Sink;

/// <summary>
/// The data-lake sink: writes messages as rows of Hive-partitioned Parquet files and acks them only after the file
/// holding them is committed (durable and atomically visible) through an <see cref="ILakeStorage"/>.
/// </summary>
/// <typeparam name="T">The message payload type.</typeparam>
/// <remarks>
/// <para>Built on <see cref="BatchingDestination{T}"/>: messages are grouped into flushes (see
/// <see cref="ParquetDestinationOptions{T}.Batching"/>); each flush is appended to the row-group buffer of its
/// partition's open file, so many small flushes make one row group. Row groups are written out when full
/// (<see cref="ParquetDestinationOptions{T}.RowGroupMaxRows"/>/<see cref="ParquetDestinationOptions{T}.RowGroupMaxBytes"/>)
/// or to keep the memory of all open files within <see cref="ParquetDestinationOptions{T}.MemoryBudgetBytes"/>. That
/// memory is their row-group buffers plus what the storage holds for them (an S3 file's part not yet uploaded, a local
/// file's write buffer). Before
/// a flush's rows are appended to a file, the largest row-group buffers are written out, and when none is left the
/// other file whose storage holds the most is committed, until the memory plus the rows' estimated size (bytes per row
/// measured on earlier rows of the same schema) fits the budget; after the append again if the estimate was low. The
/// budget can only be passed while a schema's very first rows are appended, by rows much larger than the ones before
/// them, by a single flush larger than the whole budget, or when a row group the writer cuts itself
/// (<see cref="ParquetDestinationOptions{T}.RowGroupMaxRows"/>) moves into the storage's buffer during an append.</para>
/// <para>Startup cleanup: before its first file the destination runs <see cref="ILakeStorage.CleanupAsync"/> once
/// (<see cref="ParquetDestinationOptions{T}.CleanupAtStart"/>), which removes this instance's leftovers and other
/// instances' temporary files older than twice the larger of the storage's <see cref="ILakeStorage.MaxFileAge"/> and
/// the one their writer declared in their names (this destination's names declare its storage's); that is why
/// <see cref="ParquetDestinationOptions{T}.FileMaxAge"/> must be below it.</para>
/// <list type="bullet">
/// <item>Acks: deferred (<see cref="Batch{T}.DeferAcks"/>) and given when every file holding the flush's rows has
/// committed, in commit order. While a file is open its messages are reported in progress every
/// <see cref="ParquetDestinationOptions{T}.KeepAliveInterval"/>.</item>
/// <item>Failures: a failed write or commit removes the file (the storage deletes the temporary data) and negatively
/// acks the messages of earlier flushes it held; a failure inside a flush fails that flush with a
/// <see cref="LakeWriteException"/> naming the file and the cause, and the batching sink retries that batch or applies
/// its error handler. Rows of a failed flush that reached other files may be
/// written twice after a retry (at-least-once, never lost).</item>
/// <item>Drain (<see cref="FlushAsync"/>): every open file is committed and its messages acked. If the drain's token
/// fires first, the remaining open files are aborted and their messages negatively acked.</item>
/// <item>Checkpoint (<see cref="CommitHeldAsync"/>, called by the pipeline when its source is idle, for example a drain
/// run that has read everything): what is batched is flushed and every open file is committed at once, whatever its
/// age, so the deferred acks settle and a batch job ends promptly. A file that cannot be committed is removed, its
/// messages are negatively acked (the source redelivers them), and the <see cref="LakeWriteException"/> is thrown,
/// which stops the pipeline.</item>
/// <item>Footer metadata: <c>kawa.schema.fingerprint</c> (see <see cref="SchemaFingerprint"/>) and <c>kawa.lineage</c>, a
/// JSON array of <c>{"stream","first","last","rows"}</c> from the messages' <see cref="MessageAttributeKeys.Stream"/> and
/// <see cref="MessageAttributeKeys.StreamSequence"/> attributes (empty when absent).</item>
/// </list>
/// </remarks>
public sealed class ParquetDestination<T> : IDestination<T>, ISegmentDestination<T>, IPipelineMember, IAsyncDisposable
{
    private readonly BatchingDestination<T> _batching;
    private readonly ParquetFileFlusher<T> _flusher;
    private readonly TimeSpan _fileMaxAge;

    /// <summary>Creates a sink that writes each payload as one row (its public properties are the columns).</summary>
    /// <param name="options">The sink's options.</param>
    /// <param name="timeProvider">The clock for file age, keep-alives and batching; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="loggerFactory">Where to log; nothing by default.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid (every problem is listed).</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> has a property that cannot be mapped to Parquet.</exception>
    public ParquetDestination(ParquetDestinationOptions<T> options, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
        : this(options, new TypedRowFormat<T, T>(static m => m.Value), timeProvider, loggerFactory)
    {
    }

    private ParquetDestination(ParquetDestinationOptions<T> options, IRowFormat<T> format, TimeProvider? timeProvider, ILoggerFactory? loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid Parquet destination options: " + string.Join(" ", problems), nameof(options));
        }

        var time = timeProvider ?? TimeProvider.System;
        var logs = loggerFactory ?? NullLoggerFactory.Instance;
        _flusher = new ParquetFileFlusher<T>(options, format, time, logs);
        _batching = new BatchingDestination<T>(_flusher, options.Batching, time, logs);
        _fileMaxAge = options.FileMaxAge;
    }

    /// <summary>Bytes held in memory across all open files now: row-group buffers (not yet written out) plus what the
    /// storage holds for them (S3 parts not yet uploaded, local write buffers); within <see cref="ParquetDestinationOptions{T}.MemoryBudgetBytes"/>
    /// (see the remarks for the exceptions).</summary>
    public long BufferedBytes => _flusher.BufferedBytes;

    /// <summary>The most bytes held across all open files so far (as <see cref="BufferedBytes"/>), measured after every
    /// append of a flush's rows and after the budget was enforced (for monitoring the budget).</summary>
    public long PeakBufferedBytes => _flusher.PeakBufferedBytes;

    /// <summary>Files open (written to, not yet committed) now.</summary>
    public int OpenFileCount => _flusher.OpenFileCount;

    /// <summary>Creates a sink that writes one row of <typeparamref name="TRow"/> per message.</summary>
    /// <typeparam name="TRow">The row type (a class or record; its public properties are the columns).</typeparam>
    /// <param name="options">The sink's options.</param>
    /// <param name="rowSelector">Makes the row of a message.</param>
    /// <param name="timeProvider">The clock; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="loggerFactory">Where to log; nothing by default.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid (every problem is listed).</exception>
    public static ParquetDestination<T> Create<TRow>(ParquetDestinationOptions<T> options, Func<Message<T>, TRow> rowSelector, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(rowSelector);
        return new ParquetDestination<T>(options, new TypedRowFormat<T, TRow>(rowSelector), timeProvider, loggerFactory);
    }

    /// <summary>Creates a sink whose columns are declared at run time: each message becomes a <see cref="DynamicRow"/>.
    /// Messages of a different schema go to a different file (a schema change in a partition commits the old file).</summary>
    /// <param name="options">The sink's options.</param>
    /// <param name="rowSelector">Makes the row (schema and values) of a message; reuse schema instances.</param>
    /// <param name="timeProvider">The clock; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="loggerFactory">Where to log; nothing by default.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid (every problem is listed).</exception>
    public static ParquetDestination<T> CreateDynamic(ParquetDestinationOptions<T> options, Func<Message<T>, DynamicRow> rowSelector, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(rowSelector);
        return new ParquetDestination<T>(options, new DynamicRowFormat<T>(rowSelector), timeProvider, loggerFactory);
    }

    /// <inheritdoc/>
    public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default) => _batching.SendAsync(ack, messages, cancellationToken);

    // SendAsync only forwards to the batching sink, so a pipeline's segments may go to it directly as well: one pass
    // under its gate per segment, and the pipeline can run its unordered stages to completion into this sink.
    ValueTask ISegmentDestination<T>.SendSegmentAsync(Envelope<T>[] items, int count, CancellationToken cancellationToken)
        => ((ISegmentDestination<T>)_batching).SendSegmentAsync(items, count, cancellationToken);

    // Given to a pipeline: the batching sink's metrics then carry its name (unless Batching.PipelineName set one).
    void IPipelineMember.JoinPipeline(string pipeline) => ((IPipelineMember)_batching).JoinPipeline(pipeline);

    // A message is acked when its file commits: up to FileMaxAge after the file opened, after waiting in its batch.
    TimeSpan IPipelineMember.LongestHold => _fileMaxAge + ((IPipelineMember)_batching).LongestHold;

    /// <summary>The drain: flushes what is batched, commits every open file and acks; on <paramref name="cancellationToken"/>
    /// aborts the open files and negatively acks what is not committed.</summary>
    /// <param name="cancellationToken">The drain timeout.</param>
    /// <exception cref="BatchFlushException">A flush failed fatally.</exception>
    /// <exception cref="LakeWriteException">A file could not be committed at the drain (its messages were negatively acked).</exception>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => _batching.FlushAsync(cancellationToken);

    /// <summary>The checkpoint: flushes what is batched and commits every open file now, acking their messages; the sink
    /// keeps running and opens new files for later messages.</summary>
    /// <param name="cancellationToken">Fires when the pipeline aborts.</param>
    /// <exception cref="BatchFlushException">A flush failed fatally.</exception>
    /// <exception cref="LakeWriteException">A file could not be committed (its messages were negatively acked).</exception>
    public ValueTask CommitHeldAsync(CancellationToken cancellationToken = default) => _batching.CommitHeldAsync(cancellationToken);

    /// <summary>Stops without draining: aborts the open files and negatively acks every unsettled message.</summary>
    public async ValueTask DisposeAsync()
    {
        await _batching.DisposeAsync().ConfigureAwait(false);
        await _flusher.DisposeAsync().ConfigureAwait(false);
    }
}
