using System.Globalization;
using System.Text.RegularExpressions;
using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Tests.Cli.Commands;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.EndToEnd;

/// <summary>
/// The main job with real processes and real data: the 10,000 lines of <c>apache-combined-10k.log</c> through
/// <c>kawa publish</c> → nats-server JetStream → <c>kawa run --drain</c> → Parquet lake, read back with DuckDB and compared
/// with <c>ground-truth.js</c>, which parses the log with its own rules and no kawa code.
/// </summary>
/// <remarks>
/// Line 8,899 of the log has a user agent cut short (no closing quote). The rule both sides follow: the fields through
/// the size decide whether a line is an event, so that line is an event (its agent runs to the end of the line), not a
/// dead letter; the ground truth lists no rejected line and the dead-letter lake stays empty.
/// </remarks>
[NonParallelizable]
public partial class GroundTruthEndToEndTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-e2e-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task Drain_TenThousandRealLines_LakeEqualsIndependentGroundTruth()
    {
        var truth = await GroundTruth.ComputeAsync(TestPaths.AccessLog10k);
        Assert.That(truth.Events, Is.EqualTo(10_000), "the ground truth counts every line as an event (8,899 included)");
        await using var server = await NatsServerProcess.StartAsync();
        await LakeJob.PublishAsync(_dir, server, "ACCESS", TestPaths.AccessLog10k);
        var lake = new Lake(Path.Combine(_dir, "lake"));
        var dead = new Lake(Path.Combine(_dir, "dead"));

        // The shipped example, as the quick start runs it; only the server, paths and roll age are overridden.
        var run = await KawaProcess.RunAsync(TimeSpan.FromMinutes(2), TestPaths.RepoRoot, null, "run", "--drain",
            "--config", "examples/jetstream-access-log-to-lake.json",
            "--set", $"pipeline.source.servers[0]={server.Url}", "--set", $"pipeline.destination.path={lake.Root}",
            "--set", $"pipeline.deadLetter.path={dead.Root}",
            // Short roll age: `kawa run --drain` into Parquet currently ends only once the last file reaches it.
            "--set", "pipeline.destination.rollAge=00:00:02", "--set", "pipeline.deadLetter.rollAge=00:00:02");

        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Ok), run.Stderr);
        var (rows, bytes) = await lake.TotalsAsync();
        var consumer = await LakeJob.ConsumerAsync(server, "ACCESS", "kawa-access-lake");
        var perStatus = await lake.RowsPerStatusAsync();
        var perHour = await lake.RowsPerHourAsync();
        var perPartition = await lake.RowsPerPartitionAsync();
        Assert.Multiple(() =>
        {
            Assert.That(rows, Is.EqualTo(truth.Events), "one row per event, none lost or duplicated");
            Assert.That(perStatus, Is.EquivalentTo(truth.ByStatus), "rows per status code");
            Assert.That(bytes, Is.EqualTo(truth.Bytes), "sum of bytes ('-' is 0)");
            Assert.That(perHour, Is.EquivalentTo(truth.ByHour), "rows per UTC hour of ts");
            Assert.That(perPartition, Is.EquivalentTo(truth.ByPartition), "rows per dt=/hour= directory");
            Assert.That(dead.VisibleFiles(), Is.Empty, "no dead letters: the truncated user agent on line 8,899 is an event");
            Assert.That(lake.OtherFiles(), Is.Empty, "no temporary files left after a clean run");
            Assert.That(consumer.NumPending, Is.Zero, "nothing left to deliver");
            Assert.That(consumer.NumAckPending, Is.Zero, "every message acked after its file committed");
            Assert.That(run.Stderr, Does.Contain($"{truth.Events} received, {truth.Events} acked, 0 negatively acked, 0 terminated, 0 dead-lettered"));
        });
        var truncated = await lake.QueryAsync(
            $"SELECT agent FROM read_parquet({Parquet.DuckDb.Lit(Path.Combine(lake.Root, "**", "*.parquet"))}, hive_partitioning = true) WHERE path = '/scripts/grok-py-test/configlib.py' AND agent LIKE '%Googlebot%' AND agent NOT LIKE '%)'");
        Assert.That(truncated.Rows, Has.Length.EqualTo(1), "line 8,899 is a row whose agent runs to the end of the line");
        Assert.That(truncated.Str(0, "agent"), Is.EqualTo("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html"));
    }

    [Test]
    public async Task Drain_SameInstantsLoggedAtNonUtcOffsets_PartitionsIdenticalToUtcRun()
    {
        // The same instants written as local times at -0700 and +0530: partitions must not move.
        var shifted = Path.Combine(_dir, "shifted.log");
        var lines = File.ReadAllLines(TestPaths.AccessLog10k);
        await File.WriteAllLinesAsync(shifted, lines.Select((l, i) => Shift(l, i % 2 == 0 ? TimeSpan.FromHours(-7) : new TimeSpan(5, 30, 0))));
        Assert.That(File.ReadLines(shifted).Count(l => l.Contains(" +0000]", StringComparison.Ordinal)), Is.Zero, "every timestamp was rewritten");

        await using var server = await NatsServerProcess.StartAsync();
        await LakeJob.PublishAsync(_dir, server, "UTC", TestPaths.AccessLog10k, "utc.log");
        await LakeJob.PublishAsync(_dir, server, "SHIFTED", shifted, "shifted.log");
        var utc = new Lake(Path.Combine(_dir, "utc"));
        var local = new Lake(Path.Combine(_dir, "shifted"));
        foreach (var (stream, lake) in new[] { ("UTC", utc), ("SHIFTED", local) })
        {
            var config = LakeJob.WriteConfig(_dir, new LakeJobSettings(server.Url, lake.Root, Path.Combine(_dir, "dead-" + stream)) { Stream = stream }, $"{stream}.json");
            var run = await KawaProcess.RunAsync(TimeSpan.FromMinutes(2), _dir, null, "run", "--drain", "--config", config);
            Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Ok), run.Stderr);
        }

        var truth = await GroundTruth.ComputeAsync(shifted);
        var utcTruth = await GroundTruth.ComputeAsync(TestPaths.AccessLog10k);
        var utcPartitions = await utc.RowsPerPartitionAsync();
        var localPartitions = await local.RowsPerPartitionAsync();
        var files = await local.FilesAsync();
        var utcHours = await utc.RowsPerHourAsync();
        var localHours = await local.RowsPerHourAsync();
        Assert.Multiple(() =>
        {
            Assert.That(truth.ByPartition, Is.EquivalentTo(utcTruth.ByPartition), "the ground truth sees the same UTC hours");
            Assert.That(utcPartitions, Is.EquivalentTo(truth.ByPartition), "UTC run: rows per partition");
            Assert.That(localPartitions, Is.EquivalentTo(utcPartitions), "shifted run: the same partitions with the same rows");
            Assert.That(files.Where(f => f.FirstHour != f.LastHour || Lake.PartitionOf(f.FirstHour) != f.Partition), Is.Empty,
                "every file holds only rows of its partition's UTC hour");
            Assert.That(localHours, Is.EquivalentTo(utcHours), "ts is stored as the same instants");
        });
    }

    [GeneratedRegex(@"\[(\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2}) \+0000\]")]
    private static partial Regex UtcTime();

    /// <summary>Rewrites the line's <c>+0000</c> time as the same instant at <paramref name="offset"/>.</summary>
    private static string Shift(string line, TimeSpan offset) => UtcTime().Replace(line, m =>
    {
        var utc = DateTimeOffset.ParseExact(m.Groups[1].Value, "dd/MMM/yyyy:HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        var local = utc.ToOffset(offset);
        var sign = offset < TimeSpan.Zero ? '-' : '+';
        return string.Create(CultureInfo.InvariantCulture, $"[{local:dd/MMM/yyyy:HH:mm:ss} {sign}{offset.Duration():hhmm}]");
    }, 1);
}
