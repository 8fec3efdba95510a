using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Sink;
using Kawa.Dataflow.Tests.Infrastructure;
using Kawa.Dataflow.Tests.Parquet.Lake;
using static Kawa.Dataflow.Tests.Parquet.Sink.SinkTestSupport;

namespace Kawa.Dataflow.Tests.Parquet.Sink;

/// <summary>What happens to the acks when files cannot be written or committed: never acked, always settled.</summary>
public sealed class ParquetDestinationFailureTests
{
    private TempDirectory _root = null!;

    [SetUp]
    public void SetUp() => _root = new TempDirectory();

    [TearDown]
    public void TearDown() => _root.Dispose();

    private static ParquetDestinationOptions<SinkEvent> Options(ILakeStorage storage, int batchSize) => new()
    {
        Storage = storage,
        KeepAliveInterval = Timeout.InfiniteTimeSpan,
        FileMaxAge = TimeSpan.FromMinutes(30),
        Batching = new BatchingOptions<SinkEvent> { MaxBatchSize = batchSize, MaxBatchAge = Timeout.InfiniteTimeSpan, MaxRetries = 0, FlushTimeout = Timeout.InfiniteTimeSpan },
    };

    [Test]
    public async Task FlushAsync_CommitFailsAtDrain_NacksEveryMessage_ErrorNamesFileAndCause()
    {
        var storage = new ControlledStorage(Storage(_root))
        {
            FailCommit = path => new LakeWriteException(path, LakeWriteFailure.DiskFull, $"Lake file '{path}' could not be committed: disk full (no space left on device)."),
        };
        await using var destination = new ParquetDestination<SinkEvent>(Options(storage, batchSize: 5));
        var probes = Enumerable.Range(0, 10).Select(_ => new AckProbe()).ToList();
        for (var i = 0; i < 10; i++)
        {
            await destination.SendAsync(probes[i], Event(i));
        }

        var error = (await Assert.ThrowsAsync<LakeWriteException>(async () => await destination.FlushAsync()))!;

        Assert.That(error.Failure, Is.EqualTo(LakeWriteFailure.DiskFull));
        Assert.That(error.Message, Does.Contain(error.RelativePath).And.Contain("disk full"));
        Assert.That(probes.Select(p => p.Outcome?.Kind), Has.All.EqualTo(AckKind.Nack), "not durable: negatively acked, never acked");
        Assert.That(_root.AllFiles(), Is.Empty, "the temporary file was removed");
    }

    [Test]
    public async Task FlushAsync_CommitFailsAtDrain_LogsTheFileAndHowManyBatchesItNacked()
    {
        var storage = new ControlledStorage(Storage(_root))
        {
            FailCommit = path => new LakeWriteException(path, LakeWriteFailure.DiskFull, $"Lake file '{path}' could not be committed: disk full."),
        };
        using var logs = new CapturingLoggerFactory();
        await using var destination = new ParquetDestination<SinkEvent>(Options(storage, batchSize: 5), loggerFactory: logs);
        for (var i = 0; i < 10; i++)
        {
            await destination.SendAsync(new AckProbe(), Event(i));
        }

        var error = (await Assert.ThrowsAsync<LakeWriteException>(async () => await destination.FlushAsync()))!;

        // Two flushes of five went into the one file: the log counts the batches it held, not what is left after nacking.
        var failed = logs.Entries.Where(e => e.Event.Id == 3103).Select(e => e.Message).ToList();
        Assert.That(failed, Is.EqualTo(new[] { $"Parquet sink file {error.RelativePath} failed; 2 batches negatively acked" }));
    }

    [Test]
    public async Task SendAsync_CommitFailsOnRoll_FlushFails_MessagesNackedAndPipelineErrorRaised()
    {
        var storage = new ControlledStorage(Storage(_root))
        {
            FailCommit = path => new LakeWriteException(path, LakeWriteFailure.PermissionDenied, $"Lake file '{path}' could not be committed: permission denied."),
        };
        var options = Options(storage, batchSize: 5);
        options.FileMaxRows = 5;
        await using var destination = new ParquetDestination<SinkEvent>(options);
        var probes = Enumerable.Range(0, 5).Select(_ => new AckProbe()).ToList();
        for (var i = 0; i < 5; i++)
        {
            await destination.SendAsync(probes[i], Event(i));
        }

        foreach (var probe in probes)
        {
            Assert.That((await probe.WaitAsync()).Kind, Is.EqualTo(AckKind.Nack));
        }

        var error = (await Assert.ThrowsAsync<BatchFlushException>(async () => await destination.FlushAsync()))!;
        Assert.That(error.InnerException, Is.TypeOf<LakeWriteException>().With.Message.Contain("permission denied"));
        Assert.That(_root.AllFiles(), Is.Empty);
    }

    [Test]
    public async Task SendAsync_CommitFailsOnceOnRoll_SinkRetriesTheBatch_AllAckedNoRowLost()
    {
        var failures = 0;
        var storage = new ControlledStorage(Storage(_root))
        {
            FailCommit = path => Interlocked.Increment(ref failures) == 1
                ? new LakeWriteException(path, LakeWriteFailure.Unavailable, $"Lake file '{path}' could not be committed: unavailable.")
                : null,
        };
        var options = Options(storage, batchSize: 5);
        options.FileMaxRows = 5;
        options.Batching.MaxRetries = 1;
        options.Batching.RetryBaseDelay = TimeSpan.FromMilliseconds(1);
        await using var destination = new ParquetDestination<SinkEvent>(options);
        var probes = Enumerable.Range(0, 5).Select(_ => new AckProbe()).ToList();
        for (var i = 0; i < 5; i++)
        {
            await destination.SendAsync(probes[i], Event(i));
        }

        await destination.FlushAsync();

        Assert.That(probes.Select(p => p.Outcome), Has.All.EqualTo(AckOutcome.Acked), "the failed attempt's acks went back to the sink, whose retry committed a new file");
        Assert.That(probes.Select(p => p.Completions), Has.All.EqualTo(1));
        Assert.That((await ReadAllAsync(_root)).Select(r => r.Id).Order(), Is.EqualTo(new long[] { 0, 1, 2, 3, 4 }), "the failed file was removed; its retry wrote each row once");
    }

    [Test]
    public async Task SendAsync_RealStorageCannotCreatePartitionDirectory_NacksAndNamesTheFile()
    {
        // A real OS failure, no fake: a regular file sits where the partition directory must be created.
        File.WriteAllText(_root.Combine("host=blocked"), "not a directory");
        var options = Options(Storage(_root), batchSize: 2);
        options.Partitioning = PartitionPath<SinkEvent>.Parse("host={key}");
        await using var destination = new ParquetDestination<SinkEvent>(options);
        var probes = new[] { new AckProbe(), new AckProbe() };
        await destination.SendAsync(probes[0], Event(1, "blocked"));
        await destination.SendAsync(probes[1], Event(2, "blocked"));

        Assert.That((await probes[0].WaitAsync()).Kind, Is.EqualTo(AckKind.Nack));
        Assert.That((await probes[1].WaitAsync()).Kind, Is.EqualTo(AckKind.Nack));
        var error = (await Assert.ThrowsAsync<BatchFlushException>(async () => await destination.FlushAsync()))!;
        Assert.That(error.InnerException, Is.TypeOf<LakeWriteException>().With.Message.Contain("host=blocked/part-"));
        Assert.That(Committed(_root), Is.Empty);
    }

    [Test]
    public async Task FlushAsync_DrainTimesOutDuringCommit_AbortsAndNacks()
    {
        var storage = new ControlledStorage(Storage(_root)) { Gate = new(TaskCreationOptions.RunContinuationsAsynchronously) };
        await using var destination = new ParquetDestination<SinkEvent>(Options(storage, batchSize: 3));
        var probes = Enumerable.Range(0, 3).Select(_ => new AckProbe()).ToList();
        for (var i = 0; i < 3; i++)
        {
            await destination.SendAsync(probes[i], Event(i));
        }

        using var drainTimeout = new CancellationTokenSource();
        var drain = destination.FlushAsync(drainTimeout.Token).AsTask();
        await storage.CommitEntered.Task;
        await drainTimeout.CancelAsync();
        try
        {
            await drain;
        }
        catch (OperationCanceledException)
        {
            // The drain may surface its cancellation; what matters is the acks and the lake.
        }

        Assert.That(probes.Select(p => p.Outcome?.Kind), Has.All.EqualTo(AckKind.Nack), "a drain timeout never acks");
        Assert.That(_root.AllFiles(), Is.Empty, "the open file was aborted, its temporary removed");
    }

    [Test]
    public async Task DisposeAsync_WithoutDrain_AbortsOpenFilesAndNacks()
    {
        var destination = new ParquetDestination<SinkEvent>(Options(Storage(_root), batchSize: 1));
        var probe = new AckProbe();
        await destination.SendAsync(probe, Event(1));
        await destination.SendAsync(AckToken.None(), Event(2));

        await destination.DisposeAsync();

        Assert.That((await probe.WaitAsync()).Kind, Is.EqualTo(AckKind.Nack));
        Assert.That(Committed(_root), Is.Empty);
    }
}
