using System.Globalization;
using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.Commands;

/// <summary><c>kawa run</c> with a JetStream source that starts at a sequence or a time, and inline creds.</summary>
[NonParallelizable]
public sealed class RunJetStreamStartTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-run-js-start-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Config(string url, string startJson)
    {
        var path = Path.Combine(_dir, "config.json");
        File.WriteAllText(path, $$"""
            {
              "pipeline": {
                "name": "js-start",
                "source": { "type": "nats-jetstream", "servers": [ {{JsonSerializer.Serialize(url)}} ], "stream": "LINES", "durable": "kawa-start",
                            "ackWait": "00:00:30", "maxAckPending": 20000, "prefetch": 100, {{startJson}} },
                "destination": { "type": "stdout", "format": "raw" },
                "limits": { "maxInFlightMessages": 1000 }
              },
              "metrics": { "port": 0 }
            }
            """);
        return path;
    }

    /// <summary>Creates stream LINES and publishes line-1 … line-10 (stream sequences 1 … 10).</summary>
    private static async Task<JetStreamContext> PublishTenAsync(NatsConnection connection)
    {
        var js = new JetStreamContext(connection);
        await js.CreateStreamAsync(new StreamConfig { Name = "LINES", Subjects = ["lines.>"] });
        for (var i = 1; i <= 10; i++)
        {
            await js.PublishAsync("lines.x", Encoding.UTF8.GetBytes($"line-{i}"));
        }

        return js;
    }

    /// <summary>The server's store time of a stream sequence, read through a throw-away consumer.</summary>
    private static async Task<DateTimeOffset> StoreTimeAsync(JetStreamContext js, ulong sequence)
    {
        await js.CreateConsumerAsync("LINES", new ConsumerConfig { DurableName = "probe", AckPolicy = AckPolicy.Explicit });
        await using var consumer = js.CreatePullConsumer("LINES", "probe", new NatsPullConsumerOptions { BatchSize = 10 });
        await consumer.StartAsync();
        using var cts = new CancellationTokenSource(NatsTestHelpers.Generous);
        while (true)
        {
            var msg = await consumer.NextAsync(cts.Token);
            if (msg.Metadata.StreamSequence == sequence)
            {
                return msg.Metadata.Timestamp;
            }
        }
    }

    private static async Task AssertDrainedAsync(JetStreamContext js)
    {
        var consumer = await js.GetConsumerAsync("LINES", "kawa-start");
        Assert.That((consumer.NumPending, consumer.NumAckPending), Is.EqualTo((0UL, 0L)), "nothing left, everything delivered was acked");
    }

    [Test]
    public async Task Run_ByStartSequenceWithInlineCredsFromTheEnvironment_PrintsOnlyMessagesFromThatSequenceOn()
    {
        await using var op = await OperatorModeServer.StartAsync();
        await using var connection = await NatsTestHelpers.ConnectAsync(op.Server, o => o.Creds = op.Creds);
        var js = await PublishTenAsync(connection);
        var config = Config(op.Server.Url, "\"deliverPolicy\": \"byStartSequence\", \"optStartSeq\": 6");
        var environment = new Dictionary<string, string> { ["KAWA_PIPELINE__SOURCE__AUTH__CREDS"] = op.Creds };

        var result = await KawaProcess.RunAsync(_dir, environment, "run", "--drain", "--config", config);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        Assert.That(result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal),
            Is.EqualTo(new[] { "line-10", "line-6", "line-7", "line-8", "line-9" }));
        Assert.That(result.Stderr, Does.Not.Contain(op.Seed), "the seed never shows");
        await AssertDrainedAsync(js);
    }

    [Test]
    public async Task Run_ByStartTime_PrintsOnlyMessagesStoredFromThatTimeOn()
    {
        await using var server = await NatsServerProcess.StartAsync();
        await using var connection = await NatsTestHelpers.ConnectAsync(server);
        var js = await PublishTenAsync(connection);
        // The store time of message 6, as the server recorded it.
        var sixth = await StoreTimeAsync(js, 6);
        var config = Config(server.Url, $"\"deliverPolicy\": \"byStartTime\", \"optStartTime\": \"{sixth.ToString("O", CultureInfo.InvariantCulture)}\"");

        var result = await KawaProcess.RunAsync(_dir, null, "run", "--drain", "--config", config);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        Assert.That(result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal),
            Is.EqualTo(new[] { "line-10", "line-6", "line-7", "line-8", "line-9" }));
        await AssertDrainedAsync(js);
    }

    [Test]
    public async Task Validate_LastPerSubjectWithoutFilter_ReportsTheFilterSubjects()
    {
        var config = Config("nats://127.0.0.1:4222", "\"deliverPolicy\": \"lastPerSubject\"");

        var result = await KawaProcess.RunAsync(_dir, null, "validate", "--config", config);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.ConfigInvalid), result.Stdout + result.Stderr);
        Assert.That(result.Stdout + result.Stderr, Does.Contain("pipeline.source.filterSubjects: deliverPolicy lastPerSubject needs at least one filter subject"));
    }

    [Test]
    public async Task Validate_StartPositionRulesAndInlineCreds_EveryErrorListedAndTheCredsMasked()
    {
        const string creds = "-----BEGIN NATS USER JWT-----\nJWT-SECRET-1\n------END NATS USER JWT------\n";
        var path = Path.Combine(_dir, "config.json");
        File.WriteAllText(path, $$"""
            {
              "pipeline": {
                "name": "js-start",
                "source": { "type": "nats-jetstream", "stream": "LINES", "durable": "d", "deliverPolicy": "all", "optStartSeq": 3,
                            "auth": { "creds": {{JsonSerializer.Serialize(creds)}} } },
                "destination": { "type": "stdout" }
              },
              "metrics": { "port": 0 }
            }
            """);

        var result = await KawaProcess.RunAsync(_dir, null, "validate", "--config", path, "--print",
            "--set", "pipeline.source.optStartTime=2026-01-01T00:00:00Z");

        Assert.Multiple(() =>
        {
            Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.ConfigInvalid), result.Stdout + result.Stderr);
            var output = result.Stdout + result.Stderr;
            Assert.That(output, Does.Contain("pipeline.source.optStartSeq: only applies with deliverPolicy byStartSequence (the policy is all)"));
            Assert.That(output, Does.Contain("pipeline.source.optStartTime: only applies with deliverPolicy byStartTime (the policy is all)"));
            Assert.That(output, Does.Contain("pipeline.source.auth.creds: not the contents of a .creds file"));
            Assert.That(output, Does.Not.Contain("filterSubjects"), "only lastPerSubject needs a filter");
            Assert.That(output, Does.Not.Contain("JWT-SECRET-1"), "inline creds are masked everywhere");
        });
    }
}
