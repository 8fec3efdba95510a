using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Pipeline;

namespace Kawa.Dataflow.Perf.Nats;

/// <summary>
/// NATS client perf against a private nats-server, each compared with the official JS client (tools/node/nats-perf.mjs)
/// on the same server and workload: <c>nats-pubsub</c>, <c>jetstream-publish</c>, <c>jetstream-consume</c>.
/// Both clients stay up across rounds (the JS client in one node process reading a line per round), so both are
/// equally warm. Options: <c>--url</c> (an existing server; default: start one), <c>--messages N</c> (default 200000 core / 50000
/// JetStream), <c>--size BYTES</c> (default 128), <c>--runs N</c> (default 5: ours and the JS client alternate, medians
/// reported), <c>--warmup N</c> (default 1: rounds for both clients before those, left out of the medians; the cold
/// first round is shown apart as firstRun), <c>--no-peer</c>.
/// </summary>
/// <remarks>
/// Both clients run with their defaults: ours with <see cref="NatsPullConsumerOptions"/> defaults, the JS client with
/// <c>consume()</c> (no options) and publishes awaited in windows of 1,000. Our consume time ends only once a flush
/// round trip confirms the server has every ack (the JS client's ends at its last <c>ack()</c> call), and each run
/// checks the consumer has 0 ack pending and 0 pending afterwards.
/// </remarks>
internal static class NatsPerfScenarios
{
    private const int PublishWindow = 1000;

    /// <summary>The server we started (null with --url): its CPU time per message is reported next to ours (not with --url).</summary>
    private static Process? _server;

    public static Task<int> PubSubAsync(string[] args) => RunAsync("nats-pubsub", args, 200_000, PubSubRoundAsync);

    public static Task<int> JetStreamPublishAsync(string[] args) => RunAsync("jetstream-publish", args, 50_000, JetStreamPublishRoundAsync);

    public static Task<int> JetStreamConsumeAsync(string[] args) => RunAsync("jetstream-consume", args, 50_000, JetStreamConsumeRoundAsync);

    private static async Task<int> RunAsync(string scenario, string[] args, int defaultMessages, Func<NatsConnection, int, byte[], int, Task<Dictionary<string, double>>> round)
    {
        var messages = Option(args, "--messages", defaultMessages);
        var size = Option(args, "--size", 128);
        var runs = Option(args, "--runs", 5);
        var warmup = Option(args, "--warmup", 1);
        var url = StringOption(args, "--url");
        Process? server = null;
        string? store = null;
        if (url is null)
        {
            var port = FreePort();
            store = Path.Combine(Path.GetTempPath(), "kawa-perf-nats-" + Guid.NewGuid().ToString("N"));
            server = Process.Start(new ProcessStartInfo("/usr/sbin/nats-server", ["-a", "127.0.0.1", "-p", port.ToString(), "-js", "-sd", store])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            url = $"nats://127.0.0.1:{port}";
            _server = server;
        }

        try
        {
            if (server is not null)
            {
                await WaitListeningAsync(new Uri(url).Port).ConfigureAwait(false);
            }

            await using var connection = new NatsConnection(new NatsConnectionOptions { Servers = [url], Name = "kawa-perf" });
            await connection.ConnectAsync().ConfigureAwait(false);
            var payload = new byte[size];
            var ours = new List<Dictionary<string, double>>();
            var peers = new List<JsonObject>();
            await using var js = args.Contains("--no-peer") ? null : new JsPeer(scenario, url, messages, size);
            Dictionary<string, double>? coldOurs = null;
            JsonObject? coldPeer = null;
            for (var run = 0; run < warmup + runs; run++)
            {
                // Warm-up rounds (both clients) are left out of the medians: the JIT tiers up during the first ones,
                // more slowly the busier the machine. The very first (cold) round is still shown as firstRun.
                var label = run < warmup ? $"warm-up {run + 1}/{warmup}" : $"run {run - warmup + 1}/{runs}";
                var sample = await round(connection, messages, payload, run).ConfigureAwait(false);
                coldOurs ??= sample;
                if (run >= warmup)
                {
                    ours.Add(sample);
                }

                Console.WriteLine($"{label} kawa: {string.Join(", ", sample.Select(p => $"{p.Key}={p.Value:0.##}"))}");
                if (js is not null)
                {
                    var peer = await js.RoundAsync().ConfigureAwait(false);
                    coldPeer ??= peer;
                    if (run >= warmup)
                    {
                        peers.Add(peer);
                    }

                    Console.WriteLine($"{label} nats.js: {peer.ToJsonString()}");
                }
            }

            var result = new JsonObject
            {
                ["scenario"] = scenario,
                ["messages"] = messages,
                ["size"] = size,
                ["runs"] = runs,
                ["warmup"] = warmup,
                ["cores"] = Environment.ProcessorCount,
            };
            foreach (var key in ours[0].Keys.Where(k => _server is not null || !k.StartsWith("serverCpu", StringComparison.Ordinal)))
            {
                // Rates: the median. Counts left over after a run (ack pending, pending): the worst.
                result[key] = key.EndsWith("After", StringComparison.Ordinal) ? ours.Max(s => s[key]) : Median(ours.Select(s => s[key]));
            }

            var jsRates = peers.Where(p => p["msgsPerSec"] is not null).Select(p => p["msgsPerSec"]!.GetValue<double>()).ToArray();
            if (jsRates.Length > 0)
            {
                result["jsMsgsPerSec"] = Median(jsRates);
                result["ratio"] = Math.Round(Median(ours.Select(s => s["msgsPerSec"])) / Median(jsRates), 2);
                var jsCpu = peers.Where(p => p["cpuMicrosPerMsg"] is not null).Select(p => p["cpuMicrosPerMsg"]!.GetValue<double>()).ToArray();
                if (jsCpu.Length > 0 && ours[0].ContainsKey("kawaCpuMicrosPerMsg"))
                {
                    // CPU per message: steadier than wall time when the machine is shared; >1 means we spend less.
                    result["jsCpuMicrosPerMsg"] = Median(jsCpu);
                    result["cpuRatio"] = Math.Round(Median(jsCpu) / Math.Max(0.01, Median(ours.Select(s => s["kawaCpuMicrosPerMsg"]))), 2);
                }

                if (peers.Any(p => p["ackPending"] is not null))
                {
                    result["jsAckPendingAfter"] = peers.Max(p => p["ackPending"]?.GetValue<double>() ?? 0);
                }
            }

            var errors = peers.Where(p => p["error"] is not null).Select(p => p["error"]!.GetValue<string>()).ToArray();
            if (errors.Length > 0)
            {
                result["jsErrors"] = new JsonArray([.. errors.Select(e => (JsonNode)JsonValue.Create(e)!)]);
            }

            // The first round is cold for both (JIT): shown apart so a cold start is not hidden by the medians.
            result["firstRun"] = new JsonObject
            {
                ["kawa"] = coldOurs!["msgsPerSec"],
                ["js"] = coldPeer?["msgsPerSec"]?.GetValue<double>(),
            };
            result["samples"] = new JsonObject
            {
                ["kawa"] = new JsonArray([.. ours.Select(s => (JsonNode)JsonValue.Create(s["msgsPerSec"]))]),
                ["js"] = new JsonArray([.. jsRates.Select(r => (JsonNode)JsonValue.Create(r))]),
            };
            result["path"] = scenario switch
            {
                "jetstream-consume" => "NatsPullConsumer.NextAsync + JetStreamMsg.AckAsync (one +ACK per message; default batch), timed until a flush confirms every ack; "
                    + "sourceMsgsPerSec: NatsJetStreamSource.ReceiveAsync + AckToken.Ack (default prefetch), timed until dispose sent every ack and a flush confirmed them",
                "jetstream-publish" => "JetStreamContext.PublishAsync, PubAcks awaited in windows of 1,000",
                _ => "NatsConnection.PublishAsync (awaited each) to a subscription read from its channel",
            };
            Console.WriteLine(result.ToJsonString());
            return 0;
        }
        finally
        {
            if (server is not null)
            {
                server.Kill(entireProcessTree: true);
                await server.WaitForExitAsync().ConfigureAwait(false);
                server.Dispose();
                Directory.Delete(store!, recursive: true);
            }
        }
    }

    private static async Task<Dictionary<string, double>> PubSubRoundAsync(NatsConnection connection, int messages, byte[] payload, int run)
    {
        var subject = $"perf.kawa.{run}";
        await using var subscription = await connection.SubscribeAsync(subject, capacity: messages).ConfigureAwait(false);
        await connection.FlushAsync().ConfigureAwait(false);
        var cpu = CpuClock.Start();
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
            await connection.PublishAsync(subject, payload).ConfigureAwait(false);
        }

        await reader.ConfigureAwait(false);
        var elapsed = watch.Elapsed;
        var (kawaCpu, serverCpu) = cpu.MicrosPerMessage(messages);
        return new() { ["msgsPerSec"] = Rate(messages, elapsed), ["kawaCpuMicrosPerMsg"] = kawaCpu, ["serverCpuMicrosPerMsg"] = serverCpu };
    }

    private static async Task<Dictionary<string, double>> JetStreamPublishRoundAsync(NatsConnection connection, int messages, byte[] payload, int run)
    {
        var js = new JetStreamContext(connection);
        var stream = $"PERFPUB{run}";
        await js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"perfpub{run}.>"] }).ConfigureAwait(false);
        try
        {
            var cpu = CpuClock.Start();
            var watch = Stopwatch.StartNew();
            await PublishWindowedAsync(js, $"perfpub{run}.x", messages, payload).ConfigureAwait(false);
            var elapsed = watch.Elapsed;
            var (kawaCpu, serverCpu) = cpu.MicrosPerMessage(messages);
            return new() { ["msgsPerSec"] = Rate(messages, elapsed), ["kawaCpuMicrosPerMsg"] = kawaCpu, ["serverCpuMicrosPerMsg"] = serverCpu };
        }
        finally
        {
            await js.DeleteStreamAsync(stream).ConfigureAwait(false);
        }
    }

    private static async Task<Dictionary<string, double>> JetStreamConsumeRoundAsync(NatsConnection connection, int messages, byte[] payload, int run)
    {
        var js = new JetStreamContext(connection);
        var stream = $"PERFCON{run}";
        await js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"perfcon{run}.>"] }).ConfigureAwait(false);
        try
        {
            // Three consumers over the same messages: explicit acks (the figure), no acks (the ceiling), and the
            // pipeline source (what a Kawa pipeline reads through).
            await js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = "acked", AckPolicy = AckPolicy.Explicit }).ConfigureAwait(false);
            await js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = "noack", AckPolicy = AckPolicy.None }).ConfigureAwait(false);
            await js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = "source", AckPolicy = AckPolicy.Explicit }).ConfigureAwait(false);
            await PublishWindowedAsync(js, $"perfcon{run}.x", messages, payload).ConfigureAwait(false);

            var cpu = CpuClock.Start();
            var acked = await ConsumeAsync(js, stream, "acked", messages, ack: true).ConfigureAwait(false);
            var (kawaCpu, serverCpu) = cpu.MicrosPerMessage(messages);
            var (ackPending, pending) = await SettledAsync(js, stream, "acked").ConfigureAwait(false);
            var noAck = await ConsumeAsync(js, stream, "noack", messages, ack: false).ConfigureAwait(false);
            var source = await ConsumeThroughSourceAsync(connection, stream, "source", messages).ConfigureAwait(false);
            var (sourceAckPending, sourcePending) = await SettledAsync(js, stream, "source").ConfigureAwait(false);
            return new()
            {
                ["msgsPerSec"] = Rate(messages, acked),
                ["kawaCpuMicrosPerMsg"] = kawaCpu,
                ["serverCpuMicrosPerMsg"] = serverCpu,
                ["noAckMsgsPerSec"] = Rate(messages, noAck),
                ["sourceMsgsPerSec"] = Rate(messages, source),
                ["ackPendingAfter"] = ackPending,
                ["pendingAfter"] = pending,
                ["sourceAckPendingAfter"] = sourceAckPending,
                ["sourcePendingAfter"] = sourcePending,
            };
        }
        finally
        {
            await js.DeleteStreamAsync(stream).ConfigureAwait(false);
        }
    }

    /// <summary>The timed consume loop: <paramref name="messages"/> messages from an existing durable, each acked (also the <c>e2e</c> baseline).</summary>
    internal static Task<TimeSpan> ConsumeWithAcksAsync(JetStreamContext js, string stream, string durable, int messages)
        => ConsumeAsync(js, stream, durable, messages, ack: true);

    private static async Task<TimeSpan> ConsumeAsync(JetStreamContext js, string stream, string durable, int messages, bool ack)
    {
        await using var consumer = js.CreatePullConsumer(stream, durable);
        var watch = Stopwatch.StartNew();
        await consumer.StartAsync().ConfigureAwait(false);
        for (var i = 0; i < messages; i++)
        {
            var msg = await consumer.NextAsync().ConfigureAwait(false);
            if (ack)
            {
                await msg.AckAsync().ConfigureAwait(false);
            }
        }

        if (ack)
        {
            await js.Connection.FlushAsync().ConfigureAwait(false);
        }

        return watch.Elapsed;
    }

    private static async Task<TimeSpan> ConsumeThroughSourceAsync(NatsConnection connection, string stream, string durable, int messages)
    {
        var watch = Stopwatch.StartNew();
        var source = await NatsJetStreamSource.StartAsync(connection, ownsConnection: false, new NatsJetStreamSourceOptions
        {
            Stream = stream,
            Durable = durable,
            CreateOrUpdate = false,
        }).ConfigureAwait(false);
        await using (source.ConfigureAwait(false))
        {
            for (var i = 0; i < messages; i++)
            {
                var delivery = await source.ReceiveAsync().ConfigureAwait(false);
                delivery.Ack.Ack();
            }
        }

        await connection.FlushAsync().ConfigureAwait(false);
        return watch.Elapsed;
    }

    /// <summary>The consumer's ack-pending and pending counts once the server has applied the acks (bounded wait).</summary>
    private static async Task<(double AckPending, double Pending)> SettledAsync(JetStreamContext js, string stream, string durable)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var info = await js.GetConsumerAsync(stream, durable).ConfigureAwait(false);
            if ((info.NumAckPending == 0 && info.NumPending == 0) || deadline.Elapsed > TimeSpan.FromSeconds(10))
            {
                return (info.NumAckPending, info.NumPending);
            }

            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    /// <summary>PubAcks awaited in windows of 1,000, as the JS peer does.</summary>
    private static async Task PublishWindowedAsync(JetStreamContext js, string subject, int messages, byte[] payload)
    {
        var window = new List<Task<PubAck>>(PublishWindow);
        for (var i = 0; i < messages; i++)
        {
            window.Add(js.PublishAsync(subject, payload));
            if (window.Count == PublishWindow)
            {
                await Task.WhenAll(window).ConfigureAwait(false);
                window.Clear();
            }
        }

        await Task.WhenAll(window).ConfigureAwait(false);
    }

    /// <summary>CPU time (user + system) spent by this process and by the server: steadier than wall time on a busy machine.</summary>
    private readonly record struct CpuClock(TimeSpan Ours, TimeSpan Server)
    {
        public static CpuClock Start() => new(Process.GetCurrentProcess().TotalProcessorTime, ServerTime());

        public (double Ours, double Server) MicrosPerMessage(int messages)
            => (Math.Round((Process.GetCurrentProcess().TotalProcessorTime - Ours).TotalMicroseconds / messages, 2),
                Math.Round((ServerTime() - Server).TotalMicroseconds / messages, 2));

        private static TimeSpan ServerTime()
        {
            if (_server is null)
            {
                return TimeSpan.Zero;
            }

            _server.Refresh();
            return _server.TotalProcessorTime;
        }
    }

    private static double Rate(int messages, TimeSpan elapsed) => Math.Round(messages / elapsed.TotalSeconds);

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : Math.Round((sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2, 2);
    }

    /// <summary>The JS client in one long-lived node process: each <see cref="RoundAsync"/> runs one round there.</summary>
    private sealed class JsPeer : IAsyncDisposable
    {
        private readonly Process _node;
        private readonly Task<string> _errors;

        public JsPeer(string scenario, string url, int messages, int size)
        {
            var root = AppContext.BaseDirectory;
            while (root is not null && !File.Exists(Path.Combine(root, "Kawa.Dataflow.sln")))
            {
                root = Path.GetDirectoryName(root);
            }

            var script = Path.Combine(root ?? ".", "tools", "node", "nats-perf.mjs");
            _node = Process.Start(new ProcessStartInfo("node", [script, scenario, url, messages.ToString(), size.ToString()])
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = Path.GetDirectoryName(script),
            })!;
            _errors = _node.StandardError.ReadToEndAsync();
        }

        public async Task<JsonObject> RoundAsync()
        {
            await _node.StandardInput.WriteLineAsync("go").ConfigureAwait(false);
            await _node.StandardInput.FlushAsync().ConfigureAwait(false);
            var line = await _node.StandardOutput.ReadLineAsync().ConfigureAwait(false);
            if (line is not null)
            {
                return JsonNode.Parse(line)!.AsObject();
            }

            await _node.WaitForExitAsync().ConfigureAwait(false);
            return new JsonObject { ["error"] = $"node exited {_node.ExitCode}: {(await _errors.ConfigureAwait(false)).Trim()}" };
        }

        public async ValueTask DisposeAsync()
        {
            _node.StandardInput.Close();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _node.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                _node.Kill(entireProcessTree: true);
            }

            _node.Dispose();
        }
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1]) : fallback;
    }

    private static string? StringOption(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
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
