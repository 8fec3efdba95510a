namespace Kawa.Dataflow;

/// <summary>A destination of ours: it learns the pipeline it is given to, and says how long it may hold a message.</summary>
internal interface IPipelineMember
{
    /// <summary>The destination was given to pipeline <paramref name="pipeline"/>; called before the pipeline runs
    /// (it tags its telemetry with the name).</summary>
    void JoinPipeline(string pipeline);

    /// <summary>
    /// The longest this destination may hold a message between its send and its final outcome by design (a batch's
    /// age, a Parquet file's age), not counting how long a write takes; <see cref="TimeSpan.Zero"/> when it settles at
    /// once or has no such bound. A source that must be told before the hold runs out (a JetStream consumer's ack wait)
    /// checks it when the pipeline is built.
    /// </summary>
    TimeSpan LongestHold { get; }
}

/// <summary>A source of ours that fits itself to the pipeline reading it.</summary>
internal interface IPipelineSourceMember
{
    /// <summary>Pipeline <paramref name="pipeline"/>, which reads this source, was built with these limits
    /// (<see cref="PipelineOptions.MaxInFlightMessages"/>, <see cref="PipelineOptions.MaxInFlightBytes"/>) and its
    /// destinations (dead-letter destinations included) hold a message at most <paramref name="longestHold"/>; called
    /// by <see cref="PipelineDefinition.Build(PipelineOptions?)"/>, before the pipeline runs. Throws when the source
    /// cannot serve such a pipeline.</summary>
    void JoinPipeline(string pipeline, int maxInFlightMessages, long maxInFlightBytes, TimeSpan longestHold);
}

internal static class PipelineMember
{
    /// <summary>Tells every destination that is a <see cref="IPipelineMember"/> which pipeline it is part of.</summary>
    public static void Join<T>(IEnumerable<IDestination<T>> destinations, string pipeline)
    {
        foreach (var destination in destinations)
        {
            (destination as IPipelineMember)?.JoinPipeline(pipeline);
        }
    }

    /// <summary>The longest hold of <paramref name="destination"/> (a destination, or a dead-letter destination held as
    /// an object); zero for one that is not ours.</summary>
    public static TimeSpan LongestHold(object? destination) => (destination as IPipelineMember)?.LongestHold ?? TimeSpan.Zero;

    /// <summary>The longest hold among <paramref name="destinations"/>.</summary>
    public static TimeSpan LongestHold<T>(IEnumerable<IDestination<T>> destinations)
    {
        var longest = TimeSpan.Zero;
        foreach (var destination in destinations)
        {
            longest = Max(longest, LongestHold(destination));
        }

        return longest;
    }

    /// <summary>The longest hold of the dead-letter destinations an error policy (and its fallbacks) may write to.</summary>
    public static TimeSpan LongestHold(ErrorPolicy policy) => policy switch
    {
        DeadLetterErrorPolicy deadLetter => LongestHold(deadLetter.Destination),
        RetryErrorPolicy retry => LongestHold(retry.Fallback),
        _ => TimeSpan.Zero,
    };

    public static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
