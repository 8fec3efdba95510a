using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Nats.Infrastructure;
using Kawa.Dataflow.Tests.Parquet;

namespace Kawa.Dataflow.Tests.Cli.Commands;

/// <summary><c>kawa run</c> as a real child process.</summary>
public class RunCommandTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-run-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Config(string json)
    {
        var path = Path.Combine(_dir, "config.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static string FileToStdout(string path, string errorPolicy = "deadLetter", string deadLetter = """, "deadLetter": { "type": "stdout" }""") => $$"""
        {
          "pipeline": {
            "name": "test-run",
            "source": { "type": "file", "path": {{JsonSerializer.Serialize(path)}}, "mode": "read" },
            "handlers": [ { "type": "parse", "name": "combined", "format": "combined", "parallelism": 2, "errorPolicy": { "type": "{{errorPolicy}}" } } ],
            "destination": { "type": "stdout" }{{deadLetter}}
          },
          "metrics": { "port": 0 }
        }
        """;

    [Test]
    public async Task Run_FileWithCombinedParser_ExitsOkWithEveryLineOnStdout()
    {
        var lines = File.ReadAllLines(TestPaths.AccessLog10k).Where(l => l.Length > 0).ToArray();

        var result = await KawaProcess.RunAsync(_dir, null, "run", "--config", Config(FileToStdout(TestPaths.AccessLog10k)));

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        var output = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(output, Has.Length.EqualTo(lines.Length));
        var paths = output.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("path").GetString()).ToList();
        Assert.That(paths, Is.EquivalentTo(lines.Select(l => l.Split('"')[1].Split(' ')[1])), "every line parsed once, none lost or duplicated");
        Assert.That(result.Stderr, Does.Contain($"{lines.Length} received, {lines.Length} acked"));
    }

    [Test]
    public async Task Run_MalformedLine_GoesToDeadLetterWithReasonAndTheRunContinues()
    {
        var good = File.ReadLines(TestPaths.AccessLog10k).Take(4).ToArray();
        var input = Path.Combine(_dir, "in.log");
        File.WriteAllLines(input, [good[0], good[1], "this is not a combined log line", good[2], good[3]]);

        var result = await KawaProcess.RunAsync(_dir, null, "run", "--config", Config(FileToStdout(input)));

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        var output = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.That(output, Has.Count.EqualTo(5), "four events and one dead letter");
        var dead = output.Single(e => e.TryGetProperty("dead_letter.reason", out _));
        Assert.Multiple(() =>
        {
            Assert.That(dead.GetProperty("dead_letter.stage").GetString(), Is.EqualTo("handler:combined"));
            Assert.That(dead.GetProperty("dead_letter.reason").GetString(), Is.Not.Empty);
            Assert.That(output.Count(e => e.TryGetProperty("status", out _)), Is.EqualTo(4));
            // The malformed line was acked only once its dead letter was written: all five are acked.
            Assert.That(result.Stderr, Does.Contain("5 received, 5 acked, 0 negatively acked, 0 terminated, 1 dead-lettered"));
        });
    }

    [Test]
    public async Task Run_StageWithItsOwnDeadLetter_SendsItsFailuresThereAndOtherStagesToThePipelines()
    {
        var input = Path.Combine(_dir, "in.ndjson");
        File.WriteAllLines(input, ["{\"n\":1}", "oops", "{\"m\":2}"]);
        var stageDead = Path.Combine(_dir, "stage-dead");
        var pipelineDead = Path.Combine(_dir, "pipeline-dead");
        var config = Config($$"""
            {
              "pipeline": {
                "name": "two-targets",
                "source": { "type": "file", "path": {{JsonSerializer.Serialize(input)}}, "mode": "read" },
                "handlers": [
                  { "type": "parse", "name": "json", "format": "json", "errorPolicy": { "type": "deadLetter" },
                    "deadLetter": { "type": "parquet", "path": {{JsonSerializer.Serialize(stageDead)}}, "rollAge": "00:00:01" } },
                  { "type": "parse", "name": "only-n", "format": "regex", "pattern": "^\\{\"n\":(?<n>\\d+)\\}$", "errorPolicy": { "type": "deadLetter" } }
                ],
                "destination": { "type": "stdout", "format": "raw" },
                "deadLetter": { "type": "parquet", "path": {{JsonSerializer.Serialize(pipelineDead)}}, "rollAge": "00:00:01" }
              },
              "metrics": { "port": 0 }
            }
            """);

        var result = await KawaProcess.RunAsync(_dir, null, "run", "--config", config);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        var stage = DuckDb.Query($"SELECT stage, decode(payload) AS line FROM read_parquet({DuckDb.Lit(stageDead + "/**/*.parquet")})");
        var pipeline = DuckDb.Query($"SELECT stage, decode(payload) AS line FROM read_parquet({DuckDb.Lit(pipelineDead + "/**/*.parquet")})");
        Assert.Multiple(() =>
        {
            Assert.That(result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "{\"n\":1}" }));
            Assert.That((stage.Rows.Length, stage.Str(0, "stage"), stage.Str(0, "line")), Is.EqualTo((1, "handler:json", "oops")), "the json stage's failure went to its own target");
            Assert.That((pipeline.Rows.Length, pipeline.Str(0, "stage"), pipeline.Str(0, "line")), Is.EqualTo((1, "handler:only-n", "{\"m\":2}")), "the other stage used pipeline.deadLetter");
            Assert.That(result.Stderr, Does.Contain("3 received, 3 acked"), "each original acked once its dead letter was durable");
        });
    }

    [Test]
    public async Task Run_MalformedLineUnderFatalPolicy_ExitsRuntimeFailureNamingStageInputAndFix()
    {
        var input = Path.Combine(_dir, "in.log");
        File.WriteAllLines(input, ["garbage"]);

        var result = await KawaProcess.RunAsync(_dir, null, "run", "--config", Config(FileToStdout(input, "fatal", deadLetter: string.Empty)));

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.RuntimeFailure), result.Stderr);
        Assert.That(result.Stdout, Is.Empty, "nothing was written or acked");
        Assert.That(result.Stderr, Does.Contain("stage 'handler:combined' failed").And.Contain(input).And.Contain("errorPolicy of 'deadLetter'"));
    }

    [Test]
    public async Task Run_InvalidConfig_ExitsConfigInvalidWithEveryError()
    {
        var config = Config("""
            { "pipeline": { "name": "bad name!", "source": { "type": "file" },
              "handlers": [ { "type": "parse", "format": "combined", "paralelism": 2 } ],
              "destination": { "type": "stdout", "format": "xml" } } }
            """);

        var result = await KawaProcess.RunAsync(_dir, null, "run", "--config", config);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.ConfigInvalid));
        Assert.That(result.Stderr, Does.Contain("invalid configuration")
            .And.Contain("pipeline.name")
            .And.Contain("pipeline.source.path")
            .And.Contain("pipeline.handlers[0].paralelism")
            .And.Contain("pipeline.destination.format"));
        Assert.That(result.Stdout, Is.Empty);
    }

    [Test]
    public async Task Run_MissingInputFile_ExitsConfigInvalidNamingThePath()
    {
        var result = await KawaProcess.RunAsync(_dir, null, "run", "--config", Config(FileToStdout(Path.Combine(_dir, "nope.log"))));

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.ConfigInvalid), result.Stderr);
        Assert.That(result.Stderr, Does.Contain("pipeline.source").And.Contain("nope.log"));
    }

    [Test]
    public async Task Run_ExampleAccessLogToParquet_WritesEverySampleLineToTheLake()
    {
        var lake = Path.Combine(_dir, "lake");
        var sample = Path.Combine(TestPaths.RepoRoot, "samples", "access.log");
        var lines = File.ReadAllLines(sample).Count(l => l.Length > 0);

        var result = await KawaProcess.RunAsync(TestPaths.RepoRoot, null, "run", "--config", "examples/access-log-to-parquet.json",
            "--set", "metrics.port=0", "--set", $"pipeline.destination.path={lake}", "--set", $"pipeline.deadLetter.path={Path.Combine(_dir, "dead")}",
            "--set", "pipeline.destination.rollAge=00:00:01");

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        Assert.That(result.Stderr, Does.Contain($"{lines} received, {lines} acked, 0 negatively acked, 0 terminated, 0 dead-lettered"));
        var rows = DuckDb.Query($"SELECT count(*) AS n, count(DISTINCT dt) AS days, count(*) FILTER (WHERE _extra IS NULL) AS no_extra FROM read_parquet({DuckDb.Lit(lake + "/**/*.parquet")}, hive_partitioning=true)");
        Assert.That(rows.Long(0, "n"), Is.EqualTo(lines), "every sample line is one row, none lost or duplicated");
        Assert.That(rows.Long(0, "days"), Is.GreaterThan(1), "partitioned by the event's day, not the run's");
        Assert.That(rows.Long(0, "no_extra"), Is.Zero, "ident has no column, so it lands in _extra");
        Assert.That(result.Stderr, Does.Not.Contain("matched no Parquet column"), "with an extraColumn nothing is dropped");
        Assert.That(Directory.Exists(Path.Combine(_dir, "dead")) ? Directory.GetFiles(Path.Combine(_dir, "dead"), "*.parquet", SearchOption.AllDirectories) : [], Is.Empty);
    }

    [Test]
    public async Task Run_FileToParquetLake_EveryLineIsARowWithItsParsedFields()
    {
        var lines = File.ReadLines(TestPaths.AccessLog10k).Where(l => l.Length > 0).Take(1000).ToArray();
        var input = Path.Combine(_dir, "in.log");
        File.WriteAllLines(input, lines);
        var lake = Path.Combine(_dir, "lake");
        var config = Config($$"""
            {
              "pipeline": {
                "name": "file-lake",
                "source": { "type": "file", "path": {{JsonSerializer.Serialize(input)}}, "mode": "read" },
                "handlers": [ { "type": "parse", "name": "combined", "format": "combined" } ],
                "destination": {
                  "type": "parquet", "path": {{JsonSerializer.Serialize(lake)}}, "partitionBy": "dt={ts:yyyy-MM-dd}",
                  "columns": [ { "name": "ts", "type": "timestamp", "nullable": false }, { "name": "path" }, { "name": "status", "type": "long", "nullable": false } ],
                  "rollAge": "00:00:01", "codec": "gzip"
                }
              },
              "metrics": { "port": 0 }
            }
            """);

        var result = await KawaProcess.RunAsync(_dir, null, "run", "--config", config);
        var glob = DuckDb.Lit(lake + "/**/*.parquet");
        var codecs = DuckDb.Query($"SELECT DISTINCT compression AS c FROM parquet_metadata({glob})");
        Assert.That(Enumerable.Range(0, codecs.Rows.Length).Select(i => codecs.Str(i, "c")), Is.EqualTo(new[] { "GZIP" }), "codec gzip");

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        var rows = DuckDb.Query($"SELECT count(*) AS n, sum(status) AS s FROM read_parquet({DuckDb.Lit(lake + "/**/*.parquet")}, hive_partitioning=true)");
        var statusSum = lines.Sum(l => long.Parse(l.Split('"')[2].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Multiple(() =>
        {
            Assert.That(rows.Long(0, "n"), Is.EqualTo(lines.Length), "every line is one row");
            Assert.That(rows.Long(0, "s"), Is.EqualTo(statusSum), "each row carries its own line's status");
            Assert.That(result.Stderr, Does.Contain($"{lines.Length} received, {lines.Length} acked"));
        });

        // No extraColumn: the 8 combined-log fields without a column (host, ident, user, method, protocol, bytes,
        // referrer, agent) are dropped, but counted and reported, never silently: exactly once per line (each row is
        // mapped once, including the first row of each file).
        var reported = System.Text.RegularExpressions.Regex.Match(result.Stderr, @"(\d+) input field\(s\) matched no Parquet column and were dropped");
        Assert.That(reported.Success, Is.True, result.Stderr);
        Assert.That(long.Parse(reported.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(lines.Length * 8L));
    }

    [Test]
    public async Task Run_DrainFromJetStreamToParquetWithTenMinuteRollAge_ExitsPromptlyWithEveryLineCommittedAndAcked()
    {
        await using var server = await NatsServerProcess.StartAsync();
        var input = Path.Combine(_dir, "in.log");
        File.WriteAllLines(input, File.ReadLines(TestPaths.AccessLog10k).Where(l => l.Length > 0).Take(500));
        var publish = await KawaProcess.RunAsync(_dir, null, "publish", "--url", server.Url, "--subject", "access.log", "--create-stream", "ACCESS", input);
        Assert.That(publish.ExitCode, Is.EqualTo(ExitCodes.Ok), publish.Stderr);
        var lake = Path.Combine(_dir, "lake");

        var result = await KawaProcess.RunAsync(TestPaths.RepoRoot, null, "run", "--drain", "--config", "examples/jetstream-access-log-to-lake.json",
            "--set", $"pipeline.source.servers[0]={server.Url}", "--set", $"pipeline.destination.path={lake}",
            "--set", $"pipeline.deadLetter.path={Path.Combine(_dir, "dead")}",
            // Files roll only after 10 minutes (the process is killed after 60 s): the drain must commit them itself
            // once the stream is read, not wait for the roll age.
            "--set", "pipeline.destination.rollAge=00:10:00", "--set", "pipeline.deadLetter.rollAge=00:10:00", "--set", "pipeline.source.ackWait=00:15:00");

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        var rows = DuckDb.Query($"SELECT count(*) AS n FROM read_parquet({DuckDb.Lit(lake + "/**/*.parquet")}, hive_partitioning=true)");
        Assert.That(rows.Long(0, "n"), Is.EqualTo(500));
        await using var connection = new NatsConnection(new NatsConnectionOptions { Servers = [server.Url] });
        await connection.ConnectAsync();
        var consumer = await new JetStreamContext(connection).GetConsumerAsync("ACCESS", "kawa-access-lake");
        Assert.Multiple(() =>
        {
            Assert.That(consumer.NumPending, Is.Zero, "nothing left to deliver");
            Assert.That(consumer.NumAckPending, Is.Zero, "every message was acked after its file committed");
        });
    }

    [Test]
    public async Task Run_DrainFromJetStreamToJetStream_PublishesEachParsedRecordAsJsonOnItsTemplatedSubject()
    {
        await using var server = await NatsServerProcess.StartAsync();
        var lines = File.ReadLines(TestPaths.AccessLog10k).Where(l => l.Length > 0).Take(300).ToArray();
        var input = Path.Combine(_dir, "in.log");
        File.WriteAllLines(input, lines);
        var publish = await KawaProcess.RunAsync(_dir, null, "publish", "--url", server.Url, "--subject", "access.raw", "--create-stream", "ACCESS", input);
        Assert.That(publish.ExitCode, Is.EqualTo(ExitCodes.Ok), publish.Stderr);
        await using (var connection = new NatsConnection(new NatsConnectionOptions { Servers = [server.Url] }))
        {
            await connection.ConnectAsync();
            await new JetStreamContext(connection).CreateStreamAsync(new StreamConfig { Name = "OUT", Subjects = ["out.status.*"], Storage = StorageType.File });
        }

        var relay = await KawaProcess.RunAsync(_dir, null, "run", "--drain", "--config", Config($$"""
            {
              "pipeline": {
                "name": "relay",
                "source": { "type": "nats-jetstream", "servers": [ "{{server.Url}}" ], "stream": "ACCESS", "durable": "relay" },
                "handlers": [ { "type": "parse", "format": "combined" } ],
                "destination": { "type": "nats-jetstream", "servers": [ "{{server.Url}}" ], "subjectTemplate": "out.status.{status}" }
              },
              "metrics": { "port": 0 }
            }
            """));
        Assert.That(relay.ExitCode, Is.EqualTo(ExitCodes.Ok), relay.Stderr);
        Assert.That(relay.Stderr, Does.Contain($"{lines.Length} received, {lines.Length} acked"));

        // Read back only the 200s: the subject carries each record's own status.
        var readBack = await KawaProcess.RunAsync(_dir, null, "run", "--drain", "--config", Config($$"""
            {
              "pipeline": {
                "name": "read-back",
                "source": { "type": "nats-jetstream", "servers": [ "{{server.Url}}" ], "stream": "OUT", "durable": "check", "filterSubjects": [ "out.status.200" ] },
                "destination": { "type": "stdout", "format": "raw" }
              },
              "metrics": { "port": 0 }
            }
            """));
        Assert.That(readBack.ExitCode, Is.EqualTo(ExitCodes.Ok), readBack.Stderr);
        var records = readBack.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var expected = lines.Count(l => l.Split('"')[2].Trim().StartsWith("200 ", StringComparison.Ordinal));
        Assert.That(expected, Is.GreaterThan(0), "the sample has 200s");
        Assert.That(records, Has.Count.EqualTo(expected));
        Assert.That(records.Select(r => r.GetProperty("status").GetInt64()), Is.All.EqualTo(200L), "published as the parsed fields in JSON");
    }

    [Test]
    public async Task Run_FileToJetStreamTwiceWithNewContent_StoresEveryLineOfBothRuns()
    {
        // A file's "stream" is its path and its sequence a line number: the second run's lines have the same ones.
        // As Nats-Msg-Ids they made the target stream drop the new lines as duplicates (acked, so lost).
        await using var server = await NatsServerProcess.StartAsync();
        await using (var connection = new NatsConnection(new NatsConnectionOptions { Servers = [server.Url] }))
        {
            await connection.ConnectAsync();
            await new JetStreamContext(connection).CreateStreamAsync(new StreamConfig { Name = "OUT", Subjects = ["out.>"], Storage = StorageType.File });
        }

        var input = Path.Combine(_dir, "in.log");
        var config = Config($$"""
            { "pipeline": { "name": "file-relay", "source": { "type": "file", "path": "{{input}}" },
                "destination": { "type": "nats-jetstream", "servers": [ "{{server.Url}}" ], "subjectTemplate": "out.lines" } },
              "metrics": { "port": 0 } }
            """);
        foreach (var content in new[] { new[] { "one", "two" }, ["three", "four"] })
        {
            File.WriteAllLines(input, content);
            var run = await KawaProcess.RunAsync(_dir, null, "run", "--config", config);
            Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Ok), run.Stderr);
        }

        var readBack = await KawaProcess.RunAsync(_dir, null, "run", "--drain", "--config", Config($$"""
            { "pipeline": { "name": "read-back", "source": { "type": "nats-jetstream", "servers": [ "{{server.Url}}" ], "stream": "OUT", "durable": "check" },
                "destination": { "type": "stdout", "format": "raw" } },
              "metrics": { "port": 0 } }
            """));
        Assert.That(readBack.ExitCode, Is.EqualTo(ExitCodes.Ok), readBack.Stderr);
        Assert.That(readBack.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "one", "two", "three", "four" }));
    }

    [TestCase("TERM")]
    [TestCase("INT")]
    public async Task Run_SigtermWhileStdinOpen_DrainsWhatWasReadAndExitsOk(string signal)
    {
        var config = Config("""
            { "pipeline": { "name": "stdin-run", "source": { "type": "stdin" }, "destination": { "type": "stdout", "format": "raw" } },
              "metrics": { "port": 0 } }
            """);
        await using var daemon = KawaDaemon.Start(_dir, "run", "--config", config);
        for (var i = 1; i <= 3; i++)
        {
            await daemon.Stdin.WriteLineAsync($"line {i}");
        }

        await daemon.Stdin.FlushAsync();
        await daemon.WaitForLinesAsync(3);

        await daemon.SignalAsync(signal);
        var exit = await daemon.WaitForExitAsync();

        Assert.That(exit, Is.EqualTo(ExitCodes.Ok), daemon.Stderr);
        Assert.That(daemon.StdoutLines, Is.EqualTo(new[] { "line 1", "line 2", "line 3" }));
        Assert.That(daemon.Stderr, Does.Contain($"SIG{signal} received: draining").And.Contain("3 received, 3 acked"));
    }

    [Test]
    public async Task Run_MetricsPort_ServesPrometheusTextAndHealth()
    {
        var port = FreePort();
        var config = Config($$"""
            { "pipeline": { "name": "metrics-run", "source": { "type": "stdin" }, "destination": { "type": "stdout", "format": "raw" } },
              "metrics": { "port": {{port}} } }
            """);
        await using var daemon = KawaDaemon.Start(_dir, "run", "--config", config);
        await daemon.Stdin.WriteLineAsync("one");
        await daemon.Stdin.WriteLineAsync("two");
        await daemon.Stdin.FlushAsync();
        await daemon.WaitForLinesAsync(2);

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var metrics = await http.GetAsync("/metrics");
        var body = await metrics.Content.ReadAsStringAsync();
        var health = await http.GetAsync("/healthz");

        Assert.Multiple(() =>
        {
            Assert.That(metrics.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(metrics.Content.Headers.ContentType!.MediaType, Is.EqualTo("text/plain"));
            Assert.That(body, Does.Contain("# TYPE kawa_messages_received_total counter"));
            Assert.That(body, Does.Contain("kawa_messages_received_total{kawa_pipeline=\"metrics-run\",kawa_stage=\"source\"} 2"));
            Assert.That(body, Does.Contain("kawa_messages_acked_total{kawa_pipeline=\"metrics-run\"} 2"));
            Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        });

        await daemon.SignalAsync("TERM");
        Assert.That(await daemon.WaitForExitAsync(), Is.EqualTo(ExitCodes.Ok), daemon.Stderr);
    }

    [Test]
    public async Task Run_SecondSignalWhileDrainWaits_ExitsInterruptedAtOnce()
    {
        // A message stuck in a long retry back-off keeps the drain waiting (drain timeout 10 min).
        await using var daemon = await StartWithStuckMessageAsync("stuck", "00:10:00");

        await daemon.SignalAsync("TERM");
        await PollAsync(() => Task.FromResult(daemon.Stderr.Contains("SIGTERM received: draining", StringComparison.Ordinal)), "the drain began");
        await daemon.SignalAsync("TERM");
        var exit = await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30));

        Assert.That(exit, Is.EqualTo(ExitCodes.Interrupted), daemon.Stderr);
        Assert.That(daemon.Stderr, Does.Contain("second signal"));
        Assert.That(daemon.StdoutLines, Is.Empty, "the stuck message was never written (nor acked)");
    }

    [Test]
    public async Task Run_DrainLongerThanDrainTimeout_ExitsDrainTimeoutWithoutWritingTheStuckMessage()
    {
        // A message stuck in a 5-minute retry back-off cannot finish within a 2 s drain timeout.
        await using var daemon = await StartWithStuckMessageAsync("slow-drain", "00:00:02");

        await daemon.SignalAsync("TERM");
        var exit = await daemon.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.That(exit, Is.EqualTo(ExitCodes.DrainTimeout), daemon.Stderr);
        Assert.That(daemon.Stderr, Does.Contain("drainTimeout"), "says which setting to raise");
        Assert.That(daemon.StdoutLines, Is.Empty, "the stuck message was never written (nor acked)");
    }

    /// <summary>
    /// Starts kawa reading stdin with one line that fails to parse and then waits in a 5-minute retry back-off, and
    /// returns once the failure shows in /metrics: a drain from then on cannot finish before <paramref name="drainTimeout"/>.
    /// </summary>
    private async Task<KawaDaemon> StartWithStuckMessageAsync(string name, string drainTimeout)
    {
        var port = FreePort();
        var config = Config($$"""
            { "pipeline": { "name": "{{name}}", "source": { "type": "stdin" },
                "handlers": [ { "type": "parse", "name": "json", "format": "json",
                                "errorPolicy": { "type": "retry", "maxAttempts": 5, "initialDelay": "00:05:00", "maxDelay": "00:05:00" } } ],
                "destination": { "type": "stdout" }, "limits": { "drainTimeout": "{{drainTimeout}}" } },
              "metrics": { "port": {{port}} } }
            """);
        var daemon = KawaDaemon.Start(_dir, "run", "--config", config);
        try
        {
            await daemon.Stdin.WriteLineAsync("not json");
            await daemon.Stdin.FlushAsync();
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            await PollAsync(async () => (await TryGetAsync(http, "/metrics")).Contains("kawa_messages_failed_total", StringComparison.Ordinal), "the handler failed once");
            return daemon;
        }
        catch
        {
            await daemon.DisposeAsync(); // never leave the process running
            throw;
        }
    }

    private static async Task<string> TryGetAsync(HttpClient http, string path)
    {
        try
        {
            return await http.GetStringAsync(path);
        }
        catch (HttpRequestException)
        {
            return string.Empty;
        }
    }

    // Bounded polling of an external process's state (no other signal crosses the process boundary).
    private static async Task PollAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting until {what}");
            }

            await Task.Delay(50);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
