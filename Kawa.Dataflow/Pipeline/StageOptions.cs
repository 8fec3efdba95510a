namespace Kawa.Dataflow;

/// <summary>How one handler stage runs: parallelism, buffering, ordering and what happens when the handler throws.</summary>
/// <remarks>Validated by <see cref="PipelineDefinition.Build(PipelineOptions?)"/>; the pipeline takes a copy.</remarks>
public sealed class StageOptions
{
    /// <summary>How many messages the handler may work on at once. Default 1; at least 1.</summary>
    public int MaxDegreeOfParallelism { get; set; } = 1;

    /// <summary>
    /// How many segments (each up to <see cref="PipelineOptions.SegmentSize"/> messages) the stage buffers, input and
    /// output together, besides the ones its handler is working on; when full, the stage before it waits
    /// (backpressure). In a key-ordered stage each of its lanes has this capacity. Not used when the stages run to
    /// completion (<see cref="PipelineOptions.RunToCompletion"/>): nothing waits between stages then. Default 4; at least 1.
    /// </summary>
    public int BoundedCapacity { get; set; } = 4;

    /// <summary>
    /// Whether outputs leave the stage in the order inputs arrived even when the handler runs in parallel. Default
    /// <see langword="true"/>. Ignored when <see cref="KeyOrdered"/> is set: then only the order per key is kept.
    /// <see langword="false"/> on every stage, at one parallelism of 2 or more, lets the stages run to completion
    /// (<see cref="PipelineOptions.RunToCompletion"/>), the fastest way through on few cores.
    /// </summary>
    public bool EnsureOrdered { get; set; } = true;

    /// <summary>
    /// Whether messages with the same <see cref="Message{T}.Key"/> are handled one at a time in arrival order, while
    /// different keys run in parallel (up to <see cref="MaxDegreeOfParallelism"/> lanes; a key always goes to the same
    /// lane). Default <see langword="false"/>.
    /// </summary>
    /// <remarks>A message whose key is <see langword="null"/> has nothing to be ordered with: such messages are spread
    /// over the lanes in turn and may run concurrently with each other (never with a keyed message of the same lane).</remarks>
    public bool KeyOrdered { get; set; }

    /// <summary>What to do when the handler throws. Default <see cref="ErrorPolicy.Fatal"/>: the pipeline stops.</summary>
    public ErrorPolicy ErrorPolicy { get; set; } = ErrorPolicy.Fatal;

    /// <summary>
    /// What to do instead of a negative ack when the failed message is on its last delivery
    /// (<see cref="MessageAttributeKeys.LastDelivery"/>): a nack would not bring it back, so it would be lost without a
    /// trace. Default <see cref="ErrorPolicy.Terminate"/>. <see cref="ErrorPolicy.DeadLetter{T}"/> writes it to the
    /// dead-letter destination and then terminates it (the source is told it is poison, not that it succeeded);
    /// <see cref="ErrorPolicy.Skip"/> and <see cref="ErrorPolicy.Fatal"/> are allowed too. A negative ack or retry is
    /// refused when the pipeline is built.
    /// </summary>
    /// <remarks>Applies where <see cref="ErrorPolicy"/> (or a retry's fallback) would negatively ack. A fatal policy
    /// stays fatal; a message nacked because the pipeline is stopping is not poison and is nacked as usual.</remarks>
    public ErrorPolicy PoisonPolicy { get; set; } = ErrorPolicy.Terminate;

    internal StageOptions Clone() => (StageOptions)MemberwiseClone();

    /// <summary>A stage's block holds its buffered segments plus the ones being worked on: the sum must fit an int.</summary>
    internal static void CheckCapacitySum(string path, int boundedCapacity, int parallelism, List<string> errors)
    {
        if ((long)boundedCapacity + parallelism > int.MaxValue)
        {
            errors.Add($"{path}.{nameof(BoundedCapacity)} plus MaxDegreeOfParallelism must be at most {int.MaxValue} (was {boundedCapacity} + {parallelism}).");
        }
    }

    internal void Validate(string path, Type inputType, List<string> errors)
    {
        if (MaxDegreeOfParallelism < 1)
        {
            errors.Add($"{path}.{nameof(MaxDegreeOfParallelism)} must be at least 1 (was {MaxDegreeOfParallelism}).");
        }

        if (BoundedCapacity < 1)
        {
            errors.Add($"{path}.{nameof(BoundedCapacity)} must be at least 1 (was {BoundedCapacity}).");
        }

        CheckCapacitySum(path, BoundedCapacity, MaxDegreeOfParallelism, errors);

        if (ErrorPolicy is null)
        {
            errors.Add($"{path}.{nameof(ErrorPolicy)} must not be null.");
        }
        else
        {
            ErrorPolicy.Validate($"{path}.{nameof(ErrorPolicy)}", inputType, errors);
        }

        if (PoisonPolicy is null)
        {
            errors.Add($"{path}.{nameof(PoisonPolicy)} must not be null.");
        }
        else if (PoisonPolicy.Kind is ErrorPolicyKind.NegativeAck or ErrorPolicyKind.Retry)
        {
            errors.Add($"{path}.{nameof(PoisonPolicy)} must settle the message for good (Terminate, DeadLetter, Skip or Fatal); {PoisonPolicy} would ask for a redelivery that will not come.");
        }
        else
        {
            PoisonPolicy.Validate($"{path}.{nameof(PoisonPolicy)}", inputType, errors);
        }
    }
}

/// <summary>How the destination stage runs.</summary>
/// <remarks>Validated by <see cref="PipelineDefinition.Build(PipelineOptions?)"/>; the pipeline takes a copy.</remarks>
public sealed class DestinationOptions
{
    /// <summary>How many <see cref="IDestination{T}.SendAsync"/> calls may run at once. Default 1; at least 1.</summary>
    public int MaxDegreeOfParallelism { get; set; } = 1;

    /// <summary>How many segments the destination stage buffers, besides those being sent, before the stage in front of it
    /// waits. Not used when the stages run to completion (<see cref="PipelineOptions.RunToCompletion"/>). Default 4; at least 1.</summary>
    public int BoundedCapacity { get; set; } = 4;

    internal DestinationOptions Clone() => (DestinationOptions)MemberwiseClone();

    internal void Validate(string path, List<string> errors)
    {
        if (MaxDegreeOfParallelism < 1)
        {
            errors.Add($"{path}.{nameof(MaxDegreeOfParallelism)} must be at least 1 (was {MaxDegreeOfParallelism}).");
        }

        if (BoundedCapacity < 1)
        {
            errors.Add($"{path}.{nameof(BoundedCapacity)} must be at least 1 (was {BoundedCapacity}).");
        }

        StageOptions.CheckCapacitySum(path, BoundedCapacity, MaxDegreeOfParallelism, errors);
    }
}
