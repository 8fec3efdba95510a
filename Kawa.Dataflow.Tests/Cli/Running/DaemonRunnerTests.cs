using System.Globalization;
using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Running;
using Kawa.Dataflow.Tests.Infrastructure;
using Kawa.Dataflow.Tests.Parquet;

namespace Kawa.Dataflow.Tests.Cli.Running;

public class DaemonRunnerTests
{
    [Test]
    public void ToPolicy_RetryThenDeadLetter_MapsAttemptsToRetriesAndTheFallback()
    {
        var dlq = new DeadLetterDestination(new Recording());
        var options = new ErrorPolicyOptions { Type = "retry", MaxAttempts = 4, InitialDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromSeconds(1), Then = "deadLetter" };

        var policy = (RetryErrorPolicy)DaemonRunner.ToPolicy(options, dlq, "test");

        Assert.Multiple(() =>
        {
            Assert.That(policy.MaxRetries, Is.EqualTo(3), "maxAttempts counts the first attempt");
            Assert.That(policy.BaseDelay, Is.EqualTo(TimeSpan.FromMilliseconds(10)));
            Assert.That(policy.MaxDelay, Is.EqualTo(TimeSpan.FromSeconds(1)));
            Assert.That(policy.Fallback.ToString(), Is.EqualTo("DeadLetter"));
        });
    }

    [TestCase(1, 1)]
    [TestCase(256, 1)]
    [TestCase(257, 2)]
    [TestCase(4096, 16)]
    public void ToStageOptions_HandlerSettings_ReachTheStageWithCapacityInSegments(int capacity, int segments)
    {
        var dlq = new DeadLetterDestination(new Recording());
        var options = new ParseHandlerOptions { Type = "parse", Format = "json", Parallelism = 3, Capacity = capacity, KeyOrdered = true, ErrorPolicy = new ErrorPolicyOptions { Type = "skip" } };

        var stage = DaemonRunner.ToStageOptions(options, segmentSize: 256, dlq, "parse-0");
        var plain = DaemonRunner.ToStageOptions(new ParseHandlerOptions { Type = "parse", Format = "json" }, segmentSize: 256, deadLetters: null, "parse-1");

        Assert.Multiple(() =>
        {
            Assert.That(stage.MaxDegreeOfParallelism, Is.EqualTo(3));
            Assert.That(stage.BoundedCapacity, Is.EqualTo(segments), "capacity counts messages; the engine buffers segments");
            Assert.That(stage.KeyOrdered, Is.True);
            Assert.That(stage.ErrorPolicy.ToString(), Is.EqualTo("Skip"));
            Assert.That(stage.PoisonPolicy.ToString(), Is.EqualTo("DeadLetter"), "with a dead-letter target, poison messages are kept there");
            Assert.That(plain.KeyOrdered, Is.False);
            Assert.That(plain.PoisonPolicy.ToString(), Is.EqualTo("Terminate"), "without one they are terminated");
        });
    }

    [TestCase(true)]
    [TestCase(false)]
    public void ToStageOptions_Ordered_IsTheStagesEnsureOrdered(bool ordered)
    {
        var options = new FieldsHandlerOptions { Type = "fields", Parallelism = 2, Ordered = ordered };

        var stage = DaemonRunner.ToStageOptions(options, segmentSize: 256, deadLetters: null, "fields-0");

        Assert.That(stage.EnsureOrdered, Is.EqualTo(ordered));
    }

    [TestCase("false", true, "run to completion")]
    [TestCase("true", false, "staged")]
    public async Task BuildAsync_HandlersAtParallelismTwoIntoParquet_RunToCompletionOnlyWhenUnordered(string ordered, bool runsToCompletion, string logged)
    {
        var dir = Directory.CreateTempSubdirectory("kawa-ordered-").FullName;
        try
        {
            var lines = File.ReadLines(TestPaths.AccessLog10k).Where(l => l.Length > 0).Take(2000).ToArray();
            var input = Path.Combine(dir, "in.log");
            File.WriteAllLines(input, lines);
            var lake = Path.Combine(dir, "lake");
            var json = $$"""
                {
                  "pipeline": {
                    "name": "unordered",
                    "source": { "type": "file", "path": {{JsonSerializer.Serialize(input)}}, "mode": "read" },
                    "handlers": [
                      { "type": "parse", "format": "combined", "parallelism": 2, "ordered": {{ordered}} },
                      { "type": "fields", "add": { "env": "test" }, "parallelism": 2, "ordered": {{ordered}} }
                    ],
                    "destination": { "type": "parquet", "path": {{JsonSerializer.Serialize(lake)}},
                                     "columns": [ { "name": "ts", "type": "timestamp" }, { "name": "status", "type": "long" }, { "name": "env" } ] }
                  }
                }
                """;
            var (ranToCompletion, logs) = await BuildAndRunAsync(json);
            Assert.That(ranToCompletion, Is.EqualTo(runsToCompletion));
            Assert.That(logs.Entries.Select(e => e.Message), Has.One.Contains($"stages {logged}"));
            var rows = DuckDb.Query($"SELECT count(*) AS n, sum(status) AS s, count(*) FILTER (WHERE env = 'test') AS e FROM read_parquet({DuckDb.Lit(lake + "/**/*.parquet")})");
            var statusSum = lines.Sum(l => long.Parse(l.Split('"')[2].Trim().Split(' ')[0], CultureInfo.InvariantCulture));
            Assert.Multiple(() =>
            {
                Assert.That(rows.Long(0, "n"), Is.EqualTo(lines.Length), "every line is one row, none lost or duplicated");
                Assert.That(rows.Long(0, "s"), Is.EqualTo(statusSum), "each row carries its own line's status");
                Assert.That(rows.Long(0, "e"), Is.EqualTo(lines.Length), "every row went through both handlers");
            });
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task BuildAsync_NdjsonFileIntoParquetWithUnorderedHandlerAtParallelismTwo_RunsToCompletion()
    {
        var dir = Directory.CreateTempSubdirectory("kawa-ndjson-").FullName;
        try
        {
            var (runsToCompletion, logs, lake) = await RunNdjsonIntoParquetAsync(dir, """{ "type": "fields", "add": { "env": "test" }, "parallelism": 2, "ordered": false }""");

            Assert.That(runsToCompletion, Is.True, "the ndjson parse stage runs like the handler, unordered at parallelism 2");
            Assert.That(logs.Entries.Select(e => e.Message), Has.One.Contains("stages run to completion"));
            var rows = DuckDb.Query($"SELECT count(*) AS n, count(DISTINCT n) AS d, sum(n) AS s, sum(status) AS st, count(*) FILTER (WHERE env = 'test') AS e FROM read_parquet({DuckDb.Lit(lake + "/**/*.parquet")})");
            Assert.Multiple(() =>
            {
                Assert.That(rows.Long(0, "n"), Is.EqualTo(NdjsonLines), "every line is one row");
                Assert.That(rows.Long(0, "d"), Is.EqualTo(NdjsonLines), "no line written twice");
                Assert.That(rows.Long(0, "s"), Is.EqualTo(NdjsonLines * (NdjsonLines + 1L) / 2), "every line's own n");
                Assert.That(rows.Long(0, "st"), Is.EqualTo(Enumerable.Range(1, NdjsonLines).Sum(i => 200L + (i % 7))), "each row carries its own line's status");
                Assert.That(rows.Long(0, "e"), Is.EqualTo(NdjsonLines), "every row went through the handler");
            });
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task BuildAsync_NdjsonFileIntoParquetWithOrderedHandlersAtParallelismThree_StagedAndKeepsInputOrder()
    {
        var dir = Directory.CreateTempSubdirectory("kawa-ndjson-").FullName;
        try
        {
            var (runsToCompletion, _, lake) = await RunNdjsonIntoParquetAsync(dir, """{ "type": "fields", "add": { "env": "test" }, "parallelism": 3 }""");

            Assert.That(runsToCompletion, Is.False);
            // Rows in each file in the order written: an ordered parse at parallelism 3 must not have swapped any two.
            var rows = DuckDb.Query($"""
                SELECT count(*) AS n, count(*) FILTER (WHERE prev IS NOT NULL AND n <= prev) AS swapped
                FROM (SELECT n, lag(n) OVER (PARTITION BY filename ORDER BY file_row_number) AS prev
                      FROM read_parquet({DuckDb.Lit(lake + "/**/*.parquet")}, filename = true, file_row_number = true))
                """);
            Assert.Multiple(() =>
            {
                Assert.That(rows.Long(0, "n"), Is.EqualTo(NdjsonLines));
                Assert.That(rows.Long(0, "swapped"), Is.Zero, "rows leave in the order the lines were read");
            });
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private const int NdjsonLines = 2000;

    // Writes NdjsonLines lines ({"n":i,"status":...}) to an ndjson file, builds the daemon's pipeline from it through
    // the one handler into a parquet lake under dir, and runs it to the end.
    private static async Task<(bool RunsToCompletion, CapturingLoggerFactory Logs, string Lake)> RunNdjsonIntoParquetAsync(string dir, string handler)
    {
        var input = Path.Combine(dir, "in.ndjson");
        File.WriteAllLines(input, Enumerable.Range(1, NdjsonLines).Select(i => $$"""{"n":{{i}},"status":{{200 + (i % 7)}}}"""));
        var lake = Path.Combine(dir, "lake");
        var json = $$"""
            {
              "pipeline": {
                "name": "ndjson",
                "source": { "type": "file", "path": {{JsonSerializer.Serialize(input)}}, "mode": "read", "format": "ndjson" },
                "handlers": [ {{handler}} ],
                "destination": { "type": "parquet", "path": {{JsonSerializer.Serialize(lake)}},
                                 "columns": [ { "name": "n", "type": "long" }, { "name": "status", "type": "long" }, { "name": "env" } ] }
              }
            }
            """;
        var (runsToCompletion, logs) = await BuildAndRunAsync(json);
        return (runsToCompletion, logs, lake);
    }

    // Loads a config, builds the daemon's pipeline from it, runs it to the end and disposes what the build created.
    private static async Task<(bool RunsToCompletion, CapturingLoggerFactory Logs)> BuildAndRunAsync(string json)
    {
        var config = ConfigLoader.Load(Encoding.UTF8.GetBytes(json), "kawa.json", useEnvironment: false);
        Assert.That(config.Errors, Is.Empty);
        var logs = new CapturingLoggerFactory();
        var disposables = new List<object>();
        try
        {
            var pipeline = await DaemonRunner.BuildAsync(config.Options!.Pipeline!, drain: false, logs, TimeProvider.System, disposables, CancellationToken.None);
            await pipeline.RunAsync(CancellationToken.None);
            return (pipeline.RunsToCompletion, logs);
        }
        finally
        {
            foreach (var disposable in disposables)
            {
                if (disposable is IAsyncDisposable asyncDisposable)
                {
                    await asyncDisposable.DisposeAsync();
                }
                else
                {
                    ((IDisposable)disposable).Dispose();
                }
            }
        }
    }

    [TestCase("fatal", "Fatal")]
    [TestCase("skip", "Skip")]
    [TestCase("nack", "NegativeAck(00:00:02)")]
    public void ToPolicy_SimplePolicies_Map(string type, string expected)
    {
        var policy = DaemonRunner.ToPolicy(new ErrorPolicyOptions { Type = type, NackDelay = TimeSpan.FromSeconds(2) }, null, "test");

        Assert.That(policy.ToString(), Is.EqualTo(expected));
    }

    [Test]
    public async Task CreateSourceAsync_DrainWithFollowFile_IsRefusedWithAReason()
    {
        var options = new FileSourceOptions { Type = "file", Path = "x.log", Mode = "follow", OffsetFile = "x.offset" };

        var ex = await Assert.ThrowsAsync<NotSupportedException>(() => DaemonComponents.CreateSourceAsync(options, drain: true, TimeProvider.System, CancellationToken.None));

        Assert.That(ex!.Message, Does.Contain("--drain cannot be used with a file source in follow mode"));
    }

    [Test]
    public async Task CreateSourceAsync_DrainWithCoreNats_IsRefusedWithAReasonBeforeConnecting()
    {
        // Port 1 on loopback: nothing listens, so getting past the refusal would fail differently (connection refused).
        var options = new NatsSourceOptions { Type = "nats", Servers = ["nats://127.0.0.1:1"], Subject = "logs.>" };

        var ex = await Assert.ThrowsAsync<NotSupportedException>(() => DaemonComponents.CreateSourceAsync(options, drain: true, TimeProvider.System, CancellationToken.None));

        Assert.That(ex!.Message, Does.Contain("--drain cannot be used with a core 'nats' source"));
    }

    [Test]
    public async Task DeadLetterDestination_SendsTheOriginalWithReasonAndPassesTheTokenThrough()
    {
        var inner = new Recording();
        var dlq = new DeadLetterDestination(inner);
        var original = new Message<EventRecord>(new EventRecord("bad line"u8.ToArray()));
        var token = AckToken.None();

        await dlq.SendAsync(token, new Message<DeadLetter<EventRecord>>(new DeadLetter<EventRecord>(original, "handler:p", "X", "why", 1, DateTimeOffset.UnixEpoch)));

        var (ack, messages) = inner.Sent.Single();
        Assert.That(ack, Is.SameAs(token), "the inner destination acks the dead letter's own token");
        Assert.That(messages.Single().Value.Contains(DeadLetterRecords.Reason), Is.True);
        Assert.That(messages.Single().Value.Raw.ToArray(), Is.EqualTo("bad line"u8.ToArray()));
    }

    private sealed class Recording : IDestination<EventRecord>
    {
        public List<(AckToken Ack, List<Message<EventRecord>> Messages)> Sent { get; } = [];

        public ValueTask SendAsync(AckToken ack, Messages<EventRecord> messages, CancellationToken cancellationToken = default)
        {
            Sent.Add((ack, messages.ToList()));
            return ValueTask.CompletedTask;
        }
    }
}
