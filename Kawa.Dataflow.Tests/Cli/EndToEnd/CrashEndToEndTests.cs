using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Tests.Cli.Commands;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.EndToEnd;

/// <summary>
/// Crash safety with real processes: <c>kawa run</c> (JetStream → Parquet lake) is SIGKILLed again and again — at the
/// Parquet destination's named fault points (<c>KAWA_FAULT_POINT</c>, where kawa kills itself) and at random moments
/// (the test's <c>kill -KILL</c>) — and restarted each time; then a clean <c>--drain</c> run finishes the job.
/// </summary>
/// <remarks>
/// What must hold: every published line is in the lake at least once (by stream sequence and by content); no reader
/// ever sees a partial file (DuckDB reads every visible file after every kill); no temporary file is left after the
/// clean run; duplicates are at most kills × the in-flight window (only messages delivered but unacked at a kill are
/// delivered again, and the server never lets more than maxAckPending be outstanding, nor the pipeline admit more than
/// maxInFlightMessages). Acks: a killed process acks nothing more; its unacked messages are redelivered after ackWait.
/// </remarks>
[NonParallelizable]
public class CrashEndToEndTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-e2e-crash-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task Run_KilledAtFaultPointsAndAtRandom_EveryLineLandsDuplicatesBoundedNoPartialFile()
    {
        var seed = Environment.TickCount;
        TestContext.Out.WriteLine($"random seed {seed}");
        var random = new Random(seed);
        var truth = await GroundTruth.ComputeAsync(TestPaths.AccessLog10k);
        await using var server = await NatsServerProcess.StartAsync();
        await LakeJob.PublishAsync(_dir, server, "ACCESS", TestPaths.AccessLog10k);
        var lake = new Lake(Path.Combine(_dir, "lake"));
        var settings = new LakeJobSettings(server.Url, lake.Root, Path.Combine(_dir, "dead"))
        {
            // A short ackWait so a killed run's unacked messages come back quickly; the roll age stays below it.
            AckWait = TimeSpan.FromSeconds(3),
            RollAge = TimeSpan.FromSeconds(1),
            MaxAckPending = 1000,
            Prefetch = 100,
            MaxInFlightMessages = 900, // + prefetch = maxAckPending: the most kawa accepts
            RowGroupRows = 100, // so files get row groups on disk before their footer (the after-row-group point)
        };
        var config = LakeJob.WriteConfig(_dir, settings);

        // Named points first, while most of the stream is still unconsumed, then kills at random moments.
        string?[] plan = ["mid-batch:3", "after-row-group:2", "before-rename:1", "after-rename:1", null, null, null];
        var kills = 0;
        var leftTemporary = false;
        foreach (var fault in plan)
        {
            var environment = fault is null ? null : new Dictionary<string, string> { ["KAWA_FAULT_POINT"] = fault };
            await using var daemon = KawaDaemon.Start(_dir, environment, "run", "--config", config);
            if (fault is not null)
            {
                var exit = await daemon.WaitForExitAsync(TimeSpan.FromSeconds(90));
                var name = fault.Split(':')[0];
                Assert.That(exit, Is.EqualTo(137), $"killed by SIGKILL at '{fault}'. stderr:\n{daemon.Stderr}");
                Assert.That(daemon.Stderr, Does.Contain($"fault point '{name}' reached"));
            }
            else
            {
                await KillAtRandomProgressAsync(server, daemon, random);
            }

            kills++;
            leftTemporary |= lake.TemporaryFiles().Count > 0;
            // Whatever a reader sees is whole: DuckDB reads every visible file (a torn one fails the query).
            var (rowsSoFar, _) = await lake.TotalsAsync();
            Assert.That(lake.VisibleFiles().All(f => Path.GetFileName(f).StartsWith("part-", StringComparison.Ordinal)), "only committed files are visible");
            TestContext.Out.WriteLine($"kill {kills} ({fault ?? "random"}): {rowsSoFar} rows visible, {lake.TemporaryFiles().Count} temporary files");
        }

        var final = await KawaProcess.RunAsync(TimeSpan.FromMinutes(3), _dir, null, "run", "--drain", "--config", config);

        Assert.That(final.ExitCode, Is.EqualTo(ExitCodes.Ok), final.Stderr);
        var consumer = await LakeJob.ConsumerAsync(server, "ACCESS", settings.Durable);
        var totals = await lake.QueryAsync(
            $"SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi FROM read_parquet({Parquet.DuckDb.Lit(Path.Combine(lake.Root, "**", "*.parquet"))}, hive_partitioning = true)");
        var perStatus = await lake.QueryAsync(
            $"SELECT CAST(status AS VARCHAR) AS k, count(DISTINCT seq) AS n FROM read_parquet({Parquet.DuckDb.Lit(Path.Combine(lake.Root, "**", "*.parquet"))}, hive_partitioning = true) GROUP BY k");
        var duplicates = totals.Long(0, "n") - totals.Long(0, "d");
        var bound = (long)kills * settings.InFlightWindow;
        TestContext.Out.WriteLine($"{kills} kills, {totals.Long(0, "n")} rows, {duplicates} duplicates (bound {bound})");
        Assert.Multiple(() =>
        {
            Assert.That(totals.Long(0, "d"), Is.EqualTo(10_000), "every published line is in the lake at least once");
            Assert.That((totals.Long(0, "lo"), totals.Long(0, "hi")), Is.EqualTo((1L, 10_000L)));
            Assert.That(Enumerable.Range(0, perStatus.Rows.Length).ToDictionary(i => perStatus.Str(i, "k")!, i => perStatus.Long(i, "n")), Is.EquivalentTo(truth.ByStatus),
                "each line's own content landed (distinct lines per status equal the ground truth)");
            Assert.That(duplicates, Is.LessThanOrEqualTo(bound), $"duplicates bounded by kills × in-flight window ({kills} × {settings.InFlightWindow})");
            Assert.That(duplicates, Is.Positive, "the kill after a rename left rows visible but unacked: they were redelivered and written again");
            Assert.That(leftTemporary, Is.True, "some kill left a temporary file behind (hidden from readers)");
            Assert.That(lake.OtherFiles(), Is.Empty, "no temporary or stray file after the clean run");
            Assert.That(consumer.NumPending, Is.Zero);
            Assert.That(consumer.NumAckPending, Is.Zero);
        });
    }

    // Kills once the consumer has delivered a random number of further messages (or everything is done): a random
    // moment of real progress, observed through the JetStream API, not a guessed delay.
    private static async Task KillAtRandomProgressAsync(NatsServerProcess server, KawaDaemon daemon, Random random)
    {
        var start = await LakeJob.ConsumerAsync(server, "ACCESS", "e2e-lake");
        var target = start.Delivered!.ConsumerSeq + (ulong)random.Next(50, 1500);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var info = await LakeJob.ConsumerAsync(server, "ACCESS", "e2e-lake");
            if (info.Delivered!.ConsumerSeq >= target || (info.NumPending == 0 && info.NumAckPending == 0) || daemon.HasExited)
            {
                break;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"kawa delivered {info.Delivered.ConsumerSeq} of {target}. stderr:\n{daemon.Stderr}");
            }

            await Task.Delay(20); // bounded polling of another process's state
        }

        Assert.That(daemon.HasExited, Is.False, $"kawa was still running when killed. stderr:\n{daemon.Stderr}");
        await daemon.SignalAsync("KILL");
        Assert.That(await daemon.WaitForExitAsync(), Is.EqualTo(137));
    }
}
