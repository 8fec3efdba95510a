using System.Threading.Tasks.Dataflow;

namespace Kawa.Dataflow;

/// <summary>The first step of building a pipeline: choose its source.</summary>
/// <remarks>Start with <see cref="Pipeline.Create(string)"/>. Builders are immutable: each step returns a new one.</remarks>
public sealed class PipelineBuilder
{
    internal PipelineBuilder(string name) => Name = name;

    /// <summary>The pipeline's name.</summary>
    public string Name { get; }

    /// <summary>Reads from <paramref name="source"/>.</summary>
    /// <typeparam name="T">The source's payload type.</typeparam>
    /// <param name="source">The source; called by one caller at a time, never concurrently.</param>
    /// <param name="payloadSize">
    /// Measures a message for <see cref="PipelineOptions.MaxInFlightBytes"/>. Default: the length of a <c>byte[]</c>,
    /// <see cref="ReadOnlyMemory{T}"/> or <see cref="Memory{T}"/> of bytes, or <see cref="string"/>; otherwise the
    /// <see cref="MessageAttributeKeys.PayloadSize"/> attribute; otherwise 0.
    /// </param>
    public PipelineBuilder<T> From<T>(ISource<T> source, Func<Message<T>, long>? payloadSize = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        var size = payloadSize ?? PayloadSize.Default<T>();
        return new PipelineBuilder<T>(Name, [], source as IPipelineSourceMember, (run, target) => new SourcePump<T>(run, source, size, target));
    }
}

/// <summary>A pipeline under construction whose last stage emits <typeparamref name="T"/>: add handlers, then a destination.</summary>
/// <typeparam name="T">The payload type the next stage receives.</typeparam>
public sealed class PipelineBuilder<T>
{
    private readonly StageDescription[] _stages;
    private readonly IPipelineSourceMember? _source;
    private readonly Func<PipelineRun, StageInput<T>, ISourcePump> _connect;

    internal PipelineBuilder(string name, StageDescription[] stages, IPipelineSourceMember? source, Func<PipelineRun, StageInput<T>, ISourcePump> connect)
    {
        Name = name;
        _stages = stages;
        _source = source;
        _connect = connect;
    }

    /// <summary>The pipeline's name.</summary>
    public string Name { get; }

    /// <summary>Adds a handler stage.</summary>
    /// <typeparam name="TOut">What the handler emits.</typeparam>
    /// <param name="name">The stage's name, unique in the pipeline: telemetry and errors call it <c>handler:&lt;name&gt;</c>.</param>
    /// <param name="handler">The handler.</param>
    /// <param name="options">Parallelism, buffering, ordering and error policy; defaults when omitted.</param>
    public PipelineBuilder<TOut> Handle<TOut>(string name, IHandler<T, TOut> handler, StageOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var snapshot = (options ?? new StageOptions()).Clone();
        var previous = _connect;
        return new PipelineBuilder<TOut>(
            Name,
            [.. _stages, new StageDescription(name, typeof(T), snapshot)],
            _source,
            (run, target) => previous(run, new HandlerStage<T, TOut>(run, name, handler, snapshot, target).Input));
    }

    /// <summary>Adds a handler stage from a delegate.</summary>
    /// <typeparam name="TOut">What the handler emits.</typeparam>
    /// <param name="name">The stage's name, unique in the pipeline.</param>
    /// <param name="handle">Handles one message; the rules of <see cref="IHandler{TIn, TOut}"/> apply.</param>
    /// <param name="options">Parallelism, buffering, ordering and error policy; defaults when omitted.</param>
    public PipelineBuilder<TOut> Handle<TOut>(string name, Func<Message<T>, CancellationToken, ValueTask<Messages<TOut>>> handle, StageOptions? options = null)
        => Handle(name, new HandlerFunc<T, TOut>(handle), options);

    /// <summary>Ends the pipeline at <paramref name="destination"/>.</summary>
    /// <param name="destination">The destination; the only component that acks.</param>
    /// <param name="options">Parallelism and buffering; defaults when omitted.</param>
    public PipelineDefinition To(IDestination<T> destination, DestinationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        (destination as IPipelineMember)?.JoinPipeline(Name);
        var snapshot = (options ?? new DestinationOptions()).Clone();
        var connect = _connect;
        var canRunToCompletion = CanRunToCompletion(_stages, snapshot, destination is ISegmentDestination<T>);
        var longestHold = PipelineMember.LongestHold(destination);
        foreach (var stage in _stages)
        {
            longestHold = PipelineMember.Max(longestHold, PipelineMember.Max(PipelineMember.LongestHold(stage.Options.ErrorPolicy), PipelineMember.LongestHold(stage.Options.PoisonPolicy)));
        }

        return new PipelineDefinition(Name, _stages, snapshot, canRunToCompletion, _source, longestHold, (run, runToCompletion) =>
        {
            var stage = new DestinationStage<T>(run, destination, snapshot, runToCompletion);
            return (connect(run, stage.Input), stage.Completion);
        });
    }

    /// <summary>
    /// Whether running each segment from source to destination on one worker keeps every stage's promises: no stage
    /// orders its outputs (so no reorder buffer between stages is needed), every stage works at the same parallelism
    /// (so one worker per unit of it calls each stage no more often than the stage allows), a parallelism of at least two
    /// (one worker would lose the overlap of reading, handling and sending that separate blocks give), and the destination takes as
    /// many sends at once, or takes whole segments (the batching sink, and the Parquet and JetStream destinations built on
    /// it), which buffers and flushes on its own.
    /// </summary>
    private static bool CanRunToCompletion(StageDescription[] stages, DestinationOptions destination, bool segmentDestination)
    {
        if (stages.Length == 0)
        {
            return false;
        }

        var parallelism = stages[0].Options.MaxDegreeOfParallelism;
        if (parallelism < 2)
        {
            return false;
        }

        foreach (var stage in stages)
        {
            if (stage.Options.KeyOrdered || stage.Options.EnsureOrdered || stage.Options.MaxDegreeOfParallelism != parallelism)
            {
                return false;
            }
        }

        return segmentDestination || destination.MaxDegreeOfParallelism == parallelism;
    }
}

/// <summary>A complete pipeline description (source, handlers, destination): <see cref="Build(PipelineOptions?)"/> it.</summary>
public sealed class PipelineDefinition
{
    private readonly StageDescription[] _stages;
    private readonly DestinationOptions _destinationOptions;
    private readonly bool _canRunToCompletion;
    private readonly IPipelineSourceMember? _source;
    private readonly TimeSpan _longestHold;
    private readonly Func<PipelineRun, bool, (ISourcePump Pump, Task Completion)> _connect;

    internal PipelineDefinition(string name, StageDescription[] stages, DestinationOptions destinationOptions, bool canRunToCompletion, IPipelineSourceMember? source, TimeSpan longestHold, Func<PipelineRun, bool, (ISourcePump, Task)> connect)
    {
        Name = name;
        _stages = stages;
        _destinationOptions = destinationOptions;
        _canRunToCompletion = canRunToCompletion;
        _source = source;
        _longestHold = longestHold;
        _connect = connect;
    }

    /// <summary>The pipeline's name.</summary>
    public string Name { get; }

    /// <summary>Validates every option and creates the pipeline.</summary>
    /// <remarks>A source of this library that reads ahead (the JetStream source's pull window) learns the pipeline's
    /// in-flight limits here and sizes its read-ahead from them; built more than once, the last build's limits hold. It
    /// also learns how long this library's destinations (a batch's age, a Parquet file's age, dead-letter destinations
    /// included) may hold a message, and refuses a pipeline it cannot serve (the JetStream source: a hold not below the
    /// consumer's ack wait, or more messages unacked than its max_ack_pending).</remarks>
    /// <param name="options">Pipeline-wide settings; defaults when omitted. Copied: later changes have no effect.</param>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">Any option is invalid; the message lists every problem with its property.</exception>
    public Pipeline Build(PipelineOptions? options = null)
    {
        var snapshot = (options ?? new PipelineOptions()).Clone();
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Name))
        {
            errors.Add("Pipeline name must not be empty.");
        }

        snapshot.Validate(errors);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var stage in _stages)
        {
            var path = $"Stages[\"{stage.Name}\"]";
            if (string.IsNullOrWhiteSpace(stage.Name))
            {
                errors.Add($"{path}: a handler stage name must not be empty.");
            }
            else if (!names.Add(stage.Name))
            {
                errors.Add($"{path}: the handler stage name is used more than once; names must be unique in a pipeline.");
            }

            stage.Options.Validate(path, stage.InputType, errors);
        }

        _destinationOptions.Validate("Destination", errors);
        if (errors.Count > 0)
        {
            throw new Microsoft.Extensions.Options.OptionsValidationException(Name ?? string.Empty, typeof(PipelineOptions), errors);
        }

        // Before anything runs, so a source that reads ahead (a JetStream pull) sizes its window to this pipeline.
        _source?.JoinPipeline(Name!, snapshot.MaxInFlightMessages, snapshot.MaxInFlightBytes, _longestHold);
        var runToCompletion = _canRunToCompletion && snapshot.RunToCompletion;
        return new Pipeline(Name!, snapshot, runToCompletion, run => _connect(run, runToCompletion)) { LongestDestinationHold = _longestHold };
    }
}

internal sealed record StageDescription(string Name, Type InputType, StageOptions Options);
