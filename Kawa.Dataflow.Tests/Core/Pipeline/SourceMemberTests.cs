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

        Assert.That(source.Joined, Is.EqualTo(new[] { ("limits", 50, 1000L) }));
    }

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
        public List<(string Pipeline, int Messages, long Bytes)> Joined { get; } = [];

        public ValueTask<Delivery<int>> ReceiveAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(Delivery<int>.EndOfStream);

        void IPipelineSourceMember.JoinPipeline(string pipeline, int maxInFlightMessages, long maxInFlightBytes) => Joined.Add((pipeline, maxInFlightMessages, maxInFlightBytes));
    }
}
