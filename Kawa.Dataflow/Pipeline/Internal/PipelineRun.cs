using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow;

/// <summary>
/// The state of one run: stop and abort signals, the first fatal error, the in-flight accounting every source token
/// reports to, and the flushes to call at the end.
/// </summary>
/// <remarks>
/// Two signals: <see cref="StopToken"/> stops reading the source (graceful drain); <see cref="AbortToken"/> (drain
/// timeout or fatal error) puts every stage into abort mode, where each envelope it still gets is negatively acked
/// rather than processed, and cancels handlers, sends and flushes. Blocks are never cancelled or faulted, so no
/// buffered envelope is ever dropped without an outcome.
/// </remarks>
internal sealed class PipelineRun : IAckObserver, IDisposable
{
    private readonly CancellationTokenSource _stopCts = new();
    private readonly CancellationTokenSource _abortCts = new();
    private readonly TaskCompletionSource _aborted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<(string Stage, object Destination, Func<CancellationToken, ValueTask> Flush, Func<CancellationToken, ValueTask> CommitHeld)> _flushes = [];
    private readonly int _maxInFlight;
    private readonly long _maxInFlightBytes;

    private long _inFlight;
    private long _inFlightBytes;
    private TaskCompletionSource? _roomWaiter;
    private TaskCompletionSource? _settledWaiter;
    private long _unsent;
    private TaskCompletionSource? _unsentWaiter;
    private StageFailure? _failure;
    private ITimer? _drainTimer;
    private int _draining;
    private int _drainTimedOut;
    private int _finished;

    public PipelineRun(string name, PipelineOptions options)
    {
        Name = name;
        Options = options;
        Logger = options.LoggerFactory.CreateLogger("Kawa.Dataflow.Pipeline");
        PipelineTags = [new(Telemetry.PipelineTag, name)];
        SourceTags = StageTags(PipelineStage.Source);
        _maxInFlight = options.MaxInFlightMessages;
        _maxInFlightBytes = options.MaxInFlightBytes;
        _abortCts.Token.UnsafeRegister(static s => ((PipelineRun)s!)._aborted.TrySetResult(), this);
    }

    public string Name { get; }

    public PipelineOptions Options { get; }

    public ILogger Logger { get; }

    public KeyValuePair<string, object?>[] PipelineTags { get; }

    public KeyValuePair<string, object?>[] SourceTags { get; }

    /// <summary>Fires when the source must no longer be read.</summary>
    public CancellationToken StopToken => _stopCts.Token;

    /// <summary>Fires when the run stops without draining: the drain timed out or a stage failed fatally.</summary>
    public CancellationToken AbortToken => _abortCts.Token;

    public bool IsAborting => _abortCts.IsCancellationRequested;

    public StageFailure? Failure => Volatile.Read(ref _failure);

    public bool DrainTimedOut => Volatile.Read(ref _drainTimedOut) != 0;

    public long InFlight => Volatile.Read(ref _inFlight);

    public long InFlightBytes => Volatile.Read(ref _inFlightBytes);

    /// <summary>Test hook: told each time the pump starts waiting for in-flight room (after it handed on everything it held).</summary>
    public Action? PumpWaitingForRoom { get; set; }

    /// <summary>Test hook: called when the end of the run starts waiting for outcomes still owed (see <see cref="WaitForSettledAsync"/>).</summary>
    public Action? WaitingForStragglers { get; set; }

    /// <summary>Test hook: told each time the pump waits because the first stage is full (backpressure from the blocks;
    /// never when the stages run to completion, which have no blocks).</summary>
    public Action? PumpWaitingForCapacity { get; set; }

    public KeyValuePair<string, object?>[] StageTags(string stage) => [new(Telemetry.PipelineTag, Name), new(Telemetry.StageTag, stage)];

    /// <summary>Registers a flush to call when the stages are done, and a commit to call when the source is idle; one
    /// per destination instance.</summary>
    public void AddFlush(string stage, object destination, Func<CancellationToken, ValueTask> flush, Func<CancellationToken, ValueTask> commitHeld)
    {
        foreach (var existing in _flushes)
        {
            if (ReferenceEquals(existing.Destination, destination))
            {
                return;
            }
        }

        _flushes.Add((stage, destination, flush, commitHeld));
    }

    /// <summary>The caller's token fired: stop reading and start the drain clock.</summary>
    public void BeginDrain()
    {
        if (Interlocked.Exchange(ref _draining, 1) != 0 || Volatile.Read(ref _finished) != 0)
        {
            return;
        }

        Log.Draining(Logger, Name, Options.DrainTimeout);
        CancelQuietly(_stopCts);
        if (Options.DrainTimeout != Timeout.InfiniteTimeSpan)
        {
            _drainTimer = Options.TimeProvider.CreateTimer(static s => ((PipelineRun)s!).OnDrainTimeout(), this, Options.DrainTimeout, Timeout.InfiniteTimeSpan);
        }
    }

    private void OnDrainTimeout()
    {
        if (Volatile.Read(ref _finished) != 0 || IsAborting)
        {
            return;
        }

        Volatile.Write(ref _drainTimedOut, 1);
        Log.DrainTimedOut(Logger, Name, Options.DrainTimeout);
        Abort();
    }

    /// <summary>
    /// Whoever runs the pipeline can wait no longer (a host at its shutdown timeout): the drain ends now, as it would at
    /// <see cref="PipelineOptions.DrainTimeout"/>, so what did not finish is negatively acked rather than abandoned.
    /// </summary>
    public void EndDrainNow()
    {
        Volatile.Write(ref _drainEndedByCaller, 1);
        BeginDrain();
        OnDrainTimeout();
    }

    /// <summary>The drain was ended by <see cref="EndDrainNow"/> (the host's deadline), not by DrainTimeout.</summary>
    public bool DrainEndedByCaller => Volatile.Read(ref _drainEndedByCaller) != 0;

    private int _drainEndedByCaller;

    /// <summary>Records a fatal error (the first one wins) and aborts the run.</summary>
    public void ReportFatal(string stage, Exception exception)
    {
        if (Interlocked.CompareExchange(ref _failure, new StageFailure(stage, exception), null) is null)
        {
            Log.StageFailed(Logger, Name, stage, exception);
        }

        Abort();
    }

    public void Abort()
    {
        CancelQuietly(_stopCts);
        CancelQuietly(_abortCts);
    }

    private static void CancelQuietly(CancellationTokenSource cts)
    {
        try
        {
            cts.Cancel();
        }
        catch (AggregateException)
        {
            // A callback someone registered on our token threw; cancellation itself happened.
        }
        catch (ObjectDisposedException)
        {
        }
    }

    // ---- In-flight accounting -------------------------------------------------------------------------------

    /// <summary>
    /// How many more messages (and bytes) the pump may read, given what it already holds, from one snapshot of the
    /// counters. Settling only ever adds room, so the pump can spend this budget without re-reading the counters the
    /// acking threads write (which would bounce their cache line between cores at every message).
    /// </summary>
    public int Room(int held, long heldBytes, out long bytesRoom)
    {
        bytesRoom = _maxInFlightBytes - Volatile.Read(ref _inFlightBytes) - heldBytes;
        var room = _maxInFlight - Volatile.Read(ref _inFlight) - held;
        return bytesRoom <= 0 || room <= 0 ? 0 : (int)Math.Min(room, int.MaxValue);
    }

    /// <summary>Whether the pump may read one more message, given what it already holds.</summary>
    public bool HasRoom(int held, long heldBytes)
        => Volatile.Read(ref _inFlight) + held < _maxInFlight && Volatile.Read(ref _inFlightBytes) + heldBytes < _maxInFlightBytes;

    /// <summary>The pump hands a segment on: from now on its messages count as in flight.</summary>
    public void AddInFlight(int count, long bytes)
    {
        Interlocked.Add(ref _inFlight, count);
        Interlocked.Add(ref _unsent, count);
        Interlocked.Add(ref _inFlightBytes, bytes);
        if (Telemetry.Received.Enabled)
        {
            Telemetry.Received.Add(count, SourceTags);
        }

        if (Telemetry.InFlight.Enabled)
        {
            Telemetry.InFlight.Add(count, PipelineTags);
        }

        if (Telemetry.InFlightBytes.Enabled)
        {
            Telemetry.InFlightBytes.Add(bytes, PipelineTags);
        }
    }

    /// <summary>
    /// Waits until there is room to read again. Returns <see langword="false"/> when the source must not be read any
    /// more (stop, abort, or a failed commit, which is reported as fatal).
    /// </summary>
    /// <remarks>
    /// When the limit is reached and every message read so far has reached a destination (none is still in a handler
    /// stage or on its way), nothing but the destinations can free room. A sink that acks only when it commits (a
    /// Parquet file, a batch larger than the in-flight window, many open partitions) would then hold the whole window
    /// and wait for messages the pump will never read: so the destinations are asked, once per wait, to commit what
    /// they hold, as when the source is idle. Their acks then make the room this waits for.
    /// </remarks>
    public async ValueTask<bool> WaitForRoomAsync()
    {
        var committed = false;
        try
        {
            while (!HasRoom(0, 0))
            {
                var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                Interlocked.Exchange(ref _roomWaiter, waiter);
                TaskCompletionSource? unsentWaiter = null;
                if (!committed)
                {
                    unsentWaiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    Interlocked.Exchange(ref _unsentWaiter, unsentWaiter);
                }

                if (HasRoom(0, 0))
                {
                    Interlocked.CompareExchange(ref _roomWaiter, null, waiter);
                    break;
                }

                if (!committed && Volatile.Read(ref _unsent) <= 0)
                {
                    committed = true;
                    Interlocked.CompareExchange(ref _roomWaiter, null, waiter);
                    Log.CommittingHeldAtLimit(Logger, Name, InFlight);
                    if (!await CommitDestinationsAsync().ConfigureAwait(false))
                    {
                        return false;
                    }

                    continue;
                }

                PumpWaitingForRoom?.Invoke();
                var wake = unsentWaiter is null ? waiter.Task : Task.WhenAny(waiter.Task, unsentWaiter.Task);
                await wake.WaitAsync(StopToken).ConfigureAwait(false);
            }

            return true;
        }
        catch (OperationCanceledException) when (StopToken.IsCancellationRequested)
        {
            return false;
        }
        finally
        {
            Interlocked.Exchange(ref _unsentWaiter, null);
        }
    }

    void IAckObserver.OnCompleted(AckKind kind, int count, long bytes)
    {
        var left = Interlocked.Add(ref _inFlight, -count);
        var leftBytes = bytes == 0 ? Volatile.Read(ref _inFlightBytes) : Interlocked.Add(ref _inFlightBytes, -bytes);

        var counter = kind switch
        {
            AckKind.Ack => Telemetry.Acked,
            AckKind.Nack => Telemetry.NegativeAcked,
            _ => Telemetry.Terminated,
        };
        if (counter.Enabled)
        {
            counter.Add(count, PipelineTags);
        }

        if (Telemetry.InFlight.Enabled)
        {
            Telemetry.InFlight.Add(-count, PipelineTags);
        }

        if (bytes != 0 && Telemetry.InFlightBytes.Enabled)
        {
            Telemetry.InFlightBytes.Add(-bytes, PipelineTags);
        }

        var roomWaiter = Volatile.Read(ref _roomWaiter);
        // Wake the pump at the first free slot: waiting for more could wait forever if the rest are held until more arrive.
        if (roomWaiter is not null && left < _maxInFlight && leftBytes < _maxInFlightBytes
            && Interlocked.CompareExchange(ref _roomWaiter, null, roomWaiter) == roomWaiter)
        {
            roomWaiter.TrySetResult();
        }

        if (left == 0)
        {
            Volatile.Read(ref _settledWaiter)?.TrySetResult();
        }
    }

    // ---- Idle source: commit what the destinations hold --------------------------------------------------------

    /// <summary>
    /// Envelopes that left the pump and have neither been settled by a stage nor passed to a destination's send: a
    /// stage reports each segment it finished with <paramref name="consumed"/> envelopes in and
    /// <paramref name="produced"/> handed on (the destination stage hands on none).
    /// </summary>
    /// <remarks>Outputs are added in the same step as their inputs are removed, so the count only reaches zero when
    /// nothing is left between the pump and the destination.</remarks>
    public void Passed(int consumed, int produced)
    {
        // One in, one out (the common handler) changes nothing: no shared write on that path.
        if (produced != consumed && Interlocked.Add(ref _unsent, produced - consumed) == 0)
        {
            Volatile.Read(ref _unsentWaiter)?.TrySetResult();
        }
    }

    /// <summary>
    /// The source said it is idle: waits until every envelope read so far was settled or passed to a destination, then
    /// asks every destination (and dead-letter destination) to commit what it holds. Returns <see langword="false"/>
    /// when the source must not be read any more (stop or abort); a failing commit is fatal.
    /// </summary>
    public async ValueTask<bool> CommitHeldAsync()
    {
        while (Volatile.Read(ref _unsent) > 0)
        {
            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Interlocked.Exchange(ref _unsentWaiter, waiter);
            if (Volatile.Read(ref _unsent) <= 0)
            {
                break;
            }

            try
            {
                await waiter.Task.WaitAsync(StopToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (StopToken.IsCancellationRequested)
            {
                return false;
            }
        }

        Interlocked.Exchange(ref _unsentWaiter, null);
        Log.CommittingHeld(Logger, Name, InFlight);
        return await CommitDestinationsAsync().ConfigureAwait(false);
    }

    /// <summary>Asks every destination (and dead-letter destination) to commit what it holds; a failing commit is fatal.</summary>
    private async ValueTask<bool> CommitDestinationsAsync()
    {
        foreach (var (stage, _, _, commitHeld) in _flushes)
        {
            try
            {
                await commitHeld(AbortToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (IsAborting)
            {
                return false;
            }
            catch (Exception ex)
            {
                Telemetry.CountFailure(ex, StageTags(stage));
                ReportFatal(stage, ex);
                return false;
            }
        }

        return !StopToken.IsCancellationRequested;
    }

    // ---- End of run ------------------------------------------------------------------------------------------

    /// <summary>Calls every registered flush once, with the abort token (it fires at the drain timeout).</summary>
    public async Task FlushAllAsync()
    {
        foreach (var (stage, _, flush, _) in _flushes)
        {
            try
            {
                await flush(AbortToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (IsAborting)
            {
                // Told to stop: what it did not settle is reported by WaitForSettledAsync.
            }
            catch (Exception ex)
            {
                Telemetry.CountFailure(ex, StageTags(stage));
                ReportFatal(stage, ex);
            }
        }
    }

    /// <summary>
    /// How long the end of the run waits for outcomes still owed once every stage finished and every destination's
    /// flush returned (or the run aborted): an outcome another thread is still delivering (a flush that finished as the
    /// sink was told to stop is still running its tokens' callbacks), or a token a destination kept against its
    /// contract. Real time on purpose: it bounds a wait for other people's code, and must end even under a fake
    /// <see cref="TimeProvider"/>. The pipeline's test hook may shorten it.
    /// </summary>
    public TimeSpan StragglerGrace { get; init; } = DefaultStragglerGrace;

    public static readonly TimeSpan DefaultStragglerGrace = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Waits until every source token read has its final outcome. By now every stage has finished (or negatively acked
    /// what it held, after an abort) and every destination's flush has returned, so the outcomes still owed are either
    /// being delivered on another thread, which is waited for up to <see cref="StragglerGrace"/>, or held by a
    /// destination that broke its contract: those are logged, and the source redelivers them after its ack timeout.
    /// </summary>
    public async Task WaitForSettledAsync()
    {
        if (Volatile.Read(ref _inFlight) > 0)
        {
            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Interlocked.Exchange(ref _settledWaiter, waiter);
            if (Volatile.Read(ref _inFlight) > 0)
            {
                WaitingForStragglers?.Invoke();
                await waiter.Task.WaitAsync(StragglerGrace).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        var left = Volatile.Read(ref _inFlight);
        if (left > 0)
        {
            Log.LeftUnsettled(Logger, Name, left);
        }
    }

    public void Dispose()
    {
        Volatile.Write(ref _finished, 1);
        _drainTimer?.Dispose();

        // The token sources stay undisposed on purpose: a destination may still look at a token it was given
        // (for example its flush token from a background timer) after the run returned.
    }
}

/// <summary>A fatal failure and where it happened.</summary>
internal sealed record StageFailure(string Stage, Exception Exception);

/// <summary>Stage names used in telemetry tags and errors.</summary>
internal static class PipelineStage
{
    public const string Source = "source";
    public const string Destination = "destination";

    public static string Handler(string name) => "handler:" + name;
}
