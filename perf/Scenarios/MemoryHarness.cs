using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using System.Text.Json;

namespace Kawa.Dataflow.Perf;

/// <summary>
/// An in-memory source over pre-built messages whose tokens record each final outcome in a bitset, so a run can prove
/// (inside its timed section) that every message was acked exactly once.
/// </summary>
internal sealed class MemorySource<T>(Message<T>[] messages) : ISource<T>
{
    private readonly long[] _acked = new long[(messages.Length + 63) / 64];
    private OutcomeToken[] _tokens = [];
    private int _next;
    private long _notAcked;

    /// <summary>Creates fresh tokens (outside the measured section: they stand for the broker's own receipts).</summary>
    public void Reset()
    {
        Array.Clear(_acked);
        _next = 0;
        _notAcked = 0;
        _tokens = new OutcomeToken[messages.Length];
        for (var i = 0; i < _tokens.Length; i++)
        {
            _tokens[i] = new OutcomeToken(this, i);
        }
    }

    public ValueTask<Delivery<T>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        var i = _next;
        if (i >= messages.Length)
        {
            return new(Delivery<T>.EndOfStream);
        }

        _next = i + 1;
        return new(new Delivery<T>(messages[i], _tokens[i]));
    }

    /// <summary>Message <c>i</c> and its token, for a measured loop that splits the messages itself (<c>--ideal</c>).</summary>
    public Delivery<T> this[int index] => new(messages[index], _tokens[index]);

    /// <summary>How many messages the source holds.</summary>
    public int Count => messages.Length;

    /// <summary>Throws unless every message has been acked (each token also refuses a second outcome).</summary>
    public void Verify()
    {
        long count = 0;
        foreach (var word in _acked)
        {
            count += long.PopCount(word);
        }

        if (count != messages.Length || Interlocked.Read(ref _notAcked) != 0)
        {
            throw new InvalidOperationException($"{count} of {messages.Length} messages acked, {_notAcked} not acked.");
        }
    }

    private void Completed(int index, AckOutcome outcome)
    {
        if (outcome.Kind != AckKind.Ack)
        {
            Interlocked.Increment(ref _notAcked);
            return;
        }

        var bit = 1L << (index & 63);
        if ((Interlocked.Or(ref _acked[index >> 6], bit) & bit) != 0)
        {
            throw new InvalidOperationException($"message {index} acked twice");
        }
    }

    private sealed class OutcomeToken(MemorySource<T> source, int index) : AckToken
    {
        protected override void OnCompleted(AckOutcome outcome) => source.Completed(index, outcome);
    }
}

/// <summary>Acks each message on send.</summary>
internal sealed class AckingDestination<T> : IDestination<T>
{
    public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
    {
        ack.Ack();
        return default;
    }
}

/// <summary>A simple batching destination: collects messages, acks a whole batch at a time (and the rest at flush).</summary>
internal sealed class CollectingDestination<T>(int batchSize) : IDestination<T>
{
    private readonly List<AckToken> _tokens = new(batchSize);
    private readonly List<T> _values = new(batchSize);

    public long Collected { get; private set; }

    public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
    {
        foreach (var message in messages)
        {
            _values.Add(message.Value);
        }

        _tokens.Add(ack);
        if (_values.Count >= batchSize)
        {
            Commit();
        }

        return default;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        Commit();
        return default;
    }

    private void Commit()
    {
        Collected += _values.Count;
        _values.Clear();
        foreach (var token in _tokens)
        {
            token.Ack();
        }

        _tokens.Clear();
    }
}

/// <summary>Runs measured work and its baseline alternately and reports medians; the last line is one JSON object.</summary>
internal static class MemoryHarness
{
    public const int Rounds = 5;

    /// <summary>The fewest untimed rounds of both sides before timing (see <see cref="WarmUpAsync"/>).</summary>
    public const int MinWarmupRounds = 3;

    /// <summary>The most untimed rounds, should compilation never settle.</summary>
    public const int MaxWarmupRounds = 10;

    /// <summary>A warm-up round that compiles no more methods than this ends the warm-up.</summary>
    public const int SettledCompilations = 16;

    public static int IntOption(string[] args, string name, int fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? int.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
    }

    public static async Task<int> RunAsync(string scenario, int messages, Func<Task> reset, Func<Task> measured, Func<Task> baseline, Dictionary<string, object> options)
    {
        // `--only measured|baseline`: 20 rounds of one side and no JSON, for a profiler attached to the process.
        var args = Environment.GetCommandLineArgs();
        var onlyIndex = Array.IndexOf(args, "--only");
        if (onlyIndex >= 0)
        {
            var side = onlyIndex + 1 < args.Length ? args[onlyIndex + 1] : "";
            var work = side switch
            {
                "measured" => measured,
                "baseline" => baseline,
                _ => throw new ArgumentException($"--only must be 'measured' or 'baseline', not '{side}'."),
            };
            Console.WriteLine($"{scenario}: {side} only, 20 rounds of {messages:N0} messages");
            for (var round = 0; round < 20; round++)
            {
                var (seconds, _, cpu) = await MeasureAsync(reset, work);
                Console.WriteLine($"  round {round + 1}: {messages / seconds,14:N0} msg/s, {cpu * 1e9 / messages:F1} ns CPU/msg");
            }

            return 0;
        }

        Console.WriteLine($"{scenario}: {messages:N0} messages, {Rounds} alternating rounds, {Environment.ProcessorCount} cores");
        var warmupRounds = await WarmUpAsync(reset, measured, baseline);

        var rates = new List<double>();
        var baseRates = new List<double>();
        var allocs = new List<long>();
        var baseAllocs = new List<long>();

        // CPU time over all threads: on a shared machine it shows the work done even when wall time is not.
        var cpus = new List<double>();
        var baseCpus = new List<double>();
        for (var round = 0; round < Rounds; round++)
        {
            var (baseSeconds, baseBytes, baseCpu) = await MeasureAsync(reset, baseline);
            var (seconds, bytes, cpu) = await MeasureAsync(reset, measured);
            baseCpus.Add(baseCpu);
            cpus.Add(cpu);
            baseRates.Add(messages / baseSeconds);
            rates.Add(messages / seconds);
            baseAllocs.Add(baseBytes);
            allocs.Add(bytes);
            Console.WriteLine($"  round {round + 1}: pipeline {messages / seconds,14:N0} msg/s ({bytes / (double)messages,7:F1} B/msg)   baseline {messages / baseSeconds,14:N0} msg/s ({baseBytes / (double)messages,7:F1} B/msg)");
        }

        var rate = Median(rates);
        var baseRate = Median(baseRates);
        var alloc = Median(allocs.Select(b => (double)b));
        var baseAlloc = Median(baseAllocs.Select(b => (double)b));
        var result = new Dictionary<string, object>
        {
            ["scenario"] = scenario,
            ["messages"] = messages,
            ["msgsPerSec"] = Math.Round(rate),
            ["msgsPerSecMin"] = Math.Round(rates.Min()),
            ["msgsPerSecMax"] = Math.Round(rates.Max()),
            ["baselineMsgsPerSec"] = Math.Round(baseRate),
            ["baselineMsgsPerSecMin"] = Math.Round(baseRates.Min()),
            ["baselineMsgsPerSecMax"] = Math.Round(baseRates.Max()),
            ["ratio"] = Math.Round(rate / baseRate, 3),
            ["allocBytesPerMsg"] = Math.Round((alloc - baseAlloc) / messages, 2),
            ["totalAllocBytesPerMsg"] = Math.Round(alloc / messages, 2),
            ["cpuNsPerMsg"] = Math.Round(Median(cpus) * 1e9 / messages, 1),
            ["baselineCpuNsPerMsg"] = Math.Round(Median(baseCpus) * 1e9 / messages, 1),
            ["cores"] = Environment.ProcessorCount,
            ["warmupRounds"] = warmupRounds,
            ["gc"] = GcSettings(),
            ["options"] = options,
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>
    /// Runs both sides, untimed, until a round compiles at most <see cref="SettledCompilations"/> methods (at least
    /// <see cref="MinWarmupRounds"/> rounds, at most <see cref="MaxWarmupRounds"/>); returns how many rounds that took.
    /// </summary>
    /// <remarks>
    /// Tiered compilation recompiles hot methods on a background thread for a while after they first run. On two cores
    /// that thread takes a core from a two-worker pipeline but not from a single-threaded loop, so timing rounds while it
    /// still works measures the JIT, not the steady state a long-running job sees. A round with no newly compiled method
    /// (<see cref="System.Runtime.JitInfo.GetCompiledMethodCount"/>) means both sides run their final code. On this
    /// scenario the first rounds compile about 1,300, 650, 60 and 10 methods; later rounds keep compiling a handful
    /// (rare paths: timers, the thread pool, the GC), so "settled" allows a few.
    /// </remarks>
    private static async Task<int> WarmUpAsync(Func<Task> reset, Func<Task> measured, Func<Task> baseline)
    {
        var compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        for (var round = 1; ; round++)
        {
            await reset();
            await baseline();
            await reset();
            await measured();
            var now = System.Runtime.JitInfo.GetCompiledMethodCount();
            if ((round >= MinWarmupRounds && now - compiled <= SettledCompilations) || round == MaxWarmupRounds)
            {
                Console.WriteLine($"  warm-up: {round} rounds, {now - compiled} methods compiled in the last");
                return round;
            }

            compiled = now;
        }
    }

    private static async Task<(double Seconds, long Bytes, double CpuSeconds)> MeasureAsync(Func<Task> reset, Func<Task> work)
    {
        await reset();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var before = GC.GetTotalAllocatedBytes(true);
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var gcBefore = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        var pauseBefore = GC.GetTotalPauseDuration();
        var watch = Stopwatch.StartNew();
        await work();
        watch.Stop();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        var after = GC.GetTotalAllocatedBytes(true);
        Console.WriteLine($"    {watch.Elapsed.TotalMilliseconds:F0} ms wall, {cpu.TotalMilliseconds:F0} ms CPU, GCs gen0/1/2 {GC.CollectionCount(0) - gcBefore.Item1}/{GC.CollectionCount(1) - gcBefore.Item2}/{GC.CollectionCount(2) - gcBefore.Item3}, GC pauses {(GC.GetTotalPauseDuration() - pauseBefore).TotalMilliseconds:F0} ms");
        return (watch.Elapsed.TotalSeconds, after - before, cpu.TotalSeconds);
    }

    /// <summary>
    /// The GC mode of this process (it applies to the pipeline and its baseline alike): the gen0 budget in particular
    /// changes how much of the pipeline's in-flight window survives each collection.
    /// </summary>
    private static Dictionary<string, object> GcSettings() => new()
    {
        ["server"] = GCSettings.IsServerGC,
        ["concurrent"] = AppContext.GetData("System.GC.Concurrent") is not false,
        ["latencyMode"] = GCSettings.LatencyMode.ToString(),
        ["gen0size"] = Environment.GetEnvironmentVariable("DOTNET_GCgen0size") ?? "default",
    };

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
