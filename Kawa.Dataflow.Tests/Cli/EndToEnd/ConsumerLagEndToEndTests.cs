using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Kawa.Dataflow.Tests.Cli.Commands;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.EndToEnd;

/// <summary>The consumer lag kawa reports (status line and <c>kawa_source_lag</c>) is what the JetStream server says.</summary>
[NonParallelizable]
public sealed partial class ConsumerLagEndToEndTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-e2e-lag-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [GeneratedRegex(@"^kawa_source_lag (\d+)$", RegexOptions.Multiline)]
    private static partial Regex LagLine();

    [Test]
    public async Task Run_StuckPipeline_ServesTheServersPendingCountAsTheLagGauge()
    {
        var input = Path.Combine(_dir, "in.log");
        await File.WriteAllLinesAsync(input, Enumerable.Range(1, 100).Select(i => $"not json {i}"));
        await using var server = await NatsServerProcess.StartAsync();
        await LakeJob.PublishAsync(_dir, server, "LINES", input);
        var port = FreePort();
        // Every line fails JSON parsing and waits 5 minutes before its retry: the stage is stuck on the first one,
        // the source stops at the in-flight limit, and the rest of the stream stays undelivered (the lag).
        var config = Path.Combine(_dir, "config.json");
        await File.WriteAllTextAsync(config, $$"""
            {
              "pipeline": {
                "name": "lag",
                "source": { "type": "nats-jetstream", "servers": [ {{JsonSerializer.Serialize(server.Url)}} ], "stream": "LINES", "durable": "lag",
                            "ackWait": "00:15:00", "maxAckPending": 20, "prefetch": 10 },
                "handlers": [ { "type": "parse", "name": "json", "format": "json", "capacity": 1,
                                "errorPolicy": { "type": "retry", "maxAttempts": 2, "initialDelay": "00:05:00", "maxDelay": "00:05:00" } } ],
                "destination": { "type": "stdout" },
                "limits": { "maxInFlightMessages": 10 }
              },
              "metrics": { "port": {{port}} }
            }
            """);
        await using var daemon = KawaDaemon.Start(_dir, "run", "--config", config);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        // Bounded polling of two external processes: the status reporter probes the server every tick (10 s when
        // standard error is not a terminal); wait until its figure and the server's agree and something is pending.
        var deadline = DateTime.UtcNow.AddSeconds(90);
        long? served = null;
        ulong pending = 0;
        while (DateTime.UtcNow < deadline)
        {
            Assert.That(daemon.HasExited, Is.False, daemon.Stderr);
            var match = LagLine().Match(await TryGetAsync(http, "/metrics"));
            served = match.Success ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : null;
            try
            {
                pending = (await LakeJob.ConsumerAsync(server, "LINES", "lag")).NumPending;
            }
            catch (Kawa.Dataflow.Nats.JetStreamApiException ex) when (ex.ErrorCode == 10014)
            {
                await Task.Delay(250); // kawa has not created its durable consumer yet
                continue;
            }

            if (served is { } lag && lag > 0 && (ulong)lag == pending)
            {
                break;
            }

            await Task.Delay(250);
        }

        Assert.That(served, Is.EqualTo((long)pending), $"kawa_source_lag against the server's num_pending. stderr:\n{daemon.Stderr}");
        Assert.That(pending, Is.InRange(70UL, 99UL), "most of the stream is undelivered behind the stuck stage");
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

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
