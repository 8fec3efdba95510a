using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;

namespace Kawa.Dataflow.Perf.Nats;

/// <summary>
/// NATS client perf against a private nats-server, each compared with the official JS client (tools/node/nats-perf.mjs)
/// on the same server and workload: <c>nats-pubsub</c>, <c>jetstream-publish</c>, <c>jetstream-consume</c>.
/// Options: <c>--messages N</c> (default 200000 core / 50000 JetStream), <c>--size BYTES</c> (default 128), <c>--no-peer</c>.
/// </summary>
internal static class NatsPerfScenarios
{
    public static Task<int> PubSubAsync(string[] args) => RunAsync("nats-pubsub", args, 200_000, PubSubCoreAsync);

    public static Task<int> JetStreamPublishAsync(string[] args) => RunAsync("jetstream-publish", args, 50_000, JetStreamPublishCoreAsync);

    public static Task<int> JetStreamConsumeAsync(string[] args) => RunAsync("jetstream-consume", args, 50_000, JetStreamConsumeCoreAsync);

    private static async Task<int> RunAsync(string scenario, string[] args, int defaultMessages, Func<NatsConnection, int, byte[], Task<TimeSpan>> run)
    {
        var messages = Option(args, "--messages", defaultMessages);
        var size = Option(args, "--size", 128);
        var port = FreePort();
        var store = Path.Combine(Path.GetTempPath(), "kawa-perf-nats-" + Guid.NewGuid().ToString("N"));
        using var server = Process.Start(new ProcessStartInfo("/usr/sbin/nats-server", ["-a", "127.0.0.1", "-p", port.ToString(), "-js", "-sd", store])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        try
        {
            await WaitListeningAsync(port).ConfigureAwait(false);
            var url = $"nats://127.0.0.1:{port}";
            await using var connection = new NatsConnection(new NatsConnectionOptions { Servers = [url], Name = "kawa-perf" });
            await connection.ConnectAsync().ConfigureAwait(false);
            var payload = new byte[size];
            var elapsed = await run(connection, messages, payload).ConfigureAwait(false);
            var ours = new { client = "kawa", scenario, messages, seconds = elapsed.TotalSeconds, msgsPerSec = Math.Round(messages / elapsed.TotalSeconds) };
            Console.WriteLine($"kawa: {ours.msgsPerSec:N0} msg/s");
            JsonElement? peer = null;
            if (!args.Contains("--no-peer"))
            {
                peer = JsonDocument.Parse(await RunPeerAsync(scenario, url, messages, size).ConfigureAwait(false)).RootElement;
                Console.WriteLine($"nats.js: {peer}");
            }

            Console.WriteLine(JsonSerializer.Serialize(new { scenario, messages, size, kawa = ours, peer }));
            return 0;
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync().ConfigureAwait(false);
            Directory.Delete(store, recursive: true);
        }
    }

    private static async Task<TimeSpan> PubSubCoreAsync(NatsConnection connection, int messages, byte[] payload)
    {
        await using var subscription = await connection.SubscribeAsync("perf.kawa", capacity: messages).ConfigureAwait(false);
        await connection.FlushAsync().ConfigureAwait(false);
        var watch = Stopwatch.StartNew();
        var reader = Task.Run(async () =>
        {
            for (var i = 0; i < messages; i++)
            {
                await subscription.Messages.ReadAsync().ConfigureAwait(false);
            }
        });
        for (var i = 0; i < messages; i++)
        {
            await connection.PublishAsync("perf.kawa", payload).ConfigureAwait(false);
        }

        await reader.ConfigureAwait(false);
        return watch.Elapsed;
    }

    private static async Task<TimeSpan> JetStreamPublishCoreAsync(NatsConnection connection, int messages, byte[] payload)
    {
        var js = new JetStreamContext(connection);
        await js.CreateStreamAsync(new StreamConfig { Name = "PERF", Subjects = ["perf.>"] }).ConfigureAwait(false);
        var watch = Stopwatch.StartNew();
        await PublishWindowedAsync(js, messages, payload).ConfigureAwait(false);
        return watch.Elapsed;
    }

    private static async Task<TimeSpan> JetStreamConsumeCoreAsync(NatsConnection connection, int messages, byte[] payload)
    {
        var js = new JetStreamContext(connection);
        await js.CreateStreamAsync(new StreamConfig { Name = "PERF", Subjects = ["perf.>"] }).ConfigureAwait(false);
        await js.CreateConsumerAsync("PERF", new ConsumerConfig { DurableName = "c", AckPolicy = AckPolicy.Explicit }).ConfigureAwait(false);
        await PublishWindowedAsync(js, messages, payload).ConfigureAwait(false);
        return await ConsumeWithAcksAsync(js, "PERF", "c", messages).ConfigureAwait(false);
    }

    /// <summary>The timed consume loop: <paramref name="messages"/> messages from an existing durable, each acked (also the <c>e2e</c> baseline).</summary>
    internal static async Task<TimeSpan> ConsumeWithAcksAsync(JetStreamContext js, string stream, string durable, int messages)
    {
        await using var consumer = js.CreatePullConsumer(stream, durable, new NatsPullConsumerOptions { BatchSize = 500 });
        var watch = Stopwatch.StartNew();
        await consumer.StartAsync().ConfigureAwait(false);
        for (var i = 0; i < messages; i++)
        {
            var msg = await consumer.NextAsync().ConfigureAwait(false);
            await msg.AckAsync().ConfigureAwait(false);
        }

        return watch.Elapsed;
    }

    /// <summary>Up to 256 PubAcks outstanding, as the JS peer does.</summary>
    private static async Task PublishWindowedAsync(JetStreamContext js, int messages, byte[] payload)
    {
        var window = new List<Task<PubAck>>(256);
        for (var i = 0; i < messages; i++)
        {
            window.Add(js.PublishAsync("perf.x", payload));
            if (window.Count == 256)
            {
                await Task.WhenAll(window).ConfigureAwait(false);
                window.Clear();
            }
        }

        await Task.WhenAll(window).ConfigureAwait(false);
    }

    private static async Task<string> RunPeerAsync(string scenario, string url, int messages, int size)
    {
        var root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root, "Kawa.Dataflow.sln")))
        {
            root = Path.GetDirectoryName(root);
        }

        var script = Path.Combine(root ?? ".", "tools", "node", "nats-perf.mjs");
        using var node = Process.Start(new ProcessStartInfo("node", [script, scenario, url, messages.ToString(), size.ToString()])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(script),
        })!;
        var output = await node.StandardOutput.ReadToEndAsync().ConfigureAwait(false);
        var error = await node.StandardError.ReadToEndAsync().ConfigureAwait(false);
        await node.WaitForExitAsync().ConfigureAwait(false);
        return node.ExitCode == 0 ? output.Trim() : $"{{\"error\":{JsonSerializer.Serialize(error.Trim())}}}";
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1]) : fallback;
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    internal static async Task WaitListeningAsync(int port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port).ConfigureAwait(false);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50).ConfigureAwait(false);
            }
        }
    }
}
