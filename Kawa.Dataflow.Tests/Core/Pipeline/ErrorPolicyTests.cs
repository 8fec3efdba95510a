using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

public class ErrorPolicyTests
{
    private sealed class Boom(string message) : Exception(message);

    private static async Task<(TestSource<int> Source, RecordingDestination<int> Destination, Exception? Error)> RunOneAsync(
        string name, ErrorPolicy policy, Func<Message<int>, int, Messages<int>> handle, PipelineOptions? options = null)
    {
        var source = new TestSource<int>(TestMessages.Ints(1));
        var destination = new RecordingDestination<int>();
        var attempts = 0;
        var pipeline = Kawa.Dataflow.Pipeline.Create(name)
            .From(source)
            .Handle<int>("work", (m, _) => new ValueTask<Messages<int>>(handle(m, ++attempts)), new StageOptions { ErrorPolicy = policy })
            .To(destination)
            .Build(options);
        Exception? error = null;
        try
        {
            await pipeline.RunAsync().WaitAsync(TestMessages.Generous);
        }
        catch (PipelineStageException ex)
        {
            error = ex;
        }

        return (source, destination, error);
    }

    [Test]
    public async Task Skip_MapHandlerThrowsMidSegment_SkipsOnlyThoseAndHandlesTheRestInOrder()
    {
        // Handler.Map runs in the stage's own loop until a delegate throws; the rest of that segment then goes the
        // general way. Failures at the start, the middle and the end of a segment of four.
        var source = new TestSource<int>(TestMessages.Ints(12));
        var destination = new RecordingDestination<int>();
        int[] bad = [0, 5, 6, 11];
        var pipeline = Kawa.Dataflow.Pipeline.Create("policy-skip-map")
            .From(source)
            .Handle("parse", Handler.Map<int, int>(m => bad.Contains(m.Value) ? throw new Boom("bad") : m.With(m.Value * 10)),
                new StageOptions { ErrorPolicy = ErrorPolicy.Skip })
            .To(destination)
            .Build(new PipelineOptions { SegmentSize = 4 });

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(destination.Written.Select(m => m.Value), Is.EqualTo(Enumerable.Range(0, 12).Except(bad).Select(v => v * 10)));
        Assert.That(source.Tokens.Select(t => t.Outcome), Has.All.EqualTo(AckOutcome.Acked), "skipped ones are acked by the stage, the rest by the destination");
        Assert.That(source.Tokens.Select(t => t.Completions), Has.All.EqualTo(1));
    }

    [Test]
    public async Task Skip_MapHandlerToAnotherTypeThrowsMidSegment_SkipsOnlyThat()
    {
        // Outputs of another type cannot be written over the inputs: the stage collects them in an array of its own.
        var source = new TestSource<int>(TestMessages.Ints(6));
        var destination = new RecordingDestination<string>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("policy-skip-map-type")
            .From(source)
            .Handle("format", Handler.Map<int, string>(m => m.Value == 2 ? throw new Boom("bad") : m.With($"v{m.Value}")),
                new StageOptions { ErrorPolicy = ErrorPolicy.Skip })
            .To(destination)
            .Build(new PipelineOptions { SegmentSize = 4 });

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(destination.Written.Select(m => m.Value), Is.EqualTo(new[] { "v0", "v1", "v3", "v4", "v5" }));
        Assert.That(source.Tokens.Select(t => t.Outcome), Has.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task Retry_MapHandlerFailsOnce_RetriesThatMessageAndDeliversEverything()
    {
        var source = new TestSource<int>(TestMessages.Ints(8));
        var destination = new RecordingDestination<int>();
        var failed = 0;
        var pipeline = Kawa.Dataflow.Pipeline.Create("policy-retry-map")
            .From(source)
            .Handle("parse", Handler.Map<int, int>(m => m.Value == 2 && Interlocked.Increment(ref failed) == 1 ? throw new Boom("once") : m),
                new StageOptions { ErrorPolicy = ErrorPolicy.Retry(1, TimeSpan.Zero, TimeSpan.Zero) })
            .To(destination)
            .Build(new PipelineOptions { SegmentSize = 4 });

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(failed, Is.EqualTo(2), "the failing message was handled twice");
        Assert.That(destination.Written.Select(m => m.Value), Is.EqualTo(Enumerable.Range(0, 8)));
        Assert.That(source.Tokens.Select(t => t.Outcome), Has.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task Retry_HandlerRecovers_WaitsBackOffOnTimeProviderThenDeliversAndAcks()
    {
        var time = new FakeTimeProvider();
        var source = new TestSource<int>(TestMessages.Ints(1));
        var destination = new RecordingDestination<int>();
        var attempts = 0;
        var pipeline = Kawa.Dataflow.Pipeline.Create("policy-retry")
            .From(source)
            .Handle<int>(
                "flaky",
                (m, _) => ++attempts <= 2 ? throw new Boom("transient") : new ValueTask<Messages<int>>(m),
                new StageOptions { ErrorPolicy = ErrorPolicy.Retry(3, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10)) })
            .To(destination)
            .Build(new PipelineOptions { TimeProvider = time });

        var run = pipeline.RunAsync();
        await time.WaitForTimersCreatedAsync(1).WaitAsync(TestMessages.Generous);
        Assert.That(attempts, Is.EqualTo(1), "retried before the back-off elapsed");
        time.Advance(TimeSpan.FromSeconds(1)); // first back-off is between 0.5 s and 1 s
        await time.WaitForTimersCreatedAsync(2).WaitAsync(TestMessages.Generous);
        Assert.That(attempts, Is.EqualTo(2));
        time.Advance(TimeSpan.FromSeconds(2)); // second back-off is between 1 s and 2 s
        await run.WaitAsync(TestMessages.Generous);

        Assert.That(attempts, Is.EqualTo(3));
        Assert.That(destination.Written, Has.Count.EqualTo(1));
        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public void Retry_BackOff_DoublesUpToMaxWithHalfJitter()
    {
        var retry = ErrorPolicy.Retry(10, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5));

        Assert.That(retry.BackOff(1, 0), Is.EqualTo(TimeSpan.FromSeconds(0.5)));
        Assert.That(retry.BackOff(1, 0.999999), Is.EqualTo(TimeSpan.FromSeconds(1)).Within(TimeSpan.FromMilliseconds(1)));
        Assert.That(retry.BackOff(3, 0.999999), Is.EqualTo(TimeSpan.FromSeconds(4)).Within(TimeSpan.FromMilliseconds(1)));
        Assert.That(retry.BackOff(8, 0.999999), Is.EqualTo(TimeSpan.FromSeconds(5)).Within(TimeSpan.FromMilliseconds(1)));
    }

    [Test]
    public async Task Retry_Exhausted_AppliesFallbackNegativeAckWithDelay()
    {
        var (source, destination, error) = await RunOneAsync(
            "policy-retry-fallback",
            ErrorPolicy.Retry(2, TimeSpan.Zero, TimeSpan.Zero).Then(ErrorPolicy.NegativeAck(TimeSpan.FromSeconds(3))),
            (_, _) => throw new Boom("always"));

        Assert.That(error, Is.Null);
        Assert.That(destination.Written, Is.Empty);
        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(3))));
    }

    [Test]
    public async Task Retry_ExhaustedDefaultFallback_IsFatal()
    {
        var (source, _, error) = await RunOneAsync("policy-retry-fatal", ErrorPolicy.Retry(1, TimeSpan.Zero, TimeSpan.Zero), (_, _) => throw new Boom("always"));

        Assert.That(error, Is.TypeOf<PipelineStageException>().With.Property("Stage").EqualTo("handler:work"));
        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Negative()));
    }

    [Test]
    public async Task NegativeAck_HandlerThrows_NacksWithDelayAndRunContinues()
    {
        var source = new TestSource<int>(TestMessages.Ints(10));
        var destination = new RecordingDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("policy-nack")
            .From(source)
            .Handle<int>("work", (m, _) => m.Value == 3 ? throw new Boom("no") : new ValueTask<Messages<int>>(m), new StageOptions { ErrorPolicy = ErrorPolicy.NegativeAck(TimeSpan.FromSeconds(7)) })
            .To(destination)
            .Build();

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(source.Tokens.Single(t => t.Id == 3).Outcome, Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(7))));
        Assert.That(source.Tokens.Where(t => t.Id != 3).Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(destination.Written, Has.Count.EqualTo(9));
    }

    [Test]
    public async Task Skip_HandlerThrows_AcksWithoutOutput()
    {
        var (source, destination, error) = await RunOneAsync("policy-skip", ErrorPolicy.Skip, (_, _) => throw new Boom("unparseable"));

        Assert.That(error, Is.Null);
        Assert.That(destination.Written, Is.Empty);
        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task Skip_HandlerThrows_LogsWarningWithStageAndError()
    {
        var logs = new CapturingLoggerFactory();
        var boom = new Boom("unparseable");
        var (_, _, error) = await RunOneAsync("policy-skip-log", ErrorPolicy.Skip, (_, _) => throw boom, new PipelineOptions { LoggerFactory = logs });

        Assert.That(error, Is.Null);
        var entry = logs.Entries.Single(e => e.Message.Contains("skipped", StringComparison.Ordinal));
        Assert.That(entry.Level, Is.EqualTo(Microsoft.Extensions.Logging.LogLevel.Warning));
        Assert.That(entry.Message, Does.Contain("policy-skip-log").And.Contain("handler:work"));
        Assert.That(entry.Exception, Is.SameAs(boom));
    }

    [Test]
    public async Task Terminate_HandlerThrows_TerminatesMessage()
    {
        var (source, destination, error) = await RunOneAsync("policy-terminate", ErrorPolicy.Terminate, (_, _) => throw new Boom("poison"));

        Assert.That(error, Is.Null);
        Assert.That(destination.Written, Is.Empty);
        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Terminated));
    }

    [Test]
    public async Task DeadLetter_DestinationAcksLater_OriginalAckedOnlyThenWithRecordDetails()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 5, 20, 12, 0, 0, TimeSpan.Zero));
        var records = new List<Message<DeadLetter<int>>>();
        AckToken? held = null;
        var dlq = new DeadLetterSink((ack, messages) =>
        {
            records.AddRange(messages);
            held = ack;
        });
        var source = new TestSource<int>(new[] { new Message<int>(42, "key-42", "orders") });
        var pipeline = Kawa.Dataflow.Pipeline.Create("policy-deadletter")
            .From(source)
            .Handle<int>("parse", (_, _) => throw new Boom("bad json"), new StageOptions { ErrorPolicy = ErrorPolicy.Retry(1, TimeSpan.Zero, TimeSpan.Zero).Then(ErrorPolicy.DeadLetter(dlq)) })
            .To(new RecordingDestination<int>())
            .Build(new PipelineOptions { TimeProvider = time });
        dlq.OnFlush = () =>
        {
            // Until the dead-letter destination acks, the original stays unsettled.
            Assert.That(source.Tokens.Single().IsCompleted, Is.False);
            held!.Ack();
        };

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Acked));
        var record = records.Single();
        Assert.That(record.Key, Is.EqualTo("key-42"));
        Assert.That(record.Value.Original.Value, Is.EqualTo(42));
        Assert.That(record.Value.Stage, Is.EqualTo("handler:parse"));
        Assert.That(record.Value.ErrorType, Does.EndWith("Boom"));
        Assert.That(record.Value.Reason, Is.EqualTo("bad json"));
        Assert.That(record.Value.Attempts, Is.EqualTo(2));
        Assert.That(record.Value.FailedAt, Is.EqualTo(time.GetUtcNow()));
        Assert.That(dlq.Flushes, Is.EqualTo(1));
    }

    [Test]
    public async Task DeadLetter_DestinationThrows_OriginalNackedAndRunContinues()
    {
        var dlq = new DeadLetterSink((_, _) => throw new Boom("dlq down"));
        var source = new TestSource<int>(TestMessages.Ints(3));
        var destination = new RecordingDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("policy-deadletter-fails")
            .From(source)
            .Handle<int>("parse", (m, _) => m.Value == 1 ? throw new Boom("bad") : new ValueTask<Messages<int>>(m), new StageOptions { ErrorPolicy = ErrorPolicy.DeadLetter(dlq) })
            .To(destination)
            .Build();

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(source.Tokens.Single(t => t.Id == 1).Outcome, Is.EqualTo(AckOutcome.Negative()));
        Assert.That(source.Tokens.Where(t => t.Id != 1).Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
    }

    [TestCase(AckKind.Nack)]
    [TestCase(AckKind.Terminate)]
    public async Task DeadLetter_DestinationRejectsRecord_OriginalNacked(AckKind rejection)
    {
        var dlq = new DeadLetterSink((ack, _) => ack.Complete(rejection == AckKind.Nack ? AckOutcome.Negative(TimeSpan.FromSeconds(2)) : AckOutcome.Terminated));
        var (source, _, error) = await RunOneAsync("policy-deadletter-rejects-" + rejection, ErrorPolicy.DeadLetter(dlq), (_, _) => throw new Boom("bad"));

        Assert.That(error, Is.Null);
        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Negative(rejection == AckKind.Nack ? TimeSpan.FromSeconds(2) : TimeSpan.Zero)));
    }

    [Test]
    public async Task Handler_OperationCanceledDuringAbort_NackedNotTreatedAsFailure()
    {
        var time = new FakeTimeProvider();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var source = new TestSource<int>(TestMessages.Ints(1), endless: true);
        var pipeline = Kawa.Dataflow.Pipeline.Create("policy-cancel")
            .From(source)
            .Handle<int>(
                "wait",
                async (m, ct) =>
                {
                    entered.TrySetResult();
                    await Task.Delay(Timeout.Infinite, ct);
                    return m;
                },
                new StageOptions { ErrorPolicy = ErrorPolicy.Terminate })
            .To(new RecordingDestination<int>())
            .Build(new PipelineOptions { TimeProvider = time, DrainTimeout = TimeSpan.FromSeconds(1) });
        using var cts = new CancellationTokenSource();

        var run = pipeline.RunAsync(cts.Token);
        await entered.Task.WaitAsync(TestMessages.Generous);
        await cts.CancelAsync();
        await time.WaitForTimersCreatedAsync(1).WaitAsync(TestMessages.Generous);
        time.Advance(TimeSpan.FromSeconds(1));

        await Assert.ThrowsAsync<OperationCanceledException>(() => run.WaitAsync(TestMessages.Generous));
        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Negative()), "not terminated: cancellation is not a failure");
    }

    [Test]
    public async Task Handler_OwnOperationCanceledDuringGracefulDrain_ErrorPolicyDecides()
    {
        // A graceful drain lets work in flight finish: the handler's token does not fire, so an OperationCanceledException
        // the handler throws of its own (its own timeout, say) is a failure like any other, for the policy to decide.
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var draining = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tokenFiredAtThrow = true;
        var source = new TestSource<int>(TestMessages.Ints(1), endless: true);
        var pipeline = Kawa.Dataflow.Pipeline.Create("policy-own-cancel")
            .From(source)
            .Handle<int>(
                "own-timeout",
                async (m, ct) =>
                {
                    entered.TrySetResult();
                    await draining.Task;
                    tokenFiredAtThrow = ct.IsCancellationRequested;
                    throw new OperationCanceledException("the handler's own timeout");
                },
                new StageOptions { ErrorPolicy = ErrorPolicy.Terminate })
            .To(new RecordingDestination<int>())
            .Build();
        using var cts = new CancellationTokenSource();

        var run = pipeline.RunAsync(cts.Token);
        await entered.Task.WaitAsync(TestMessages.Generous);
        await cts.CancelAsync();
        await source.ReceiveCancelled.WaitAsync(TestMessages.Generous);
        draining.SetResult();

        await run.WaitAsync(TestMessages.Generous);
        Assert.That(tokenFiredAtThrow, Is.False, "a graceful drain does not cancel the handler");
        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Terminated), "the stage's policy decided");
    }

    private sealed class DeadLetterSink(Action<AckToken, Messages<DeadLetter<int>>> send) : IDestination<DeadLetter<int>>
    {
        public Action? OnFlush { get; set; }

        public int Flushes { get; private set; }

        public ValueTask SendAsync(AckToken ack, Messages<DeadLetter<int>> messages, CancellationToken cancellationToken = default)
        {
            send(ack, messages);
            return default;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default)
        {
            Flushes++;
            OnFlush?.Invoke();
            return default;
        }
    }
}
