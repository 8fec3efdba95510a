using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Nats.Infrastructure;
using Kawa.Dataflow.Tests.Parquet;

namespace Kawa.Dataflow.Tests.Cli.Commands;

/// <summary>
/// The shipped JetStream examples run as they are (only the server URLs and the metrics port overridden with
/// <c>--set</c>) against a real nats-server, so a user copying them gets what their comments promise.
/// </summary>
[NonParallelizable]
public sealed class ExampleRunTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-examples-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static string Example(string name) => Path.Combine(TestPaths.RepoRoot, "examples", name);

    [Test]
    public async Task Run_JetStreamToJetStreamExample_RelaysOnlyApiServerErrorsOnTheirStatusSubject()
    {
        await using var server = await NatsServerProcess.StartAsync();
        string[] lines =
        [
            "10.0.0.1 - - [17/May/2015:10:05:03 +0000] \"GET /api/orders HTTP/1.1\" 503 12 \"-\" \"curl/8.0\"",
            "10.0.0.2 - alice [17/May/2015:10:05:04 +0000] \"GET /web/index.html HTTP/1.1\" 500 99 \"-\" \"curl/8.0\"",
            "10.0.0.3 - - [17/May/2015:10:05:05 +0000] \"GET /api/users HTTP/1.1\" 200 512 \"-\" \"curl/8.0\"",
            "not an access log line",
            "10.0.0.4 - bob [17/May/2015:10:05:06 +0000] \"POST /api/pay HTTP/1.1\" 502 0 \"-\" \"curl/8.0\"",
        ];
        var input = Path.Combine(_dir, "access.log");
        await File.WriteAllLinesAsync(input, lines);
        var publish = await KawaProcess.RunAsync(_dir, null, "publish", "--url", server.Url, "--subject", "access.raw", "--create-stream", "ACCESS", input);
        Assert.That(publish.ExitCode, Is.EqualTo(ExitCodes.Ok), publish.Stderr);
        await using var connection = await NatsTestHelpers.ConnectAsync(server);
        var js = new JetStreamContext(connection);
        await js.CreateStreamAsync(new StreamConfig { Name = "ALERTS", Subjects = ["alerts.>"], Storage = StorageType.File });

        var run = await KawaProcess.RunAsync(_dir, null, "run", "--drain", "--config", Example("jetstream-to-jetstream.json"),
            "--set", $"pipeline.source.servers[0]={server.Url}", "--set", $"pipeline.destination.servers[0]={server.Url}", "--set", "metrics.port=0");

        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Ok), run.Stderr);
        Assert.That(run.Stderr, Does.Contain("5 received, 5 acked"), "the malformed line is skipped (acked), the filtered ones acked");
        await js.CreateConsumerAsync("ALERTS", new ConsumerConfig { DurableName = "check", AckPolicy = AckPolicy.Explicit });
        await using var consumer = js.CreatePullConsumer("ALERTS", "check", new NatsPullConsumerOptions { BatchSize = 10 });
        await consumer.StartAsync();
        var relayed = new List<(string Subject, JsonElement Event)>();
        using (var cts = new CancellationTokenSource(NatsTestHelpers.Generous))
        {
            while (relayed.Count < 2)
            {
                var msg = await consumer.NextAsync(cts.Token);
                relayed.Add((msg.Subject, JsonDocument.Parse(msg.Data).RootElement.Clone()));
            }
        }

        var stream = await js.GetStreamAsync("ALERTS");
        Assert.Multiple(() =>
        {
            Assert.That(stream.State!.Messages, Is.EqualTo(2), "only 5xx on /api/ pass the filter");
            Assert.That(relayed.Select(r => r.Subject), Is.EqualTo(new[] { "alerts.http.503", "alerts.http.502" }));
            Assert.That(relayed.Select(r => r.Event.GetProperty("path").GetString()), Is.EqualTo(new[] { "/api/orders", "/api/pay" }));
            Assert.That(relayed.Select(r => r.Event.GetProperty("team").GetString()), Is.All.EqualTo("web"), "constant added");
            Assert.That(relayed.Select(r => r.Event.TryGetProperty("user", out _) || r.Event.TryGetProperty("ident", out _)), Is.All.False, "ident and user dropped");
            Assert.That(relayed.Select(r => r.Event.GetProperty("relay").GetString()), Is.All.EqualTo(Environment.MachineName), "host name added");
        });
    }

    [Test]
    public async Task Run_DeadLetterExample_WritesParsedOrdersAndDeadLettersTheUnparseableWithReason()
    {
        await using var server = await NatsServerProcess.StartAsync();
        await using var connection = await NatsTestHelpers.ConnectAsync(server);
        var js = new JetStreamContext(connection);
        await js.CreateStreamAsync(new StreamConfig { Name = "ORDERS", Subjects = ["orders.>"], Storage = StorageType.File });
        foreach (var payload in new[] { "eu-1042 shipped", "us-7 test", "this is no order", "de-55 packed" })
        {
            await js.PublishAsync("orders.new", Encoding.UTF8.GetBytes(payload));
        }

        // Run in the temp dir: the example's dead-letter lake is ./dead-letters, relative to the current directory.
        var run = await KawaProcess.RunAsync(_dir, null, "run", "--drain", "--config", Example("dead-letter.json"),
            "--set", $"pipeline.source.servers[0]={server.Url}", "--set", "metrics.port=0");

        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Ok), run.Stderr);
        var events = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var letters = DuckDb.Query($"SELECT sequence, stage, reason, decode(payload) AS line FROM read_parquet({DuckDb.Lit(Path.Combine(_dir, "dead-letters", "**", "*.parquet"))}, hive_partitioning = true)");
        var consumer = await js.GetConsumerAsync("ORDERS", "kawa-orders");
        Assert.Multiple(() =>
        {
            Assert.That(events.Select(e => (e.GetProperty("region").GetString(), e.GetProperty("order_no").GetInt64(), e.GetProperty("status").GetString())),
                Is.EqualTo(new[] { ("eu", 1042L, "shipped"), ("de", 55L, "packed") }), "parsed with the typed order number; the test order filtered out");
            Assert.That(events.Select(e => e.TryGetProperty("ingested_at", out _)), Is.All.True);
            Assert.That(letters.Rows, Has.Length.EqualTo(1));
            Assert.That(letters.Str(0, "line"), Is.EqualTo("this is no order"), "the original payload, whole");
            Assert.That(letters.Long(0, "sequence"), Is.EqualTo(3));
            Assert.That(letters.Str(0, "stage"), Does.Contain("parse-order"));
            Assert.That(letters.Str(0, "reason"), Is.Not.Empty);
            Assert.That((consumer.NumPending, consumer.NumAckPending), Is.EqualTo((0UL, 0L)), "everything acked, the dead letter once its file committed");
        });
    }
}
