using Kawa.Dataflow.Tests.Infrastructure;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Tests.Core.Batching;

/// <summary>Where flushes run (<see cref="FlushExecution"/>), and that the slots keep their order and bounds either way.</summary>
public class BatchingDestinationFlushExecutionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static Message<string> M(string value) => new(value);

    private static BatchingOptions<string> Options(Action<BatchingOptions<string>>? configure = null)
    {
        var options = new BatchingOptions<string>
        {
            MaxBatchSize = 1,
            MaxBatchAge = Timeout.InfiniteTimeSpan,
            FlushTimeout = Timeout.InfiniteTimeSpan,
            RetryJitter = false,
            StageName = "flush-execution-test",
        };
        configure?.Invoke(options);
        return options;
    }

    /// <summary>Runs <paramref name="work"/> on a thread of its own (not the pool), so that "which thread" is unambiguous.</summary>
    private static Task<int> OnOwnThreadAsync(Action work)
    {
        var done = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                work();
                done.SetResult(Environment.CurrentManagedThreadId);
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        })
        { IsBackground = true };
        thread.Start();
        return done.Task;
    }

    [Test]
    public async Task SendAsync_AutoAndFlusherCompletesAtOnce_FlushesOnTheSendersThreadAndAcksBeforeSendReturns()
    {
        var flushThreads = new List<int>();
        await using var sink = new BatchingDestination<string>(
            (rows, _) =>
            {
                flushThreads.Add(Environment.CurrentManagedThreadId);
                return ValueTask.CompletedTask;
            },
            Options());
        var probe = new AckProbe();
        var sendCompletedAtOnce = false;

        var sender = await OnOwnThreadAsync(() =>
        {
            var send = sink.SendAsync(probe, M("a"));
            sendCompletedAtOnce = send.IsCompletedSuccessfully && probe.IsCompleted;
            send.AsTask().GetAwaiter().GetResult();
        }).WaitAsync(Wait);

        Assert.That(flushThreads, Is.EqualTo(new[] { sender }), "the flush ran on the thread that closed the batch");
        Assert.That(sendCompletedAtOnce, Is.True, "a flush that completes at once has acked before the send returns");
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task SendAsync_ThreadPool_FlushesOnAPoolThreadNeverTheSenders()
    {
        var flushes = new List<(int Thread, bool Pool)>();
        await using var sink = new BatchingDestination<string>(
            (rows, _) =>
            {
                lock (flushes)
                {
                    flushes.Add((Environment.CurrentManagedThreadId, Thread.CurrentThread.IsThreadPoolThread));
                }

                return ValueTask.CompletedTask;
            },
            Options(o => o.FlushExecution = FlushExecution.ThreadPool));
        var probes = new[] { new AckProbe(), new AckProbe() };

        var sender = await OnOwnThreadAsync(() =>
        {
            sink.SendAsync(probes[0], M("a")).AsTask().GetAwaiter().GetResult();
            sink.SendAsync(probes[1], M("b")).AsTask().GetAwaiter().GetResult();
        }).WaitAsync(Wait);
        foreach (var probe in probes)
        {
            Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        }

        Assert.That(flushes, Has.Count.EqualTo(2));
        Assert.That(flushes.Select(f => f.Pool), Is.All.True, "every flush ran on the pool");
        Assert.That(flushes.Select(f => f.Thread), Has.None.EqualTo(sender));
    }

    [Test]
    public async Task SendAsync_AutoAndAFlushHoldsItsThreadForTheLimit_LaterFlushesGoToThePoolAndAWarningIsLogged()
    {
        var time = new FakeTimeProvider();
        var logs = new CapturingLoggerFactory();
        var flushes = new List<(string Value, int Thread, bool Pool)>();
        var held = new Dictionary<string, TimeSpan>
        {
            ["short"] = TimeSpan.FromMilliseconds(FlushExecutionLimits.MostHeldMilliseconds - 1),
            ["long"] = TimeSpan.FromMilliseconds(FlushExecutionLimits.MostHeldMilliseconds),
        };
        await using var sink = new BatchingDestination<string>(
            (rows, _) =>
            {
                lock (flushes)
                {
                    flushes.Add((rows[0].Value, Environment.CurrentManagedThreadId, Thread.CurrentThread.IsThreadPoolThread));
                }

                // Synchronous work that takes this long on the sink's clock.
                time.Advance(held.GetValueOrDefault(rows[0].Value));
                return ValueTask.CompletedTask;
            },
            Options(),
            time,
            logs);
        var probes = Enumerable.Range(0, 3).Select(_ => new AckProbe()).ToArray();

        var sender = await OnOwnThreadAsync(() =>
        {
            sink.SendAsync(probes[0], M("short")).AsTask().GetAwaiter().GetResult();
            sink.SendAsync(probes[1], M("long")).AsTask().GetAwaiter().GetResult();
            sink.SendAsync(probes[2], M("after")).AsTask().GetAwaiter().GetResult();
        }).WaitAsync(Wait);
        foreach (var probe in probes)
        {
            Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        }

        Assert.That(flushes.Select(f => f.Value), Is.EqualTo(new[] { "short", "long", "after" }));
        Assert.That(flushes[0].Thread, Is.EqualTo(sender), "just under the limit: still on the sender's thread");
        Assert.That(flushes[1].Thread, Is.EqualTo(sender), "the flush that reached the limit had already started there");
        Assert.That(flushes[2].Pool, Is.True, "after it, flushes start on the pool");
        Assert.That(flushes[2].Thread, Is.Not.EqualTo(sender));
        var warning = logs.Entries.Single(e => e.Event.Id == 3009);
        Assert.That(warning.Level, Is.EqualTo(LogLevel.Warning));
        Assert.That(warning.Message, Does.Contain("flush-execution-test").And.Contain("thread pool"));
    }

    [Test]
    public async Task Watchdog_AutoAndTheFlusherBlocksTheSendersThread_AbandonsAtGraceFreesTheSlotAndLaterFlushesGoToThePool()
    {
        var time = new FakeTimeProvider();
        using var release = new ManualResetEventSlim();
        using var blocking = new ManualResetEventSlim();
        var pool = new List<bool>();
        await using var sink = new BatchingDestination<string>(
            (rows, _) =>
            {
                lock (pool)
                {
                    pool.Add(Thread.CurrentThread.IsThreadPoolThread);
                }

                if (rows[0].Value == "hung")
                {
                    // A synchronous write that ignores its token.
                    blocking.Set();
                    release.Wait(CancellationToken.None); // ignores its token, like a hung write
                }

                return ValueTask.CompletedTask;
            },
            Options(o =>
            {
                o.FlushTimeout = TimeSpan.FromSeconds(30);
                o.FlushCancellationGrace = TimeSpan.FromSeconds(5);
                o.OnError = BatchErrorHandler<string>.NegativeAck(TimeSpan.FromSeconds(2));
            }),
            time);
        var hung = new AckProbe();
        var next = new AckProbe();

        var sender = OnOwnThreadAsync(() => sink.SendAsync(hung, M("hung")).AsTask().GetAwaiter().GetResult());
        Assert.That(blocking.Wait(Wait), Is.True, "the flush runs, blocking its sender's thread");
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.That(hung.IsCompleted, Is.False, "the grace period has not passed");
        time.Advance(TimeSpan.FromSeconds(5));

        Assert.That(await hung.WaitAsync(), Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(2))), "abandoned: back to the source");
        Assert.That(sender.IsCompleted, Is.False, "its thread is still blocked in the flusher");
        await sink.SendAsync(next, M("next")).AsTask().WaitAsync(Wait);
        Assert.That(await next.WaitAsync(), Is.EqualTo(AckOutcome.Acked), "the slot was freed for the next batch");
        Assert.That(pool[1], Is.True, "a flush that blocked its thread sends later flushes to the pool");

        release.Set();
        await sender.WaitAsync(Wait);
        await sink.FlushAsync().AsTask().WaitAsync(Wait);
        Assert.That(hung.Completions, Is.EqualTo(1), "the late return of the abandoned flush settles nothing");
        Assert.That(hung.Outcome, Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(2))));
    }

    [Test]
    public async Task Watchdog_AbandonsAFlushThatDeferredItsAcks_RevokesTheHandleSoALateAckDoesNothing()
    {
        var time = new FakeTimeProvider();
        var flusher = new ScriptedFlusher<string>
        {
            HonourCancellation = false,
            OnCall = call => call.Deferred = call.Batch.DeferAcks(),
        };
        await using var sink = new BatchingDestination<string>(flusher, Options(o =>
        {
            o.FlushTimeout = TimeSpan.FromSeconds(30);
            o.FlushCancellationGrace = TimeSpan.Zero;
            o.OnError = BatchErrorHandler<string>.NegativeAck();
        }), time);
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));
        var call = await flusher.NextAsync();
        Assert.That(call.Deferred!.IsRevoked, Is.False);

        time.Advance(TimeSpan.FromSeconds(30)); // no grace: abandoned as the token fires

        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Negative()));
        Assert.That(call.Deferred.IsRevoked, Is.True, "the abandoned attempt's handle no longer settles anything");
        Assert.That(call.Deferred.Ack(), Is.False);
        call.Succeed();
        await sink.FlushAsync().AsTask().WaitAsync(Wait);
        Assert.That(probe.Completions, Is.EqualTo(1));
        Assert.That(flusher.Started, Is.EqualTo(1), "never retried");
    }

    [Test]
    public async Task FlushParallelismOne_BatchesQueueBehindARunningFlush_StartInOrderOneAtATime()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => o.BufferedBatches = 3));
        var probes = Enumerable.Range(0, 4).Select(_ => new AckProbe()).ToArray();
        for (var i = 0; i < probes.Length; i++)
        {
            await sink.SendAsync(probes[i], M($"m{i}")).AsTask().WaitAsync(Wait);
        }

        var order = new List<string>();
        for (var i = 0; i < probes.Length; i++)
        {
            var call = await flusher.NextAsync();
            order.Add(call.Values[0]);
            Assert.That(flusher.MaxConcurrent, Is.EqualTo(1), "one slot: the next batch waits for this flush");
            call.Succeed();
        }

        Assert.That(order, Is.EqualTo(new[] { "m0", "m1", "m2", "m3" }));
        foreach (var probe in probes)
        {
            Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        }
    }

    [Test]
    public async Task SendAsync_AutoAndOneSendNeedsMoreRoomThanTheBuffer_StartsTheBatchesItClosedAndCompletes()
    {
        var flushed = new List<string[]>();
        await using var sink = new BatchingDestination<string>(
            (rows, _) =>
            {
                lock (flushed)
                {
                    flushed.Add(rows.Select(r => r.Value).ToArray());
                }

                return ValueTask.CompletedTask;
            },
            Options(o => { o.MaxBatchSize = 2; o.BufferedBatches = 0; }));
        var probe = new AckProbe();

        // Room for two messages at a time: the send must get its own closed batches flushed to finish.
        await sink.SendAsync(probe, new Messages<string>([M("a"), M("b"), M("c"), M("d"), M("e")])).AsTask().WaitAsync(Wait);
        await sink.FlushAsync().AsTask().WaitAsync(Wait);

        Assert.That(flushed.SelectMany(b => b), Is.EqualTo(new[] { "a", "b", "c", "d", "e" }));
        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task CommitHeldAsync_AndFlushAsyncWaitTogether_BothReturnOnceTheFlushEnds()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => o.MaxBatchSize = 10));
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));

        var commit = sink.CommitHeldAsync().AsTask();
        var call = await flusher.NextAsync();
        var drain = sink.FlushAsync().AsTask();
        Assert.That(commit.IsCompleted || drain.IsCompleted, Is.False, "both wait for the running flush");
        call.Succeed();

        await commit.WaitAsync(Wait);
        await drain.WaitAsync(Wait);
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public void Options_FlushExecutionOutOfRange_RefusedNamingIt()
    {
        var options = Options(o => o.FlushExecution = (FlushExecution)7);

        Assert.That(options.Validate(), Has.One.Contains("BatchingOptions.FlushExecution"));
        Assert.That(new BatchingOptions<string>().FlushExecution, Is.EqualTo(FlushExecution.Auto), "the documented default");
    }
}
