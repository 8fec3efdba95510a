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

    private static PipelineDefinition OneStage(StageOptions stage, DestinationOptions? destination = null)
        => Kawa.Dataflow.Pipeline.Create("validation-limits")
            .From(new TestSource<int>([]))
            .Handle("work", Handler.Pipe<int>(), stage)
            .To(new RecordingDestination<int>(), destination);

    private static readonly TimeSpan LongestTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1.0);

    [Test]
    public void Build_DrainTimeoutLongerThanATimerTakes_RefusedNamingIt()
    {
        var definition = OneStage(new StageOptions());

        var error = Assert.Throws<OptionsValidationException>(() => definition.Build(new PipelineOptions { DrainTimeout = LongestTimer + TimeSpan.FromMilliseconds(1) }));

        Assert.That(error!.Failures.Single(), Does.Contain("PipelineOptions.DrainTimeout must be positive and at most 4294967294 ms"));
        Assert.DoesNotThrow(() => definition.Build(new PipelineOptions { DrainTimeout = LongestTimer }), "the longest a timer takes is allowed");
        Assert.Throws<OptionsValidationException>(() => definition.Build(new PipelineOptions { DrainTimeout = TimeSpan.MaxValue }));
    }

    [Test]
    public void Build_RetryDelaysLongerThanATimerTakes_RefusedNamingEach()
    {
        var tooLong = LongestTimer + TimeSpan.FromSeconds(1);
        var definition = OneStage(new StageOptions
        {
            ErrorPolicy = ErrorPolicy.Retry(1, TimeSpan.Zero, tooLong).Then(ErrorPolicy.Retry(1, tooLong, tooLong)),
        });

        var error = Assert.Throws<OptionsValidationException>(() => definition.Build());

        Assert.That(error!.Failures, Is.EquivalentTo(new[]
        {
            $"Stages[\"work\"].ErrorPolicy.MaxDelay must be at most 4294967294 ms (about 49.7 days, the longest a timer takes) (was {tooLong}).",
            $"Stages[\"work\"].ErrorPolicy.Fallback.BaseDelay must be at most 4294967294 ms (about 49.7 days, the longest a timer takes) (was {tooLong}).",
            $"Stages[\"work\"].ErrorPolicy.Fallback.MaxDelay must be at most 4294967294 ms (about 49.7 days, the longest a timer takes) (was {tooLong}).",
        }));
        Assert.DoesNotThrow(() => OneStage(new StageOptions { ErrorPolicy = ErrorPolicy.Retry(1, LongestTimer, LongestTimer) }).Build());
    }

    [Test]
    public void Build_CapacityPlusParallelismOverflowsInt_RefusedNamingTheStage()
    {
        var definition = OneStage(
            new StageOptions { BoundedCapacity = int.MaxValue, MaxDegreeOfParallelism = 2 },
            new DestinationOptions { BoundedCapacity = int.MaxValue - 3, MaxDegreeOfParallelism = 4 });

        var error = Assert.Throws<OptionsValidationException>(() => definition.Build());

        Assert.That(error!.Failures, Is.EquivalentTo(new[]
        {
            $"Stages[\"work\"].BoundedCapacity plus MaxDegreeOfParallelism must be at most {int.MaxValue} (was {int.MaxValue} + 2).",
            $"Destination.BoundedCapacity plus MaxDegreeOfParallelism must be at most {int.MaxValue} (was {int.MaxValue - 3} + 4).",
        }));
    }

    [Test]
    public void Build_KeyOrderedCapacityAtTheLimit_Valid()
    {
        // A key-ordered stage's lanes each hold BoundedCapacity + 1: the same sum with a parallelism of 1 and up.
        Assert.DoesNotThrow(() => OneStage(
            new StageOptions { BoundedCapacity = int.MaxValue - 4, MaxDegreeOfParallelism = 4, KeyOrdered = true },
            new DestinationOptions { BoundedCapacity = int.MaxValue - 1, MaxDegreeOfParallelism = 1 }).Build());
    }

    [Test]
    public void Retry_InvalidArguments_ThrowImmediately()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ErrorPolicy.Retry(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => ErrorPolicy.Retry(1, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => ErrorPolicy.NegativeAck(TimeSpan.FromSeconds(-1)));
    }
}
