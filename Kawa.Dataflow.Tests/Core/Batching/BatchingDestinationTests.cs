using NSubstitute;
using Kawa.Dataflow.Tests.Infrastructure;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Tests.Core.Batching;

public class BatchingDestinationTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static Message<string> M(string value) => new(value);

    private static BatchingOptions<string> Options(Action<BatchingOptions<string>>? configure = null)
    {
        // No timers unless a test asks for them, so fake time only moves what the test means to move.
        var options = new BatchingOptions<string>
        {
            MaxBatchSize = 3,
            MaxBatchAge = Timeout.InfiniteTimeSpan,
            FlushTimeout = Timeout.InfiniteTimeSpan,
            RetryJitter = false,
            RetryBaseDelay = TimeSpan.FromSeconds(1),
            StageName = "batching-test-" + Guid.NewGuid().ToString("N"),
        };
        configure?.Invoke(options);
        return options;
    }

    [Test]
    public async Task SendAsync_MaxBatchSizeReached_FlushesOneBatchAndAcksOnlyAfterItsFlush()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options());
        var probes = new[] { new AckProbe(), new AckProbe(), new AckProbe() };

        for (var i = 0; i < 3; i++)
        {
            await sink.SendAsync(probes[i], M($"m{i}"));
        }

        var call = await flusher.NextAsync();
        Assert.That(call.Values, Is.EqualTo(new[] { "m0", "m1", "m2" }));
        Assert.That(probes.Select(p => p.IsCompleted), Is.All.False, "no ack while the flush has not returned");

        call.Succeed();
        foreach (var probe in probes)
        {
            Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        }
    }

    [Test]
    public async Task SendAsync_NextMessageWouldExceedMaxBatchBytes_FlushesBatchFirst()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o =>
        {
            o.MaxBatchSize = 100;
            o.MaxBatchBytes = 10;
        }));

        await sink.SendAsync(AckToken.None(), M("aaaa"));
        await sink.SendAsync(AckToken.None(), M("bbbb"));
        Assert.That(flusher.HasPendingCall, Is.False, "8 of 10 bytes: no flush yet");
        await sink.SendAsync(AckToken.None(), M("cccc"));

        var first = await flusher.NextAsync();
        Assert.That(first.Values, Is.EqualTo(new[] { "aaaa", "bbbb" }));
        Assert.That(first.Batch.EstimatedBytes, Is.EqualTo(8));
        first.Succeed();

        await sink.SendAsync(AckToken.None(), M("dddddd"));
        var second = await flusher.NextAsync();
        Assert.That(second.Values, Is.EqualTo(new[] { "cccc", "dddddd" }), "10 bytes reached exactly: flushed at once");
        second.Succeed();
    }

    [Test]
    public async Task SendAsync_MessageLargerThanMaxBatchBytes_IsFlushedAlone()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o =>
        {
            o.MaxBatchSize = 100;
            o.MaxBatchBytes = 4;
        }));

        await sink.SendAsync(AckToken.None(), M("ab"));
        await sink.SendAsync(AckToken.None(), M("0123456789"));

        var first = await flusher.NextAsync();
        Assert.That(first.Values, Is.EqualTo(new[] { "ab" }));
        first.Succeed();
        Assert.That((await flusher.NextAsync()).Values, Is.EqualTo(new[] { "0123456789" }));
    }

    [Test]
    public async Task SendAsync_CustomSizeEstimator_DrivesByteTrigger()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o =>
        {
            o.MaxBatchSize = 100;
            o.MaxBatchBytes = 100;
            o.SizeEstimator = _ => 50;
        }));

        await sink.SendAsync(AckToken.None(), M("x"));
        await sink.SendAsync(AckToken.None(), M("y"));

        Assert.That((await flusher.NextAsync()).Values, Is.EqualTo(new[] { "x", "y" }));
    }

    [Test]
    public async Task MaxBatchAge_CountsFromFirstMessage_FlushesWhenItElapses()
    {
        var time = new FakeTimeProvider();
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o =>
        {
            o.MaxBatchSize = 100;
            o.MaxBatchAge = TimeSpan.FromSeconds(10);
        }), time);

        await sink.SendAsync(AckToken.None(), M("first"));
        time.Advance(TimeSpan.FromSeconds(6));
        await sink.SendAsync(AckToken.None(), M("second"));
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.That(time.ActiveTimers, Is.EqualTo(1), "9 s after the first message: the age timer has not fired");
        Assert.That(flusher.Started, Is.Zero);

        time.Advance(TimeSpan.FromSeconds(1));

        Assert.That((await flusher.NextAsync()).Values, Is.EqualTo(new[] { "first", "second" }));
    }

    [Test]
    public async Task MaxBatchAge_TimerOfBatchFlushedBySize_DoesNotCutTheNextBatchShort()
    {
        var time = new FakeTimeProvider();
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o =>
        {
            o.MaxBatchSize = 2;
            o.MaxBatchAge = TimeSpan.FromSeconds(10);
        }), time);

        await sink.SendAsync(AckToken.None(), M("a"));
        await sink.SendAsync(AckToken.None(), M("b"));
        (await flusher.NextAsync()).Succeed();
        time.Advance(TimeSpan.FromSeconds(5));
        await sink.SendAsync(AckToken.None(), M("c"));

        Assert.That(time.ActiveTimers, Is.EqualTo(1), "only the new batch's timer: the full batch's was cancelled");
        time.Advance(TimeSpan.FromSeconds(5)); // the first batch's age, had its timer survived
        Assert.That(time.ActiveTimers, Is.EqualTo(1), "the new batch's timer has 5 s to go");
        time.Advance(TimeSpan.FromSeconds(5)); // 10 s after "c"

        Assert.That((await flusher.NextAsync()).Values, Is.EqualTo(new[] { "c" }));
    }

    [Test]
    public async Task FlushAsync_PartialBatch_IsFlushedAndAckedBeforeDrainReturns()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => o.MaxBatchSize = 100));
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("only"));

        var drain = sink.FlushAsync().AsTask();
        var call = await flusher.NextAsync();
        Assert.That(call.Values, Is.EqualTo(new[] { "only" }));
        Assert.That(drain.IsCompleted, Is.False, "the drain waits for the final flush");

        call.Succeed();
        await drain.WaitAsync(Wait);
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task SendAsync_ThreeMessagesOneToken_AckedOnceAfterAllThreeFlushedAcrossBatches()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => o.MaxBatchSize = 2));
        var probe = new AckProbe();

        await sink.SendAsync(probe, new Messages<string>([M("a"), M("b"), M("c")]));
        var first = await flusher.NextAsync();
        Assert.That(first.Values, Is.EqualTo(new[] { "a", "b" }));
        first.Succeed();

        var drain = sink.FlushAsync().AsTask();
        var second = await flusher.NextAsync();
        Assert.That(second.Values, Is.EqualTo(new[] { "c" }));
        Assert.That(probe.IsCompleted, Is.False, "c is not flushed yet");

        second.Succeed();
        await drain.WaitAsync(Wait);
        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        Assert.That(probe.Completions, Is.EqualTo(1));
    }

    [Test]
    public async Task SendAsync_OneMessageOfATokenFails_TokenNackedOnceAfterTheOthersSettle()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o =>
        {
            o.MaxBatchSize = 2;
            o.MaxRetries = 0;
            o.OnError = BatchErrorHandler<string>.NegativeAck(TimeSpan.FromSeconds(7));
        }));
        var probe = new AckProbe();

        await sink.SendAsync(probe, new Messages<string>([M("a"), M("b"), M("c")]));
        (await flusher.NextAsync()).Fail(new IOException("disk full"));
        var drain = sink.FlushAsync().AsTask();
        var second = await flusher.NextAsync();
        Assert.That(probe.IsCompleted, Is.False, "c is still being flushed");

        second.Succeed();
        await drain.WaitAsync(Wait);
        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(7))));
        Assert.That(probe.Completions, Is.EqualTo(1));
    }

    [Test]
    public async Task SendAsync_NoMessages_AcksAtOnce()
    {
        await using var sink = new BatchingDestination<string>(new ScriptedFlusher<string>(), Options());
        var probe = new AckProbe();

        await sink.SendAsync(probe, Messages<string>.None);

        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task Flush_FailsThenSucceeds_RetriesAfterBackoffAndAcks()
    {
        var time = new FakeTimeProvider();
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => o.MaxBatchSize = 1), time);
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));

        var first = await flusher.NextAsync();
        first.Fail(new IOException("transient"));
        await time.WaitForActiveTimersAsync(1).WaitAsync(Wait);
        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.That(time.ActiveTimers, Is.EqualTo(1), "the backoff is 1 s: still pending");
        Assert.That(probe.IsCompleted, Is.False, "a failed attempt settles nothing");
        time.Advance(TimeSpan.FromMilliseconds(1));

        var second = await flusher.NextAsync();
        Assert.That(second.Attempt, Is.EqualTo(2));
        Assert.That(second.Values, Is.EqualTo(new[] { "a" }), "the same batch is retried");
        second.Succeed();
        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task Flush_RetriesBackOffExponentially()
    {
        var time = new FakeTimeProvider();
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.MaxRetries = 2; }), time);
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));

        (await flusher.NextAsync()).Fail(new IOException("1"));
        await time.WaitForActiveTimersAsync(1).WaitAsync(Wait);
        time.Advance(TimeSpan.FromSeconds(1));
        (await flusher.NextAsync()).Fail(new IOException("2"));
        await time.WaitForActiveTimersAsync(1).WaitAsync(Wait);
        time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.That(time.ActiveTimers, Is.EqualTo(1), "the second backoff is 2 s: still pending");
        time.Advance(TimeSpan.FromSeconds(0.5));
        var third = await flusher.NextAsync();

        Assert.That(third.Attempt, Is.EqualTo(3));
        third.Fail(new IOException("3"));
        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Negative()), "MaxRetries 2 exhausted: Raise nacks the batch");
    }

    [Test]
    public async Task Flush_RetryJitter_WaitsBetweenHalfAndAllOfTheBackoff()
    {
        var time = new FakeTimeProvider();
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.RetryJitter = true; o.RetryBaseDelay = TimeSpan.FromSeconds(10); }), time);
        await sink.SendAsync(AckToken.None(), M("a"));

        (await flusher.NextAsync()).Fail(new IOException("transient"));
        await time.WaitForActiveTimersAsync(1).WaitAsync(Wait);
        time.Advance(TimeSpan.FromSeconds(4.999));
        Assert.That(time.ActiveTimers, Is.EqualTo(1), "jitter never goes below half the backoff: the delay is still pending");
        time.Advance(TimeSpan.FromSeconds(5.001));

        Assert.That((await flusher.NextAsync()).Attempt, Is.EqualTo(2), "nor above all of it");
    }

    [Test]
    public async Task Flush_FailsForGood_LogsEachRetryAndTheFinalDecision()
    {
        var logs = new CapturingLoggerFactory();
        var flusher = new ScriptedFlusher<string>();
        var options = Options(o => { o.MaxBatchSize = 1; o.MaxRetries = 1; o.RetryBaseDelay = TimeSpan.Zero; o.OnError = BatchErrorHandler<string>.NegativeAck(); });
        await using var sink = new BatchingDestination<string>(flusher, options, loggerFactory: logs);
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));

        (await flusher.NextAsync()).Fail(new IOException("first"));
        (await flusher.NextAsync()).Fail(new IOException("second"));
        await probe.WaitAsync();

        var entries = logs.Entries;
        Assert.That(entries.Select(e => (e.Level, e.Event.Id)), Is.EqualTo(new[] { (LogLevel.Warning, 3001), (LogLevel.Error, 3002) }));
        Assert.That(entries[1].Message, Does.Contain(options.StageName).And.Contain("2 attempt(s)").And.Contain("NegativeAck"));
        Assert.That(entries[1].Exception?.Message, Is.EqualTo("second"));
    }

    [Test]
    public async Task Flush_NotRetryable_GoesStraightToErrorHandler()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o =>
        {
            o.MaxBatchSize = 1;
            o.MaxRetries = 5;
            o.IsRetryable = ex => ex is not FormatException;
            o.OnError = BatchErrorHandler<string>.NegativeAck(TimeSpan.FromSeconds(5));
        }));
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));

        (await flusher.NextAsync()).Fail(new FormatException("schema mismatch"));

        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(5))));
        Assert.That(flusher.Started, Is.EqualTo(1));
    }

    [Test]
    public async Task OnErrorRaise_FlushFails_NacksBatchAndSurfacesFromSendAndDrain()
    {
        var flusher = new ScriptedFlusher<string>();
        var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.MaxRetries = 0; }));
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));

        (await flusher.NextAsync()).Fail(new IOException("bucket gone"));

        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Negative()));
        var later = new AckProbe();
        var sendError = await Assert.ThrowsAsync<BatchFlushException>(async () => await sink.SendAsync(later, M("b")));
        Assert.That(sendError!.InnerException, Is.TypeOf<IOException>());
        Assert.That(later.IsCompleted, Is.False, "a send that throws leaves its token to the caller");
        var drainError = await Assert.ThrowsAsync<BatchFlushException>(async () => await sink.FlushAsync());
        Assert.That(drainError!.Attempts, Is.EqualTo(1));
        Assert.That(drainError.Message, Does.Contain("bucket gone"));
    }

    [Test]
    public async Task OnErrorDiscardAndAck_FlushFails_AcksAndCountsFailure()
    {
        var flusher = new ScriptedFlusher<string>();
        var options = Options(o => { o.MaxBatchSize = 2; o.MaxRetries = 0; o.OnError = BatchErrorHandler<string>.DiscardAndAck; });
        using var metrics = new MetricCollector(options.StageName);
        await using var sink = new BatchingDestination<string>(flusher, options);
        var probe = new AckProbe();
        await sink.SendAsync(probe, new Messages<string>([M("a"), M("b")]));

        (await flusher.NextAsync()).Fail(new IOException("nope"));

        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        Assert.That(metrics.Sum("kawa.messages.failed"), Is.EqualTo(2));
    }

    [Test]
    public async Task OnErrorNegativeAck_FlushFails_NacksWithDelay()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o =>
        {
            o.MaxBatchSize = 1;
            o.MaxRetries = 0;
            o.OnError = BatchErrorHandler<string>.NegativeAck(TimeSpan.FromMinutes(1));
        }));
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));

        (await flusher.NextAsync()).Fail(new IOException("nope"));

        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Negative(TimeSpan.FromMinutes(1))));
        await Assert.DoesNotThrowAsync(async () => await sink.SendAsync(AckToken.None(), M("b")), "not fatal");
    }

    [Test]
    public async Task OnErrorDeadLetter_DeadLetterAcked_OriginalAckedOnlyAfterIt()
    {
        var flusher = new ScriptedFlusher<string>();
        var letters = new List<(AckToken Token, DeadLetter<string> Letter)>();
        var dlq = new DestinationFunc<DeadLetter<string>>((ack, messages, _) =>
        {
            lock (letters)
            {
                letters.Add((ack, messages[0].Value));
            }

            return default;
        });
        var options = Options(o => { o.MaxBatchSize = 2; o.MaxRetries = 0; o.OnError = BatchErrorHandler<string>.DeadLetter(dlq); });
        using var metrics = new MetricCollector(options.StageName);
        await using var sink = new BatchingDestination<string>(flusher, options);
        var a = new AckProbe();
        var b = new AckProbe();
        await sink.SendAsync(a, new Message<string>("a", Key: "k1"));
        await sink.SendAsync(b, M("b"));

        (await flusher.NextAsync()).Fail(new InvalidDataException("row rejected"));
        await WaitUntilAsync(() => { lock (letters) { return letters.Count == 2; } });

        Assert.That(a.IsCompleted || b.IsCompleted, Is.False, "originals wait for their dead letters to be durable");
        var first = letters[0].Letter;
        Assert.That(first.Original, Is.EqualTo(new Message<string>("a", Key: "k1")));
        Assert.That(first.Stage, Is.EqualTo(options.StageName));
        Assert.That(first.ErrorType, Is.EqualTo(typeof(InvalidDataException).FullName), "the full type name, as a handler stage writes it");
        Assert.That(first.Reason, Is.EqualTo("row rejected"));
        Assert.That(first.Attempts, Is.EqualTo(1));

        letters[0].Token.Ack();
        Assert.That(await a.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        Assert.That(b.IsCompleted, Is.False);
        letters[1].Token.Ack();
        Assert.That(await b.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        Assert.That(metrics.Sum("kawa.messages.dead_lettered"), Is.EqualTo(2));
    }

    [Test]
    public async Task OnErrorDeadLetter_DeadLetterNacked_OriginalNackedNeverAcked()
    {
        var flusher = new ScriptedFlusher<string>();
        var dlq = new DestinationFunc<DeadLetter<string>>((ack, _, _) => { ack.Nack(TimeSpan.FromSeconds(2)); return default; });
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.MaxRetries = 0; o.OnError = BatchErrorHandler<string>.DeadLetter(dlq); }));
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));

        (await flusher.NextAsync()).Fail(new IOException("nope"));

        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(2))));
    }

    [Test]
    public async Task OnErrorDeadLetter_DeadLetterDestinationThrows_OriginalsNacked()
    {
        var flusher = new ScriptedFlusher<string>();
        var dlq = new DestinationFunc<DeadLetter<string>>((_, _, _) => throw new IOException("dlq down"));
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 2; o.MaxRetries = 0; o.OnError = BatchErrorHandler<string>.DeadLetter(dlq); }));
        var a = new AckProbe();
        var b = new AckProbe();
        await sink.SendAsync(a, M("a"));
        await sink.SendAsync(b, M("b"));

        (await flusher.NextAsync()).Fail(new IOException("nope"));

        Assert.That(await a.WaitAsync(), Is.EqualTo(AckOutcome.Negative()));
        Assert.That(await b.WaitAsync(), Is.EqualTo(AckOutcome.Negative()));
    }

    [Test]
    public async Task OnErrorDeadLetter_Drain_DrainsTheDeadLetterDestinationToo()
    {
        var flusher = new ScriptedFlusher<string>();
        var held = new List<AckToken>();
        var dlq = Substitute.For<IDestination<DeadLetter<string>>>();
        dlq.SendAsync(Arg.Do<AckToken>(held.Add), Arg.Any<Messages<DeadLetter<string>>>(), Arg.Any<CancellationToken>()).Returns(ValueTask.CompletedTask);
        dlq.FlushAsync(Arg.Any<CancellationToken>()).Returns(_ => { held.ForEach(t => t.Ack()); return ValueTask.CompletedTask; });
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.MaxRetries = 0; o.OnError = BatchErrorHandler<string>.DeadLetter(dlq); }));
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));
        (await flusher.NextAsync()).Fail(new IOException("nope"));

        await sink.FlushAsync().AsTask().WaitAsync(Wait);

        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked), "the dead letter became durable at the DLQ's drain");
    }

    [Test]
    public async Task Watchdog_FlushHonoursTimeoutToken_CountsAsFailedAttempt()
    {
        var time = new FakeTimeProvider();
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o =>
        {
            o.MaxBatchSize = 1;
            o.MaxRetries = 0;
            o.FlushTimeout = TimeSpan.FromSeconds(30);
            o.OnError = BatchErrorHandler<string>.NegativeAck(TimeSpan.FromSeconds(3));
        }), time);
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));
        var call = await flusher.NextAsync();

        time.Advance(TimeSpan.FromSeconds(30));

        Assert.That(call.Token.IsCancellationRequested, Is.True);
        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(3))));
    }

    [Test]
    public async Task Watchdog_FlushIgnoresCancellation_IsAbandonedNackedNotRetriedAndLateSuccessDoesNotAck()
    {
        var time = new FakeTimeProvider();
        var flusher = new ScriptedFlusher<string> { HonourCancellation = false };
        var sink = new BatchingDestination<string>(flusher, Options(o =>
        {
            o.MaxBatchSize = 1;
            o.MaxRetries = 3;
            o.FlushTimeout = TimeSpan.FromSeconds(30);
            o.FlushCancellationGrace = TimeSpan.FromSeconds(5);
        }), time);
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));
        var call = await flusher.NextAsync();

        time.Advance(TimeSpan.FromSeconds(30));
        Assert.That(call.Token.IsCancellationRequested, Is.True);
        Assert.That(probe.IsCompleted, Is.False, "the grace period has not passed");
        time.Advance(TimeSpan.FromSeconds(5));

        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Negative()));
        call.Succeed(); // the hung write finally returns
        var drainError = await Assert.ThrowsAsync<BatchFlushException>(async () => await sink.FlushAsync());
        Assert.That(drainError!.Abandoned, Is.True, "under Raise an abandoned flush is fatal");
        Assert.That(flusher.Started, Is.EqualTo(1), "an abandoned flush is never retried: it may still be writing");
        Assert.That(probe.Completions, Is.EqualTo(1));
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Negative()));
    }

    [Test]
    public async Task FlushParallelism_Two_NeverRunsMoreThanTwoFlushesAtOnce()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.FlushParallelism = 2; o.BufferedBatches = 4; }));
        var probes = Enumerable.Range(0, 6).Select(_ => new AckProbe()).ToArray();
        for (var i = 0; i < probes.Length; i++)
        {
            await sink.SendAsync(probes[i], M($"m{i}"));
        }

        var first = await flusher.NextAsync();
        var second = await flusher.NextAsync();
        Assert.That(flusher.MaxConcurrent, Is.EqualTo(2), "two flushes run at once");
        first.Succeed();
        second.Succeed();
        for (var i = 2; i < probes.Length; i++)
        {
            (await flusher.NextAsync()).Succeed();
        }

        foreach (var probe in probes)
        {
            Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        }

        Assert.That(flusher.MaxConcurrent, Is.EqualTo(2));
    }

    [Test]
    public async Task SendAsync_BuffersFull_WaitsUntilAFlushCompletes()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.BufferedBatches = 0; }));

        await sink.SendAsync(AckToken.None(), M("flushing")).AsTask().WaitAsync(Wait);
        var call = await flusher.NextAsync();
        await sink.SendAsync(AckToken.None(), M("buffered")).AsTask().WaitAsync(Wait);
        var blocked = sink.SendAsync(AckToken.None(), M("blocked")).AsTask();

        Assert.That(blocked.IsCompleted, Is.False, "one flushing, one buffered: the third send waits");
        call.Succeed();
        await blocked.WaitAsync(Wait);
    }

    [Test]
    public async Task SendAsync_CancelledBeforeAnyMessageTaken_ThrowsAndLeavesToken()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.BufferedBatches = 0; }));
        await sink.SendAsync(AckToken.None(), M("flushing"));
        var call = await flusher.NextAsync();
        await sink.SendAsync(AckToken.None(), M("buffered")).AsTask().WaitAsync(Wait);
        using var cts = new CancellationTokenSource();
        var probe = new AckProbe();

        var blocked = sink.SendAsync(probe, M("blocked"), cts.Token).AsTask();
        await cts.CancelAsync();

        Assert.That(async () => await blocked, Throws.InstanceOf<OperationCanceledException>());
        call.Succeed();
        (await flusher.NextAsync()).Succeed();
        await sink.FlushAsync().AsTask().WaitAsync(Wait);
        Assert.That(probe.IsCompleted, Is.False, "a send that throws leaves its token to the caller");
    }

    [Test]
    public async Task SendAsync_CancelledAfterPartOfTheMessagesTaken_ReturnsAndNacksTokenOnceHeldPartSettles()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.BufferedBatches = 0; }));
        using var cts = new CancellationTokenSource();
        var probe = new AckProbe();

        var send = sink.SendAsync(probe, new Messages<string>([M("a"), M("b"), M("c")]), cts.Token).AsTask();
        var first = await flusher.NextAsync(); // "a" is flushing, "b" is buffered, "c" waits for room
        Assert.That(send.IsCompleted, Is.False);
        await cts.CancelAsync();
        await send.WaitAsync(Wait);

        Assert.That(probe.IsCompleted, Is.False, "a and b are still held");
        first.Succeed();
        var second = await flusher.NextAsync();
        Assert.That(second.Values, Is.EqualTo(new[] { "b" }));
        second.Succeed();
        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Negative()), "c was never taken: the token cannot be acked");
    }

    [Test]
    public async Task SendAsync_PayloadSizeAttributeEstimator_DrivesByteTrigger()
    {
        var flusher = new ScriptedFlusher<object>();
        await using var sink = new BatchingDestination<object>(flusher, new BatchingOptions<object>
        {
            MaxBatchSize = 100,
            MaxBatchAge = Timeout.InfiniteTimeSpan,
            MaxBatchBytes = 1000,
            SizeEstimator = BatchingOptions<object>.PayloadSizeAttribute,
        });
        var sized = MessageAttributes.Empty.With(MessageAttributeKeys.PayloadSize, 600);

        await sink.SendAsync(AckToken.None(), new Message<object>(1, Attributes: sized));
        await sink.SendAsync(AckToken.None(), new Message<object>(2, Attributes: sized));

        Assert.That((await flusher.NextAsync()).Values, Is.EqualTo(new object[] { 1 }));
    }

    [Test]
    public async Task FlushAsync_DrainTimesOut_NacksEverythingNotDurable()
    {
        var flusher = new ScriptedFlusher<string> { HonourCancellation = false };
        var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.BufferedBatches = 2; }));
        var flushing = new AckProbe();
        var buffered = new AckProbe();
        await sink.SendAsync(flushing, M("a"));
        await sink.SendAsync(buffered, M("b"));
        var call = await flusher.NextAsync();

        using var drainTimeout = new CancellationTokenSource();
        var drain = sink.FlushAsync(drainTimeout.Token).AsTask();
        Assert.That(drain.IsCompleted, Is.False);
        await drainTimeout.CancelAsync();
        await drain.WaitAsync(Wait);

        Assert.That(flushing.Outcome, Is.EqualTo(AckOutcome.Negative()));
        Assert.That(buffered.Outcome, Is.EqualTo(AckOutcome.Negative()));
        Assert.That(call.Token.IsCancellationRequested, Is.True, "in-flight flushes are cancelled");
        call.Succeed(); // a late success cannot ack what was nacked
        Assert.That(flushing.Completions, Is.EqualTo(1));
    }

    [Test]
    public async Task SendAsync_AfterFlushAsync_Throws()
    {
        await using var sink = new BatchingDestination<string>(new ScriptedFlusher<string>(), Options());
        await sink.FlushAsync();

        var probe = new AckProbe();
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await sink.SendAsync(probe, M("late")));
        Assert.That(probe.IsCompleted, Is.False);
    }

    [Test]
    public async Task DisposeAsync_WithoutDrain_NacksHeldMessages()
    {
        var sink = new BatchingDestination<string>(new ScriptedFlusher<string>(), Options(o => o.MaxBatchSize = 10));
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("held"));

        await sink.DisposeAsync();

        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Negative()));
    }

    [Test]
    public async Task DeferAcks_FlushReturns_AcksOnlyWhenHandleSettles()
    {
        var flusher = new ScriptedFlusher<string> { OnCall = call => call.Deferred = call.Batch.DeferAcks() };
        await using var sink = new BatchingDestination<string>(flusher, Options(o => o.MaxBatchSize = 2));
        var a = new AckProbe();
        var b = new AckProbe();
        await sink.SendAsync(a, M("a"));
        await sink.SendAsync(b, M("b"));

        var call = await flusher.NextAsync();
        call.Succeed();
        await sink.SendAsync(AckToken.None(), M("c")); // the sink keeps working meanwhile
        Assert.That(a.IsCompleted || b.IsCompleted, Is.False, "the flusher owns the acks now");

        call.Deferred!.InProgress();
        Assert.That(a.InProgressCount, Is.EqualTo(1));
        Assert.That(call.Deferred.Ack(), Is.True);

        Assert.That(a.Outcome, Is.EqualTo(AckOutcome.Acked));
        Assert.That(b.Outcome, Is.EqualTo(AckOutcome.Acked));
        Assert.That(call.Deferred.Nack(), Is.False, "one settlement only");
    }

    [Test]
    public async Task DeferAcks_SettledInCompleteAsync_DrainAcks()
    {
        var handles = new List<DeferredAcks>();
        var flusher = new ScriptedFlusher<string>
        {
            OnCall = call => handles.Add(call.Batch.DeferAcks()),
            OnComplete = _ => { handles.ForEach(h => h.Ack()); return default; },
        };
        await using var sink = new BatchingDestination<string>(flusher, Options(o => o.MaxBatchSize = 10));
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));

        var drain = sink.FlushAsync().AsTask();
        (await flusher.NextAsync()).Succeed();
        await drain.WaitAsync(Wait);

        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task DeferAcks_NeverSettled_NackedAtEndOfDrain()
    {
        var flusher = new ScriptedFlusher<string> { OnCall = call => call.Deferred = call.Batch.DeferAcks() };
        await using var sink = new BatchingDestination<string>(flusher, Options(o => o.MaxBatchSize = 10));
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));

        var drain = sink.FlushAsync().AsTask();
        var call = await flusher.NextAsync();
        call.Succeed();
        await drain.WaitAsync(Wait);

        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Negative()));
        Assert.That(call.Deferred!.Ack(), Is.False, "too late: the drain settled it");
        Assert.That(probe.Completions, Is.EqualTo(1));
    }

    [Test]
    public async Task DeferAcks_AttemptFailsAfterDeferring_DeferralRevokedAndRetryAcks()
    {
        var flusher = new ScriptedFlusher<string> { OnCall = call => call.Deferred = call.Batch.DeferAcks() };
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 1; o.RetryBaseDelay = TimeSpan.Zero; }));
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));

        var first = await flusher.NextAsync();
        first.Fail(new IOException("append failed"));
        var second = await flusher.NextAsync();
        Assert.That(first.Deferred!.IsRevoked, Is.True);
        Assert.That(first.Deferred.Ack(), Is.False, "a revoked handle settles nothing");
        Assert.That(probe.IsCompleted, Is.False);

        second.Succeed();
        Assert.That(second.Deferred!.Ack(), Is.True);
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task DeferAcks_FlusherNacksThenThrows_NotRetriedAndNackedOnce()
    {
        var flusher = new ScriptedFlusher<string> { OnCall = call => call.Batch.DeferAcks().Nack(TimeSpan.FromSeconds(4)) };
        await using var sink = new BatchingDestination<string>(flusher, Options(o =>
        {
            o.MaxBatchSize = 1;
            o.RetryBaseDelay = TimeSpan.Zero;
            o.OnError = BatchErrorHandler<string>.NegativeAck();
        }));
        var probe = new AckProbe();
        await sink.SendAsync(probe, M("a"));

        (await flusher.NextAsync()).Fail(new IOException("commit failed"));
        await sink.FlushAsync().AsTask().WaitAsync(Wait);

        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(4))), "the flusher's own decision stands");
        Assert.That(probe.Completions, Is.EqualTo(1));
        Assert.That(flusher.Started, Is.EqualTo(1), "a settled batch is not retried");
    }

    [Test]
    public async Task Telemetry_Flush_RecordsBatchSizeAndDurationWithStageTag()
    {
        var options = Options(o => o.MaxBatchSize = 3);
        using var metrics = new MetricCollector(options.StageName);
        var time = new FakeTimeProvider();
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, options, time);
        var probe = new AckProbe();

        await sink.SendAsync(probe, new Messages<string>([M("a"), M("b"), M("c")]));
        var call = await flusher.NextAsync();
        time.Advance(TimeSpan.FromSeconds(2.5));
        call.Succeed();
        await probe.WaitAsync();
        await sink.FlushAsync();

        Assert.That(metrics.Values("kawa.batch.size"), Is.EqualTo(new double[] { 3 }));
        Assert.That(metrics.Values("kawa.batch.flush.duration"), Is.EqualTo(new[] { 2.5 }), "seconds on the sink's clock");
    }

    [Test]
    public void Constructor_InvalidOptions_ReportsEveryProblem()
    {
        var options = new BatchingOptions<int> { MaxBatchSize = 0, FlushParallelism = 0, MaxBatchBytes = 100, MaxBatchAge = TimeSpan.Zero, FlushTimeout = TimeSpan.MaxValue };

        var error = Assert.Throws<ArgumentException>(() => new BatchingDestination<int>((_, _) => default, options));

        Assert.That(error!.Message, Does.Contain("BatchingOptions.MaxBatchSize must be at least 1 (was 0)"));
        Assert.That(error.Message, Does.Contain("BatchingOptions.FlushParallelism"));
        Assert.That(error.Message, Does.Contain("BatchingOptions.SizeEstimator is required when MaxBatchBytes is set and the payload type is Int32"));
        Assert.That(error.Message, Does.Contain("BatchingOptions.MaxBatchAge"));
        Assert.That(error.Message, Does.Contain("BatchingOptions.FlushTimeout must be positive and at most 24 days"));
    }

    [Test]
    public void Constructor_DelaysBeyondTimerRangeOrBufferOverflowingInt_RefusedNamingEach()
    {
        // Timers take at most ~49.7 days; the sink allows 24 so that FlushTimeout plus FlushCancellationGrace still fits.
        var tooLong = TimeSpan.FromDays(24) + TimeSpan.FromMilliseconds(1);
        var options = new BatchingOptions<int>
        {
            MaxBatchAge = tooLong,
            FlushTimeout = tooLong,
            FlushCancellationGrace = tooLong,
            RetryBaseDelay = TimeSpan.Zero,
            RetryMaxDelay = tooLong,
            MaxBatchSize = int.MaxValue,
            BufferedBatches = 1,
        };

        var errors = options.Validate();
        var error = Assert.Throws<ArgumentException>(() => new BatchingDestination<int>((_, _) => default, options));

        Assert.That(errors, Has.Count.EqualTo(5));
        Assert.That(errors, Has.One.StartsWith("BatchingOptions.MaxBatchAge must be positive and at most 24 days"));
        Assert.That(errors, Has.One.StartsWith("BatchingOptions.FlushTimeout must be positive and at most 24 days"));
        Assert.That(errors, Has.One.StartsWith("BatchingOptions.FlushCancellationGrace must be between zero and 24 days"));
        Assert.That(errors, Has.One.StartsWith("BatchingOptions.RetryMaxDelay must be at least RetryBaseDelay and at most 24 days"));
        Assert.That(errors, Has.One.StartsWith("BatchingOptions.BufferedBatches times MaxBatchSize must fit in an int"));
        Assert.That(error!.Message, Does.Contain(errors[0]));
        Assert.That(new BatchingOptions<int> { MaxBatchAge = TimeSpan.FromDays(24), FlushTimeout = TimeSpan.FromDays(24), FlushCancellationGrace = TimeSpan.FromDays(24), RetryMaxDelay = TimeSpan.FromDays(24) }.Validate(), Is.Empty, "24 days is allowed");
    }

    [Test]
    public async Task SendAsync_SizeEstimatorThrows_ThrowsBeforeTakingAnyMessage()
    {
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o =>
        {
            o.MaxBatchSize = 10;
            o.MaxBatchBytes = 100;
            o.SizeEstimator = m => m.Value == "bad" ? throw new FormatException("cannot size") : 1;
        }));
        var probe = new AckProbe();

        await Assert.ThrowsAsync<FormatException>(async () => await sink.SendAsync(probe, new Messages<string>([M("good"), M("bad")])));
        await sink.SendAsync(AckToken.None(), M("next"));
        var drain = sink.FlushAsync().AsTask();

        var call = await flusher.NextAsync();
        Assert.That(call.Values, Is.EqualTo(new[] { "next" }), "nothing of the failed send was taken");
        call.Succeed();
        await drain.WaitAsync(Wait);
        Assert.That(probe.IsCompleted, Is.False);
    }

    [Test]
    public void Options_Defaults_AreValid()
    {
        Assert.That(new BatchingOptions<object>().Validate(), Is.Empty);
    }

    [Test]
    public async Task Constructor_FlushDelegate_ReceivesBatchMessages()
    {
        var seen = new TaskCompletionSource<IReadOnlyList<Message<string>>>();
        await using var sink = new BatchingDestination<string>((batch, _) => { seen.TrySetResult(batch); return default; }, Options(o => o.MaxBatchSize = 2));
        var probe = new AckProbe();

        await sink.SendAsync(probe, new Messages<string>([M("x"), M("y")]));

        Assert.That((await seen.Task.WaitAsync(Wait)).Select(m => m.Value), Is.EqualTo(new[] { "x", "y" }));
        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail("condition not met in time");
            }

            await Task.Yield();
        }
    }
}
