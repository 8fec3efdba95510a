using System.Diagnostics;
using System.Threading.Tasks.Dataflow;

namespace Kawa.Dataflow;

/// <summary>
/// The destination stage: an <see cref="ActionBlock{TInput}"/> over segments calling
/// <see cref="IDestination{T}.SendAsync"/> once per token (or, for a destination of ours that takes segments, once per
/// segment). The destination acks; the stage only negatively acks, when the send threw or the run is aborting.
/// </summary>
internal sealed class DestinationStage<T>
{
    private readonly PipelineRun _run;
    private readonly IDestination<T> _destination;
    private readonly ISegmentDestination<T>? _segments;
    private readonly ActionBlock<Segment<T>>? _block;
    private readonly KeyValuePair<string, object?>[] _tags;

    /// <param name="run">The run.</param>
    /// <param name="destination">The destination.</param>
    /// <param name="options">Its options.</param>
    /// <param name="runInline">Run to completion: no block; the stage in front calls <see cref="Input"/> on its own
    /// thread (the builder checked that the destination takes that many calls at once).</param>
    public DestinationStage(PipelineRun run, IDestination<T> destination, DestinationOptions options, bool runInline = false)
    {
        _run = run;
        _destination = destination;
        _segments = destination as ISegmentDestination<T>;
        _tags = run.StageTags(PipelineStage.Destination);
        if (runInline)
        {
            Input = StageInput<T>.RunInline(segment => new ValueTask(ProcessAsync(segment)), options.MaxDegreeOfParallelism);
            Completion = Task.CompletedTask;
        }
        else
        {
            _block = new ActionBlock<Segment<T>>(ProcessAsync, new ExecutionDataflowBlockOptions
            {
                MaxDegreeOfParallelism = options.MaxDegreeOfParallelism,
                BoundedCapacity = options.BoundedCapacity + options.MaxDegreeOfParallelism,
            });
            Input = new StageInput<T>(_block, options.MaxDegreeOfParallelism);
            Completion = _block.Completion;
        }

        run.AddFlush(PipelineStage.Destination, destination, destination.FlushAsync, destination.CommitHeldAsync);
    }

    public StageInput<T> Input { get; }

    /// <summary>Completes when the block has sent everything (staged); at once when run inline.</summary>
    public Task Completion { get; }

    private Task ProcessAsync(Segment<T> input)
    {
        if (Telemetry.ActivitySource.HasListeners())
        {
            return ProcessSlowAsync(input, 0, default, started: false);
        }

        if (_segments is not null)
        {
            return SendSegment(input);
        }

        for (var i = 0; i < input.Count; i++)
        {
            var envelope = input.Items[i];
            if (_run.IsAborting)
            {
                envelope.Ack.TryComplete(AckOutcome.Negative());
                continue;
            }

            var pending = Send(envelope);
            if (!pending.IsCompleted)
            {
                return ProcessSlowAsync(input, i, pending, started: true);
            }

            try
            {
                pending.GetAwaiter().GetResult();
            }
            catch (Exception ex)
            {
                Failed(envelope, ex);
            }
        }

        _run.Passed(input.Count, 0);
        Segment<T>.Return(input.Items);
        return Task.CompletedTask;
    }

    private async Task ProcessSlowAsync(Segment<T> input, int index, ValueTask pending, bool started)
    {
        for (var i = index; i < input.Count; i++)
        {
            var envelope = input.Items[i];
            var resume = started && i == index;
            if (_run.IsAborting && !resume)
            {
                envelope.Ack.TryComplete(AckOutcome.Negative());
                continue;
            }

            using var activity = Telemetry.ActivitySource.HasListeners() ? Telemetry.ActivitySource.StartActivity("kawa.send", ActivityKind.Producer) : null;
            activity?.SetTag(Telemetry.PipelineTag, _run.Name);
            activity?.SetTag(Telemetry.StageTag, PipelineStage.Destination);
            try
            {
                if (resume)
                {
                    await pending.ConfigureAwait(false);
                }
                else
                {
                    await Send(envelope).ConfigureAwait(false);
                }
            }
            catch (Exception ex)
            {
                activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
                Failed(envelope, ex);
            }
        }

        _run.Passed(input.Count, 0);
        Segment<T>.Return(input.Items);
    }

    private Task SendSegment(Segment<T> input)
    {
        if (_run.IsAborting)
        {
            _run.Passed(input.Count, 0);
            input.NackRemainingAndReturn(0);
            return Task.CompletedTask;
        }

        ValueTask pending;
        try
        {
            pending = _segments!.SendSegmentAsync(input.Items, input.Count, _run.AbortToken);
        }
        catch (Exception ex)
        {
            pending = ValueTask.FromException(ex);
        }

        if (!pending.IsCompletedSuccessfully)
        {
            return AwaitSegmentAsync(input, pending);
        }

        pending.GetAwaiter().GetResult();
        _run.Passed(input.Count, 0);
        Segment<T>.Return(input.Items);
        return Task.CompletedTask;
    }

    private async Task AwaitSegmentAsync(Segment<T> input, ValueTask pending)
    {
        try
        {
            await pending.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Nothing of the segment was taken: as if the send of its first envelope threw (the run stops) and the rest
            // were nacked by the abort.
            Failed(input.Items[0], ex);
            _run.Passed(input.Count, 0);
            input.NackRemainingAndReturn(1);
            return;
        }

        _run.Passed(input.Count, 0);
        Segment<T>.Return(input.Items);
    }

    private ValueTask Send(in Envelope<T> envelope)
    {
        try
        {
            return _destination.SendAsync(envelope.Ack, new Messages<T>(envelope.Message), _run.AbortToken);
        }
        catch (Exception ex)
        {
            return ValueTask.FromException(ex);
        }
    }

    /// <summary>A send threw: the token is negatively acked; unless the run was told to stop, the run fails.</summary>
    private void Failed(in Envelope<T> envelope, Exception exception)
    {
        if (!(exception is OperationCanceledException && _run.IsAborting))
        {
            Telemetry.CountFailure(exception, _tags);
            _run.ReportFatal(PipelineStage.Destination, exception);
        }

        envelope.Ack.TryComplete(AckOutcome.Negative());
    }
}
