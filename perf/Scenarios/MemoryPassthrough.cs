namespace Kawa.Dataflow.Perf;

/// <summary>
/// <c>memory-passthrough</c>: byte[] messages through <see cref="Handler.Pipe{T}"/> to a destination that acks each one.
/// Baseline: the same receive, handle and send in a single-threaded loop.
/// </summary>
internal static class MemoryPassthrough
{
    public static Task<int> RunAsync(string[] args)
    {
        var count = MemoryHarness.IntOption(args, "--messages", 1_000_000);
        var segment = MemoryHarness.IntOption(args, "--segment", 256);
        var inFlight = MemoryHarness.IntOption(args, "--in-flight", 65_536);
        var payload = new byte[64];
        var messages = new Message<byte[]>[count];
        for (var i = 0; i < count; i++)
        {
            messages[i] = new Message<byte[]>(payload);
        }

        var source = new MemorySource<byte[]>(messages);
        var handler = Handler.Pipe<byte[]>();
        var destination = new AckingDestination<byte[]>();
        var options = new PipelineOptions { SegmentSize = segment, MaxInFlightMessages = inFlight, MaxInFlightBytes = long.MaxValue };

        async Task Measured()
        {
            await Pipeline.Create("perf-passthrough")
                .From(source)
                .Handle("pipe", handler)
                .To(destination)
                .Build(options)
                .RunAsync();
            source.Verify();
        }

        async Task Baseline()
        {
            while (true)
            {
                var delivery = await source.ReceiveAsync();
                if (delivery.IsEndOfStream)
                {
                    break;
                }

                var outputs = await handler.HandleAsync(delivery.Message);
                await destination.SendAsync(delivery.Ack, outputs);
            }

            source.Verify();
        }

        return MemoryHarness.RunAsync("memory-passthrough", count, () => { source.Reset(); return Task.CompletedTask; }, Measured, Baseline, new Dictionary<string, object>
        {
            ["segmentSize"] = segment,
            ["maxInFlightMessages"] = inFlight,
            ["handlerParallelism"] = 1,
            ["destinationParallelism"] = 1,
            ["payloadBytes"] = payload.Length,
        });
    }
}
