using System.Collections.Concurrent;
using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Core.Batching;

public class BatchingDestinationConcurrencyTests
{
    [Test]
    public async Task SendAsync_ManyConcurrentSenders_EveryMessageFlushedOnceEveryTokenAckedOnce()
    {
        const int senders = 8;
        const int sendsPerSender = 300;
        var flushed = new ConcurrentDictionary<string, int>();
        var batchSizes = new ConcurrentQueue<int>();
        var running = 0;
        var maxRunning = 0;
        var failures = 0;
        var sink = new BatchingDestination<string>(
            async (batch, ct) =>
            {
                var now = Interlocked.Increment(ref running);
                HighWaterMark.Raise(ref maxRunning, now);
                try
                {
                    await Task.Yield();
                    // Every 10th flush fails once, to exercise retries under load.
                    if (Interlocked.Increment(ref failures) % 10 == 0)
                    {
                        throw new IOException("transient");
                    }

                    batchSizes.Enqueue(batch.Count);
                    foreach (var message in batch)
                    {
                        flushed.AddOrUpdate(message.Value, 1, (_, n) => n + 1);
                    }
                }
                finally
                {
                    Interlocked.Decrement(ref running);
                }
            },
            new BatchingOptions<string>
            {
                MaxBatchSize = 7,
                MaxBatchBytes = 40,
                MaxBatchAge = Timeout.InfiniteTimeSpan,
                FlushParallelism = 3,
                MaxRetries = 5,
                RetryBaseDelay = TimeSpan.Zero,
                RetryMaxDelay = TimeSpan.Zero,
                StageName = "batching-concurrency-" + Guid.NewGuid().ToString("N"),
            });

        var probes = new ConcurrentBag<(AckProbe Probe, string[] Values)>();
        var tasks = Enumerable.Range(0, senders).Select(s => Task.Run(async () =>
        {
            for (var i = 0; i < sendsPerSender; i++)
            {
                var values = Enumerable.Range(0, 1 + (i % 3)).Select(k => $"s{s}-m{i}-{k}").ToArray();
                var probe = new AckProbe();
                probes.Add((probe, values));
                await sink.SendAsync(probe, new Messages<string>(values.Select(v => new Message<string>(v)).ToArray()));
            }
        })).ToArray();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(60));
        await sink.FlushAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.That(probes.Select(p => p.Probe.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(probes.Select(p => p.Probe.Completions), Is.All.EqualTo(1));
        var expected = probes.SelectMany(p => p.Values).ToHashSet();
        Assert.That(flushed.Keys, Is.EquivalentTo(expected));
        Assert.That(flushed.Values, Is.All.EqualTo(1), "a successful flush is never repeated");
        Assert.That(batchSizes, Is.All.InRange(1, 7));
        Assert.That(maxRunning, Is.InRange(1, 3));
    }
}
