using System.Collections.Concurrent;
using System.Globalization;
using System.Text.RegularExpressions;
using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Sink;
using Kawa.Dataflow.Parquet.Source;
using Kawa.Dataflow.Tests.Parquet.Lake;
using static Kawa.Dataflow.Tests.Parquet.Sink.SinkTestSupport;

namespace Kawa.Dataflow.Tests.Parquet.Sink;

/// <summary>One parsed Apache combined log line.</summary>
public sealed class AccessLogRow
{
    public string Client { get; set; } = "";

    public DateTime Time { get; set; }

    public string Method { get; set; } = "";

    public string Path { get; set; } = "";

    public int Status { get; set; }

    public long? Bytes { get; set; }
}

public sealed partial class ParquetLakeEndToEndTests
{
    private TempDirectory _root = null!;

    [SetUp]
    public void SetUp() => _root = new TempDirectory();

    [TearDown]
    public void TearDown() => _root.Dispose();

    [GeneratedRegex("""^(\S+) \S+ \S+ \[([^\]]+)\] "(\S+) (\S+)[^"]*" (\d{3}) (\S+)""")]
    private static partial Regex CombinedLog();

    private static AccessLogRow Parse(string line)
    {
        var m = CombinedLog().Match(line);
        Assert.That(m.Success, Is.True, line);
        var raw = m.Groups[2].Value; // 17/May/2015:10:05:03 +0000
        var time = DateTimeOffset.ParseExact(raw[..^2] + ":" + raw[^2..], "dd/MMM/yyyy:HH:mm:ss zzz", CultureInfo.InvariantCulture);
        return new AccessLogRow
        {
            Client = m.Groups[1].Value,
            Time = time.UtcDateTime,
            Method = m.Groups[3].Value,
            Path = m.Groups[4].Value,
            Status = int.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture),
            Bytes = m.Groups[6].Value == "-" ? null : long.Parse(m.Groups[6].Value, CultureInfo.InvariantCulture),
        };
    }

    [Test]
    public async Task Pipeline_RealAccessLogs_PartitionedByHour_DuckDbCountsMatch()
    {
        var rows = File.ReadLines(DuckDb.SharedData("access-logs/apache-combined-10k.log")).Take(2000).Select(Parse).ToList();
        var options = new ParquetDestinationOptions<AccessLogRow>
        {
            Storage = Storage(_root),
            Partitioning = PartitionPath<AccessLogRow>.Parse("dt={ts:yyyy-MM-dd}/hour={ts:HH}", new PartitionPathOptions<AccessLogRow> { Timestamp = m => new DateTimeOffset(m.Value.Time) }),
            Batching = new BatchingOptions<AccessLogRow> { MaxBatchSize = 100 },
        };
        await using var destination = new ParquetDestination<AccessLogRow>(options);
        var outcomes = new ConcurrentBag<AckOutcome>();
        var source = new EnumerableSource<AccessLogRow>(rows.Select(r => new Message<AccessLogRow>(r)), (_, o) => outcomes.Add(o));

        await Kawa.Dataflow.Pipeline.Create("access-logs").From(source).To(destination).Build(new PipelineOptions { MaxInFlightMessages = 4096 }).RunAsync();

        var result = DuckDb.Query($"SELECT CAST(dt AS VARCHAR) AS dt, hour, count(*) AS n, sum(Status) AS s FROM read_parquet({DuckDb.Lit(_root.Path + "/**/*.parquet")}, hive_partitioning=true) GROUP BY dt, hour ORDER BY dt, hour");
        var expected = rows.GroupBy(r => (Day: r.Time.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), r.Time.Hour)).OrderBy(g => g.Key.Day, StringComparer.Ordinal).ThenBy(g => g.Key.Hour).ToList();
        Assert.That(expected, Has.Count.GreaterThan(1), "the sample spans several hours");
        Assert.That(result.Rows, Has.Length.EqualTo(expected.Count));
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.That(result.Str(i, "dt"), Is.EqualTo(expected[i].Key.Day));
            Assert.That(result.Long(i, "hour"), Is.EqualTo(expected[i].Key.Hour));
            Assert.That(result.Long(i, "n"), Is.EqualTo(expected[i].Count()), $"rows in hour {expected[i].Key}");
            Assert.That(result.Long(i, "s"), Is.EqualTo(expected[i].Sum(r => r.Status)));
        }

        Assert.That(outcomes, Has.Count.EqualTo(2000).And.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task ParquetSource_ReplaysWhatTheDestinationWrote_ThroughASecondPipeline()
    {
        // First pipeline: events with lineage into a partitioned lake.
        var first = new ParquetDestinationOptions<SinkEvent>
        {
            Storage = Storage(_root),
            Partitioning = PartitionPath<SinkEvent>.Parse("origin={key}"),
            FileMaxRows = 40,
            Batching = new BatchingOptions<SinkEvent> { MaxBatchSize = 10 },
        };
        var sent = Enumerable.Range(0, 150).Select(i => Event(i, "o" + (i % 3), minute: i)).ToList();
        await using (var destination = new ParquetDestination<SinkEvent>(first))
        {
            await Kawa.Dataflow.Pipeline.Create("write").From(new EnumerableSource<SinkEvent>(sent)).To(destination).Build().RunAsync();
        }

        // Second pipeline: replay the lake into another lake.
        using var copy = new TempDirectory();
        var source = new ParquetSource<SinkEvent>(new ParquetSourceOptions { Path = _root.Path });
        var files = source.ListFiles();
        Assert.That(files, Is.Ordered.Using((IComparer<string>)StringComparer.Ordinal));
        var second = new ParquetDestinationOptions<SinkEvent> { Storage = Storage(copy), Batching = new BatchingOptions<SinkEvent> { MaxBatchSize = 25 } };
        await using (var destination = new ParquetDestination<SinkEvent>(second))
        {
            await Kawa.Dataflow.Pipeline.Create("replay").From(source).To(destination).Build().RunAsync();
        }

        Assert.That(source.Acked, Is.EqualTo(150));
        Assert.That(source.NegativelyAcked, Is.Zero);
        var replayed = await ReadAllAsync(copy);
        Assert.That(replayed.OrderBy(r => r.Id).Select(r => (r.Id, r.Host, r.Ts)), Is.EqualTo(sent.Select(m => (m.Value.Id, m.Value.Host, m.Value.Ts))));

        // The copy's lineage names the source files: stream = file path, sequence = row index.
        await using var reader = await Kawa.Dataflow.Parquet.Reading.ParquetReader.OpenAsync(copy.Combine(Committed(copy).Single()));
        Assert.That(reader.KeyValueMetadata["kawa.lineage"], Does.Contain(Path.Combine(_root.Path, files[0])).And.Contain("\"first\":0"));
    }

    [Test]
    public async Task ParquetSource_PartitionFilter_ReplaysOnlyMatchingFiles_ThenEndOfStream()
    {
        var options = new ParquetDestinationOptions<SinkEvent> { Storage = Storage(_root), Partitioning = PartitionPath<SinkEvent>.Parse("origin={key}") };
        await using (var destination = new ParquetDestination<SinkEvent>(options))
        {
            for (var i = 0; i < 6; i++)
            {
                await destination.SendAsync(AckToken.None(), Event(i, i % 2 == 0 ? "even" : "odd"));
            }

            await destination.FlushAsync();
        }

        await using var source = new ParquetSource<SinkEvent>(new ParquetSourceOptions { Path = _root.Path, PartitionFilter = p => p["origin"] == "even" });
        var ids = new List<long>();
        var sequences = new List<ulong>();
        while (true)
        {
            var delivery = await source.ReceiveAsync();
            if (delivery.IsEndOfStream)
            {
                break;
            }

            ids.Add(delivery.Message.Value.Id);
            sequences.Add(delivery.Message.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence));
            delivery.Ack.Ack();
        }

        Assert.That(ids, Is.EqualTo(new long[] { 0, 2, 4 }));
        Assert.That(sequences, Is.EqualTo(new ulong[] { 0, 1, 2 }));
        Assert.That((await source.ReceiveAsync()).IsEndOfStream, Is.True, "end of stream is stable");
        Assert.That(source.Acked, Is.EqualTo(3));
    }

    [Test]
    public async Task ParquetSource_SingleFile_ReplaysItsRowsWithPathAndIndex()
    {
        await using (var destination = new ParquetDestination<SinkEvent>(new ParquetDestinationOptions<SinkEvent> { Storage = Storage(_root) }))
        {
            await destination.SendAsync(AckToken.None(), new Messages<SinkEvent>([Event(7), Event(8)]));
            await destination.FlushAsync();
        }

        var file = _root.Combine(Committed(_root).Single());
        await using var source = new ParquetSource<SinkEvent>(new ParquetSourceOptions { Path = file });
        var first = await source.ReceiveAsync();
        var second = await source.ReceiveAsync();

        Assert.That(first.Message.Value.Id, Is.EqualTo(7));
        Assert.That(second.Message.Value.Id, Is.EqualTo(8));
        Assert.That(second.Message.Attributes.GetOrDefault(MessageAttributeKeys.Stream, ""), Is.EqualTo(file));
        Assert.That(second.Message.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(1UL));
        first.Ack.Ack();
        second.Ack.Ack();
        Assert.That((await source.ReceiveAsync()).IsEndOfStream, Is.True);
        Assert.That(source.Acked, Is.EqualTo(2));
    }

    [Test]
    public void ParquetSource_MissingPath_FailsNamingIt()
    {
        var error = Assert.Throws<ArgumentException>(() => _ = new ParquetSource<SinkEvent>(new ParquetSourceOptions { Path = _root.Combine("nope") }))!;
        Assert.That(error.Message, Does.Contain("nope").And.Contain("ParquetSourceOptions.Path"));
    }
}
