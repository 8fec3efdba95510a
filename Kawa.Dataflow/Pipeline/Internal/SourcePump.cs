using System.Diagnostics;
using System.Threading.Tasks.Dataflow;

namespace Kawa.Dataflow;

/// <summary>What starts a run: the loop (or loops) that read the source.</summary>
internal interface ISourcePump
{
    /// <summary>Reads until end of stream, stop or failure, and sees everything read into the first stage. Never throws.</summary>
    Task RunAsync();
}

/// <summary>
/// Reads the source, never concurrently. It reads only while the run's in-flight limits allow, batches deliveries into
/// segments, and hands a segment on whenever it is full, the source has nothing ready, or the limits are reached, so
/// nothing waits in the pump while the pump waits. When the source says <see cref="Delivery{T}.Idle"/>, it has the
/// destinations commit what they hold (<see cref="PipelineRun.CommitHeldAsync"/>).
/// </summary>
/// <remarks>
/// Two ways to hand a segment on. Staged: one loop reads and posts each segment to the first stage's block, which
/// runs on other threads. Run to completion (<see cref="StageInput{T}.Inline"/>): as many workers as the stages'
/// parallelism take turns at the source under one gate; the worker that read a segment leaves the gate and carries the
/// segment through every stage to the destination itself, so a message is received, handled and sent on one thread.
/// Both ways read through <see cref="NextSegmentAsync"/>, so the rules for reading are the same.
/// </remarks>
internal sealed class SourcePump<T>(PipelineRun run, ISource<T> source, Func<Message<T>, long> payloadSize, StageInput<T> target) : ISourcePump
{
    private readonly int _segmentSize = run.Options.SegmentSize;
    private Envelope<T>[]? _items;
    private int _count;
    private long _bytes;

    // What the reader must do before reading on, kept between calls of NextSegmentAsync.
    private int _room;
    private long _bytesRoom;
    private bool _waitForRoom;
    private bool _commitHeld;
    private bool _haveStashed;
    private ValueTask<Delivery<T>> _stashed;
    private Activity? _stashedActivity;
    private bool _done;

    // Run to completion: the rest of a segment split for the workers, each part already counted in flight.
    private readonly Queue<Segment<T>> _shares = new();

    public Task RunAsync() => target.Inline is null ? RunStagedAsync() : RunToCompletionAsync();

    private async Task RunStagedAsync()
    {
        try
        {
            while (true)
            {
                var (segment, done) = await NextSegmentAsync().ConfigureAwait(false);
                if (segment.Count > 0)
                {
                    try
                    {
                        await HandOnAsync(segment).ConfigureAwait(false);
                    }
                    catch (Exception ex)
                    {
                        // Only a bug of ours gets here: stop the run rather than let it hang or return early. Which
                        // parts the block took is unknown, so nothing is settled here; the run logs what is left.
                        run.ReportFatal(PipelineStage.Source, ex);
                    }
                }

                if (done)
                {
                    return;
                }
            }
        }
        finally
        {
            target.Block!.Complete();
        }
    }

    private async Task RunToCompletionAsync()
    {
        using var gate = new SemaphoreSlim(1, 1);
        var workers = new Task[Math.Max(1, target.Parallelism)];
        for (var i = 0; i < workers.Length; i++)
        {
            workers[i] = Task.Run(() => WorkAsync(gate));
        }

        await Task.WhenAll(workers).ConfigureAwait(false);
    }

    /// <summary>
    /// One worker: under the gate, take a share of what was read (or read more), then carry it through the stages
    /// outside the gate.
    /// </summary>
    private async Task WorkAsync(SemaphoreSlim gate)
    {
        var process = target.Inline!;
        while (true)
        {
            Segment<T> segment;
            bool done;
            await gate.WaitAsync().ConfigureAwait(false);
            try
            {
                (segment, done) = await NextShareAsync().ConfigureAwait(false);
            }
            finally
            {
                gate.Release();
            }

            if (segment.Count > 0)
            {
                try
                {
                    await process(segment).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    // The stages settle or hand on every envelope themselves; only a bug of ours gets here.
                    run.ReportFatal(PipelineStage.Source, ex);
                }
            }

            if (done)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Run to completion: the next share of the last segment split, else reads a segment. A full segment with more
    /// messages ready behind it (<see cref="NextIsReady"/>) is the reading worker's own: the other workers read theirs in
    /// their turn, and each spends most of its time outside the gate. Any other (the source ran dry, or the limits were
    /// reached) is split into as many shares as there are workers, so that a few messages ready at a time still keep
    /// every worker busy rather than queueing behind one. <c>Done</c> only once every share is taken.
    /// </summary>
    /// <remarks>
    /// Splitting every segment instead makes the workers march in step: they finish their halves together, and one
    /// waits at the gate while the other reads, every round.
    /// </remarks>
    private async ValueTask<(Segment<T> Segment, bool Done)> NextShareAsync()
    {
        if (_shares.TryDequeue(out var share))
        {
            return (share, false);
        }

        var (segment, done) = await NextSegmentAsync().ConfigureAwait(false);
        if (segment.Count <= 1 || target.Parallelism <= 1 || (segment.Count == _segmentSize && !done && NextIsReady()))
        {
            return (segment, done);
        }

        var parts = new List<Segment<T>>(target.Parallelism);
        segment.SplitInto(target.Parallelism, parts);
        for (var i = 1; i < parts.Count; i++)
        {
            _shares.Enqueue(parts[i]);
        }

        return (parts[0], done && _shares.Count == 0);
    }

    /// <summary>
    /// Reads until there is a segment to hand on or reading is over. The segment returned (possibly empty) counts as in
    /// flight from now on; <c>Done</c> says the source must not be read again. Never throws.
    /// </summary>
    private async ValueTask<(Segment<T> Segment, bool Done)> NextSegmentAsync()
    {
        if (!_done)
        {
            try
            {
                await ReadAsync().ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Only a bug of ours gets here; surface it rather than hang.
                _done = true;
                run.ReportFatal(PipelineStage.Source, ex);
            }
        }

        return (TakeHeld(), _done);
    }

    /// <summary>
    /// Run to completion, under the gate, after a full segment: starts the next receive now and keeps it for the next
    /// read. <see langword="true"/> when it brought a message at once: the next worker has a segment of its own to read,
    /// so this one stays whole. Otherwise (nothing ready, end of stream, idle, no room, stopping, or tracing, whose
    /// receive spans this would skip) the segment is shared out, so that a burst of exactly a segment still keeps every
    /// worker busy.
    /// </summary>
    private bool NextIsReady()
    {
        if (_haveStashed || _commitHeld || _waitForRoom || run.StopToken.IsCancellationRequested || Telemetry.ActivitySource.HasListeners())
        {
            return false;
        }

        if (_room <= 0 || _bytesRoom <= 0)
        {
            _room = run.Room(_count, _bytes, out _bytesRoom);
            if (_room <= 0)
            {
                return false;
            }
        }

        ValueTask<Delivery<T>> pending;
        try
        {
            pending = source.ReceiveAsync(run.StopToken);
        }
        catch (Exception ex)
        {
            pending = ValueTask.FromException<Delivery<T>>(ex);
        }

        var ready = false;
        if (pending.IsCompletedSuccessfully)
        {
            // Taken once here; the stash gets a task of its own (see TakeReady).
            var delivery = pending.Result;
            ready = delivery.Ack is not null;
            pending = new ValueTask<Delivery<T>>(delivery);
        }

        _stashed = pending;
        _stashedActivity = null;
        _haveStashed = true;
        return ready;
    }

    /// <summary>Reads until the held segment should be handed on (it may be empty) or <see cref="_done"/> is set.</summary>
    private async ValueTask ReadAsync()
    {
        var stop = run.StopToken;
        while (true)
        {
            if (_haveStashed)
            {
                // A receive that was not ready when the last segment was handed on.
                _haveStashed = false;
                var activity = _stashedActivity;
                _stashedActivity = null;
                if (!await CompleteReceiveAsync(_stashed, activity).ConfigureAwait(false) || _count == _segmentSize)
                {
                    return;
                }

                continue;
            }

            if (_commitHeld)
            {
                // The source was idle: everything read has been handed on; wait for it and have the destinations commit.
                _commitHeld = false;
                if (!await run.CommitHeldAsync().ConfigureAwait(false))
                {
                    _done = true;
                    return;
                }

                _room = 0; // commits settled messages: look at the counters again
                continue;
            }

            if (_waitForRoom)
            {
                _waitForRoom = false;
                if (!await run.WaitForRoomAsync().ConfigureAwait(false))
                {
                    _done = true;
                    return;
                }

                continue;
            }

            if (stop.IsCancellationRequested)
            {
                _done = true;
                return;
            }

            if (_room <= 0 || _bytesRoom <= 0)
            {
                _room = run.Room(_count, _bytes, out _bytesRoom);
                if (_room <= 0)
                {
                    // Hand on what is held first: what frees room may be waiting for it.
                    _waitForRoom = true;
                    return;
                }
            }

            ValueTask<Delivery<T>> ready = default;
            var haveReady = false;
            if (!Telemetry.ActivitySource.HasListeners())
            {
                switch (TakeReady(stop, out ready))
                {
                    case ReadyResult.SegmentFull:
                        return;
                    case ReadyResult.OutOfRoom:
                        continue;
                    case ReadyResult.Stopped:
                        _done = true;
                        return;
                    default:
                        haveReady = true;
                        break;
                }
            }

            // The span ends in CompleteReceiveAsync (maybe in a later call): put back the current activity here, or the
            // next receive span would become its child.
            var outer = Activity.Current;
            var receiveActivity = Telemetry.ActivitySource.HasListeners() ? Telemetry.ActivitySource.StartActivity("kawa.receive", ActivityKind.Consumer) : null;
            receiveActivity?.SetTag(Telemetry.PipelineTag, run.Name);
            receiveActivity?.SetTag(Telemetry.StageTag, PipelineStage.Source);
            ValueTask<Delivery<T>> pending;
            if (haveReady)
            {
                pending = ready;
            }
            else
            {
                try
                {
                    pending = source.ReceiveAsync(stop);
                }
                catch (Exception ex)
                {
                    pending = ValueTask.FromException<Delivery<T>>(ex);
                }
            }

            if (!pending.IsCompleted && _count > 0)
            {
                // The source has nothing ready: do not keep what we hold waiting for it.
                _stashed = pending;
                _stashedActivity = receiveActivity;
                _haveStashed = true;
                RestoreCurrent(receiveActivity, outer);
                return;
            }

            bool more;
            try
            {
                more = await CompleteReceiveAsync(pending, receiveActivity).ConfigureAwait(false);
            }
            finally
            {
                RestoreCurrent(receiveActivity, outer);
            }

            if (!more || _count == _segmentSize)
            {
                return;
            }
        }
    }

    private static void RestoreCurrent(Activity? started, Activity? outer)
    {
        if (started is not null)
        {
            Activity.Current = outer;
        }
    }

    /// <summary>
    /// Waits for a receive and takes its delivery. <see langword="false"/>: hand on what is held now (the source is idle,
    /// or reading is over and <see cref="_done"/> is set).
    /// </summary>
    private async ValueTask<bool> CompleteReceiveAsync(ValueTask<Delivery<T>> pending, Activity? activity)
    {
        Delivery<T> delivery;
        try
        {
            delivery = await pending.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (run.StopToken.IsCancellationRequested)
        {
            _done = true;
            return false;
        }
        catch (Exception ex)
        {
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            run.ReportFatal(PipelineStage.Source, ex);
            _done = true;
            return false;
        }
        finally
        {
            activity?.Dispose();
        }

        if (delivery.IsEndOfStream)
        {
            _done = true;
            return false;
        }

        if (delivery.IsIdle)
        {
            _commitHeld = true;
            return false;
        }

        if (!Accept(delivery))
        {
            _done = true;
            return false;
        }

        return true;
    }

    /// <summary>
    /// Takes the messages the source has ready (its receive completed synchronously) in a tight loop, without an await
    /// or a state-machine round trip each, while there is room and the segment is not full. Anything else (a receive
    /// still pending, failed, or not a message) is handed back in <paramref name="next"/> for the main loop to handle.
    /// </summary>
    private ReadyResult TakeReady(CancellationToken stop, out ValueTask<Delivery<T>> next)
    {
        // Locals, not the out parameter, inside the loop: every write through a by-ref of a struct holding references
        // costs a write-barrier call, and this runs once per message.
        while (_room > 0 && _bytesRoom > 0)
        {
            if (stop.IsCancellationRequested)
            {
                next = default;
                return ReadyResult.Stopped;
            }

            ValueTask<Delivery<T>> pending;
            try
            {
                pending = source.ReceiveAsync(stop);
            }
            catch (Exception ex)
            {
                pending = ValueTask.FromException<Delivery<T>>(ex);
            }

            if (!pending.IsCompletedSuccessfully)
            {
                next = pending;
                return ReadyResult.HandedBack;
            }

            var delivery = pending.Result;
            var ack = delivery.Ack;
            if (ack is null)
            {
                // End of stream or idle. A new task, not `pending`: its result was taken, and a task backed by a
                // pooled IValueTaskSource may be read only once.
                next = new ValueTask<Delivery<T>>(delivery);
                return ReadyResult.HandedBack;
            }

            if (!Accept(delivery.Message, ack))
            {
                next = default;
                return ReadyResult.Stopped;
            }

            if (_count == _segmentSize)
            {
                next = default;
                return ReadyResult.SegmentFull;
            }
        }

        next = default;
        return ReadyResult.OutOfRoom;
    }

    /// <summary>Takes one delivered message into the held segment; false (after reporting the fatal error) if it cannot.</summary>
    private bool Accept(in Delivery<T> delivery) => Accept(delivery.Message, delivery.Ack);

    /// <summary>Takes one delivered message into the held segment; false (after reporting the fatal error) if it cannot.</summary>
    private bool Accept(in Message<T> message, AckToken ack)
    {
        long size;
        try
        {
            size = Math.Max(0, payloadSize(message));
        }
        catch (Exception ex)
        {
            ack.TryComplete(AckOutcome.Negative());
            run.ReportFatal(PipelineStage.Source, ex);
            return false;
        }

        if (!ack.TryObserve(run, size))
        {
            // A token already in flight here: it belongs to an earlier delivery, so leave it alone.
            run.ReportFatal(PipelineStage.Source, new InvalidOperationException(AckToken.AlreadyObservedMessage));
            return false;
        }

        (_items ??= Segment<T>.Rent(_segmentSize))[_count++] = new Envelope<T>(message, ack);
        _bytes += size;
        _room--;
        _bytesRoom -= size;
        return true;
    }

    private enum ReadyResult
    {
        HandedBack,
        SegmentFull,
        OutOfRoom,
        Stopped,
    }

    /// <summary>Takes the held segment (possibly empty); from then on its messages count as in flight.</summary>
    private Segment<T> TakeHeld()
    {
        if (_count == 0)
        {
            return default;
        }

        var segment = new Segment<T>(_items!, _count);
        run.AddInFlight(_count, _bytes);
        _items = null;
        _count = 0;
        _bytes = 0;
        return segment;
    }

    /// <summary>Staged: posts a segment to the first block, split to match its parallelism.</summary>
    private async ValueTask HandOnAsync(Segment<T> segment)
    {
        if (target.Parallelism <= 1 || segment.Count == 1)
        {
            await SendAsync(segment).ConfigureAwait(false);
            return;
        }

        var parts = new List<Segment<T>>(target.Parallelism);
        segment.SplitInto(target.Parallelism, parts);
        foreach (var part in parts)
        {
            await SendAsync(part).ConfigureAwait(false);
        }
    }

    private async ValueTask SendAsync(Segment<T> segment)
    {
        var block = target.Block!;
        if (block.Post(segment))
        {
            return;
        }

        run.PumpWaitingForCapacity?.Invoke();
        bool accepted;
        try
        {
            // Waiting here is the backpressure: the first stage is full. Only an abort may give up,
            // and then the segment is negatively acked, never dropped.
            accepted = await block.SendAsync(segment, run.AbortToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            accepted = false;
        }

        if (!accepted)
        {
            run.Passed(segment.Count, 0);
            segment.NackRemainingAndReturn(0);
        }
    }
}
