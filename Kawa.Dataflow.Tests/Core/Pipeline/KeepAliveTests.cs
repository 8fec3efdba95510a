using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Core.Pipeline;

/// <summary>A keep-alive (<see cref="AckToken.InProgress"/>) reaches the source's token wherever the pipeline holds a message under a token of its own.</summary>
public class KeepAliveTests
{
    private sealed class Boom() : Exception("transient");

    /// <summary>One message under <paramref name="probe"/>, then end of stream.</summary>
    private static SourceFunc<int> OneMessage(AckProbe probe, int value = 1)
    {
        var given = 0;
        return new SourceFunc<int>(_ => new ValueTask<Delivery<int>>(
            Interlocked.Exchange(ref given, 1) == 0 ? new Delivery<int>(new Message<int>(value), probe) : Delivery<int>.EndOfStream));
    }

    [Test]
    public async Task Retry_HandlerBacksOff_SourceTokenGetsAKeepAliveBeforeTheWait()
    {
        var time = new FakeTimeProvider();
        var probe = new AckProbe();
        var attempts = 0;
        var pipeline = Kawa.Dataflow.Pipeline.Create("keepalive-retry")
            .From(OneMessage(probe))
            .Handle<int>(
                "flaky",
                (m, _) => ++attempts == 1 ? throw new Boom() : new ValueTask<Messages<int>>(m),
                new StageOptions { ErrorPolicy = ErrorPolicy.Retry(1, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10)) })
            .To(new RecordingDestination<int>())
            .Build(new PipelineOptions { TimeProvider = time });

        var run = pipeline.RunAsync();
        await time.WaitForTimersCreatedAsync(1).WaitAsync(TestMessages.Generous);

        Assert.That(probe.InProgressCount, Is.EqualTo(1), "held for the back-off: the source is told it is still being worked on");
        Assert.That(probe.IsCompleted, Is.False);
        time.Advance(TimeSpan.FromSeconds(10));
        await run.WaitAsync(TestMessages.Generous);
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
        Assert.That(probe.InProgressCount, Is.EqualTo(1), "one keep-alive per back-off");
    }

    [Test]
    public async Task Retry_BackOffOfAFanOutOutput_KeepAliveReachesTheSourceToken()
    {
        var time = new FakeTimeProvider();
        var probe = new AckProbe();
        var failed = 0;
        var pipeline = Kawa.Dataflow.Pipeline.Create("keepalive-retry-fanout")
            .From(OneMessage(probe))
            .Handle<int>("split", (m, _) => new ValueTask<Messages<int>>(new[] { m.With(10), m.With(20) }))
            .Handle<int>(
                "flaky",
                (m, _) => m.Value == 20 && Interlocked.Increment(ref failed) == 1 ? throw new Boom() : new ValueTask<Messages<int>>(m),
                new StageOptions { ErrorPolicy = ErrorPolicy.Retry(1, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10)) })
            .To(new RecordingDestination<int>())
            .Build(new PipelineOptions { TimeProvider = time });

        var run = pipeline.RunAsync();
        await time.WaitForTimersCreatedAsync(1).WaitAsync(TestMessages.Generous);

        Assert.That(probe.InProgressCount, Is.EqualTo(1), "the output's child token forwards the keep-alive to the source's token");
        time.Advance(TimeSpan.FromSeconds(10));
        await run.WaitAsync(TestMessages.Generous);
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task FanOut_DestinationKeepsEachOutputAlive_EveryKeepAliveReachesTheSourceToken()
    {
        var probe = new AckProbe();
        var seenBeforeAck = new List<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("keepalive-fanout")
            .From(OneMessage(probe))
            .Handle<int>("split", (m, _) => new ValueTask<Messages<int>>(new[] { m.With(0), m.With(1), m.With(2) }))
            .To(new DestinationFunc<int>((ack, _, _) =>
            {
                ack.InProgress();
                seenBeforeAck.Add(probe.InProgressCount);
                ack.Ack();
                return default;
            }))
            .Build();

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(seenBeforeAck, Is.EqualTo(new[] { 1, 2, 3 }), "each child's keep-alive reached the source at once");
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task DeadLetter_DeadLetterDestinationKeepsTheRecordAlive_KeepAliveReachesTheSourceToken()
    {
        var probe = new AckProbe();
        var keptAlive = -1;
        var deadLetters = new DestinationFunc<DeadLetter<int>>((ack, _, _) =>
        {
            ack.InProgress();
            ack.InProgress();
            keptAlive = probe.InProgressCount;
            ack.Ack();
            return default;
        });
        var pipeline = Kawa.Dataflow.Pipeline.Create("keepalive-deadletter")
            .From(OneMessage(probe))
            .Handle<int>("fails", (_, _) => throw new Boom(), new StageOptions { ErrorPolicy = ErrorPolicy.DeadLetter(deadLetters) })
            .To(new RecordingDestination<int>())
            .Build();

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(keptAlive, Is.EqualTo(2), "the record's keep-alives reached the original's token before it was settled");
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked), "acked once the dead letter was acked");
    }
}
