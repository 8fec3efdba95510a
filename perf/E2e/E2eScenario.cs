using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Perf.Nats;

namespace Kawa.Dataflow.Perf.E2e;

/// <summary>
/// <c>e2e</c>: the daemon end to end. Publishes N log-like JSON events (~200 bytes) to a JetStream stream on a private
/// nats-server, then times the <c>kawa</c> binary as a child process (<c>kawa run --drain</c>: parse JSON, map 10 columns,
/// Parquet lake partitioned by day) from spawn to exit, with fsync commits and with fsync off, against the bare
/// <c>jetstream-consume</c> loop with acks on the same server. Peak RSS is the child's <c>VmHWM</c>, polled from
/// <c>/proc/&lt;pid&gt;/status</c> until it exits, at N and at N/10.
/// </summary>
/// <remarks>
/// Options: <c>--messages N</c> (default 1,000,000: a batch job's size, so the ~1.5 s of process start, JIT and connect
/// weighs as it would in production, not a third of the run as at 200,000; five rounds of four runs take ~7 minutes on
/// a loaded 2-core machine), <c>--rounds R</c> (default 5), <c>--roll-age</c> (default <c>00:00:30</c>, below the 1-minute <c>ackWait</c>), <c>--in-flight</c> (the daemon's
/// <c>limits.maxInFlightMessages</c>, default 50,000; <c>maxAckPending</c> is 10,000 more), <c>--roll-rows</c> (default
/// 25,000: two files' worth in flight, so one commits while the next fills). One warm-up run of each kind at
/// N/10 first; then rounds whose order alternates (consume, fsync on, fsync off, tenth / the reverse). Each run uses a
/// fresh durable consumer on the same stream, so every run reads the same N messages from the server's store. A run
/// counts only when kawa exits 0 and its consumer ends with nothing pending or awaiting an ack.
/// The roll age is a production-like one: once the stream is read, <c>--drain</c> makes the source report Idle and the
/// sink commits its open files at once (it does not wait for the age). The timing includes the process start.
/// <c>kawaCpuUsPerMsg</c> is the child's user + system CPU over N; <c>kawaMarginalCpuUsPerMsg</c> is (CPU at N - CPU at
/// N/10) / (N - N/10), which leaves start-up out. CPU time is steadier than wall time on a shared machine.
/// </remarks>
internal static class E2eScenario
{
    private const string Stream = "E2E";

    public static async Task<int> RunAsync(string[] args)
    {
        var messages = Option(args, "--messages", 1_000_000);
        var rounds = Option(args, "--rounds", 5);
        var rollAge = StringOption(args, "--roll-age", "00:00:30");
        var inFlight = Option(args, "--in-flight", 50_000);
        var rollRows = Option(args, "--roll-rows", 25_000);
        var tenth = Math.Max(1, messages / 10);
        var kawaDll = Path.Combine(AppContext.BaseDirectory, "kawa.dll");
        if (!File.Exists(kawaDll))
        {
            throw new FileNotFoundException($"kawa.dll not found next to the perf binary ({kawaDll}); build perf, which references Kawa.Dataflow.Cli.");
        }

        var port = NatsPerfScenarios.FreePort();
        var work = Path.Combine(Path.GetTempPath(), "kawa-perf-e2e-" + Guid.NewGuid().ToString("N"));
        var store = Path.Combine(work, "js");
        Directory.CreateDirectory(work);
        using var server = Process.Start(new ProcessStartInfo("/usr/sbin/nats-server", ["-a", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-js", "-sd", store])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        try
        {
            await NatsPerfScenarios.WaitListeningAsync(port).ConfigureAwait(false);
            var url = $"nats://127.0.0.1:{port}";
            await using var connection = new NatsConnection(new NatsConnectionOptions { Servers = [url], Name = "kawa-perf-e2e" });
            await connection.ConnectAsync().ConfigureAwait(false);
            var js = new JetStreamContext(connection);
            await js.CreateStreamAsync(new StreamConfig { Name = Stream, Subjects = ["e2e.>"] }).ConfigureAwait(false);

            Console.WriteLine($"e2e: publishing {messages:N0} events ({tenth:N0} of them on e2e.tenth for the N/10 run), {Environment.ProcessorCount} cores, load {LoadAverage()}");
            var publishWatch = Stopwatch.StartNew();
            var payloadBytes = await PublishAsync(js, messages, tenth).ConfigureAwait(false);
            Console.WriteLine($"  published in {publishWatch.Elapsed.TotalSeconds:F1} s, {payloadBytes / (double)messages:F0} B/event");

            var run = 0;
            async Task<KawaRun> Kawa(bool fsync, bool tenthOnly)
            {
                var id = ++run;
                var durable = "kawa-" + id.ToString(CultureInfo.InvariantCulture);
                var lake = Path.Combine(work, "lake-" + id.ToString(CultureInfo.InvariantCulture));
                var config = Path.Combine(work, "kawa-" + id.ToString(CultureInfo.InvariantCulture) + ".json");
                await File.WriteAllTextAsync(config, Config(url, durable, tenthOnly ? "e2e.tenth" : "e2e.>", lake, fsync, rollAge, inFlight, rollRows)).ConfigureAwait(false);
                var result = await RunKawaAsync(kawaDll, config, work).ConfigureAwait(false);
                await VerifyDrainedAsync(js, durable, tenthOnly ? tenth : messages).ConfigureAwait(false);
                await js.DeleteConsumerAsync(Stream, durable).ConfigureAwait(false);
                Directory.Delete(lake, recursive: true);
                File.Delete(config);
                return result;
            }

            async Task<double> Consume(int count)
            {
                var durable = "consume-" + (++run).ToString(CultureInfo.InvariantCulture);
                await js.CreateConsumerAsync(Stream, new ConsumerConfig { DurableName = durable, AckPolicy = AckPolicy.Explicit }).ConfigureAwait(false);
                var elapsed = await NatsPerfScenarios.ConsumeWithAcksAsync(js, Stream, durable, count).ConfigureAwait(false);
                await js.DeleteConsumerAsync(Stream, durable).ConfigureAwait(false);
                return elapsed.TotalSeconds;
            }

            // Warm-up (not counted): the server's store into the page cache, the perf process's consume path JIT-compiled.
            await Consume(tenth).ConfigureAwait(false);
            await Kawa(fsync: true, tenthOnly: true).ConfigureAwait(false);

            var on = new List<KawaRun>();
            var off = new List<KawaRun>();
            var small = new List<KawaRun>();
            var consume = new List<double>();
            for (var round = 0; round < rounds; round++)
            {
                Func<Task>[] steps =
                [
                    async () => consume.Add(await Consume(messages).ConfigureAwait(false)),
                    async () => on.Add(await Kawa(fsync: true, tenthOnly: false).ConfigureAwait(false)),
                    async () => off.Add(await Kawa(fsync: false, tenthOnly: false).ConfigureAwait(false)),
                    async () => small.Add(await Kawa(fsync: true, tenthOnly: true).ConfigureAwait(false)),
                ];
                if (round % 2 == 1)
                {
                    Array.Reverse(steps);
                }

                foreach (var step in steps)
                {
                    await step().ConfigureAwait(false);
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  round {round + 1}: kawa fsync on {messages / on[^1].Seconds,9:N0} msg/s ({on[^1].Rss:F0} MB)   fsync off {messages / off[^1].Seconds,9:N0} msg/s ({off[^1].Rss:F0} MB)   consume+ack {messages / consume[^1],9:N0} msg/s   N/10 {tenth / small[^1].Seconds,9:N0} msg/s ({small[^1].Rss:F0} MB)   kawa CPU {on[^1].CpuSeconds * 1e6 / messages:F1} µs/msg   load {LoadAverage()}"));
            }

            var rate = Median(on.Select(r => messages / r.Seconds));
            var offRate = Median(off.Select(r => messages / r.Seconds));
            var consumeRate = Median(consume.Select(s => messages / s));
            var rss = Median(on.Select(r => r.Rss));
            var rssTenth = Median(small.Select(r => r.Rss));
            // CPU per message at the margin: (CPU at N - CPU at N/10) / (N - N/10) leaves out start-up, JIT and connect.
            var cpuPerMsg = Median(on.Select(r => r.CpuSeconds)) / messages;
            var marginalCpuPerMsg = (Median(on.Select(r => r.CpuSeconds)) - Median(small.Select(r => r.CpuSeconds))) / (messages - tenth);
            var result = new Dictionary<string, object>
            {
                ["scenario"] = "e2e",
                ["messages"] = messages,
                ["rounds"] = rounds,
                ["msgsPerSec"] = Math.Round(rate),
                ["msgsPerSecMin"] = Math.Round(on.Min(r => messages / r.Seconds)),
                ["msgsPerSecMax"] = Math.Round(on.Max(r => messages / r.Seconds)),
                ["consumeMsgsPerSec"] = Math.Round(consumeRate),
                ["ratioToConsume"] = Math.Round(rate / consumeRate, 3),
                ["fsyncOffMsgsPerSec"] = Math.Round(offRate),
                ["fsyncRatio"] = Math.Round(rate / offRate, 3),
                ["peakRssMb"] = Math.Round(rss, 1),
                ["peakRssMbMax"] = Math.Round(on.Max(r => r.Rss), 1),
                ["fsyncOffPeakRssMb"] = Math.Round(Median(off.Select(r => r.Rss)), 1),
                ["peakRssMbAtTenth"] = Math.Round(rssTenth, 1),
                ["rssRatioToTenth"] = Math.Round(rss / rssTenth, 3),
                ["tenthMsgsPerSec"] = Math.Round(Median(small.Select(r => tenth / r.Seconds))),
                ["kawaCpuUsPerMsg"] = Math.Round(cpuPerMsg * 1e6, 2),
                ["kawaMarginalCpuUsPerMsg"] = Math.Round(marginalCpuPerMsg * 1e6, 2),
                ["kawaCpuSecondsAtTenth"] = Math.Round(Median(small.Select(r => r.CpuSeconds)), 2),
                ["payloadBytes"] = Math.Round(payloadBytes / (double)messages),
                ["cores"] = Environment.ProcessorCount,
                ["loadAverage"] = LoadAverage(),
                ["rollAge"] = rollAge,
                ["inFlight"] = inFlight,
                ["rollRows"] = rollRows,
                ["timing"] = "kawa: spawn to exit (process start, connect, drain, final commit); consume: first pull to last ack",
            };
            Console.WriteLine(JsonSerializer.Serialize(result));
            return 0;
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync().ConfigureAwait(false);
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>The daemon's config: JSON events parsed and mapped to 10 columns, a lake partitioned by day.</summary>
    internal static string Config(string url, string durable, string filter, string lake, bool fsync, string rollAge, int inFlight, int rollRows) => JsonSerializer.Serialize(new
    {
        pipeline = new
        {
            name = "perf-e2e",
            source = new
            {
                type = "nats-jetstream",
                servers = new[] { url },
                stream = Stream,
                durable,
                filterSubjects = new[] { filter },
                ackWait = "00:01:00",
                // In flight (limits) + prefetch must fit; rollRows below in flight so files roll by rows, not only by age.
                maxAckPending = inFlight + 10_000,
                prefetch = 2_000,
            },
            handlers = new object[]
            {
                new { type = "parse", format = "json", parallelism = 2, capacity = 4_096 },
            },
            destination = new
            {
                type = "parquet",
                path = lake,
                partitionBy = "dt={ts:yyyy-MM-dd}",
                columns = new object[]
                {
                    new { name = "ts", type = "timestamp" },
                    new { name = "level", type = "string" },
                    new { name = "service", type = "string" },
                    new { name = "host", type = "string" },
                    new { name = "path", type = "string" },
                    new { name = "status", type = "long" },
                    new { name = "latency_ms", type = "double" },
                    new { name = "bytes", type = "long" },
                    new { name = "user_id", type = "long" },
                    new { name = "trace_id", type = "string" },
                },
                rollRows,
                rollAge,
                fsync,
            },
            limits = new { maxInFlightMessages = inFlight },
        },
        // Never collide with another process's metrics port.
        metrics = new { port = 0 },
    });

    /// <summary>One <c>kawa run --drain</c>: wall time spawn to exit, peak RSS, and CPU time (user + system).</summary>
    private readonly record struct KawaRun(double Seconds, double Rss, double CpuSeconds);

    /// <summary>
    /// Runs <c>kawa run --drain</c>, timing spawn to exit and polling the child's VmHWM and its CPU time (utime + stime
    /// from <c>/proc/&lt;pid&gt;/stat</c>) until it exits. CPU per message is the steadier figure on a shared machine.
    /// </summary>
    private static async Task<KawaRun> RunKawaAsync(string kawaDll, string config, string workingDirectory)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { kawaDll, "run", "--config", config, "--drain" })
        {
            start.ArgumentList.Add(arg);
        }

        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var status = $"/proc/{process.Id}/status";
        var stat = $"/proc/{process.Id}/stat";
        long peakKb = 0;
        long cpuTicks = 0;
        var exited = process.WaitForExitAsync();
        // VmHWM only grows: the last reading before the process goes away is its peak (up to one poll interval).
        while (!exited.IsCompleted)
        {
            peakKb = Math.Max(peakKb, ReadHighWaterMarkKb(status));
            cpuTicks = Math.Max(cpuTicks, ReadCpuTicks(stat));
            await Task.WhenAny(exited, Task.Delay(20)).ConfigureAwait(false);
        }

        watch.Stop();
        await exited.ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"kawa exited {process.ExitCode}:\n{await stderr.ConfigureAwait(false)}\n{await stdout.ConfigureAwait(false)}");
        }

        // USER_HZ is 100 on Linux (sysconf(_SC_CLK_TCK)); the last poll misses at most one interval of CPU.
        return new KawaRun(watch.Elapsed.TotalSeconds, peakKb / 1024.0, cpuTicks / 100.0);
    }

    /// <summary>utime + stime (fields 14 and 15 of <c>/proc/&lt;pid&gt;/stat</c>, in clock ticks); 0 once it is gone.</summary>
    private static long ReadCpuTicks(string statPath)
    {
        try
        {
            var text = File.ReadAllText(statPath);
            // The command name (field 2) may hold spaces: count fields from the closing parenthesis.
            var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static long ReadHighWaterMarkKb(string statusPath)
    {
        try
        {
            foreach (var line in File.ReadLines(statusPath))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
            // The process exited between polls.
        }

        return 0;
    }

    private static async Task VerifyDrainedAsync(JetStreamContext js, string durable, int expected)
    {
        var info = await js.GetConsumerAsync(Stream, durable).ConfigureAwait(false);
        var acked = info.AckFloor?.ConsumerSeq ?? 0;
        if (info.NumPending != 0 || info.NumAckPending != 0 || acked < (ulong)expected)
        {
            throw new InvalidOperationException($"consumer {durable}: {info.NumPending} pending, {info.NumAckPending} awaiting ack, ack floor {acked} of {expected}: the run did not drain everything.");
        }
    }

    /// <summary>Log-like events, windowed PubAcks (256 outstanding); the first <paramref name="tenth"/> go to <c>e2e.tenth</c>.</summary>
    private static async Task<long> PublishAsync(JetStreamContext js, int messages, int tenth)
    {
        string[] levels = ["info", "info", "info", "warn", "error", "debug"];
        string[] services = ["checkout", "search", "auth", "catalog", "payments"];
        int[] statuses = [200, 200, 200, 200, 201, 204, 301, 304, 400, 404, 500, 503];
        var random = new Random(5);
        var start = new DateTimeOffset(2026, 11, 21, 22, 0, 0, TimeSpan.Zero);
        var window = new List<Task<PubAck>>(256);
        long bytes = 0;
        for (var i = 0; i < messages; i++)
        {
            var ts = start.AddMilliseconds(i * 7L);
            var line = string.Create(CultureInfo.InvariantCulture,
                $"{{\"ts\":\"{ts:yyyy-MM-ddTHH:mm:ss.fffZ}\",\"level\":\"{levels[i % levels.Length]}\",\"service\":\"{services[random.Next(services.Length)]}\",\"host\":\"web-{random.Next(1, 40):D2}\",\"path\":\"/api/v1/orders/{random.Next(100_000, 999_999)}\",\"status\":{statuses[random.Next(statuses.Length)]},\"latency_ms\":{random.Next(1, 2_000_000) / 1000.0:F3},\"bytes\":{random.Next(0, 50_000)},\"user_id\":{random.Next(1, 10_000_000)},\"trace_id\":\"{random.NextInt64():x16}\"}}");
            var payload = Encoding.UTF8.GetBytes(line);
            bytes += payload.Length;
            window.Add(js.PublishAsync(i < tenth ? "e2e.tenth" : "e2e.rest", payload));
            if (window.Count == 256)
            {
                await Task.WhenAll(window).ConfigureAwait(false);
                window.Clear();
            }
        }

        await Task.WhenAll(window).ConfigureAwait(false);
        return bytes;
    }

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static string StringOption(string[] args, string name, string fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : fallback;
    }
}
