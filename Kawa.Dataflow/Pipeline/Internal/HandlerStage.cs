using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Dataflow;

namespace Kawa.Dataflow;

/// <summary>
/// One handler stage: a <see cref="TransformManyBlock{TInput, TOutput}"/> over segments (or, key-ordered, a dispatcher
/// feeding one sequential block per lane), calling the handler one message at a time and settling or passing on each
/// message's token.
/// </summary>
/// <remarks>
/// Token rules: zero outputs, the stage acks the input; one output travels on with the input's own token; several
/// outputs each get a child token and the input is settled once all of them are (see <see cref="FanOutGroup"/>).
/// A failure goes to the error policy. In abort mode every envelope not yet handled is negatively acked.
/// </remarks>
internal sealed class HandlerStage<TIn, TOut>
{
    private readonly PipelineRun _run;
    private readonly IHandler<TIn, TOut> _handler;
    private readonly ErrorPolicy _policy;
    private readonly ErrorPolicy _poisonPolicy;
    private readonly string _stage;
    private readonly int _segmentSize;
    private readonly int _downstreamParallelism;
    private readonly KeyValuePair<string, object?>[] _tags;
    private readonly Action _onDeadLettered;
    private readonly TransformManyBlock<Segment<TIn>, Segment<TOut>>[]? _lanes;

    // Handler.Map's delegate, called directly: one output per input, nothing to unwrap.
    private readonly Func<Message<TIn>, Message<TOut>>? _map;
    private int _nextUnkeyedLane;

    public HandlerStage(PipelineRun run, string name, IHandler<TIn, TOut> handler, StageOptions options, StageInput<TOut> target)
    {
        _run = run;
        _handler = handler;
        _map = (handler as Handler.MapHandler<TIn, TOut>)?.Map;
        _policy = options.ErrorPolicy;
        _poisonPolicy = options.PoisonPolicy;
        _stage = PipelineStage.Handler(name);
        _segmentSize = run.Options.SegmentSize;
        _downstreamParallelism = target.Inline is null ? target.Parallelism : 1;
        _tags = run.StageTags(_stage);
        _onDeadLettered = () =>
        {
            if (Telemetry.DeadLettered.Enabled)
            {
                Telemetry.DeadLettered.Add(1, _tags);
            }
        };
        RegisterDeadLetterFlushes(_policy);
        if (_poisonPolicy is DeadLetterErrorPolicy { Destination: var poisonDestination } && !ReferenceEquals(poisonDestination, DeadLetterDestinationOf(_policy)))
        {
            RegisterDeadLetterFlushes(_poisonPolicy);
        }

        if (target.Inline is { } next)
        {
            // Run to completion: the pump's workers call this stage, then the next, on their own threads.
            Input = StageInput<TIn>.RunInline(input => ProcessInlineAsync(input, next), options.MaxDegreeOfParallelism);
            return;
        }

        if (!options.KeyOrdered || options.MaxDegreeOfParallelism == 1)
        {
            var block = new TransformManyBlock<Segment<TIn>, Segment<TOut>>(ProcessAsync, new ExecutionDataflowBlockOptions
            {
                MaxDegreeOfParallelism = options.MaxDegreeOfParallelism,
                BoundedCapacity = options.BoundedCapacity + options.MaxDegreeOfParallelism,
                EnsureOrdered = options.KeyOrdered || options.EnsureOrdered,
            });
            block.LinkTo(target.Block!, new DataflowLinkOptions { PropagateCompletion = true });
            Input = new StageInput<TIn>(block, options.MaxDegreeOfParallelism);
            return;
        }

        // Key-ordered: a key always maps to the same sequential lane, so its messages run one at a time in arrival
        // order while other lanes run in parallel.
        _lanes = new TransformManyBlock<Segment<TIn>, Segment<TOut>>[options.MaxDegreeOfParallelism];
        for (var i = 0; i < _lanes.Length; i++)
        {
            _lanes[i] = new TransformManyBlock<Segment<TIn>, Segment<TOut>>(ProcessAsync, new ExecutionDataflowBlockOptions
            {
                MaxDegreeOfParallelism = 1,
                BoundedCapacity = options.BoundedCapacity + 1,
            });
            _lanes[i].LinkTo(target.Block!);
        }

        var dispatcher = new ActionBlock<Segment<TIn>>(DispatchAsync, new ExecutionDataflowBlockOptions { BoundedCapacity = options.BoundedCapacity });
        var lanes = _lanes;
        dispatcher.Completion.ContinueWith(
            _ =>
            {
                foreach (var lane in lanes)
                {
                    lane.Complete();
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        Task.WhenAll(lanes.Select(l => l.Completion)).ContinueWith(
            _ => target.Block!.Complete(),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        Input = new StageInput<TIn>(dispatcher, 1);
    }

    public StageInput<TIn> Input { get; }

    /// <summary>Run to completion: handles a segment, then carries each output segment on through the next stage.</summary>
    private async ValueTask ProcessInlineAsync(Segment<TIn> input, Func<Segment<TOut>, ValueTask> next)
    {
        var outputs = await ProcessAsync(input).ConfigureAwait(false);
        List<Segment<TOut>>? left = null;
        foreach (var output in outputs)
        {
            if (left is not null)
            {
                left.Add(output);
                continue;
            }

            try
            {
                await next(output).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // A bug further on (stages settle their own failures): stop the run, and give the output segments not
                // yet passed on their outcome instead of leaving them counted as on their way.
                _run.ReportFatal(_stage, ex);
                left = [];
            }
        }

        foreach (var segment in left ?? [])
        {
            _run.Passed(segment.Count, 0);
            segment.NackRemainingAndReturn(0);
        }
    }

    private static object? DeadLetterDestinationOf(ErrorPolicy policy)
    {
        while (policy is RetryErrorPolicy retry)
        {
            policy = retry.Fallback;
        }

        return (policy as DeadLetterErrorPolicy)?.Destination;
    }

    private void RegisterDeadLetterFlushes(ErrorPolicy policy)
    {
        while (policy is RetryErrorPolicy retry)
        {
            policy = retry.Fallback;
        }

        if (policy is DeadLetterErrorPolicy deadLetter && deadLetter.Destination is IDestination<DeadLetter<TIn>> destination)
        {
            _run.AddFlush(_stage, destination, destination.FlushAsync, destination.CommitHeldAsync);
        }
    }

    private async Task DispatchAsync(Segment<TIn> input)
    {
        var lanes = _lanes!;
        var parts = new Envelope<TIn>[]?[lanes.Length];
        var counts = new int[lanes.Length];
        try
        {
            for (var i = 0; i < input.Count; i++)
            {
                var envelope = input.Items[i];
                var key = envelope.Message.Key;
                var lane = key is null
                    ? _nextUnkeyedLane++ % lanes.Length
                    : (int)((uint)StringComparer.Ordinal.GetHashCode(key) % (uint)lanes.Length);
                (parts[lane] ??= Segment<TIn>.Rent(input.Count))[counts[lane]++] = envelope;
            }

            Segment<TIn>.Return(input.Items);
        }
        catch (Exception ex)
        {
            _run.ReportFatal(_stage, ex);
            _run.Passed(input.Count, 0);
            input.NackRemainingAndReturn(0);
            return;
        }

        for (var lane = 0; lane < lanes.Length; lane++)
        {
            if (counts[lane] == 0)
            {
                continue;
            }

            var part = new Segment<TIn>(parts[lane]!, counts[lane]);
            if (lanes[lane].Post(part))
            {
                continue;
            }

            bool accepted;
            try
            {
                accepted = await lanes[lane].SendAsync(part, _run.AbortToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                accepted = false;
            }

            if (!accepted)
            {
                _run.Passed(part.Count, 0);
                part.NackRemainingAndReturn(0);
            }
        }
    }

    private Task<IEnumerable<Segment<TOut>>> ProcessAsync(Segment<TIn> input)
    {
        var writer = new SegmentWriter<TOut>(_segmentSize, _downstreamParallelism);
        if (typeof(TIn) == typeof(TOut))
        {
            writer.WriteInPlace(Unsafe.As<Envelope<TOut>[]>(input.Items));
        }

        if (Telemetry.ActivitySource.HasListeners())
        {
            return ProcessSlowAsync(input, 0, default, started: false, writer, 0);
        }

        if (_map is { } map)
        {
            return ProcessMapped(input, map, writer);
        }

        var handled = 0;
        var i = 0;
        try
        {
            for (; i < input.Count; i++)
            {
                var envelope = input.Items[i];
                if (_run.IsAborting)
                {
                    envelope.Ack.Complete(AckOutcome.Negative());
                    continue;
                }

                var pending = Invoke(envelope.Message);
                if (!pending.IsCompletedSuccessfully)
                {
                    return ProcessSlowAsync(input, i, pending, started: true, writer, handled);
                }

                Emit(envelope, i, pending.Result, ref writer);
                handled++;
            }
        }
        catch (Exception ex)
        {
            return Task.FromResult(Fail(input, i, ex, writer, handled));
        }

        return Task.FromResult(Finish(input, writer, handled));
    }

    /// <summary><see cref="ProcessAsync"/> for <see cref="Handler.Map{TIn, TOut}"/>: the same rules, the delegate called directly.</summary>
    private Task<IEnumerable<Segment<TOut>>> ProcessMapped(Segment<TIn> input, Func<Message<TIn>, Message<TOut>> map, SegmentWriter<TOut> writer)
    {
        var items = input.Items;
        var count = input.Count;
        var i = 0;
        try
        {
            for (; i < count; i++)
            {
                if (_run.IsAborting)
                {
                    return ProcessSlowAsync(input, i, default, started: false, writer, i);
                }

                Message<TOut> output;
                try
                {
                    output = map(items[i].Message);
                }
                catch (Exception ex)
                {
                    // The error policy runs on the general path, from this message on.
                    return ProcessSlowAsync(input, i, ValueTask.FromException<Messages<TOut>>(ex), started: true, writer, i);
                }

                writer.Add(output, items[i].Ack, i);
            }
        }
        catch (Exception ex)
        {
            return Task.FromResult(Fail(input, i, ex, writer, i));
        }

        return Task.FromResult(Finish(input, writer, count));
    }

    private async Task<IEnumerable<Segment<TOut>>> ProcessSlowAsync(Segment<TIn> input, int index, ValueTask<Messages<TOut>> pending, bool started, SegmentWriter<TOut> writer, int handled)
    {
        var i = index;
        try
        {
            for (; i < input.Count; i++)
            {
                var envelope = input.Items[i];
                if (_run.IsAborting && !(started && i == index))
                {
                    envelope.Ack.Complete(AckOutcome.Negative());
                    continue;
                }

                var (emit, outputs) = await HandleOneAsync(envelope, pending, started && i == index).ConfigureAwait(false);
                handled++;
                if (emit)
                {
                    Emit(envelope, i, outputs, ref writer);
                }
            }
        }
        catch (Exception ex)
        {
            return Fail(input, i, ex, writer, handled);
        }

        return Finish(input, writer, handled);
    }

    private async ValueTask<(bool Emit, Messages<TOut> Outputs)> HandleOneAsync(Envelope<TIn> envelope, ValueTask<Messages<TOut>> pending, bool started)
    {
        using var activity = Telemetry.ActivitySource.HasListeners() ? Telemetry.ActivitySource.StartActivity("kawa.handle") : null;
        activity?.SetTag(Telemetry.PipelineTag, _run.Name);
        activity?.SetTag(Telemetry.StageTag, _stage);
        Exception failure;
        try
        {
            var outputs = started
                ? await pending.ConfigureAwait(false)
                : await Invoke(envelope.Message).ConfigureAwait(false);
            return (true, outputs);
        }
        catch (Exception ex)
        {
            failure = ex;
        }

        activity?.SetStatus(ActivityStatusCode.Error, failure.Message);
        return await RecoverAsync(envelope, failure).ConfigureAwait(false);
    }

    private ValueTask<Messages<TOut>> Invoke(Message<TIn> message)
    {
        try
        {
            return _handler.HandleAsync(message, _run.AbortToken);
        }
        catch (Exception ex)
        {
            return ValueTask.FromException<Messages<TOut>>(ex);
        }
    }

    /// <summary>Applies the error policy: either the handler eventually succeeded (emit) or the token was settled here.</summary>
    private async ValueTask<(bool Emit, Messages<TOut> Outputs)> RecoverAsync(Envelope<TIn> envelope, Exception failure)
    {
        var policy = _policy;
        var retries = 0;
        var attempts = 1;
        while (true)
        {
            if (failure is OperationCanceledException && _run.IsAborting)
            {
                // Told to stop, not a failure: the message comes back.
                envelope.Ack.Complete(AckOutcome.Negative());
                return default;
            }

            if (Telemetry.Failed.Enabled)
            {
                Telemetry.Failed.Add(1, _tags);
            }

            while (policy is RetryErrorPolicy exhausted && retries >= exhausted.MaxRetries)
            {
                policy = exhausted.Fallback;
                retries = 0;
            }

            if (policy is not RetryErrorPolicy retry)
            {
                if (policy.Kind == ErrorPolicyKind.NegativeAck && envelope.Message.Attributes.GetOrDefault(MessageAttributeKeys.LastDelivery))
                {
                    // A nack would not bring it back: settle it for good, visibly, instead of losing it.
                    Log.Poisoned(_run.Logger, _run.Name, _stage, _poisonPolicy.ToString()!, envelope.Message.Key, failure);
                    await SettleAsync(envelope, _poisonPolicy, failure, attempts, poison: true).ConfigureAwait(false);
                    return default;
                }

                await SettleAsync(envelope, policy, failure, attempts).ConfigureAwait(false);
                return default;
            }

            retries++;
            var delay = retry.BackOff(retries, Random.Shared.NextDouble());
            Log.Retrying(_run.Logger, _run.Name, _stage, delay, retries, retry.MaxRetries, failure);

            // Held here for the back-off: tell the source (through any fan-out parents) the message is still being worked on.
            envelope.Ack.InProgress();
            try
            {
                await Task.Delay(delay, _run.Options.TimeProvider, _run.AbortToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                envelope.Ack.Complete(AckOutcome.Negative());
                return default;
            }

            attempts++;
            try
            {
                return (true, await Invoke(envelope.Message).ConfigureAwait(false));
            }
            catch (Exception ex)
            {
                failure = ex;
            }
        }
    }

    private async ValueTask SettleAsync(Envelope<TIn> envelope, ErrorPolicy policy, Exception failure, int attempts, bool poison = false)
    {
        switch (policy.Kind)
        {
            case ErrorPolicyKind.NegativeAck:
                Log.PolicySettled(_run.Logger, _run.Name, _stage, policy.ToString()!, AckKind.Nack, failure);
                envelope.Ack.Complete(AckOutcome.Negative(ErrorPolicy.NegativeAckDelay(policy)));
                break;
            case ErrorPolicyKind.Skip:
                Log.Skipped(_run.Logger, _run.Name, _stage, attempts, envelope.Message.Key, failure);
                if (Telemetry.Skipped.Enabled)
                {
                    Telemetry.Skipped.Add(1, _tags);
                }

                envelope.Ack.Complete(AckOutcome.Acked);
                break;
            case ErrorPolicyKind.Terminate:
                Log.PolicySettled(_run.Logger, _run.Name, _stage, policy.ToString()!, AckKind.Terminate, failure);
                envelope.Ack.Complete(AckOutcome.Terminated);
                break;
            case ErrorPolicyKind.DeadLetter:
                await DeadLetterAsync(envelope, (IDestination<DeadLetter<TIn>>)((DeadLetterErrorPolicy)policy).Destination, failure, attempts, poison ? AckOutcome.Terminated : AckOutcome.Acked).ConfigureAwait(false);
                break;
            default:
                _run.ReportFatal(_stage, failure);
                envelope.Ack.Complete(AckOutcome.Negative());
                break;
        }
    }

    private async ValueTask DeadLetterAsync(Envelope<TIn> envelope, IDestination<DeadLetter<TIn>> destination, Exception failure, int attempts, AckOutcome onWritten)
    {
        Log.DeadLettering(_run.Logger, _run.Name, _stage, attempts, envelope.Message.Key, failure);
        var original = envelope.Message;
        var record = new DeadLetter<TIn>(original, _stage, failure.GetType().FullName ?? failure.GetType().Name, failure.Message, attempts, _run.Options.TimeProvider.GetUtcNow());
        var token = new DeadLetterAckToken(envelope.Ack, _onDeadLettered, onWritten);
        try
        {
            await destination.SendAsync(token, new Message<DeadLetter<TIn>>(record, original.Key, original.Topic, original.Attributes), _run.AbortToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Not written: the original must come back (a dead-letter destination that throws must not settle the token).
            Log.DeadLetterFailed(_run.Logger, _run.Name, _stage, ex);
            token.TryComplete(AckOutcome.Negative());
        }
    }

    private static void Emit(in Envelope<TIn> envelope, int index, Messages<TOut> outputs, ref SegmentWriter<TOut> writer)
    {
        switch (outputs.Count)
        {
            case 0:
                envelope.Ack.Complete(AckOutcome.Acked, ref writer.Settled);
                break;
            case 1:
                writer.Add(outputs[0], envelope.Ack, index);
                break;
            default:
                var group = new FanOutGroup(envelope.Ack, outputs.Count);
                var fanOutIndex = 0;
                foreach (var output in outputs)
                {
                    // Each fan-out output gets its own path ("2", or "1.2" after two fan-outs), so sinks can derive
                    // distinct, redelivery-stable ids (e.g. JetStream Nats-Msg-Id) for outputs that share a token's origin.
                    var part = fanOutIndex.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    var path = output.Attributes.TryGet(MessageAttributeKeys.OutputPath, out var parent)
                        ? string.Concat(parent, ".", part)
                        : part;
                    fanOutIndex++;
                    writer.Add(output with { Attributes = output.Attributes.With(MessageAttributeKeys.OutputPath, path) }, new FanOutChildToken(group), index);
                }

                break;
        }
    }

    private IEnumerable<Segment<TOut>> Finish(Segment<TIn> input, SegmentWriter<TOut> writer, int handled)
    {
        // Before Passed: the room these acks free in the in-flight window must be back before the stage reports the
        // segment gone, or a pump waiting for room could wait for acks nobody reports.
        writer.Settled.Flush();
        _run.Passed(input.Count, writer.Total);
        if (!writer.HoldsInput)
        {
            Segment<TIn>.Return(input.Items);
        }

        if (handled > 0 && Telemetry.Handled.Enabled)
        {
            Telemetry.Handled.Add(handled, _tags);
        }

        if (writer.Total > 0 && Telemetry.Emitted.Enabled)
        {
            Telemetry.Emitted.Add(writer.Total, _tags);
        }

        return writer.ToEnumerable();
    }

    /// <summary>A bug (ours or a component settling a token twice): stop the run, nack what this segment still holds.</summary>
    private IEnumerable<Segment<TOut>> Fail(Segment<TIn> input, int index, Exception exception, SegmentWriter<TOut> writer, int handled)
    {
        _run.ReportFatal(_stage, exception);
        for (var i = index; i < input.Count; i++)
        {
            input.Items[i].Ack.TryComplete(AckOutcome.Negative());
        }

        return Finish(input, writer, handled);
    }
}
