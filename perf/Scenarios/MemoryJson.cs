using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Kawa.Dataflow.Perf;

/// <summary>One parsed log line.</summary>
internal sealed record LogLine(string Name, long Id, double Score, bool Active, DateTimeOffset Ts);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(LogLine))]
internal sealed partial class PerfJsonContext : JsonSerializerContext;

/// <summary>
/// <c>memory-json</c>: ~200-byte JSON lines deserialized (System.Text.Json source generation) into a 5-field record and
/// collected by a batching destination that acks a batch at a time. Baseline: a single-threaded loop with the same
/// <see cref="JsonTypeInfo"/>.
/// </summary>
/// <remarks>
/// <c>--ceiling</c> (scenario <c>memory-json-ceiling</c>) measures, instead of the pipeline, the best a hand-written loop
/// on two threads does with the same work against the same baseline: what this machine allows any two-worker design,
/// with no stages, no backpressure and no error handling. <c>--ideal</c> (<c>memory-json-ideal</c>) goes further: two
/// threads that share nothing but a chunk index, each with its own collector, the most two cores give this work.
/// <c>--filter</c> (<c>memory-json-filter</c>) measures the pipeline with a handler that drops two messages in three (which
/// the stage acks itself), against a loop doing the same. <c>--only measured|baseline</c> runs one side 20 times with no
/// JSON, for a profiler. <c>--staged</c> turns <see cref="PipelineOptions.RunToCompletion"/> off, to compare the two
/// ways the pipeline runs.
/// </remarks>
internal static class MemoryJson
{
    public static Task<int> RunAsync(string[] args)
    {
        var count = MemoryHarness.IntOption(args, "--messages", 1_000_000);
        var segment = MemoryHarness.IntOption(args, "--segment", 256);
        var inFlight = MemoryHarness.IntOption(args, "--in-flight", 65_536);
        var parallelism = MemoryHarness.IntOption(args, "--parallelism", Environment.ProcessorCount);
        // The sink's own default batch size, for the pipeline and the baseline's collector alike.
        var batch = MemoryHarness.IntOption(args, "--batch", new BatchingOptions<LogLine>().MaxBatchSize);
        var buffered = MemoryHarness.IntOption(args, "--buffered-batches", new BatchingOptions<LogLine>().BufferedBatches);
        // The issue's shape: the core batching sink collects and acks. `--sink collecting` measures the engine alone.
        var sink = args.SkipWhile(a => a != "--sink").Skip(1).FirstOrDefault() ?? "batching";
        var ceilingOnly = args.Contains("--ceiling");
        var idealOnly = args.Contains("--ideal");
        var filter = args.Contains("--filter");

        // `--staged`: the same pipeline with PipelineOptions.RunToCompletion off, segments passed between blocks.
        var staged = args.Contains("--staged");
        if (sink is not ("batching" or "collecting" or "locked"))
        {
            throw new ArgumentException($"--sink must be 'batching', 'collecting' or 'locked', not '{sink}'.");
        }
        var typeInfo = PerfJsonContext.Default.LogLine;
        var random = new Random(7);
        var messages = new Message<byte[]>[count];
        long payloadBytes = 0;
        for (var i = 0; i < count; i++)
        {
            var line = string.Create(CultureInfo.InvariantCulture,
                $"{{\"name\":\"user-{random.Next(1_000_000, 9_999_999)} login ok from host-{random.Next(100, 999)}.corp.example.com via sso/okta session={random.NextInt64():x16} agent=curl/8.1.2\",\"id\":{1_000_000 + i},\"score\":{random.Next(0, 100_000_000) / 1_000_000.0:F6},\"active\":{(i % 3 == 0 ? "false" : "true")},\"ts\":\"2025-05-20T12:00:00.{i % 1_000_000_000:D9}Z\"}}");
            messages[i] = new Message<byte[]>(Encoding.UTF8.GetBytes(line));
            payloadBytes += messages[i].Value.Length;
        }

        var source = new MemorySource<byte[]>(messages);
        // `--filter`: the handler keeps only inactive users (every third line) and drops the rest, which the stage then
        // acks itself; its baseline loop does the same.
        var parse = filter
            ? Handler.Create<byte[], LogLine>((m, _) =>
            {
                var record = JsonSerializer.Deserialize(m.Value, typeInfo)!;
                return new(record.Active ? Messages<LogLine>.None : new Messages<LogLine>(m.With(record)));
            })
            : Handler.Map<byte[], LogLine>(m => m.With(JsonSerializer.Deserialize(m.Value, typeInfo)!));
        var expected = filter ? (count + 2) / 3 : count;
        var options = new PipelineOptions { SegmentSize = segment, MaxInFlightMessages = inFlight, RunToCompletion = !staged };

        // How the builder decides (unordered stage at parallelism 2 or more, a destination taking that many sends);
        // checked against the built pipeline in each run, so the JSON says how it really ran.
        var runsToCompletion = !staged && parallelism >= 2 && sink is "batching" or "locked";

        async Task Measured()
        {
            long collected = 0;
            IDestination<LogLine> destination = sink == "batching"
                ? new BatchingDestination<LogLine>(
                    (rows, _) =>
                    {
                        collected += rows.Count;
                        return ValueTask.CompletedTask;
                    },
                    new BatchingOptions<LogLine> { MaxBatchSize = batch, BufferedBatches = buffered })
                : sink == "locked" ? new LockedDestination<LogLine>(new CollectingDestination<LogLine>(batch))
                : new CollectingDestination<LogLine>(batch);
            var pipeline = Pipeline.Create("perf-json")
                .From(source)
                .Handle("parse", parse, new StageOptions { MaxDegreeOfParallelism = parallelism, EnsureOrdered = false })
                .To(destination, new DestinationOptions { MaxDegreeOfParallelism = sink == "locked" ? parallelism : 1 })
                .Build(options);
            if (pipeline.RunsToCompletion != runsToCompletion)
            {
                throw new InvalidOperationException($"expected RunsToCompletion {runsToCompletion}, the pipeline says {pipeline.RunsToCompletion}");
            }

            await pipeline.RunAsync();
            source.Verify();
            if (destination is CollectingDestination<LogLine> collecting)
            {
                collected = collecting.Collected;
            }

            if (destination is LockedDestination<LogLine> locked)
            {
                collected = locked.Inner.Collected;
            }

            if (collected != expected)
            {
                throw new InvalidOperationException($"collected {collected} of {expected}");
            }
        }

        async Task Baseline()
        {
            var destination = new CollectingDestination<LogLine>(batch);
            while (true)
            {
                var delivery = await source.ReceiveAsync();
                if (delivery.IsEndOfStream)
                {
                    break;
                }

                var record = JsonSerializer.Deserialize(delivery.Message.Value, typeInfo)!;
                if (filter && record.Active)
                {
                    delivery.Ack.Ack();
                    continue;
                }

                await destination.SendAsync(delivery.Ack, delivery.Message.With(record));
            }

            await destination.FlushAsync();
            source.Verify();
        }

        // The least any two-worker design can cost: each thread claims the next chunk of 256 messages with one
        // interlocked add, deserializes them and hands them to a collector of its own. Nothing else is shared.
        async Task Ideal()
        {
            var next = 0;

            void Work(CollectingDestination<LogLine> destination)
            {
                while (true)
                {
                    var end = Interlocked.Add(ref next, 256);
                    var start = end - 256;
                    if (start >= source.Count)
                    {
                        return;
                    }

                    for (var i = start; i < Math.Min(end, source.Count); i++)
                    {
                        var delivery = source[i];
                        var record = JsonSerializer.Deserialize(delivery.Message.Value, typeInfo)!;
                        destination.SendAsync(delivery.Ack, delivery.Message.With(record)).GetAwaiter().GetResult();
                    }
                }
            }

            var first = new CollectingDestination<LogLine>(batch);
            var second = new CollectingDestination<LogLine>(batch);
            await Task.WhenAll(Task.Run(() => Work(first)), Task.Run(() => Work(second)));
            await first.FlushAsync();
            await second.FlushAsync();
            source.Verify();
        }

        async Task Ceiling()
        {
            var destination = new CollectingDestination<LogLine>(batch);
            var sourceGate = new Lock();
            var sinkGate = new Lock();
            var ended = false;

            void Work()
            {
                var chunk = new Delivery<byte[]>[256];
                var records = new LogLine[256];
                while (true)
                {
                    var taken = 0;
                    lock (sourceGate)
                    {
                        while (!ended && taken < chunk.Length)
                        {
                            var delivery = source.ReceiveAsync().GetAwaiter().GetResult(); // completes synchronously
                            if (delivery.IsEndOfStream)
                            {
                                ended = true;
                                break;
                            }

                            chunk[taken++] = delivery;
                        }
                    }

                    if (taken == 0)
                    {
                        return;
                    }

                    for (var i = 0; i < taken; i++)
                    {
                        records[i] = JsonSerializer.Deserialize(chunk[i].Message.Value, typeInfo)!;
                    }

                    lock (sinkGate)
                    {
                        for (var i = 0; i < taken; i++)
                        {
                            destination.SendAsync(chunk[i].Ack, chunk[i].Message.With(records[i])).GetAwaiter().GetResult();
                        }
                    }
                }
            }

            await Task.WhenAll(Task.Run(Work), Task.Run(Work));
            await destination.FlushAsync();
            source.Verify();
        }

        if (filter && (ceilingOnly || idealOnly))
        {
            throw new ArgumentException("--filter measures the pipeline; it does not combine with --ceiling or --ideal.");
        }

        if (idealOnly)
        {
            return MemoryHarness.RunAsync("memory-json-ideal", count, () => { source.Reset(); return Task.CompletedTask; }, Ideal, Baseline, new Dictionary<string, object>
            {
                ["measured"] = "hand-written loop on 2 threads sharing only a chunk index (chunks of 256), each with its own collector",
                ["sinkBatch"] = batch,
                ["averagePayloadBytes"] = Math.Round(payloadBytes / (double)count, 1),
            });
        }

        if (ceilingOnly)
        {
            // The machine's parallel ceiling for this work, not the pipeline: see the class remarks.
            return MemoryHarness.RunAsync("memory-json-ceiling", count, () => { source.Reset(); return Task.CompletedTask; }, Ceiling, Baseline, new Dictionary<string, object>
            {
                ["measured"] = "hand-written loop on 2 threads: chunks of 256 taken under a lock, deserialized, added to the collector under a lock",
                ["sinkBatch"] = batch,
                ["averagePayloadBytes"] = Math.Round(payloadBytes / (double)count, 1),
            });
        }

        return MemoryHarness.RunAsync(filter ? "memory-json-filter" : "memory-json", count, () => { source.Reset(); return Task.CompletedTask; }, Measured, Baseline, new Dictionary<string, object>
        {
            ["segmentSize"] = segment,
            ["runToCompletion"] = runsToCompletion,
            ["maxInFlightMessages"] = inFlight,
            ["handler"] = filter ? "deserialize, keep inactive users (1 in 3), drop the rest" : "deserialize",
            ["handlerParallelism"] = parallelism,
            ["ensureOrdered"] = false,
            ["destinationParallelism"] = sink == "locked" ? parallelism : 1,
            ["sink"] = sink,
            ["sinkBatch"] = batch,
            ["sinkBufferedBatches"] = buffered,
            ["sinkFlushParallelism"] = new BatchingOptions<LogLine>().FlushParallelism,
            ["averagePayloadBytes"] = Math.Round(payloadBytes / (double)count, 1),
        });
    }
}

/// <summary>A collector behind a lock, for a destination stage that sends from several workers at once.</summary>
internal sealed class LockedDestination<T>(CollectingDestination<T> inner) : IDestination<T>
{
    private readonly Lock _gate = new();

    public CollectingDestination<T> Inner => inner;

    public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return inner.SendAsync(ack, messages, cancellationToken);
        }
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return inner.FlushAsync(cancellationToken);
        }
    }
}
