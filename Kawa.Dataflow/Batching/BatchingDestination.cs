using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kawa.Dataflow;

/// <summary>
/// A destination that groups messages into batches and writes each batch with one flush: Kawa's batcher, with acks
/// that wait for the flush, bounded buffers, retries, a watchdog and a guaranteed final flush.
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// <para>Batches are formed by the sink itself, under one gate (it decides every trigger: count, estimated bytes, age
/// and drain), and each closed batch waits in order for one of <see cref="BatchingOptions{T}.FlushParallelism"/> flush
/// slots. Triggers are described on <see cref="BatchingOptions{T}"/>. Inside a pipeline the destination stage hands the
/// sink a whole segment of messages at a time, so the gate and the buffer accounting are paid once per segment, not once
/// per message.</para>
/// <para>Where flushes run: a closed batch is started, once a slot is free, by the thread that closed it (outside the
/// gate) or by the flush that frees the slot, and runs there until its flusher first awaits; see
/// <see cref="FlushExecution"/> for when they go to the thread pool instead. A flusher that completes at once thus costs
/// no thread hop, and its batch is released at once rather than waiting for a pool thread on a busy machine.</para>
/// <list type="bullet">
/// <item>Acks: a message is acked only after the flush of <em>its</em> batch succeeded (or, with
/// <see cref="Batch{T}.DeferAcks"/>, when the flusher settles it). The token of a <see cref="SendAsync"/> covers every
/// message passed with it, which may land in different batches: it is acked once all of them are; if any of them
/// failed, it is negatively acked with the longest delay among them.</item>
/// <item>Backpressure: the buffer is bounded (the open batch plus <see cref="BatchingOptions{T}.BufferedBatches"/> full
/// batches waiting for a flush slot, counted in messages); when it is full <see cref="SendAsync"/> waits.</item>
/// <item>Failures: a failed flush is retried with exponential backoff and jitter while
/// <see cref="BatchingOptions{T}.IsRetryable"/> allows and <see cref="BatchingOptions{T}.MaxRetries"/> is not reached
/// (each back-off starts with a keep-alive, <see cref="AckToken.InProgress"/>, on the batch's tokens); then
/// <see cref="BatchingOptions{T}.OnError"/> decides. With <see cref="BatchErrorHandler{T}.Raise"/>, the batch is negatively
/// acked and <see cref="BatchFlushException"/> is thrown from the next <see cref="SendAsync"/> and from
/// <see cref="FlushAsync"/>; later batches are negatively acked without being flushed.</item>
/// <item>Watchdog: each attempt's token fires at <see cref="BatchingOptions{T}.FlushTimeout"/> (a
/// <see cref="FlushTimeoutException"/>, retryable by default). An attempt that ignores its token and is still running
/// <see cref="BatchingOptions{T}.FlushCancellationGrace"/> later is abandoned: it is not retried (it may still be
/// writing), its batch is negatively acked, and it counts as a failed flush (fatal under <see cref="BatchErrorHandler{T}.Raise"/>).</item>
/// <item>Drain (<see cref="FlushAsync"/>): the partial batch is flushed (always: the final flush is guaranteed), every
/// flush is awaited, then <see cref="IBatchFlusher{T}.CompleteAsync"/> and the dead-letter destination's drain run. If
/// the drain's token fires first, in-flight flushes are cancelled and every unsettled token is negatively acked. Anything
/// still unsettled at the end of the drain is negatively acked, never acked.</item>
/// <item>Checkpoint (<see cref="CommitHeldAsync"/>, when the pipeline's source is idle): the partial batch is flushed
/// at once (no waiting for its age), every flush is awaited, then <see cref="IBatchFlusher{T}.CommitHeldAsync"/> and the
/// dead-letter destination's commit run. The sink keeps accepting messages afterwards.</item>
/// <item>Telemetry: <c>kawa.batch.size</c> and <c>kawa.batch.flush.duration</c> per batch, <c>kawa.messages.failed</c>
/// and <c>kawa.messages.dead_lettered</c> per message, tagged <c>kawa.stage</c> = <see cref="BatchingOptions{T}.StageName"/> and
/// <c>kawa.pipeline</c> = <see cref="BatchingOptions{T}.PipelineName"/>, or else the name of the pipeline the sink was
/// given to (<see cref="PipelineBuilder{T}.To"/>), directly or inside a destination built on it that passes the name on
/// (the Parquet and JetStream destinations do).</item>
/// </list>
/// </remarks>
public sealed class BatchingDestination<T> : IDestination<T>, ISegmentDestination<T>, IPipelineMember, IAsyncDisposable
{
    private const int StateOpen = 0;
    private const int StateDraining = 1;
    private const int StateDisposed = 2;

    private readonly IBatchFlusher<T> _flusher;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _stage;
    private readonly int _maxBatchSize;
    private readonly long? _maxBatchBytes;
    private readonly Func<Message<T>, long>? _estimate;
    private readonly TimeSpan _maxBatchAge;
    private readonly TimeSpan _flushTimeout;
    private readonly TimeSpan _grace;
    private readonly int _maxRetries;
    private readonly TimeSpan _retryBaseDelay;
    private readonly TimeSpan _retryMaxDelay;
    private readonly bool _retryJitter;
    private readonly Func<Exception, bool> _isRetryable;
    private readonly BatchErrorHandler<T> _onError;
    private TagList _tags;
    private bool _pipelineTagged;

    private readonly int _flushParallelism;
    private readonly bool _alwaysOffload;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _abort = new();
    private readonly ConcurrentDictionary<BatchSettlement, byte> _unsettledBatches = new();
    private readonly Action<BatchSettlement> _onBatchSettled;
    private readonly Lock _drainLock = new();

    // Buffer room in messages: taken under _gate by senders, given back when a batch leaves for a flush slot.
    private long _room;
    private TaskCompletionSource? _roomWaiter;

    // The batch being filled; guarded by _gate.
    private readonly OpenBatch<T> _open;
    private int _openCount;
    private long _openBytes;
    private long _generation;
    private ITimer? _ageTimer;
    private bool _closed;

    // Flush slots. Closed batches wait in _pending, in order, for one of FlushParallelism slots; whoever closes a batch
    // or frees a slot starts what can start (StartFlushes), outside _gate. All guarded by _flushLock.
    private readonly Lock _flushLock = new();
    private readonly Queue<ClosedBatch> _pending = new();
    private int _flushing;
    private long _unflushedBatches; // queued or flushing: what CommitHeldAsync and the drain wait for
    private TaskCompletionSource? _flushedWaiter;

    // FlushExecution.Auto: set once a flush held the thread that started it for too long; later flushes start on the pool.
    private volatile bool _offload;

    private ExceptionDispatchInfo? _fatal;
    private int _state;
    private Task? _drain;

    /// <summary>Creates a batching destination over a flush delegate.</summary>
    /// <param name="flush">Writes one batch durably or throws; see <see cref="IBatchFlusher{T}"/>.</param>
    /// <param name="options">The batching options; <see langword="null"/> for the defaults.</param>
    /// <param name="timeProvider">The clock for batch age, timeouts and retry delays; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="loggerFactory">Where to log; nothing by default.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid (every problem is listed).</exception>
    public BatchingDestination(
        Func<IReadOnlyList<Message<T>>, CancellationToken, ValueTask> flush,
        BatchingOptions<T>? options = null,
        TimeProvider? timeProvider = null,
        ILoggerFactory? loggerFactory = null)
        : this(BatchFlusher.Create(flush), options, timeProvider, loggerFactory)
    {
    }

    /// <summary>Creates a batching destination over a flusher.</summary>
    /// <param name="flusher">Writes one batch durably or throws, and may defer acks; see <see cref="IBatchFlusher{T}"/>.</param>
    /// <param name="options">The batching options; <see langword="null"/> for the defaults.</param>
    /// <param name="timeProvider">The clock for batch age, timeouts and retry delays; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="loggerFactory">Where to log; nothing by default.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid (every problem is listed).</exception>
    public BatchingDestination(
        IBatchFlusher<T> flusher,
        BatchingOptions<T>? options = null,
        TimeProvider? timeProvider = null,
        ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(flusher);
        options ??= new BatchingOptions<T>();
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid batching options: " + string.Join(" ", errors), nameof(options));
        }

        _flusher = flusher;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<BatchingDestination<T>>();
        _stage = options.StageName;
        _maxBatchSize = options.MaxBatchSize;
        _maxBatchBytes = options.MaxBatchBytes;
        _estimate = options.SizeEstimator ?? (options.MaxBatchBytes is null ? null : DefaultSizeEstimator<T>.Estimate);
        _maxBatchAge = options.MaxBatchAge;
        _flushTimeout = options.FlushTimeout;
        _grace = options.FlushCancellationGrace;
        _maxRetries = options.MaxRetries;
        _retryBaseDelay = options.RetryBaseDelay;
        _retryMaxDelay = options.RetryMaxDelay;
        _retryJitter = options.RetryJitter;
        _isRetryable = options.IsRetryable ?? (static _ => true);
        _onError = options.OnError;
        _tags = new TagList { { Telemetry.StageTag, _stage } };
        if (options.PipelineName is { } pipeline)
        {
            _tags.Add(Telemetry.PipelineTag, pipeline);
            _pipelineTagged = true;
        }

        _onBatchSettled = batch => _unsettledBatches.TryRemove(batch, out _);
        _open = new OpenBatch<T>(_maxBatchSize);

        // The buffer (open batch plus batches waiting for a flush slot) is bounded in messages by _room; each batch
        // holds at least one message, so the queue of closed batches can never exceed that many.
        _room = (long)_maxBatchSize * (1 + options.BufferedBatches);
        _flushParallelism = options.FlushParallelism;
        _alwaysOffload = options.FlushExecution == FlushExecution.ThreadPool;

        // A sender waiting for room must not outlive a disposal or a drain timeout.
        _abort.Token.UnsafeRegister(static s => ((BatchingDestination<T>)s!).WakeRoomWaiter(), this);
    }

    /// <summary>Adds <paramref name="messages"/> to the current batch; acks <paramref name="ack"/> once all of them are flushed.</summary>
    /// <param name="ack">The token for these messages.</param>
    /// <param name="messages">The messages; none means nothing to write, so the token is acked at once.</param>
    /// <param name="cancellationToken">Cancels waiting for buffer space.</param>
    /// <remarks>Waits while the buffers are full. If cancelled before any message was taken, throws
    /// <see cref="OperationCanceledException"/> and leaves the token alone; if some were already taken, the token is
    /// negatively acked once those are settled, and the call returns.</remarks>
    /// <exception cref="BatchFlushException">An earlier flush failed fatally (<see cref="BatchErrorHandler{T}.Raise"/>).</exception>
    /// <exception cref="InvalidOperationException">The destination was drained or disposed.</exception>
    public async ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ack);
        Volatile.Read(ref _fatal)?.Throw();
        ThrowIfClosed();
        if (messages.IsEmpty)
        {
            ack.Ack();
            return;
        }

        // Estimate before taking anything, so that a failing estimator fails the whole send (the token stays the caller's).
        long[]? sizes = null;
        if (_estimate is not null)
        {
            sizes = new long[messages.Count];
            for (var i = 0; i < sizes.Length; i++)
            {
                sizes[i] = _estimate(messages[i]);
            }
        }

        // One message (the usual case) is owned by its token itself; several share an AckGroup.
        object owner = messages.Count == 1 ? ack : new AckGroup(ack, messages.Count, null);
        var taken = 0;
        try
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ThrowIfOpenClosed();
                while (taken < messages.Count)
                {
                    var room = TakeRoom(messages.Count - taken);
                    if (room == 0)
                    {
                        await WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    for (var end = taken + room; taken < end; taken++)
                    {
                        Add(messages[taken], owner, sizes is null ? 0 : sizes[taken]);
                    }
                }
            }
            finally
            {
                _gate.Release();
                StartFlushes();
            }
        }
        catch when (taken == 0)
        {
            // Nothing of this send is held: the caller keeps the token (the contract: throw, never settle too).
            throw;
        }
        catch
        {
            // Cancelled (or disposed) after part of the send was taken: the held part will be settled, so the token is
            // ours now. Settle the rest as not processed, so the token is negatively acked once the held part is
            // settled, and return rather than throw (a destination that throws must not settle the token later).
            if (owner is AckGroup group)
            {
                group.MessagesSettled(messages.Count - taken, AckOutcome.Negative());
            }
        }
    }

    /// <summary>The pipeline's path: every envelope of a segment (one message, one token each) in one pass under the gate.</summary>
    /// <remarks>Throws only before taking anything (the caller keeps every token); once something was taken it settles
    /// the tokens it could not take itself (negative ack) and returns.</remarks>
    async ValueTask ISegmentDestination<T>.SendSegmentAsync(Envelope<T>[] items, int count, CancellationToken cancellationToken)
    {
        Volatile.Read(ref _fatal)?.Throw();
        ThrowIfClosed();
        long[]? sizes = null;
        var taken = 0;
        try
        {
            if (_estimate is not null)
            {
                sizes = ArrayPool<long>.Shared.Rent(count);
                for (var i = 0; i < count; i++)
                {
                    sizes[i] = _estimate(items[i].Message);
                }
            }

            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ThrowIfOpenClosed();
                while (taken < count)
                {
                    var room = TakeRoom(count - taken);
                    if (room == 0)
                    {
                        await WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
                        continue;
                    }

                    for (var end = taken + room; taken < end; taken++)
                    {
                        Add(items[taken].Message, items[taken].Ack, sizes is null ? 0 : sizes[taken]);
                    }
                }
            }
            finally
            {
                _gate.Release();
                StartFlushes();
            }
        }
        catch when (taken == 0)
        {
            throw;
        }
        catch
        {
            for (var i = taken; i < count; i++)
            {
                items[i].Ack.TryComplete(AckOutcome.Negative());
            }
        }
        finally
        {
            if (sizes is not null)
            {
                ArrayPool<long>.Shared.Return(sizes);
            }
        }
    }

    /// <summary>Batches handed to a flush slot whose tokens are not all settled yet (what a disposal or drain timeout would nack).</summary>
    internal int UnsettledBatchCount => _unsettledBatches.Count;

    /// <summary>
    /// The drain: flushes the partial batch, waits for every flush, completes the flusher and drains the dead-letter
    /// destination. If <paramref name="cancellationToken"/> fires first, cancels in-flight flushes and negatively acks
    /// every unsettled token, then returns.
    /// </summary>
    /// <param name="cancellationToken">The drain timeout.</param>
    /// <exception cref="BatchFlushException">A flush failed fatally (<see cref="BatchErrorHandler{T}.Raise"/>).</exception>
    /// <remarks>Idempotent: a second call waits for the first drain.</remarks>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        lock (_drainLock)
        {
            if (_drain is null)
            {
                if (Volatile.Read(ref _state) == StateDisposed)
                {
                    throw new ObjectDisposedException(GetType().Name);
                }

                Volatile.Write(ref _state, StateDraining);
                _drain = DrainAsync(cancellationToken);
            }
        }

        return new ValueTask(_drain);
    }

    /// <summary>
    /// The checkpoint: flushes the partial batch now, waits for every flush, then has the flusher commit what it holds
    /// past a flush (<see cref="IBatchFlusher{T}.CommitHeldAsync"/>) and the dead-letter destination commit too. The
    /// sink keeps running. Does nothing once draining or disposed.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting (the pipeline aborts); the tokens then stay to the drain or disposal.</param>
    /// <exception cref="BatchFlushException">A flush failed fatally (<see cref="BatchErrorHandler{T}.Raise"/>).</exception>
    /// <remarks>Meant for when no <see cref="SendAsync"/> is running (the pipeline calls it when its source is idle);
    /// messages sent meanwhile are flushed by it or by their batch's own triggers.</remarks>
    public async ValueTask CommitHeldAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _state) != StateOpen)
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_openCount > 0 && Volatile.Read(ref _state) == StateOpen)
            {
                CloseOpenBatch();
            }
        }
        finally
        {
            _gate.Release();
            StartFlushes();
        }

        await WaitForFlushesAsync(cancellationToken).ConfigureAwait(false);
        Volatile.Read(ref _fatal)?.Throw();
        await _flusher.CommitHeldAsync(cancellationToken).ConfigureAwait(false);
        if (_onError.DeadLetters is { } deadLetters)
        {
            await deadLetters.CommitHeldAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    // Waits until every closed batch has left its flush slot (flushed, failed for good or abandoned). One waiter is
    // shared by every caller (a checkpoint and the drain may wait at once).
    private async ValueTask WaitForFlushesAsync(CancellationToken cancellationToken)
    {
        Task done;
        lock (_flushLock)
        {
            if (_unflushedBatches == 0)
            {
                return;
            }

            done = (_flushedWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }

        await done.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops without draining: cancels in-flight flushes and negatively acks every unsettled token.
    /// Call <see cref="FlushAsync"/> first for a graceful stop.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _state, StateDisposed) == StateDisposed)
        {
            return;
        }

        await _abort.CancelAsync().ConfigureAwait(false);
        await NackOutstandingAsync().ConfigureAwait(false);
    }

    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        Exception? completeError = null;
        var timedOut = false;
        try
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (_openCount > 0)
                {
                    CloseOpenBatch();
                }

                _closed = true;
            }
            finally
            {
                _gate.Release();
                StartFlushes();
            }

            await WaitForFlushesAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await _flusher.CompleteAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                BatchingLog.CompleteFailed(_logger, _stage, ex);
                completeError = ex;
            }

            if (_onError.DeadLetters is { } deadLetters)
            {
                await deadLetters.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            timedOut = true;
            await _abort.CancelAsync().ConfigureAwait(false);
        }
        finally
        {
            var left = await NackOutstandingAsync().ConfigureAwait(false);
            if (timedOut)
            {
                BatchingLog.DrainTimedOut(_logger, _stage, left);
            }
            else if (left > 0 && !cancellationToken.IsCancellationRequested)
            {
                BatchingLog.UnsettledAfterDrain(_logger, _stage, left);
            }
        }

        Volatile.Read(ref _fatal)?.Throw();
        if (completeError is not null)
        {
            ExceptionDispatchInfo.Throw(completeError);
        }
    }

    /// <summary>Closes the sink for good and negatively acks every message not yet settled; returns how many tokens that settled.</summary>
    private async ValueTask<int> NackOutstandingAsync()
    {
        // Whoever holds the gate leaves promptly: a sender waiting for room is woken by _abort, and nothing else waits
        // under the gate. Tokens are settled outside it, since their callbacks are other people's code.
        await _gate.WaitAsync().ConfigureAwait(false);
        BatchSettlement? open = null;
        try
        {
            if (_openCount > 0)
            {
                open = _open.Close(null).Settlement;
                ResetOpenBatch();
            }

            _closed = true;
        }
        finally
        {
            _gate.Release();
        }

        // Closed batches first, so that a late flush or deferred handle finds its batch settled and cannot claim it.
        var count = 0;
        foreach (var batch in _unsettledBatches.Keys)
        {
            count += batch.ForceNack();
        }

        return count + (open?.ForceNack() ?? 0);
    }

    private void ThrowIfClosed()
    {
        switch (Volatile.Read(ref _state))
        {
            case StateDraining:
                throw new InvalidOperationException("The batching destination is draining (FlushAsync was called): it accepts no more messages.");
            case StateDisposed:
                throw new ObjectDisposedException(GetType().Name);
        }
    }

    // Under _gate: also refuses once the drain or disposal closed the buffer.
    private void ThrowIfOpenClosed()
    {
        ThrowIfClosed();
        if (_closed)
        {
            throw new InvalidOperationException("The batching destination no longer accepts messages.");
        }
    }

    // Under _gate: takes up to `wanted` messages of buffer room (only gate holders take, so the room read cannot shrink).
    private int TakeRoom(int wanted)
    {
        var room = Volatile.Read(ref _room);
        if (room <= 0)
        {
            return 0;
        }

        var take = (int)Math.Min(room, wanted);
        Interlocked.Add(ref _room, -take);
        return take;
    }

    // A batch left the buffer for a flush slot: its room goes to the waiting sender, if any.
    private void ReturnRoom(int count)
    {
        Interlocked.Add(ref _room, count);
        WakeRoomWaiter();
    }

    private void WakeRoomWaiter() => Interlocked.Exchange(ref _roomWaiter, null)?.TrySetResult();

    // Under _gate (so there is at most one waiter). A disposal or drain timeout ends the wait even if room came back.
    private async ValueTask WaitForRoomAsync(CancellationToken cancellationToken)
    {
        // Room comes back when a closed batch starts its flush. The batches this sender closed are started from the
        // pool, not here: a flush must not run under the gate.
        if (HasStartableFlush())
        {
            ThreadPool.UnsafeQueueUserWorkItem(static self => self.StartFlushes(), this, preferLocal: false);
        }

        while (true)
        {
            if (_abort.IsCancellationRequested)
            {
                ThrowIfClosed();
                _abort.Token.ThrowIfCancellationRequested();
            }

            if (Volatile.Read(ref _room) > 0)
            {
                return;
            }

            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Interlocked.Exchange(ref _roomWaiter, waiter);
            if (Volatile.Read(ref _room) > 0 || _abort.IsCancellationRequested)
            {
                Interlocked.CompareExchange(ref _roomWaiter, null, waiter);
                continue;
            }

            await waiter.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    // Under _gate, with room taken for it: appends one message to the open batch, closing batches as triggers fire.
    private void Add(in Message<T> message, object owner, long size)
    {
        if (_openCount > 0 && _maxBatchBytes is { } maxBytes && _openBytes + size > maxBytes)
        {
            CloseOpenBatch();
        }

        _open.Add(message, owner);
        OnAdded(size);
    }

    // Called under _gate after a message joined the open batch.
    private void OnAdded(long size)
    {
        _openCount++;
        _openBytes += size;
        if (_openCount >= _maxBatchSize)
        {
            CloseOpenBatch();
            return;
        }

        if (_maxBatchBytes is { } maxBytes && _openBytes >= maxBytes)
        {
            CloseOpenBatch();
            return;
        }

        if (_openCount == 1 && _maxBatchAge != Timeout.InfiniteTimeSpan)
        {
            var generation = _generation;
            _ageTimer = _time.CreateTimer(
                static state => { var (self, gen) = ((BatchingDestination<T>, long))state!; _ = self.OnBatchAgedAsync(gen); },
                (this, generation),
                _maxBatchAge,
                Timeout.InfiniteTimeSpan);
        }
    }

    // Called under _gate: queues the open batch for a flush slot. The caller starts it (StartFlushes) once out of the gate.
    private void CloseOpenBatch()
    {
        var (messages, settlement) = _open.Close(_onBatchSettled);
        _unsettledBatches.TryAdd(settlement, 0);
        var closed = new ClosedBatch(messages, _openBytes, settlement);
        ResetOpenBatch();
        lock (_flushLock)
        {
            _pending.Enqueue(closed);
            _unflushedBatches++;
        }
    }

    private void ResetOpenBatch()
    {
        _openCount = 0;
        _openBytes = 0;
        _generation++;
        _ageTimer?.Dispose();
        _ageTimer = null;
    }

    private async Task OnBatchAgedAsync(long generation)
    {
        try
        {
            await _gate.WaitAsync(_abort.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            // A stale timer (its batch already left by size or drain) does nothing.
            if (generation == _generation && _openCount > 0)
            {
                CloseOpenBatch();
            }
        }
        finally
        {
            _gate.Release();
            StartFlushes();
        }
    }

    private bool HasStartableFlush()
    {
        lock (_flushLock)
        {
            return _pending.Count > 0 && _flushing < _flushParallelism;
        }
    }

    /// <summary>
    /// Starts queued batches, in order, while flush slots are free. Called outside the gate by whoever closed a batch
    /// or freed a slot. Each flush runs on this thread until its flusher first awaits (unless it is sent to the pool,
    /// see <see cref="FlushExecution"/>), so a flusher that completes at once costs no thread hop and its batch's memory
    /// is released at once. Never throws.
    /// </summary>
    private void StartFlushes()
    {
        for (var started = 0; ; started++)
        {
            if (started == MostFlushesStartedInline)
            {
                // Enough of other senders' batches on this thread (a pipeline worker has messages of its own to read):
                // the pool starts the rest.
                if (HasStartableFlush())
                {
                    ThreadPool.UnsafeQueueUserWorkItem(static self => self.StartFlushes(), this, preferLocal: false);
                }

                return;
            }

            FlushJob job;
            lock (_flushLock)
            {
                if (_flushing >= _flushParallelism || !_pending.TryDequeue(out var closed))
                {
                    return;
                }

                _flushing++;
                job = new FlushJob(closed);
            }

            // The batch left the buffer for a flush slot: its room goes to waiting senders.
            ReturnRoom(job.Closed.Messages.Count);
            var flush = RunFlushAsync(job);
            if (!flush.IsCompleted)
            {
                // It went asynchronous: when it ends, the pool starts what queued up meanwhile (not the thread that
                // completed the flusher's I/O, which may be a client's reader loop).
                _ = flush.ContinueWith(
                    static (_, self) => ((BatchingDestination<T>)self!).StartFlushes(),
                    this,
                    CancellationToken.None,
                    TaskContinuationOptions.None,
                    TaskScheduler.Default);
            }
        }
    }

    // How many batches one call of StartFlushes starts before it hands the rest to the pool.
    private const int MostFlushesStartedInline = 4;

    // Frees the job's slot, once (a flush and its watchdog may both get here).
    private void ReleaseSlot(FlushJob job)
    {
        if (Interlocked.Exchange(ref job.SlotHeld, 0) == 0)
        {
            return;
        }

        TaskCompletionSource? flushed = null;
        lock (_flushLock)
        {
            _flushing--;
            if (--_unflushedBatches == 0)
            {
                flushed = _flushedWaiter;
                _flushedWaiter = null;
            }
        }

        flushed?.TrySetResult();
    }

    // One batch's flush, with its retries and error handling. Never throws.
    private async Task RunFlushAsync(FlushJob job)
    {
        try
        {
            await FlushBatchCoreAsync(job).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // A bug in this class or in a callback it runs: nothing of this batch may be acked any more, and the
            // pipeline must learn of it rather than hang.
            job.Closed.Settlement.ForceNack();
            Interlocked.CompareExchange(ref _fatal, ExceptionDispatchInfo.Capture(new BatchFlushException(_stage, job.Closed.Messages.Count, 0, false, ex)), null);
        }
        finally
        {
            ReleaseSlot(job);
        }
    }

    private async Task FlushBatchCoreAsync(FlushJob job)
    {
        var closed = job.Closed;
        var settlement = closed.Settlement;
        var count = closed.Messages.Count;
        if (_abort.IsCancellationRequested || Volatile.Read(ref _fatal) is not null)
        {
            // The sink is stopping (drain timeout, disposal or a fatal flush): do not write more.
            settlement.TrySettle(AckOutcome.Negative());
            return;
        }

        var batch = new Batch<T>(closed.Messages, closed.Bytes, settlement);
        job.Batch = batch;
        Telemetry.BatchSize.Record(count, _tags);
        job.Started = _time.GetTimestamp();
        Exception? error;
        var attempt = 0;
        while (true)
        {
            attempt++;
            batch.Attempt = attempt;
            (error, var abandoned) = await AttemptAsync(job, batch).ConfigureAwait(false);
            if (abandoned)
            {
                // The watchdog settled the batch and freed the slot; this late return changes nothing.
                return;
            }

            if (error is null)
            {
                break;
            }

            batch.RevokeDeferral();
            if (_abort.IsCancellationRequested)
            {
                RecordFlushDuration(job);
                settlement.TrySettle(AckOutcome.Negative());
                return;
            }

            // A flusher that settled its deferred acks before throwing has decided the batch: no retry.
            if (settlement.IsSettled || attempt > _maxRetries || !IsRetryable(error))
            {
                break;
            }

            var delay = RetryDelay(attempt);
            BatchingLog.FlushRetrying(_logger, _stage, count, attempt, delay, error);

            // The batch waits here, held by no flush: tell the sources it is still being worked on.
            settlement.InProgress();
            try
            {
                await Task.Delay(delay, _time, _abort.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                RecordFlushDuration(job);
                settlement.TrySettle(AckOutcome.Negative());
                return;
            }
        }

        RecordFlushDuration(job);
        if (error is null)
        {
            if (batch.Deferred is null)
            {
                settlement.TrySettle(AckOutcome.Acked);
            }

            return;
        }

        await OnFlushFailedAsync(batch, settlement, error, attempt, abandoned: false).ConfigureAwait(false);
    }

    private void RecordFlushDuration(FlushJob job) =>
        Telemetry.FlushDuration.Record(_time.GetElapsedTime(job.Started).TotalSeconds, _tags);

    private bool IsRetryable(Exception error)
    {
        try
        {
            return _isRetryable(error);
        }
        catch
        {
            return false;
        }
    }

    /// <summary>One flush attempt under the watchdog: its error (<see langword="null"/> when it succeeded), and whether the
    /// watchdog abandoned it, in which case the watchdog has settled the batch and freed its slot.</summary>
    /// <remarks>
    /// The watchdog is a timer, not a wait, so it also covers a flusher that blocks the thread it was started on: at
    /// <see cref="BatchingOptions{T}.FlushTimeout"/> the attempt's token fires; if the attempt is still running
    /// <see cref="BatchingOptions{T}.FlushCancellationGrace"/> later, <see cref="Abandon"/> settles the batch and frees
    /// the slot, whatever the flusher is doing. When the flusher returns after that, its result is ignored.
    /// </remarks>
    private async Task<(Exception? Error, bool Abandoned)> AttemptAsync(FlushJob job, Batch<T> batch)
    {
        var timeout = _flushTimeout == Timeout.InfiniteTimeSpan ? null : new CancellationTokenSource(_flushTimeout, _time);
        var linked = CancellationTokenSource.CreateLinkedTokenSource(_abort.Token, timeout?.Token ?? CancellationToken.None);
        var watch = new AttemptWatch(this, job);
        var watching = timeout is null
            ? default
            : timeout.Token.UnsafeRegister(static s => { var w = (AttemptWatch)s!; w.Owner.OnAttemptTimedOut(w); }, watch);
        if (watch.IsAbandoned)
        {
            // The watchdog fired before the flusher was even called (a tiny FlushTimeout without grace).
            return (null, true);
        }

        Exception? error = null;
        try
        {
            await StartFlusher(job, batch, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (timeout is { IsCancellationRequested: true } && !_abort.IsCancellationRequested)
        {
            error = new FlushTimeoutException($"Stage '{_stage}': a flush did not finish within {_flushTimeout}.", ex);
        }
        catch (Exception ex)
        {
            error = ex;
        }

        if (!watch.TryEnd())
        {
            // Abandoned: the flusher may still hold its token, so its sources are left to the garbage collector.
            return (error, true);
        }

        // Disposing the registration waits for a running OnAttemptTimedOut, so its grace timer is disposed too.
        watching.Dispose();
        watch.DisposeGraceTimer();
        linked.Dispose();
        timeout?.Dispose();
        return (error, false);
    }

    // Calls the flusher on this thread, or on the pool (FlushExecution.ThreadPool, or Auto once a flush held its thread).
    private ValueTask StartFlusher(FlushJob job, Batch<T> batch, CancellationToken token)
    {
        if (_alwaysOffload || _offload)
        {
            return new ValueTask(Task.Run(() => _flusher.FlushAsync(batch, token).AsTask(), CancellationToken.None));
        }

        // The flusher sees what it would see on the pool: no caller's synchronization context to post back to, and no
        // span of the sender's (a pipeline's per-segment send span ends before the flush does).
        var context = SynchronizationContext.Current;
        var activity = Activity.Current;
        if (context is not null)
        {
            SynchronizationContext.SetSynchronizationContext(null);
        }

        if (activity is not null)
        {
            Activity.Current = null;
        }

        var started = _time.GetTimestamp();
        job.OnStartingThread = true;
        ValueTask flush;
        try
        {
            flush = _flusher.FlushAsync(batch, token);
        }
        catch (Exception ex)
        {
            flush = ValueTask.FromException(ex);
        }
        finally
        {
            job.OnStartingThread = false;
            if (context is not null)
            {
                SynchronizationContext.SetSynchronizationContext(context);
            }

            if (activity is not null)
            {
                Activity.Current = activity;
            }
        }

        var held = _time.GetElapsedTime(started);
        if (held >= FlushExecutionLimits.MostHeld && !_offload)
        {
            _offload = true;
            LogQuietly(static (self, held) => BatchingLog.FlushesOffloaded(self._logger, self._stage, held), held);
        }

        return flush;
    }

    // The attempt's token fired at FlushTimeout: the grace period starts.
    private void OnAttemptTimedOut(AttemptWatch watch)
    {
        if (_grace <= TimeSpan.Zero)
        {
            Abandon(watch);
            return;
        }

        watch.SetGraceTimer(_time.CreateTimer(static s => { var w = (AttemptWatch)s!; w.Owner.Abandon(w); }, watch, _grace, Timeout.InfiniteTimeSpan));
    }

    // The watchdog, FlushCancellationGrace after the attempt's token fired: if the attempt is still running, its batch
    // goes back to the source (it may still be writing, so it is never retried) and its slot is freed. Runs on a timer
    // thread: nothing may escape it.
    private void Abandon(AttemptWatch watch)
    {
        if (!watch.TryAbandon())
        {
            return;
        }

        var job = watch.Job;
        var batch = job.Batch!;
        try
        {
            // First, so that a flusher still running cannot ack the batch through its handle from here on.
            batch.RevokeDeferralHandle();
            if (job.OnStartingThread && !_alwaysOffload && !_offload)
            {
                // It blocks the thread that started it (a sender, a pipeline worker): later flushes go to the pool.
                _offload = true;
                LogQuietly(static (self, held) => BatchingLog.FlushesOffloaded(self._logger, self._stage, held), _flushTimeout + _grace);
            }

            LogQuietly(static (self, count) => BatchingLog.FlushAbandoned(self._logger, self._stage, count, self._flushTimeout, self._grace), batch.Messages.Count);
            var error = new FlushTimeoutException($"Stage '{_stage}': a flush ignored its cancellation for {_grace} after its {_flushTimeout} timeout and was abandoned.");
            var failed = OnFlushFailedAsync(batch, job.Closed.Settlement, error, batch.Attempt, abandoned: true); // at once, for an abandoned flush
            if (!failed.IsCompletedSuccessfully)
            {
                throw failed.Exception?.InnerException ?? error;
            }

            RecordFlushDuration(job);
        }
        catch (Exception ex)
        {
            // Only a bug of ours, or a throwing logger or meter listener: nothing of this batch may be acked, and the
            // pipeline must learn of it.
            job.Closed.Settlement.ForceNack();
            Interlocked.CompareExchange(ref _fatal, ExceptionDispatchInfo.Capture(new BatchFlushException(_stage, batch.Messages.Count, batch.Attempt, true, ex)), null);
        }
        finally
        {
            ReleaseSlot(job);

            // Not on this timer thread: the next flush must not wait for the rest of this timer's callbacks (among them
            // the abandoned flusher's own cancellation, with no grace period).
            ThreadPool.UnsafeQueueUserWorkItem(static self => self.StartFlushes(), this, preferLocal: false);
        }
    }

    // Logging must not turn a flush's outcome into an error: a logger provider that throws is ignored here.
    private void LogQuietly<TState>(Action<BatchingDestination<T>, TState> log, TState state)
    {
        try
        {
            log(this, state);
        }
        catch
        {
            // Nothing better to do with a logger that cannot log.
        }
    }

    private TimeSpan RetryDelay(int attempt)
    {
        var exponent = Math.Min(attempt - 1, 30);
        var ticks = Math.Min(_retryMaxDelay.Ticks, _retryBaseDelay.Ticks * (double)(1L << exponent));
        if (_retryJitter)
        {
            ticks *= 0.5 + (Random.Shared.NextDouble() * 0.5);
        }

        return TimeSpan.FromTicks((long)ticks);
    }

    // Called when the sink is given to a pipeline (before the pipeline runs): its telemetry then carries the pipeline's
    // name, unless BatchingOptions.PipelineName set one or an earlier pipeline did.
    void IPipelineMember.JoinPipeline(string pipeline)
    {
        if (_pipelineTagged)
        {
            return;
        }

        _tags = new TagList { { Telemetry.StageTag, _stage }, { Telemetry.PipelineTag, pipeline } };
        _pipelineTagged = true;
    }

    /// <summary>A message waits in its batch up to <see cref="BatchingOptions{T}.MaxBatchAge"/> (when finite), or in a
    /// batch dead-letter destination as long as that one holds. A flusher that defers acks holds longer: its owner says
    /// so (the Parquet sink).</summary>
    TimeSpan IPipelineMember.LongestHold => PipelineMember.Max(
        _maxBatchAge == Timeout.InfiniteTimeSpan ? TimeSpan.Zero : _maxBatchAge,
        PipelineMember.LongestHold(_onError.DeadLetters));

    private async Task OnFlushFailedAsync(Batch<T> batch, BatchSettlement settlement, Exception error, int attempts, bool abandoned)
    {
        var count = batch.Messages.Count;
        var action = _onError.Action;
        var failedTags = _tags;
        failedTags.Add(Telemetry.OutcomeTag, abandoned ? "abandoned" : ActionTag(action));
        Telemetry.Failed.Add(count, failedTags);
        if (!abandoned)
        {
            BatchingLog.FlushFailed(_logger, _stage, count, attempts, action, error);
        }

        if (abandoned || action == BatchErrorAction.Raise)
        {
            // An abandoned flush may still be writing, so its batch can only go back to the source.
            settlement.TrySettle(AckOutcome.Negative(action == BatchErrorAction.NegativeAck ? _onError.NackDelay : TimeSpan.Zero));
            if (action == BatchErrorAction.Raise)
            {
                Interlocked.CompareExchange(ref _fatal, ExceptionDispatchInfo.Capture(new BatchFlushException(_stage, count, attempts, abandoned, error) { CountedAsFailed = true }), null);
            }

            return;
        }

        switch (action)
        {
            case BatchErrorAction.DiscardAndAck:
                if (settlement.TrySettle(AckOutcome.Acked))
                {
                    BatchingLog.BatchDiscarded(_logger, _stage, count);
                }

                break;
            case BatchErrorAction.NegativeAck:
                settlement.TrySettle(AckOutcome.Negative(_onError.NackDelay));
                break;
            case BatchErrorAction.DeadLetter:
                await DeadLetterAsync(batch, settlement, error, attempts).ConfigureAwait(false);
                break;
        }
    }

    private async Task DeadLetterAsync(Batch<T> batch, BatchSettlement settlement, Exception error, int attempts)
    {
        if (!settlement.TryClaim())
        {
            return;
        }

        var deadLetters = _onError.DeadLetters!;
        var failedAt = _time.GetUtcNow();
        var errorType = error.GetType().FullName ?? error.GetType().Name;
        for (var i = 0; i < batch.Messages.Count; i++)
        {
            var index = i;
            var token = AckToken.Create(outcome =>
            {
                if (outcome.Kind == AckKind.Ack)
                {
                    Telemetry.DeadLettered.Add(1, _tags);
                    settlement.SettleMessage(index, AckOutcome.Acked);
                }
                else
                {
                    // The dead letter is not durable: the original must come back, never be acked.
                    settlement.SettleMessage(index, AckOutcome.Negative(outcome.Kind == AckKind.Nack ? outcome.Delay : TimeSpan.Zero));
                }
            },
            () => settlement.MessageInProgress(index)); // the dead-letter destination holds it: keep the original alive

            try
            {
                var letter = new DeadLetter<T>(batch.Messages[i], _stage, errorType, error.Message, attempts, failedAt);
                await deadLetters.SendAsync(token, new Message<DeadLetter<T>>(letter, batch.Messages[i].Key, batch.Messages[i].Topic, batch.Messages[i].Attributes), _abort.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // A dead-letter destination that throws does not settle its token: nack this original and the rest.
                BatchingLog.DeadLetterFailed(_logger, _stage, batch.Messages.Count - i, ex);
                token.TryComplete(AckOutcome.Negative());
                for (var j = i + 1; j < batch.Messages.Count; j++)
                {
                    settlement.SettleMessage(j, AckOutcome.Negative());
                }

                return;
            }
        }
    }

    private static string ActionTag(BatchErrorAction action) => action switch
    {
        BatchErrorAction.Raise => "raise",
        BatchErrorAction.DiscardAndAck => "discard",
        BatchErrorAction.NegativeAck => "nack",
        BatchErrorAction.DeadLetter => "dead_letter",
        _ => "unknown",
    };

    /// <summary>A batch on its way to a flush slot.</summary>
    private readonly record struct ClosedBatch(IReadOnlyList<Message<T>> Messages, long Bytes, BatchSettlement Settlement);

    /// <summary>One batch in a flush slot.</summary>
    private sealed class FlushJob(ClosedBatch closed)
    {
        public ClosedBatch Closed { get; } = closed;

        public Batch<T>? Batch { get; set; }

        public long Started { get; set; }

        /// <summary>1 while the job holds its flush slot (the flush and its watchdog may both free it).</summary>
        public int SlotHeld = 1;

        /// <summary>Whether the flusher is running on the thread that started it, before its first await.</summary>
        public volatile bool OnStartingThread;
    }

    /// <summary>One attempt of a job, as its watchdog sees it: a callback of an earlier attempt finds it ended.</summary>
    private sealed class AttemptWatch(BatchingDestination<T> owner, FlushJob job)
    {
        private const int Running = 0;
        private const int Ended = 1;
        private const int Abandoned = 2;

        private int _state;
        private ITimer? _graceTimer;

        public BatchingDestination<T> Owner { get; } = owner;

        public FlushJob Job { get; } = job;

        public bool TryEnd() => Interlocked.CompareExchange(ref _state, Ended, Running) == Running;

        public bool TryAbandon() => Interlocked.CompareExchange(ref _state, Abandoned, Running) == Running;

        public bool IsAbandoned => Volatile.Read(ref _state) == Abandoned;

        public void SetGraceTimer(ITimer timer) => Volatile.Write(ref _graceTimer, timer);

        public void DisposeGraceTimer() => Interlocked.Exchange(ref _graceTimer, null)?.Dispose();
    }
}
