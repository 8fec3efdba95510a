using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Sink;
using Kawa.Dataflow.Tests.Core.Pipeline;
using Kawa.Dataflow.Tests.Parquet.Lake;
using static Kawa.Dataflow.Tests.Parquet.Sink.SinkTestSupport;

namespace Kawa.Dataflow.Tests.Parquet.Sink;

/// <summary>
/// The Parquet sink at a pipeline checkpoint (<see cref="IDestination{T}.CommitHeldAsync"/>, taken when a drain-mode
/// source says <see cref="Delivery{T}.Idle"/>): open files are committed at once, whatever their age limit, so the
/// deferred acks settle and a batch job ends promptly.
/// </summary>
public sealed class ParquetDestinationIdleTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private TempDirectory _root = null!;

    [SetUp]
    public void SetUp() => _root = new TempDirectory();

    [TearDown]
    public void TearDown() => _root.Dispose();

    private static ParquetDestinationOptions<SinkEvent> Options(ILakeStorage storage) => new()
    {
        Storage = storage,
        // Limits a drain would otherwise wait for: files roll after an hour (the storage allows it), batches after ten minutes.
        FileMaxAge = TimeSpan.FromHours(1),
        FileMaxRows = 1_000_000,
        Partitioning = PartitionPath<SinkEvent>.Parse("hour={ts:HH}", new PartitionPathOptions<SinkEvent> { Timestamp = m => new DateTimeOffset(m.Value.Ts) }),
        Batching = new BatchingOptions<SinkEvent> { MaxBatchSize = 1000, MaxBatchAge = TimeSpan.FromMinutes(10), MaxRetries = 0 },
    };

    [Test]
    public async Task Pipeline_DrainStyleSourceWithHourLongRollAge_CommitsAtIdleAndFinishesWithEverythingAcked()
    {
        await using var destination = new ParquetDestination<SinkEvent>(Options(Storage(_root, TimeSpan.FromHours(3))));

        // Each "await outcomes" step fails the run after 10 s if nothing commits: without the checkpoint the rows
        // would sit in open files for an hour.
        var source = new IdleScriptSource<SinkEvent>()
            .Send([.. Enumerable.Range(0, 30).Select(i => Event(i, minute: i * 4).Value)]).Idle().AwaitOutcomes()
            .Send([.. Enumerable.Range(30, 10).Select(i => Event(i, minute: 5).Value)]).Idle().AwaitOutcomes();

        await Kawa.Dataflow.Pipeline.Create("parquet-idle").From(source).To(destination).Build().RunAsync().WaitAsync(Wait);

        // Two partitions at the first checkpoint, one more file at the second (the sink kept running after committing).
        var files = Committed(_root);
        Assert.That(files, Has.Length.EqualTo(3));
        Assert.That(files.Count(f => f.StartsWith("hour=10/", StringComparison.Ordinal)), Is.EqualTo(2));
        Assert.That((await ReadAllAsync(_root)).Select(r => r.Id).Order(), Is.EqualTo(Enumerable.Range(0, 40).Select(i => (long)i)));
        Assert.That(source.Outcomes(), Has.Length.EqualTo(40).And.All.EqualTo(AckOutcome.Acked));
        Assert.That(destination.OpenFileCount, Is.Zero);
    }

    [Test]
    public async Task Pipeline_CommitFailsAtIdle_RunFailsAtDestinationAndEveryMessageIsNegativelyAcked()
    {
        var storage = new ControlledStorage(Storage(_root, TimeSpan.FromHours(3)))
        {
            FailCommit = path => new LakeWriteException(path, LakeWriteFailure.DiskFull, $"Lake file '{path}' could not be committed: disk full."),
        };
        await using var destination = new ParquetDestination<SinkEvent>(Options(storage));
        var source = new IdleScriptSource<SinkEvent>()
            .Send([.. Enumerable.Range(0, 10).Select(i => Event(i).Value)]).Idle().AwaitOutcomes();

        var error = await Assert.ThrowsAsync<PipelineStageException>(async () =>
            await Kawa.Dataflow.Pipeline.Create("parquet-idle-fail").From(source).To(destination).Build().RunAsync().WaitAsync(Wait));

        Assert.That(error!.Stage, Is.EqualTo("destination"));
        Assert.That(error.InnerException, Is.TypeOf<LakeWriteException>().With.Message.Contain("disk full"));

        // Not durable, so never acked: each message is negatively acked (once) and the source redelivers it.
        Assert.That(source.Outcomes(), Has.Length.EqualTo(10).And.All.EqualTo(AckOutcome.Negative()));
        Assert.That(source.Probes.Select(p => p.Completions), Is.All.EqualTo(1));
        Assert.That(_root.AllFiles(), Is.Empty, "the failed file was removed; nothing partial is visible");
    }
}
