using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.Commands;

/// <summary><c>kawa run</c> with a core <c>nats</c> source (a plain subscription, at-most-once) against a real nats-server.</summary>
[NonParallelizable]
public sealed class RunCoreNatsTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-run-core-nats-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task Run_CoreNatsSubscription_ParsesEachPublishedMessageToStdoutAndStopsOnSigterm()
    {
        await using var server = await NatsServerProcess.StartAsync();
        await using var connection = await NatsTestHelpers.ConnectAsync(server);
        var config = Path.Combine(_dir, "config.json");
        await File.WriteAllTextAsync(config, $$"""
            {
              "pipeline": {
                "name": "core-nats",
                "source": { "type": "nats", "servers": [ {{JsonSerializer.Serialize(server.Url)}} ], "subject": "logs.>" },
                "handlers": [ { "type": "parse", "name": "json", "format": "json" } ],
                "destination": { "type": "stdout" }
              },
              "metrics": { "port": 0 }
            }
            """);
        await using var daemon = KawaDaemon.Start(_dir, "run", "--config", config);

        // Core NATS keeps nothing for late subscribers: publish a probe until kawa's subscription shows it on stdout
        // (bounded: kawa is an external process whose subscribe we cannot observe otherwise).
        using (var ready = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            while (daemon.StdoutLines.Count == 0)
            {
                Assert.That(daemon.HasExited, Is.False, daemon.Stderr);
                await connection.PublishAsync("logs.probe", Encoding.UTF8.GetBytes("""{"probe":true}"""), cancellationToken: ready.Token);
                await connection.FlushAsync(ready.Token);
                await Task.Delay(100, ready.Token);
            }
        }

        var probes = daemon.StdoutLines.Count;
        for (var i = 1; i <= 5; i++)
        {
            await connection.PublishAsync($"logs.app{i % 2}", Encoding.UTF8.GetBytes($$"""{"n":{{i}},"level":"info"}"""));
        }

        await connection.FlushAsync();
        await daemon.WaitForLinesAsync(probes + 5);
        await daemon.SignalAsync("TERM");
        var exit = await daemon.WaitForExitAsync();

        Assert.That(exit, Is.EqualTo(ExitCodes.Ok), daemon.Stderr);
        var events = daemon.StdoutLines.Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.TryGetProperty("n", out _)).ToList();
        Assert.That(events.Select(e => e.GetProperty("n").GetInt64()), Is.EqualTo(new long[] { 1, 2, 3, 4, 5 }), "one subscriber, one connection: server order");
        Assert.That(events.Select(e => e.GetProperty("level").GetString()), Is.All.EqualTo("info"), "parsed as JSON fields");
        Assert.That(daemon.Stderr, Does.Contain("SIGTERM received: draining"));
    }
}
