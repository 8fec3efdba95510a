using System.Text.RegularExpressions;
using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Tests.Cli.Commands;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.EndToEnd;

/// <summary>Bad input with real processes: malformed lines and invalid configs.</summary>
[NonParallelizable]
public partial class BadInputEndToEndTests
{
    // Each is malformed by the ground truth's rules (ground-truth.js) as well as kawa's.
    private static readonly string[] Malformed =
    [
        "this is not an access log line",
        "83.149.9.216 - - [17/May/2015:10:05:03 +0000] \"GET /index.html HTTP/1.1\" abc 203023 \"-\" \"curl/8.0\"",
        "83.149.9.216 - - [17/Foo/2015:10:05:03 +0000] \"GET /index.html HTTP/1.1\" 200 203023 \"-\" \"curl/8.0\"",
        "83.149.9.216 - - [17/May/2015:10:05:03 +0000] \"GET /index.html HTTP/1.1\" 200",
        "83.149.9.216 - - 17/May/2015:10:05:03 +0000 \"GET /index.html HTTP/1.1\" 200 12 \"-\" \"curl/8.0\"",
        "{\"host\": \"83.149.9.216\", \"status\": 200}",
    ];

    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-e2e-bad-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task Drain_MalformedLinesAmongRealOnes_DeadLetteredWithReasonGoodLinesLandAllAcked()
    {
        // 2,000 real lines with the malformed ones spread among them.
        var input = Path.Combine(_dir, "mixed.log");
        var lines = File.ReadLines(TestPaths.AccessLog10k).Take(2000).ToList();
        for (var i = 0; i < Malformed.Length; i++)
        {
            lines.Insert(1 + (i * 350), Malformed[i]);
        }

        await File.WriteAllLinesAsync(input, lines);
        var truth = await GroundTruth.ComputeAsync(input);
        Assert.That(truth.Rejected.Select(n => lines[n - 1]), Is.EquivalentTo(Malformed), "the ground truth rejects exactly the malformed lines");
        await using var server = await NatsServerProcess.StartAsync();
        await LakeJob.PublishAsync(_dir, server, "ACCESS", input);
        var lake = new Lake(Path.Combine(_dir, "lake"));
        var dead = new Lake(Path.Combine(_dir, "dead"));
        var config = LakeJob.WriteConfig(_dir, new LakeJobSettings(server.Url, lake.Root, dead.Root));

        var run = await KawaProcess.RunAsync(TimeSpan.FromMinutes(2), _dir, null, "run", "--drain", "--config", config);

        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Ok), "the pipeline kept running past bad input. stderr:\n" + run.Stderr);
        var (rows, bytes) = await lake.TotalsAsync();
        var perStatus = await lake.RowsPerStatusAsync();
        var letters = await dead.QueryAsync(
            $"SELECT sequence, stage, reason, decode(payload) AS line FROM read_parquet({Parquet.DuckDb.Lit(Path.Combine(dead.Root, "**", "*.parquet"))}) ORDER BY sequence");
        var consumer = await LakeJob.ConsumerAsync(server, "ACCESS", "e2e-lake");
        Assert.Multiple(() =>
        {
            Assert.That(rows, Is.EqualTo(truth.Events), "every good line landed");
            Assert.That(perStatus, Is.EquivalentTo(truth.ByStatus));
            Assert.That(bytes, Is.EqualTo(truth.Bytes));
            Assert.That(letters.Rows, Has.Length.EqualTo(Malformed.Length), "one dead letter per malformed line");
            for (var i = 0; i < letters.Rows.Length; i++)
            {
                var line = letters.Str(i, "line")!;
                Assert.That(Malformed, Does.Contain(line), "the dead letter keeps the original bytes, for replay");
                Assert.That(letters.Long(i, "sequence"), Is.EqualTo(lines.IndexOf(line) + 1), "and its stream sequence");
                Assert.That(letters.Str(i, "stage"), Is.EqualTo("handler:parse-combined"));
                Assert.That(letters.Str(i, "reason"), Does.Contain("combined"), "the reason names the format and what was wrong");
            }

            // Every message settled: the malformed ones acked once their dead letter was committed.
            Assert.That(run.Stderr, Does.Contain($"{lines.Count} received, {lines.Count} acked, 0 negatively acked, 0 terminated, {Malformed.Length} dead-lettered"));
            Assert.That(consumer.NumPending, Is.Zero);
            Assert.That(consumer.NumAckPending, Is.Zero);
        });
        TestContext.Out.WriteLine(string.Join("\n", Enumerable.Range(0, letters.Rows.Length).Select(i => letters.Str(i, "reason"))));
    }

    [Test]
    public async Task ValidateAndRun_InvalidConfig_BothRejectItListingTheSameEveryError()
    {
        // One error of each kind, at several depths; the server port is never contacted (exit 4 would say it was).
        var config = Path.Combine(_dir, "bad.json");
        await File.WriteAllTextAsync(config, $$"""
            {
              "pipeline": {
                "name": "bad",
                "source": { "type": "nats-jetstream", "servers": [ "nats://127.0.0.1:{{NatsServerProcess.FreePort()}}" ], "durable": "d",
                            "ackWait": "00:00:05", "maxAckPending": "many" },
                "handlers": [ { "type": "parse", "format": "combined", "parallelism": 0, "errorPolicy": { "type": "deadLetter" } } ],
                "destination": {
                  "type": "parquet", "path": {{System.Text.Json.JsonSerializer.Serialize(Path.Combine(_dir, "lake"))}}, "partitionBy": "dt={tss:yyyy-MM-dd}",
                  "rollAge": "00:00:10", "rowGroupRows": 0, "instanceId": "two words",
                  "columns": [ { "name": "ts", "type": "timestamp", "nulable": false } ]
                }
              }
            }
            """);
        string[] expected =
        [
            "pipeline.source.stream",               // missing required value
            "pipeline.source.maxAckPending",        // wrong type
            "pipeline.handlers[0].parallelism",     // out of range
            "pipeline.handlers[0].errorPolicy.type", // deadLetter without pipeline.deadLetter (cross-field)
            "pipeline.destination.partitionBy",     // unknown field 'tss'
            "pipeline.destination.rollAge",         // not below ackWait (cross-stage)
            "pipeline.destination.rowGroupRows",    // out of range
            "pipeline.destination.instanceId",      // not a valid id
            "pipeline.destination.columns[0].nulable", // unknown key, deep
        ];

        var validate = await KawaProcess.RunAsync(_dir, null, "validate", "--config", config);
        var run = await KawaProcess.RunAsync(_dir, null, "run", "--drain", "--config", config);

        Assert.That(validate.ExitCode, Is.EqualTo(ExitCodes.ConfigInvalid), validate.Stderr);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.ConfigInvalid), run.Stderr);
        var validateErrors = ErrorPaths(validate.Stderr);
        var runErrors = ErrorPaths(run.Stderr);
        Assert.Multiple(() =>
        {
            Assert.That(validateErrors, Is.EquivalentTo(expected), "validate lists every error, each once, by path:\n" + validate.Stderr);
            Assert.That(runErrors, Is.EquivalentTo(validateErrors), "run rejects the same config with the same list:\n" + run.Stderr);
            Assert.That(validate.Stderr, Does.Contain($"invalid configuration, {expected.Length} errors"));
            Assert.That(Directory.Exists(Path.Combine(_dir, "lake")), Is.False, "nothing was started");
        });
    }

    [GeneratedRegex(@"^  (pipeline\S*?|metrics\S*?): ", RegexOptions.Multiline)]
    private static partial Regex ErrorLine();

    private static List<string> ErrorPaths(string stderr) => [.. ErrorLine().Matches(stderr).Select(m => m.Groups[1].Value)];
}
