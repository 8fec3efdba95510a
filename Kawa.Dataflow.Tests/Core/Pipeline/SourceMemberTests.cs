namespace Kawa.Dataflow.Tests.Core.Pipeline;

/// <summary>A source that reads ahead learns the in-flight limits of the pipeline built with it (JetStream's pull window).</summary>
public class SourceMemberTests
{
    [Test]
    public void Build_SourceThatReadsAhead_ToldThePipelinesLimitsThroughHandlerStages()
    {
        var source = new LimitsRecordingSource();

        _ = Kawa.Dataflow.Pipeline.Create("limits")
            .From(source)
            .Handle("same", Handler.Map<int, int>(m => m))
            .To(new RecordingDestination<int>())
            .Build(new PipelineOptions { MaxInFlightMessages = 50, MaxInFlightBytes = 1000 });

        Assert.That(source.Joined, Is.EqualTo(new[] { ("limits", 50, 1000L, TimeSpan.Zero) }), "a destination not of this library holds nothing it can tell");
    }

    [Test]
    public void Build_BatchingSinksAndDeadLetterDestinations_SourceToldTheLongestHold()
    {
        // The longest hold anywhere a message may wait for its outcome: the sink (here a fan-out of two batching sinks),
        // and a dead-letter destination reached through a retry's fallback.
        var source = new LimitsRecordingSource();
        var deadLetters = Batching<DeadLetter<int>>(TimeSpan.FromSeconds(7));
        var pipeline = Kawa.Dataflow.Pipeline.Create("holds")
            .From(source)
            .Handle("retry", Handler.Map<int, int>(m => m), new StageOptions
            {
                ErrorPolicy = ErrorPolicy.Retry(1, TimeSpan.Zero, TimeSpan.Zero).Then(ErrorPolicy.DeadLetter(deadLetters)),
            })
            .To(new FanOutDestination<int>(Batching<int>(TimeSpan.FromSeconds(2)), Batching<int>(TimeSpan.FromSeconds(5))))
            .Build();

        Assert.That(source.Joined.Single().Hold, Is.EqualTo(TimeSpan.FromSeconds(7)));
        Assert.That(pipeline.LongestDestinationHold, Is.EqualTo(TimeSpan.FromSeconds(7)));
    }

    [Test]
    public void Build_BatchingSinkWithoutAgeLimit_HoldsNothingItCanTell()
    {
        var source = new LimitsRecordingSource();

        _ = Kawa.Dataflow.Pipeline.Create("no-age").From(source).To(Batching<int>(Timeout.InfiniteTimeSpan)).Build();

        Assert.That(source.Joined.Single().Hold, Is.EqualTo(TimeSpan.Zero));
    }

    private static BatchingDestination<T> Batching<T>(TimeSpan maxAge)
        => new((_, _) => default, new BatchingOptions<T> { MaxBatchAge = maxAge });

    [Test]
    public void Build_InvalidOptions_SourceNotTold()
    {
        var source = new LimitsRecordingSource();
        var definition = Kawa.Dataflow.Pipeline.Create("invalid").From(source).To(new RecordingDestination<int>());

        Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => definition.Build(new PipelineOptions { MaxInFlightMessages = 0 }));
        Assert.That(source.Joined, Is.Empty, "a pipeline that was not built sets no limits");
    }

    private sealed class LimitsRecordingSource : ISource<int>, IPipelineSourceMember
    {
        public List<(string Pipeline, int Messages, long Bytes, TimeSpan Hold)> Joined { get; } = [];

        public ValueTask<Delivery<int>> ReceiveAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(Delivery<int>.EndOfStream);

        void IPipelineSourceMember.JoinPipeline(string pipeline, int maxInFlightMessages, long maxInFlightBytes, TimeSpan longestHold)
            => Joined.Add((pipeline, maxInFlightMessages, maxInFlightBytes, longestHold));
    }
}
