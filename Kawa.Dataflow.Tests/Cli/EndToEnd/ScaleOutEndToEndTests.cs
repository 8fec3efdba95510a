using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Tests.Cli.Commands;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.EndToEnd;

/// <summary>Scale-out: two <c>kawa run</c> processes with the same config share one durable consumer and one lake.</summary>
[NonParallelizable]
public class ScaleOutEndToEndTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-e2e-scale-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task Run_TwoProcessesOnOneDurable_EachCommitsAFifthNoNameCollisionsUnionComplete()
    {
        var lines = File.ReadAllLines(TestPaths.AccessLog10k);
        var first = Path.Combine(_dir, "first.log");
        var rest = Path.Combine(_dir, "rest.log");
        await File.WriteAllLinesAsync(first, lines[..1000]);
        await File.WriteAllLinesAsync(rest, lines[1000..]);
        await using var server = await NatsServerProcess.StartAsync();
        await using (var connection = new NatsConnection(new NatsConnectionOptions { Servers = [server.Url] }))
        {
            await connection.ConnectAsync();
            await new JetStreamContext(connection).CreateStreamAsync(new StreamConfig { Name = "ACCESS", Subjects = [LakeJob.Subject], Storage = StorageType.File });
        }

        var lake = new Lake(Path.Combine(_dir, "lake"));
        // The same config file for both, no instance id: each process must still get its own. Files stay open 3 s so
        // that the second process starts while the first one has unfinished (temporary) files in the lake. Each process
        // holds at most 1,000 unacked messages (acked at file commit), so neither can take the whole stream alone.
        var config = LakeJob.WriteConfig(_dir, new LakeJobSettings(server.Url, lake.Root, Path.Combine(_dir, "dead"))
        {
            RollAge = TimeSpan.FromSeconds(3),
            Prefetch = 100,
            MaxInFlightMessages = 1000,
        });

        await using var a = KawaDaemon.Start(_dir, "run", "--config", config);
        await LakeJob.PublishAsync(_dir, server, "ACCESS", first);
        await WaitUntilAsync(() => lake.TemporaryFiles().Count > 0, "the first process is writing a file", a);
        await using var b = KawaDaemon.Start(_dir, "run", "--config", config);
        await WaitUntilAsync(() => b.Stderr.Contains("Pipeline e2e-lake started", StringComparison.Ordinal), "the second process is running", b);
        await LakeJob.PublishAsync(_dir, server, "ACCESS", rest);
        await WaitUntilAsync(async () =>
        {
            var info = await LakeJob.ConsumerAsync(server, "ACCESS", "e2e-lake");
            return info.AckFloor!.StreamSeq == 10_000 && info.NumPending == 0 && info.NumAckPending == 0;
        }, "every message is acked", a, b);

        await a.SignalAsync("TERM");
        await b.SignalAsync("TERM");
        Assert.That(await a.WaitForExitAsync(), Is.EqualTo(ExitCodes.Ok), a.Stderr);
        Assert.That(await b.WaitForExitAsync(), Is.EqualTo(ExitCodes.Ok), b.Stderr);

        var files = await lake.FilesAsync();
        var byInstance = files.GroupBy(f => LakeFileNamer.TryParse(Path.GetFileName(f.File), out var instance, out _, out _) ? instance : "?")
            .ToDictionary(g => g.Key, g => g.Sum(f => f.Rows));
        var totals = await lake.QueryAsync(
            $"SELECT count(*) AS n, count(DISTINCT seq) AS d FROM read_parquet({Parquet.DuckDb.Lit(Path.Combine(lake.Root, "**", "*.parquet"))}, hive_partitioning = true)");
        TestContext.Out.WriteLine(string.Join(", ", byInstance.Select(kv => $"{kv.Key}: {kv.Value} rows")));
        Assert.Multiple(() =>
        {
            Assert.That(byInstance.Keys, Has.Count.EqualTo(2).And.None.EqualTo("?"), "two writers, each under its own instance id");
            Assert.That(byInstance.Values, Has.All.GreaterThanOrEqualTo(2_000), "each process committed at least 20% of the rows");
            Assert.That(files.Select(f => Path.GetFileName(f.File)), Is.Unique, "no file name is used twice anywhere in the lake");
            Assert.That(totals.Long(0, "d"), Is.EqualTo(10_000), "the union holds every published line");
            Assert.That(totals.Long(0, "n"), Is.EqualTo(10_000), "and each once: nothing was redelivered, nothing written twice");
            Assert.That(lake.OtherFiles(), Is.Empty, "no temporary file left behind");
            foreach (var daemon in new[] { a, b })
            {
                // With a shared instance id, the second start's cleanup deleted the first one's open files: their
                // commits failed and their messages were negatively acked.
                Assert.That(daemon.Stderr, Does.Contain(", 0 negatively acked").And.Not.Contain("failed;"), "no file of either process failed");
            }
        });
    }

    // Bounded polling of other processes' state; fails early if one of them died.
    private static Task WaitUntilAsync(Func<bool> condition, string what, params KawaDaemon[] daemons) =>
        WaitUntilAsync(() => Task.FromResult(condition()), what, daemons);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, params KawaDaemon[] daemons)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (!await condition())
        {
            if (daemons.FirstOrDefault(d => d.HasExited) is { } dead)
            {
                Assert.Fail($"kawa exited while waiting until {what}. stderr:\n{dead.Stderr}");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting until {what}. stderr:\n{string.Join("\n---\n", daemons.Select(d => d.Stderr))}");
            }

            await Task.Delay(20);
        }
    }
}
