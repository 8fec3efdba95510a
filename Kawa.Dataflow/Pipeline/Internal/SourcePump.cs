using System.Diagnostics;
using System.Threading.Tasks.Dataflow;

namespace Kawa.Dataflow;

/// <summary>What starts a run: the loop that reads the source.</summary>
internal interface ISourcePump
{
    /// <summary>Reads until end of stream, stop or failure, then completes the first block. Never throws.</summary>
    Task RunAsync();
}

/// <summary>
/// The one loop that calls <see cref="ISource{T}.ReceiveAsync"/>, never concurrently. It reads only while the run's
/// in-flight limits allow, batches deliveries into segments, and hands a segment on whenever it is full, the source has
/// nothing ready, or the limits are reached, so nothing waits in the pump while the pump waits. When the source says
/// <see cref="Delivery{T}.Idle"/>, it has the destinations commit what they hold (<see cref="OnIdleAsync"/>).
/// </summary>
internal sealed class SourcePump<T>(PipelineRun run, ISource<T> source, Func<Message<T>, long> payloadSize, StageInput<T> target) : ISourcePump
{
    private readonly int _segmentSize = run.Options.SegmentSize;
    private Envelope<T>[]? _items;
    private int _count;
    private long _bytes;

    public async Task RunAsync()
    {
        try
        {
            await PumpAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Only a bug of ours gets here; surface it rather than hang.
            run.ReportFatal(PipelineStage.Source, ex);
        }
        finally
        {
            try
            {
                await HandOnAsync().ConfigureAwait(false);
            }
            finally
            {
                target.Block.Complete();
            }
        }
    }

    private async Task PumpAsync()
    {
        var stop = run.StopToken;
        var room = 0;
        var bytesRoom = 0L;
        while (!stop.IsCancellationRequested)
        {
            if (room <= 0 || bytesRoom <= 0)
            {
                room = run.Room(_count, _bytes, out bytesRoom);
                if (room <= 0)
                {
                    await HandOnAsync().ConfigureAwait(false);
                    if (!await run.WaitForRoomAsync().ConfigureAwait(false))
                    {
                        return;
                    }

                    continue;
                }
            }

            ValueTask<Delivery<T>> ready = default;
            var haveReady = false;
            if (!Telemetry.ActivitySource.HasListeners())
            {
                switch (TakeReady(stop, ref room, ref bytesRoom, out ready))
                {
                    case ReadyResult.SegmentFull:
                        await HandOnAsync().ConfigureAwait(false);
                        continue;
                    case ReadyResult.OutOfRoom:
                        continue;
                    case ReadyResult.Stopped:
                        return;
                    default:
                        haveReady = true;
                        break;
                }
            }

            Delivery<T> delivery;
            var activity = Telemetry.ActivitySource.HasListeners() ? Telemetry.ActivitySource.StartActivity("kawa.receive", ActivityKind.Consumer) : null;
            try
            {
                activity?.SetTag(Telemetry.PipelineTag, run.Name);
                activity?.SetTag(Telemetry.StageTag, PipelineStage.Source);
                var pending = haveReady ? ready : source.ReceiveAsync(stop);
                if (!pending.IsCompleted && _count > 0)
                {
                    // The source has nothing ready: do not keep what we hold waiting for it.
                    await HandOnAsync().ConfigureAwait(false);
                }

                delivery = await pending.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
                run.ReportFatal(PipelineStage.Source, ex);
                return;
            }
            finally
            {
                activity?.Dispose();
            }

            if (delivery.IsEndOfStream)
            {
                return;
            }

            if (delivery.IsIdle)
            {
                if (!await OnIdleAsync().ConfigureAwait(false))
                {
                    return;
                }

                room = 0; // commits settled messages: look at the counters again
                continue;
            }

            if (!Accept(delivery, ref room, ref bytesRoom))
            {
                return;
            }

            if (_count == _segmentSize)
            {
                await HandOnAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The source is idle, waiting for outcomes: hand on what is held, wait until everything read has been settled or
    /// reached a destination, and have the destinations commit what they hold. <see langword="false"/>: stop reading.
    /// </summary>
    private async ValueTask<bool> OnIdleAsync()
    {
        await HandOnAsync().ConfigureAwait(false);
        return await run.CommitHeldAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Takes the messages the source has ready (its receive completed synchronously) in a tight loop, without an await
    /// or a state-machine round trip each, while there is room and the segment is not full. Anything else (a receive
    /// still pending, failed, or not a message) is handed back in <paramref name="next"/> for the main loop to handle.
    /// </summary>
    private ReadyResult TakeReady(CancellationToken stop, ref int room, ref long bytesRoom, out ValueTask<Delivery<T>> next)
    {
        next = default;
        while (room > 0 && bytesRoom > 0)
        {
            if (stop.IsCancellationRequested)
            {
                return ReadyResult.Stopped;
            }

            try
            {
                next = source.ReceiveAsync(stop);
            }
            catch (Exception ex)
            {
                next = ValueTask.FromException<Delivery<T>>(ex);
            }

            if (!next.IsCompletedSuccessfully)
            {
                return ReadyResult.HandedBack;
            }

            var delivery = next.Result;
            if (delivery.IsEndOfStream || delivery.IsIdle)
            {
                next = new ValueTask<Delivery<T>>(delivery);
                return ReadyResult.HandedBack;
            }

            if (!Accept(delivery, ref room, ref bytesRoom))
            {
                return ReadyResult.Stopped;
            }

            if (_count == _segmentSize)
            {
                return ReadyResult.SegmentFull;
            }
        }

        return ReadyResult.OutOfRoom;
    }

    /// <summary>Takes one delivered message into the held segment; false (after reporting the fatal error) if it cannot.</summary>
    private bool Accept(in Delivery<T> delivery, ref int room, ref long bytesRoom)
    {
        long size;
        try
        {
            size = Math.Max(0, payloadSize(delivery.Message));
        }
        catch (Exception ex)
        {
            delivery.Ack.TryComplete(AckOutcome.Negative());
            run.ReportFatal(PipelineStage.Source, ex);
            return false;
        }

        try
        {
            delivery.Ack.Observe(run, size);
        }
        catch (InvalidOperationException ex)
        {
            // A token already in flight here: it belongs to an earlier delivery, so leave it alone.
            run.ReportFatal(PipelineStage.Source, ex);
            return false;
        }

        (_items ??= Segment<T>.Rent(_segmentSize))[_count++] = new Envelope<T>(delivery.Message, delivery.Ack);
        _bytes += size;
        room--;
        bytesRoom -= size;
        return true;
    }

    private enum ReadyResult
    {
        HandedBack,
        SegmentFull,
        OutOfRoom,
        Stopped,
    }

    /// <summary>Passes the held segment to the first block; from then on it counts as in flight.</summary>
    private async ValueTask HandOnAsync()
    {
        if (_count == 0)
        {
            return;
        }

        var segment = new Segment<T>(_items!, _count);
        run.AddInFlight(_count, _bytes);
        _items = null;
        _count = 0;
        _bytes = 0;

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
        if (target.Block.Post(segment))
        {
            return;
        }

        run.PumpWaitingForCapacity?.Invoke();
        bool accepted;
        try
        {
            // Waiting here is the backpressure: the first stage is full. Only an abort may give up,
            // and then the segment is negatively acked, never dropped.
            accepted = await target.Block.SendAsync(segment, run.AbortToken).ConfigureAwait(false);
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
