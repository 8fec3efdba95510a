using Microsoft.Extensions.Options;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

public class OptionsValidationTests
{
    [Test]
    public void Build_EveryOptionInvalid_ReportsAllProblemsAtOnceByProperty()
    {
        var definition = Kawa.Dataflow.Pipeline.Create("validation")
            .From(new TestSource<int>([]))
            .Handle("parse", Handler.Pipe<int>(), new StageOptions { MaxDegreeOfParallelism = 0, BoundedCapacity = -1, ErrorPolicy = ErrorPolicy.DeadLetter(new RecordingDestination<DeadLetter<string>>()) })
            .Handle("parse", Handler.Pipe<int>())
            .Handle("", Handler.Pipe<int>())
            .To(new RecordingDestination<int>(), new DestinationOptions { MaxDegreeOfParallelism = 0, BoundedCapacity = 0 });

        var error = Assert.Throws<OptionsValidationException>(() => definition.Build(new PipelineOptions
        {
            MaxInFlightMessages = 0,
            MaxInFlightBytes = 0,
            SegmentSize = 0,
            DrainTimeout = TimeSpan.FromSeconds(-1),
            TimeProvider = null!,
            LoggerFactory = null!,
        }));

        Assert.That(error!.Failures, Has.Some.Contains("PipelineOptions.MaxInFlightMessages"));
        Assert.That(error.Failures, Has.Some.Contains("PipelineOptions.MaxInFlightBytes"));
        Assert.That(error.Failures, Has.Some.Contains("PipelineOptions.SegmentSize"));
        Assert.That(error.Failures, Has.Some.Contains("PipelineOptions.DrainTimeout"));
        Assert.That(error.Failures, Has.Some.Contains("PipelineOptions.TimeProvider"));
        Assert.That(error.Failures, Has.Some.Contains("PipelineOptions.LoggerFactory"));
        Assert.That(error.Failures, Has.Some.Contains("Stages[\"parse\"].MaxDegreeOfParallelism"));
        Assert.That(error.Failures, Has.Some.Contains("Stages[\"parse\"].BoundedCapacity"));
        Assert.That(error.Failures, Has.Some.Contains("Stages[\"parse\"].ErrorPolicy").And.Contains("DeadLetter<String>").And.Contains("Int32"));
        Assert.That(error.Failures, Has.Some.Contains("used more than once"));
        Assert.That(error.Failures, Has.Some.Contains("must not be empty"));
        Assert.That(error.Failures, Has.Some.Contains("Destination.MaxDegreeOfParallelism"));
        Assert.That(error.Failures, Has.Some.Contains("Destination.BoundedCapacity"));
        Assert.That(error.Failures.Count(), Is.EqualTo(13));
    }

    [Test]
    public void Build_DefaultOptions_Valid()
    {
        var pipeline = Kawa.Dataflow.Pipeline.Create("validation-defaults").From(new TestSource<int>([])).To(new RecordingDestination<int>()).Build();

        Assert.That(pipeline.Name, Is.EqualTo("validation-defaults"));
        Assert.That(pipeline.MaxUnsettledMessages, Is.EqualTo(PipelineOptions.DefaultMaxInFlightMessages));
    }

    [Test]
    public void Build_OptionsChangedAfterBuild_PipelineKeepsItsCopy()
    {
        var options = new PipelineOptions { MaxInFlightMessages = 10 };
        var pipeline = Kawa.Dataflow.Pipeline.Create("validation-copy").From(new TestSource<int>([])).To(new RecordingDestination<int>()).Build(options);

        options.MaxInFlightMessages = 99;

        Assert.That(pipeline.MaxUnsettledMessages, Is.EqualTo(10));
    }

    [Test]
    public void Build_InfiniteDrainTimeout_Valid()
    {
        Assert.DoesNotThrow(() => Kawa.Dataflow.Pipeline.Create("validation-infinite").From(new TestSource<int>([])).To(new RecordingDestination<int>())
            .Build(new PipelineOptions { DrainTimeout = Timeout.InfiniteTimeSpan }));
    }

    [Test]
    public void Retry_InvalidArguments_ThrowImmediately()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ErrorPolicy.Retry(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => ErrorPolicy.Retry(1, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => ErrorPolicy.NegativeAck(TimeSpan.FromSeconds(-1)));
    }
}
