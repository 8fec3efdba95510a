using System.Globalization;
using System.Text.RegularExpressions;
using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Parquet;

public partial class LargeAndRealDataTests
{
    public sealed record Event(long Id, DateTime At, string Host, int Status, double Latency, string? Agent);

    [Test]
    public async Task WriteAsync_OneMillionRowsManyRowGroups_DuckDbCountsAndAggregatesMatch()
    {
        using var dir = new TempDir();
        var path = dir.File("million.parquet");
        const int Rows = 1_000_000;
        long sumStatus = 0, nullAgents = 0;
        double sumLatency = 0;
        var start = new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        await using (var writer = new ParquetWriter<Event>(File.Create(path), new ParquetWriterOptions { RowGroupMaxRows = 100_000 }))
        {
            var batch = new List<Event>(10_000);
            for (int i = 0; i < Rows; i++)
            {
                var e = new Event(i, start.AddMilliseconds(i), "host-" + (i % 50), 200 + (i % 7 * 50), i % 1000 / 8.0, i % 5 == 0 ? null : "agent-" + (i % 3));
                sumStatus += e.Status;
                sumLatency += e.Latency;
                nullAgents += e.Agent is null ? 1 : 0;
                batch.Add(e);
                if (batch.Count == batch.Capacity)
                {
                    await writer.WriteAsync(batch);
                    batch.Clear();
                }
            }
        }

        var r = DuckDb.Query($"SELECT count(*)::BIGINT AS n, sum(Status)::BIGINT AS s, sum(Latency) AS l, count(*) FILTER (WHERE Agent IS NULL)::BIGINT AS na, min(Id)::BIGINT AS mn, max(Id)::BIGINT AS mx, count(DISTINCT Host)::BIGINT AS hosts, epoch_us(max(\"At\"))::BIGINT AS last FROM read_parquet({DuckDb.Lit(path)})");
        var groups = DuckDb.Query($"SELECT count(DISTINCT row_group_id)::BIGINT AS g FROM parquet_metadata({DuckDb.Lit(path)})");

        Assert.Multiple(() =>
        {
            Assert.That(r.Long(0, "n"), Is.EqualTo(Rows));
            Assert.That(r.Long(0, "s"), Is.EqualTo(sumStatus));
            Assert.That(r.Double(0, "l"), Is.EqualTo(sumLatency).Within(1e-6));
            Assert.That(r.Long(0, "na"), Is.EqualTo(nullAgents));
            Assert.That(r.Long(0, "mn"), Is.Zero);
            Assert.That(r.Long(0, "mx"), Is.EqualTo(Rows - 1));
            Assert.That(r.Long(0, "hosts"), Is.EqualTo(50));
            Assert.That(r.Long(0, "last"), Is.EqualTo((start.AddMilliseconds(Rows - 1).Ticks - DateTime.UnixEpoch.Ticks) / 10));
            Assert.That(groups.Long(0, "g"), Is.EqualTo(10));
        });
    }

    /// <summary>Row <paramref name="i"/> of the million-row file: every column a function of the index, strings from a few values.</summary>
    private static Event MillionRow(int i, DateTime start) =>
        new(i, start.AddMilliseconds(i), "host-" + (i % 50), 200 + (i % 7 * 50), i % 1000 / 8.0, i % 5 == 0 ? null : "agent-" + (i % 3));

    [Test]
    public async Task ReadAsync_OneMillionRowsManyRowGroups_OurReaderReturnsEveryCell()
    {
        using var dir = new TempDir();
        var path = dir.File("million.parquet");
        const int Rows = 1_000_000;
        var start = new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using (var writer = new ParquetWriter<Event>(File.Create(path), new ParquetWriterOptions { RowGroupMaxRows = 100_000, PageSize = 256 * 1024 }))
        {
            var batch = new List<Event>(10_000);
            for (int i = 0; i < Rows; i++)
            {
                batch.Add(MillionRow(i, start));
                if (batch.Count == batch.Capacity)
                {
                    await writer.WriteAsync(batch);
                    batch.Clear();
                }
            }
        }

        var written = clock.Elapsed;
        await using var reader = await ParquetReader.OpenAsync(path);
        Assert.That(reader.RowGroups.Select(g => g.RowCount), Is.EqualTo(Enumerable.Repeat(100_000L, 10)));

        int read = 0, mismatches = 0;
        string? firstMismatch = null;
        await foreach (var e in reader.ReadAsync<Event>())
        {
            var x = MillionRow(read, start);
            if (e.Id != x.Id || e.At.Ticks != x.At.Ticks || e.At.Kind != DateTimeKind.Utc || e.Host != x.Host || e.Status != x.Status
                || BitConverter.DoubleToInt64Bits(e.Latency) != BitConverter.DoubleToInt64Bits(x.Latency) || e.Agent != x.Agent)
            {
                mismatches++;
                firstMismatch ??= $"row {read}: expected {x}, got {e} ({e.At.Kind})";
            }

            read++;
        }

        TestContext.Out.WriteLine($"wrote {Rows} rows in {written.TotalSeconds:F1} s, read and compared them in {(clock.Elapsed - written).TotalSeconds:F1} s");
        Assert.That(read, Is.EqualTo(Rows));
        Assert.That(mismatches, Is.Zero, firstMismatch);
    }

    public sealed record AccessLog(string Ip, DateTimeOffset Time, string Method, string Path, int Status, long? Bytes, string? Referer, string? Agent);

    [GeneratedRegex("""^(\S+) \S+ \S+ \[([^\]]+)\] "(\S+) (\S+)[^"]*" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"$""")]
    private static partial Regex Combined();

    [Test]
    public async Task WriteAsync_RealApacheLogLines_DuckDbStatusCountsEqualOurs()
    {
        var file = DuckDb.SharedData("access-logs/apache-combined-10k.log");
        Assert.That(File.Exists(file), Is.True, $"test data missing: {file}");
        var logs = new List<AccessLog>();
        foreach (var line in File.ReadLines(file).Take(5000))
        {
            var m = Combined().Match(line);
            if (!m.Success)
            {
                continue;
            }

            logs.Add(new AccessLog(
                m.Groups[1].Value,
                DateTimeOffset.ParseExact(m.Groups[2].Value, "dd/MMM/yyyy:HH:mm:ss zzz", CultureInfo.InvariantCulture),
                m.Groups[3].Value, m.Groups[4].Value, int.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture),
                m.Groups[6].Value == "-" ? null : long.Parse(m.Groups[6].Value, CultureInfo.InvariantCulture),
                m.Groups[7].Value == "-" ? null : m.Groups[7].Value, m.Groups[8].Value == "-" ? null : m.Groups[8].Value));
        }

        Assert.That(logs, Has.Count.GreaterThan(4000), "most lines parse");
        using var dir = new TempDir();
        var path = await RoundTripTests.WriteAsync(dir, logs, batch: 700);

        var byStatus = DuckDb.Query($"SELECT Status, count(*)::BIGINT AS n FROM read_parquet({DuckDb.Lit(path)}) GROUP BY Status ORDER BY Status");
        var totals = DuckDb.Query($"SELECT sum(Bytes)::BIGINT AS b, count(DISTINCT Ip)::BIGINT AS ips, epoch_us(min(Time))::BIGINT AS first FROM read_parquet({DuckDb.Lit(path)})");
        var expected = logs.GroupBy(l => l.Status).OrderBy(g => g.Key).Select(g => (g.Key.ToString(CultureInfo.InvariantCulture), (long)g.Count())).ToList();

        Assert.That(Enumerable.Range(0, byStatus.Rows.Length).Select(i => (byStatus.Str(i, "Status")!, byStatus.Long(i, "n"))), Is.EqualTo(expected));
        Assert.That(totals.Long(0, "b"), Is.EqualTo(logs.Sum(l => l.Bytes ?? 0)));
        Assert.That(totals.Long(0, "ips"), Is.EqualTo(logs.Select(l => l.Ip).Distinct().Count()));
        Assert.That(totals.Long(0, "first"), Is.EqualTo((logs.Min(l => l.Time.UtcTicks) - DateTime.UnixEpoch.Ticks) / 10));

        await using var reader = await ParquetReader.OpenAsync(path);
        var back = await reader.ReadAllAsync<AccessLog>();
        Assert.That(back, Is.EqualTo(logs));
    }
}
