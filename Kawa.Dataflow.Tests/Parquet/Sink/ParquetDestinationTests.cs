using System.Collections.Concurrent;
using System.Text.Json;
using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Parquet.Schema;
using Kawa.Dataflow.Parquet.Sink;
using Kawa.Dataflow.Tests.Infrastructure;
using Kawa.Dataflow.Tests.Parquet.Lake;
using static Kawa.Dataflow.Tests.Parquet.Sink.SinkTestSupport;

namespace Kawa.Dataflow.Tests.Parquet.Sink;

public sealed class ParquetDestinationTests
{
    private TempDirectory _root = null!;

    [SetUp]
    public void SetUp() => _root = new TempDirectory();

    [TearDown]
    public void TearDown() => _root.Dispose();

    private static ParquetDestinationOptions<SinkEvent> Options(ILakeStorage storage, int batchSize = 10) => new()
    {
        Storage = storage,
        KeepAliveInterval = Timeout.InfiniteTimeSpan,
        FileMaxAge = TimeSpan.FromMinutes(30),
        Batching = new BatchingOptions<SinkEvent> { MaxBatchSize = batchSize, MaxBatchAge = Timeout.InfiniteTimeSpan, MaxRetries = 0, FlushTimeout = Timeout.InfiniteTimeSpan },
    };

    private static PartitionPath<SinkEvent> ByHour() =>
        PartitionPath<SinkEvent>.Parse("dt={ts:yyyy-MM-dd}/hour={ts:HH}", new PartitionPathOptions<SinkEvent> { Timestamp = m => new DateTimeOffset(m.Value.Ts) });

    [Test]
    public async Task Build_FileAgeAndBatchAge_PipelineLearnsTheSinksLongestHold()
    {
        // A message is acked when its file commits: after waiting in its batch, up to the file's maximum age. A JetStream
        // source checks that hold against its ack wait when the pipeline is built.
        var options = Options(Storage(_root));
        options.Batching.MaxBatchAge = TimeSpan.FromSeconds(2);
        await using var destination = new ParquetDestination<SinkEvent>(options);

        var pipeline = Kawa.Dataflow.Pipeline.Create("hold").From(new EnumerableSource<SinkEvent>([])).To(destination).Build();

        Assert.That(pipeline.LongestDestinationHold, Is.EqualTo(TimeSpan.FromMinutes(30) + TimeSpan.FromSeconds(2)));
    }

    [Test]
    public async Task Pipeline_EventsOverThreeHours_DuckDbReadsEveryRowInItsHivePartition()
    {
        var options = Options(Storage(_root), batchSize: 50);
        options.Partitioning = ByHour();
        await using var destination = new ParquetDestination<SinkEvent>(options);
        var messages = Enumerable.Range(0, 600).Select(i => Event(i, "host" + (i % 7), minute: i % 180)).ToList();
        var outcomes = new ConcurrentBag<AckOutcome>();
        var source = new EnumerableSource<SinkEvent>(messages, (_, outcome) => outcomes.Add(outcome));

        await Kawa.Dataflow.Pipeline.Create("lake").From(source).To(destination).Build(new PipelineOptions { MaxInFlightMessages = 1000 }).RunAsync();

        var result = DuckDb.Query($"SELECT hour, count(*) AS n, sum(Id) AS s, CAST(min(dt) AS VARCHAR) AS dt FROM read_parquet({DuckDb.Lit(_root.Path + "/**/*.parquet")}, hive_partitioning=true) GROUP BY hour ORDER BY hour");
        var expected = messages.GroupBy(m => m.Value.Ts.Hour).OrderBy(g => g.Key).ToList();
        Assert.That(result.Rows, Has.Length.EqualTo(3));
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.That(result.Long(i, "hour"), Is.EqualTo(expected[i].Key));
            Assert.That(result.Long(i, "n"), Is.EqualTo(expected[i].Count()));
            Assert.That(result.Long(i, "s"), Is.EqualTo(expected[i].Sum(m => m.Value.Id)));
            Assert.That(result.Str(i, "dt"), Does.StartWith("2024-05-01"));
        }

        Assert.That(Committed(_root), Has.All.StartWith("dt=2024-05-01/hour="));
        Assert.That(outcomes, Has.Count.EqualTo(600).And.All.EqualTo(AckOutcome.Acked), "every message acked after the drain committed its file");
    }

    [Test]
    public async Task Pipeline_UnorderedParallelStageAtDefaultDestinationOptions_RunsToCompletionAndAcksEveryRow()
    {
        await using var destination = new ParquetDestination<SinkEvent>(Options(Storage(_root), batchSize: 25));
        var messages = Enumerable.Range(0, 500).Select(i => Event(i, "host" + (i % 3))).ToList();
        var outcomes = new ConcurrentBag<AckOutcome>();
        var source = new EnumerableSource<SinkEvent>(messages, (_, outcome) => outcomes.Add(outcome));
        var pipeline = Kawa.Dataflow.Pipeline.Create("lake-run-to-completion")
            .From(source)
            .Handle("pass", (m, _) => ValueTask.FromResult<Messages<SinkEvent>>(m), new StageOptions { MaxDegreeOfParallelism = 2, EnsureOrdered = false })
            .To(destination)
            .Build(new PipelineOptions { MaxInFlightMessages = 1000 });
        Assert.That(pipeline.RunsToCompletion, Is.True, "the sink takes both workers' segments at once, so default DestinationOptions do not keep the pipeline staged");

        await pipeline.RunAsync().WaitAsync(TimeSpan.FromMinutes(1));

        Assert.That((await ReadAllAsync(_root)).Select(r => r.Id).Order(), Is.EqualTo(Enumerable.Range(0, 500).Select(i => (long)i)), "every row written once");
        Assert.That(outcomes, Has.Count.EqualTo(500).And.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task Pipeline_NoPipelineNameInBatchingOptions_BatchMetricsTaggedWithThePipeline()
    {
        var options = Options(Storage(_root), batchSize: 10);
        options.Batching.StageName = "parquet-sink-pipeline-tag";
        using var metrics = new MetricCollector(options.Batching.StageName);
        await using var destination = new ParquetDestination<SinkEvent>(options);
        var source = new EnumerableSource<SinkEvent>(Enumerable.Range(0, 30).Select(i => Event(i)));

        await Kawa.Dataflow.Pipeline.Create("lake-tagged").From(source).To(destination).Build().RunAsync().WaitAsync(TimeSpan.FromMinutes(1));

        Assert.That(metrics.Sum("kawa.batch.size"), Is.EqualTo(30), "every row counted in a batch");
        Assert.That(metrics.Pipelines("kawa.batch.size"), Is.Not.Empty.And.All.EqualTo("lake-tagged"));
        Assert.That(metrics.Pipelines("kawa.batch.flush.duration"), Has.Count.EqualTo(metrics.Values("kawa.batch.size").Count).And.All.EqualTo("lake-tagged"));
    }

    [Test]
    public async Task SendAsync_ThousandFlushesOfTenRows_MakeOneRowGroup()
    {
        await using var destination = new ParquetDestination<SinkEvent>(Options(Storage(_root), batchSize: 10));
        var probes = new List<AckProbe>();
        for (var i = 0; i < 10_000; i++)
        {
            var probe = new AckProbe();
            probes.Add(probe);
            await destination.SendAsync(probe, Event(i));
        }

        await destination.FlushAsync();

        var files = Committed(_root);
        Assert.That(files, Has.Length.EqualTo(1));
        await using (var reader = await ParquetReader.OpenAsync(_root.Combine(files[0])))
        {
            Assert.That(reader.RowGroups, Has.Count.EqualTo(1), "a thousand flushes append to one row-group buffer");
            Assert.That(reader.RowCount, Is.EqualTo(10_000));
        }

        var meta = DuckDb.Query($"SELECT count(DISTINCT row_group_id) AS groups FROM parquet_metadata({DuckDb.Lit(_root.Combine(files[0]))})");
        Assert.That(meta.Long(0, "groups"), Is.EqualTo(1));
        Assert.That(probes.Select(p => p.Outcome), Has.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task SendAsync_FileMaxRows_RollsFilesAndAcksEachAtItsCommit()
    {
        var options = Options(Storage(_root), batchSize: 10);
        options.FileMaxRows = 100;
        await using var destination = new ParquetDestination<SinkEvent>(options);
        var probes = new List<AckProbe>();
        for (var i = 0; i < 250; i++)
        {
            var probe = new AckProbe();
            probes.Add(probe);
            await destination.SendAsync(probe, Event(i));
        }

        // The first 200 are in two rolled (committed) files: acked before the drain. The last 50 wait for it.
        await Task.WhenAll(probes.Take(200).Select(p => p.WaitAsync()));
        Assert.That(probes.Skip(200).Select(p => p.IsCompleted), Has.All.False, "rows in the open file are not acked");
        Assert.That(Committed(_root), Has.Length.EqualTo(2));

        await destination.FlushAsync();

        Assert.That(Committed(_root), Has.Length.EqualTo(3));
        Assert.That((await ReadAllAsync(_root)).Select(r => r.Id).Order(), Is.EqualTo(Enumerable.Range(0, 250).Select(i => (long)i)));
        Assert.That(probes.Select(p => p.Outcome), Has.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task SendAsync_FileMaxBytes_RollsFiles()
    {
        var options = Options(Storage(_root), batchSize: 20);
        options.FileMaxBytes = 4096;
        await using var destination = new ParquetDestination<SinkEvent>(options);
        for (var i = 0; i < 400; i++)
        {
            await destination.SendAsync(AckToken.None(), Event(i, host: "host-" + new string('x', 40) + i));
        }

        await destination.FlushAsync();

        Assert.That(Committed(_root), Has.Length.GreaterThan(2), "about 4 KiB of buffered rows per file");
        Assert.That(await ReadAllAsync(_root), Has.Count.EqualTo(400));
    }

    [Test]
    public async Task FileMaxAge_Elapses_CommitsAndAcksWithoutMoreMessages()
    {
        var time = new FakeTimeProvider();
        var options = Options(Storage(_root), batchSize: 5);
        options.FileMaxAge = TimeSpan.FromMinutes(1);
        await using var destination = new ParquetDestination<SinkEvent>(options, time);
        var probes = Enumerable.Range(0, 5).Select(_ => new AckProbe()).ToList();
        var created = time.TimersCreated;
        for (var i = 0; i < 5; i++)
        {
            await destination.SendAsync(probes[i], Event(i));
        }

        await time.WaitForTimersCreatedAsync(created + 1); // the file's age timer: the flush opened the file
        Assert.That(probes.Select(p => p.IsCompleted), Has.All.False);
        Assert.That(Committed(_root), Is.Empty, "nothing visible before the commit");

        time.Advance(TimeSpan.FromMinutes(1));

        await Task.WhenAll(probes.Select(p => p.WaitAsync()));
        Assert.That(probes.Select(p => p.Outcome), Has.All.EqualTo(AckOutcome.Acked));
        Assert.That(Committed(_root), Has.Length.EqualTo(1));
    }

    [Test]
    public async Task KeepAlive_FileStaysOpen_ReportsMessagesInProgress()
    {
        var time = new FakeTimeProvider();
        var options = Options(Storage(_root, TimeSpan.FromHours(3)), batchSize: 1);
        options.KeepAliveInterval = TimeSpan.FromSeconds(10);
        options.FileMaxAge = TimeSpan.FromHours(1);
        var created = time.TimersCreated; // the keep-alive timer exists already
        await using var destination = new ParquetDestination<SinkEvent>(options, time);
        var probe = new AckProbe();
        await destination.SendAsync(probe, Event(1));
        await time.WaitForTimersCreatedAsync(created + 2); // keep-alive + the file's age timer: the row is in an open file
        Assert.That(probe.InProgressCount, Is.Zero);

        time.Advance(TimeSpan.FromSeconds(10));

        Assert.That(probe.InProgressCount, Is.EqualTo(1), "one keep-alive per interval while the file is open");
        Assert.That(probe.IsCompleted, Is.False);
        await destination.FlushAsync();
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task Commit_HeldOpen_NothingAckedOrVisibleUntilItReturns_AcksFollowCommitOrder()
    {
        var storage = new ControlledStorage(Storage(_root)) { Gate = new(TaskCreationOptions.RunContinuationsAsynchronously) };
        var options = Options(storage, batchSize: 4);
        options.Partitioning = PartitionPath<SinkEvent>.Parse("host={key}");
        await using var destination = new ParquetDestination<SinkEvent>(options);
        var ackLog = new ConcurrentQueue<(string Host, int CommitsSoFar)>();
        for (var i = 0; i < 8; i++)
        {
            var host = i < 4 ? "a" : "b";
            await destination.SendAsync(AckToken.Create(_ => ackLog.Enqueue((host, storage.CommitLog.Count))), Event(i, host));
        }

        var drain = destination.FlushAsync().AsTask();
        await storage.CommitEntered.Task;
        Assert.That(ackLog, Is.Empty, "no ack while the commit has not returned");
        Assert.That(Committed(_root), Is.Empty, "no file visible before the commit");

        storage.Gate.SetResult();
        await drain;

        var commits = storage.CommitLog.ToArray();
        Assert.That(commits, Has.Length.EqualTo(2));
        var firstHost = commits[0].StartsWith("host=a", StringComparison.Ordinal) ? "a" : "b";
        var acks = ackLog.ToArray();
        Assert.That(acks, Has.Length.EqualTo(8));
        Assert.That(acks.Take(4).Select(a => a.Host), Has.All.EqualTo(firstHost), "the file committed first is acked first");
        Assert.That(acks.Take(4).Select(a => a.CommitsSoFar), Has.All.EqualTo(1), "acked right after its own commit");
        Assert.That(acks.Skip(4).Select(a => a.CommitsSoFar), Has.All.EqualTo(2));
    }

    [Test]
    public async Task Pipeline_PartitionsAlternatingEveryMessage_EachRowInItsOwnPartitionFile()
    {
        // Within a batch, rows of three partitions come in turn (A, B, C, A, ...): each must land in its own file.
        var options = Options(Storage(_root), batchSize: 50);
        options.Partitioning = ByHour();
        await using var destination = new ParquetDestination<SinkEvent>(options);
        var messages = Enumerable.Range(0, 300).Select(i => Event(i, "host", minute: (i % 3) * 60)).ToList();
        var outcomes = new ConcurrentBag<AckOutcome>();
        var source = new EnumerableSource<SinkEvent>(messages, (_, outcome) => outcomes.Add(outcome));

        await Kawa.Dataflow.Pipeline.Create("lake").From(source).To(destination).Build(new PipelineOptions { MaxInFlightMessages = 1000 }).RunAsync();

        var result = DuckDb.Query($"SELECT hour, count(*) AS n, sum(Id) AS s, count(DISTINCT Id % 3) AS k FROM read_parquet({DuckDb.Lit(_root.Path + "/**/*.parquet")}, hive_partitioning=true) GROUP BY hour ORDER BY hour");
        Assert.That(result.Rows, Has.Length.EqualTo(3));
        for (var hour = 0; hour < 3; hour++)
        {
            Assert.That(result.Long(hour, "hour"), Is.EqualTo(Start.Hour + hour));
            Assert.That(result.Long(hour, "n"), Is.EqualTo(100));
            Assert.That(result.Long(hour, "s"), Is.EqualTo(Enumerable.Range(0, 300).Where(i => i % 3 == hour).Sum()));
            Assert.That(result.Long(hour, "k"), Is.EqualTo(1), "only rows of this hour");
        }

        Assert.That(outcomes, Has.Count.EqualTo(300).And.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task Pipeline_BatchLargerThanFileMaxRows_SplitOverFilesOfAtMostThatMany()
    {
        // One flushed batch of 1,000 rows with FileMaxRows 300: the rows are split over files as they come, each file
        // committed at 300, and the batch is acked only once the last file holding its rows has committed.
        var options = Options(Storage(_root), batchSize: 1000);
        options.FileMaxRows = 300;
        options.MaxOpenFiles = 2;
        await using var destination = new ParquetDestination<SinkEvent>(options);
        var messages = Enumerable.Range(0, 1000).Select(i => Event(i)).ToList();
        var outcomes = new ConcurrentBag<AckOutcome>();
        var source = new EnumerableSource<SinkEvent>(messages, (_, outcome) => outcomes.Add(outcome));

        await Kawa.Dataflow.Pipeline.Create("lake").From(source).To(destination).Build(new PipelineOptions { MaxInFlightMessages = 2000 }).RunAsync();

        var result = DuckDb.Query($"SELECT count(*) AS n, min(Id) AS first FROM read_parquet({DuckDb.Lit(_root.Path + "/**/*.parquet")}, filename=true) GROUP BY filename ORDER BY first");
        Assert.That(Enumerable.Range(0, result.Rows.Length).Select(i => result.Long(i, "n")), Is.EqualTo(new long[] { 300, 300, 300, 100 }));
        Assert.That(Enumerable.Range(0, result.Rows.Length).Select(i => result.Long(i, "first")), Is.EqualTo(new long[] { 0, 300, 600, 900 }), "rows keep their order across the split");
        Assert.That(outcomes, Has.Count.EqualTo(1000).And.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task Partitioning_HostileValue_StaysUnderTheRootEscaped()
    {
        var options = Options(Storage(_root), batchSize: 2);
        options.Partitioning = PartitionPath<SinkEvent>.Parse("origin={key}");
        await using var destination = new ParquetDestination<SinkEvent>(options);
        await destination.SendAsync(AckToken.None(), Event(1, "../../etc"));
        await destination.SendAsync(AckToken.None(), Event(2, "ok"));
        await destination.FlushAsync();

        var files = Committed(_root);
        Assert.That(files, Has.Length.EqualTo(2));
        Assert.That(files.Select(f => f.Split('/')[0]), Is.EquivalentTo(new[] { "origin=" + PartitionValue.Escape("../../etc"), "origin=ok" }));
        Assert.That(Directory.GetFileSystemEntries(Path.GetDirectoryName(_root.Path)!).Where(e => e.EndsWith("etc", StringComparison.Ordinal)), Is.Empty);
        var hosts = DuckDb.Query($"SELECT origin FROM read_parquet({DuckDb.Lit(_root.Path + "/**/*.parquet")}, hive_partitioning=true) ORDER BY Id");
        Assert.That(hosts.Str(1, "origin"), Is.EqualTo("ok"));
    }

    [Test]
    public async Task MemoryBudget_ManyOpenFiles_BufferedBytesStayWithinTheBudget()
    {
        // Unbuffered files: a 64 KiB write buffer per file would not fit this budget (see MemoryBudget_ManyOpenLocalFiles_...).
        var options = Options(Storage(_root, bufferSize: 0), batchSize: 20);
        options.Partitioning = PartitionPath<SinkEvent>.Parse("host={key}");
        options.MemoryBudgetBytes = 32 * 1024;
        await using var destination = new ParquetDestination<SinkEvent>(options);
        var payload = new string('p', 200);
        for (var i = 0; i < 4000; i++)
        {
            var message = Event(i, "h" + (i % 4));
            message.Value.Host = payload + i;
            await destination.SendAsync(AckToken.None(), message);
        }

        Assert.That(destination.BufferedBytes, Is.LessThanOrEqualTo(options.MemoryBudgetBytes));
        await destination.FlushAsync();

        Assert.That(destination.PeakBufferedBytes, Is.GreaterThan(0).And.LessThanOrEqualTo(options.MemoryBudgetBytes));
        var files = Committed(_root);
        Assert.That(files, Has.Length.EqualTo(4), "the budget writes row groups out; it does not roll files");
        await using (var reader = await ParquetReader.OpenAsync(_root.Combine(files[0])))
        {
            Assert.That(reader.RowGroups, Has.Count.GreaterThan(1), "the largest buffer was written out as a row group");
        }

        Assert.That(await ReadAllAsync(_root), Has.Count.EqualTo(4000));
    }

    [Test]
    public async Task MemoryBudget_ManyOpenLocalFiles_WriteBuffersCountedAndFilesCommittedEarly()
    {
        // 16 partitions on a local lake under a 512 KiB budget: each open file holds its 64 KiB write buffer, 1 MiB in
        // all. Counted outside the budget, the buffers alone would pass it; counted, the sink commits the files
        // holding the most once their row groups are written out.
        var storage = Storage(_root);
        const long budget = 512 * 1024;
        const int rows = 16_000;
        var options = Options(storage, batchSize: 100);
        options.Partitioning = PartitionPath<SinkEvent>.Parse("p={key}");
        options.MemoryBudgetBytes = budget;
        var acked = 0;
        await using (var destination = new ParquetDestination<SinkEvent>(options))
        {
            for (var i = 0; i < rows; i++)
            {
                // Runs of 100 rows per partition, so each flush appends to one file.
                var message = Event(i, "p" + (i / 100 % 16));
                await destination.SendAsync(AckToken.Create(outcome =>
                {
                    if (outcome.Kind == AckKind.Ack)
                    {
                        Interlocked.Increment(ref acked);
                    }
                }), message);
            }

            Assert.That(destination.BufferedBytes, Is.LessThanOrEqualTo(budget));
            await destination.FlushAsync();

            Assert.That(destination.PeakBufferedBytes, Is.GreaterThan(budget / 2).And.LessThanOrEqualTo(budget),
                "row-group buffers plus file write buffers, measured after every append and every budget enforcement");
        }

        // The storage's gauge counts a buffer when its file opens, before the sink can make room for it: at most one
        // buffer over the budget.
        Assert.That(storage.Memory.Peak, Is.GreaterThan(0).And.LessThanOrEqualTo(budget + new LocalLakeStorageOptions().BufferSize));
        Assert.That(storage.Memory.Current, Is.Zero, "every file's buffer was released at its commit");
        Assert.That(acked, Is.EqualTo(rows));
        Assert.That(Committed(_root), Has.Length.GreaterThan(16), "files were committed early to free their buffers");
        Assert.That(await ReadAllAsync(_root), Has.Count.EqualTo(rows));
    }

    [Test]
    public async Task MemoryBudget_FlushThatWouldPassIt_WritesRowGroupsOutBeforeAppending()
    {
        // Each flush is 50 rows (~12 KB buffered) for one of 4 partitions; the budget is 32 KB. Appending a flush to
        // full buffers would pass the budget by up to a whole flush: room must be made before the rows are accepted.
        // Unbuffered files, so only row groups count.
        var options = Options(Storage(_root, bufferSize: 0), batchSize: 50);
        options.Partitioning = PartitionPath<SinkEvent>.Parse("host={key}");
        options.MemoryBudgetBytes = 32 * 1024;
        await using var destination = new ParquetDestination<SinkEvent>(options);
        var payload = new string('q', 200);
        var probes = new List<AckProbe>();
        for (var i = 0; i < 2000; i++)
        {
            var message = Event(i, "h" + (i / 50 % 4));
            message.Value.Host = payload + i;
            var probe = new AckProbe();
            probes.Add(probe);
            await destination.SendAsync(probe, message);
        }

        Assert.That(destination.PeakBufferedBytes, Is.GreaterThan(options.MemoryBudgetBytes / 2).And.LessThanOrEqualTo(options.MemoryBudgetBytes),
            "measured after every append, the buffers never passed the budget");
        await destination.FlushAsync();

        Assert.That(destination.PeakBufferedBytes, Is.LessThanOrEqualTo(options.MemoryBudgetBytes));
        foreach (var probe in probes)
        {
            Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        }

        var rows = await ReadAllAsync(_root);
        Assert.That(rows.Select(r => r.Id).Order(), Is.EqualTo(Enumerable.Range(0, 2000).Select(i => (long)i)));
    }

    [Test]
    public async Task MaxOpenFiles_Exceeded_CommitsTheLeastRecentlyUsedFile()
    {
        var options = Options(Storage(_root), batchSize: 1);
        options.Partitioning = PartitionPath<SinkEvent>.Parse("host={key}");
        options.MaxOpenFiles = 2;
        await using var destination = new ParquetDestination<SinkEvent>(options);
        var a = new AckProbe();
        await destination.SendAsync(a, Event(1, "a"));
        await destination.SendAsync(AckToken.None(), Event(2, "b"));
        await destination.SendAsync(AckToken.None(), Event(3, "b"));
        await destination.SendAsync(AckToken.None(), Event(4, "c"));

        Assert.That(await a.WaitAsync(), Is.EqualTo(AckOutcome.Acked), "opening c committed a, the least recently written");
        Assert.That(Committed(_root), Has.Length.EqualTo(1).And.All.StartWith("host=a/"));
        await destination.FlushAsync();
        Assert.That(Committed(_root), Has.Length.EqualTo(3));
    }

    [Test]
    public async Task Metadata_FileFooter_HasSchemaFingerprintAndLineage()
    {
        await using var destination = new ParquetDestination<SinkEvent>(Options(Storage(_root), batchSize: 5));
        for (var i = 0; i < 10; i++)
        {
            var message = Event(i) with { Attributes = MessageAttributes.CreateBuilder().Set(MessageAttributeKeys.Stream, "ORDERS").Set(MessageAttributeKeys.StreamSequence, (ulong)(100 + i)).Build() };
            await destination.SendAsync(AckToken.None(), message);
        }

        await destination.SendAsync(AckToken.None(), Event(99)); // no lineage attributes: not counted
        await destination.FlushAsync();

        await using var reader = await ParquetReader.OpenAsync(_root.Combine(Committed(_root).Single()));
        Assert.That(reader.KeyValueMetadata["kawa.schema.fingerprint"], Is.EqualTo(SchemaFingerprint.Of(ParquetSchema.FromType<SinkEvent>())));
        using var lineage = JsonDocument.Parse(reader.KeyValueMetadata["kawa.lineage"]!);
        var entry = lineage.RootElement.EnumerateArray().Single();
        Assert.That(entry.GetProperty("stream").GetString(), Is.EqualTo("ORDERS"));
        Assert.That(entry.GetProperty("first").GetUInt64(), Is.EqualTo(100));
        Assert.That(entry.GetProperty("last").GetUInt64(), Is.EqualTo(109));
        Assert.That(entry.GetProperty("rows").GetInt64(), Is.EqualTo(10));
    }

    [Test]
    public async Task CreateDynamic_SchemaChanges_StartsANewFile()
    {
        var v1 = new ParquetSchemaBuilder().Add("id", ParquetValueType.Int64, nullable: false).Build();
        var v2 = new ParquetSchemaBuilder().Add("id", ParquetValueType.Int64, nullable: false).Add("note", ParquetValueType.String).Build();
        var options = new ParquetDestinationOptions<int>
        {
            Storage = Storage(_root),
            KeepAliveInterval = Timeout.InfiniteTimeSpan,
            Batching = new BatchingOptions<int> { MaxBatchSize = 3, MaxBatchAge = Timeout.InfiniteTimeSpan },
        };
        await using var destination = ParquetDestination<int>.CreateDynamic(options, m => m.Value < 3 ? new DynamicRow(v1, [(long)m.Value]) : new DynamicRow(v2, [(long)m.Value, "n" + m.Value]));
        for (var i = 0; i < 6; i++)
        {
            await destination.SendAsync(AckToken.None(), new Message<int>(i));
        }

        await destination.FlushAsync();

        var files = Committed(_root);
        Assert.That(files, Has.Length.EqualTo(2));
        var fingerprints = new List<string?>();
        foreach (var file in files)
        {
            await using var reader = await ParquetReader.OpenAsync(_root.Combine(file));
            fingerprints.Add(reader.KeyValueMetadata["kawa.schema.fingerprint"]);
            Assert.That(reader.RowCount, Is.EqualTo(3));
        }

        Assert.That(fingerprints, Is.EquivalentTo(new[] { SchemaFingerprint.Of(v1), SchemaFingerprint.Of(v2) }));
    }

    [Test]
    public async Task CreateDynamic_EachMessage_MapsItsRowOnceNotAgainToWriteIt()
    {
        var schema = new ParquetSchemaBuilder().Add("id", ParquetValueType.Int64, nullable: false).Add("note", ParquetValueType.String).Build();
        var options = new ParquetDestinationOptions<int>
        {
            Storage = Storage(_root),
            KeepAliveInterval = Timeout.InfiniteTimeSpan,
            Batching = new BatchingOptions<int> { MaxBatchSize = 4, MaxBatchAge = Timeout.InfiniteTimeSpan },
        };
        var calls = 0;
        await using var destination = ParquetDestination<int>.CreateDynamic(options, m =>
        {
            Interlocked.Increment(ref calls);
            return new DynamicRow(schema, [(long)m.Value, "n" + m.Value]);
        });
        for (var i = 0; i < 8; i++)
        {
            await destination.SendAsync(AckToken.None(), new Message<int>(i));
        }

        await destination.FlushAsync();

        // One mapping per message; opening the file takes its schema from the first row's mapping, not a new one.
        Assert.That(calls, Is.EqualTo(8));
        await using var reader = await ParquetReader.OpenAsync(_root.Combine(Committed(_root).Single()));
        Assert.That(reader.RowCount, Is.EqualTo(8));
    }

    [Test]
    public async Task Create_RowSelector_WritesRowsOfAnotherType()
    {
        var options = new ParquetDestinationOptions<string> { Storage = Storage(_root), KeepAliveInterval = Timeout.InfiniteTimeSpan };
        await using var destination = ParquetDestination<string>.Create(options, m => new SinkEvent { Id = m.Value.Length, Host = m.Value, Ts = Start });
        await destination.SendAsync(AckToken.None(), new Message<string>("hello"));
        await destination.FlushAsync();

        var rows = await ReadAllAsync(_root);
        Assert.That(rows.Single().Host, Is.EqualTo("hello"));
        Assert.That(rows.Single().Id, Is.EqualTo(5));
    }

    [Test]
    public async Task Pipeline_InFlightLimitBelowTotal_RollsByRowsReleaseTheLimitAndTheRunCompletes()
    {
        var options = Options(Storage(_root), batchSize: 5);
        options.FileMaxRows = 10;
        await using var destination = new ParquetDestination<SinkEvent>(options);
        var outcomes = new ConcurrentBag<AckOutcome>();
        var source = new EnumerableSource<SinkEvent>(Enumerable.Range(0, 200).Select(i => Event(i)), (_, o) => outcomes.Add(o));

        // Only 20 messages may be unacked at once: the run finishes only because committed files ack their rows.
        await Kawa.Dataflow.Pipeline.Create("bounded").From(source).To(destination).Build(new PipelineOptions { MaxInFlightMessages = 20 }).RunAsync();

        Assert.That(outcomes, Has.Count.EqualTo(200).And.All.EqualTo(AckOutcome.Acked));
        Assert.That(Committed(_root), Has.Length.EqualTo(20));
    }

    [Test]
    public async Task SendAsync_NullInRequiredColumn_FlushFailsNamingFileAndRow_MessageNacked()
    {
        var schema = new ParquetSchemaBuilder().Add("id", ParquetValueType.Int64, nullable: false).Build();
        var options = new ParquetDestinationOptions<long?>
        {
            Storage = Storage(_root),
            KeepAliveInterval = Timeout.InfiniteTimeSpan,
            Batching = new BatchingOptions<long?> { MaxBatchSize = 1, MaxRetries = 0 },
        };
        await using var destination = ParquetDestination<long?>.CreateDynamic(options, m => new DynamicRow(schema, [m.Value]));
        var good = new AckProbe();
        var bad = new AckProbe();
        await destination.SendAsync(good, new Message<long?>(1));
        await destination.SendAsync(bad, new Message<long?>(null));

        Assert.That((await bad.WaitAsync()).Kind, Is.EqualTo(AckKind.Nack), "a row that cannot be written is never acked");
        var error = (await Assert.ThrowsAsync<BatchFlushException>(async () => await destination.FlushAsync()))!;
        Assert.That(error.InnerException, Is.TypeOf<Kawa.Dataflow.Parquet.Writing.ParquetWriteException>().With.Message.Contain("part-").And.Message.Contain("Row 0"));
    }

    [Test]
    public void Options_SeveralInvalidSettings_AllReportedAtOnce()
    {
        var options = new ParquetDestinationOptions<SinkEvent>
        {
            RowGroupMaxRows = 0,
            FileMaxRows = 0,
            MaxOpenFiles = 0,
            MemoryBudgetBytes = 1,
            KeepAliveInterval = TimeSpan.FromMinutes(5),
            Batching = new BatchingOptions<SinkEvent> { FlushParallelism = 2 },
        };

        var error = Assert.Throws<ArgumentException>(() => _ = new ParquetDestination<SinkEvent>(options))!;
        Assert.That(error.Message, Does.Contain("Storage is required")
            .And.Contain("RowGroupMaxRows").And.Contain("FileMaxRows").And.Contain("MaxOpenFiles")
            .And.Contain("MemoryBudgetBytes").And.Contain("KeepAliveInterval").And.Contain("FlushParallelism"));
    }
}
