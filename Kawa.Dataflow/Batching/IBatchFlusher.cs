namespace Kawa.Dataflow;

/// <summary>Writes one batch durably: what a <see cref="BatchingDestination{T}"/> calls for each batch.</summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// <list type="bullet">
/// <item>Return normally only when every message of <see cref="Batch{T}.Messages"/> is durable: the sink then acks
/// them. Throw if the write failed: the sink retries (per <see cref="BatchingOptions{T}.MaxRetries"/> and
/// <see cref="BatchingOptions{T}.IsRetryable"/>) with the same batch, then applies <see cref="BatchingOptions{T}.OnError"/>.
/// A flush must therefore tolerate being called again for a batch it partly wrote (at-least-once).</item>
/// <item>Honour <c>cancellationToken</c>: it fires at <see cref="BatchingOptions{T}.FlushTimeout"/> and when a drain
/// times out. A flush still running <see cref="BatchingOptions{T}.FlushCancellationGrace"/> later is abandoned by the
/// watchdog: its batch is negatively acked and the flush counts as failed.</item>
/// <item>Deferred acks: a sink that makes data durable later than the flush returns (a Parquet file acked at commit)
/// calls <see cref="Batch{T}.DeferAcks"/> and settles the returned <see cref="DeferredAcks"/> when the data is durable.
/// <see cref="CompleteAsync"/> is its last chance to do so; <see cref="CommitHeldAsync"/> asks for it early, when the
/// pipeline's source is idle.</item>
/// <item>Flushes run concurrently up to <see cref="BatchingOptions{T}.FlushParallelism"/>.</item>
/// </list>
/// </remarks>
/// <example>
/// A file sink that acks at commit rather than at each flush (the Parquet shape): each flush appends a row group to
/// the open file and defers its acks; committing the file (on size, on age, or in <see cref="CompleteAsync"/>) settles them.
/// <code>
/// sealed class RollingFileFlusher : IBatchFlusher&lt;LogEvent&gt;
/// {
///     private readonly List&lt;DeferredAcks&gt; _uncommitted = [];
///     private OpenFile? _file;
///
///     public async ValueTask FlushAsync(Batch&lt;LogEvent&gt; batch, CancellationToken cancellationToken)
///     {
///         _file ??= await OpenFile.CreateAsync(cancellationToken);
///         await _file.AppendRowGroupAsync(batch.Messages, cancellationToken); // throws: the sink retries, then OnError
///         _uncommitted.Add(batch.DeferAcks());                                 // durable only at commit
///         if (_file.Length &gt; TargetFileSize) await CommitAsync(cancellationToken);
///     }
///
///     public ValueTask CompleteAsync(CancellationToken cancellationToken) => CommitAsync(cancellationToken);
///
///     // The source is idle (a drain has read everything): commit now rather than wait for the file's age.
///     public ValueTask CommitHeldAsync(CancellationToken cancellationToken) => CommitAsync(cancellationToken);
///
///     private async ValueTask CommitAsync(CancellationToken cancellationToken)
///     {
///         if (_file is null) return;
///         try
///         {
///             await _file.CommitAsync(cancellationToken);            // footer, fsync, upload, rename
///             _uncommitted.ForEach(acks =&gt; acks.Ack());
///         }
///         catch
///         {
///             _uncommitted.ForEach(acks =&gt; acks.Nack());           // never ack rows that are not committed
///             throw;
///         }
///         finally
///         {
///             _uncommitted.Clear();
///             _file = null;
///         }
///     }
/// }
/// </code>
/// With <see cref="BatchingOptions{T}.FlushParallelism"/> above 1, guard the open file with a lock. While a file stays
/// open for long, call <see cref="DeferredAcks.InProgress"/> so that sources such as JetStream do not redeliver.
/// </example>
public interface IBatchFlusher<T>
{
    /// <summary>Writes <paramref name="batch"/>; returns when its messages are durable, or after deferring their acks.</summary>
    /// <param name="batch">The batch: its messages, its attempt number, and the deferral hook.</param>
    /// <param name="cancellationToken">Fires at the flush timeout or when the drain times out.</param>
    ValueTask FlushAsync(Batch<T> batch, CancellationToken cancellationToken);

    /// <summary>Called once during the drain, after the last flush returned: make everything whose acks were deferred
    /// durable (commit the open file) and settle those <see cref="DeferredAcks"/>. The default does nothing.</summary>
    /// <param name="cancellationToken">Fires at the drain timeout; the sink then negatively acks whatever is still unsettled.</param>
    ValueTask CompleteAsync(CancellationToken cancellationToken) => default;

    /// <summary>Called when the pipeline's source is idle (<see cref="IDestination{T}.CommitHeldAsync"/>), after the
    /// partial batch was flushed and every flush returned: make durable now what is held past a flush (commit the open
    /// files) and settle those <see cref="DeferredAcks"/>. The sink keeps running; may be called many times. The default
    /// does nothing.</summary>
    /// <param name="cancellationToken">Fires when the pipeline aborts.</param>
    /// <remarks>On failure, negatively ack what could not be made durable, then throw: the pipeline treats it as fatal.</remarks>
    ValueTask CommitHeldAsync(CancellationToken cancellationToken) => default;
}

/// <summary>Builds <see cref="IBatchFlusher{T}"/>s from delegates.</summary>
public static class BatchFlusher
{
    /// <summary>A flusher from a delegate that writes a list of messages (the common case: no deferred acks).</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="flush">Writes the messages durably or throws; the rules of <see cref="IBatchFlusher{T}"/> apply.</param>
    public static IBatchFlusher<T> Create<T>(Func<IReadOnlyList<Message<T>>, CancellationToken, ValueTask> flush)
    {
        ArgumentNullException.ThrowIfNull(flush);
        return new DelegateFlusher<T>(flush);
    }

    private sealed class DelegateFlusher<T>(Func<IReadOnlyList<Message<T>>, CancellationToken, ValueTask> flush) : IBatchFlusher<T>
    {
        public ValueTask FlushAsync(Batch<T> batch, CancellationToken cancellationToken) => flush(batch.Messages, cancellationToken);
    }
}
