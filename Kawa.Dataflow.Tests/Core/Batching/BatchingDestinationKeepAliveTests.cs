using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Core.Batching;

/// <summary>While the sink holds a message outside a flush (retry back-off, a dead letter not yet durable), keep-alives reach the source.</summary>
public class BatchingDestinationKeepAliveTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static BatchingOptions<string> Options(Action<BatchingOptions<string>> configure)
    {
        var options = new BatchingOptions<string>
        {
            MaxBatchAge = Timeout.InfiniteTimeSpan,
            FlushTimeout = Timeout.InfiniteTimeSpan,
            RetryJitter = false,
            RetryBaseDelay = TimeSpan.FromSeconds(1),
            StageName = "keepalive-test-" + Guid.NewGuid().ToString("N"),
        };
        configure(options);
        return options;
    }

    [Test]
    public async Task Flush_FailsAndBacksOff_EachBackOffSendsOneKeepAliveToEveryTokenOfTheBatch()
    {
        var time = new FakeTimeProvider();
        var flusher = new ScriptedFlusher<string>();
        await using var sink = new BatchingDestination<string>(flusher, Options(o => o.MaxBatchSize = 3), time);
        var single = new AckProbe();
        var shared = new AckProbe();
        await sink.SendAsync(single, new Message<string>("a"));
        await sink.SendAsync(shared, new Messages<string>([new("b"), new("c")]));

        var first = await flusher.NextAsync();
        Assert.That(single.InProgressCount + shared.InProgressCount, Is.Zero, "nothing held outside a flush yet");
        first.Fail(new IOException("transient"));
        await time.WaitForActiveTimersAsync(1).WaitAsync(Wait);

        Assert.That(single.InProgressCount, Is.EqualTo(1), "the back-off began with a keep-alive");
        Assert.That(shared.InProgressCount, Is.EqualTo(1), "a token shared by several messages of the batch gets one, not one per message");
        time.Advance(TimeSpan.FromSeconds(1));
        var second = await flusher.NextAsync();
        second.Fail(new IOException("transient again"));
        await time.WaitForActiveTimersAsync(1).WaitAsync(Wait);
        Assert.That(single.InProgressCount, Is.EqualTo(2), "every back-off sends one");
        Assert.That(single.IsCompleted, Is.False, "a keep-alive is not an outcome");

        time.Advance(TimeSpan.FromSeconds(2));
        (await flusher.NextAsync()).Succeed();
        Assert.That(await single.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        Assert.That(await shared.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task OnErrorDeadLetter_DeadLetterDestinationKeepsItsTokenAlive_InProgressReachesTheOriginal()
    {
        var flusher = new ScriptedFlusher<string>();
        var letters = new List<AckToken>();
        var bothSent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var dlq = new DestinationFunc<DeadLetter<string>>((ack, _, _) =>
        {
            lock (letters)
            {
                letters.Add(ack);
                if (letters.Count == 2)
                {
                    bothSent.TrySetResult();
                }
            }

            return default;
        });
        await using var sink = new BatchingDestination<string>(flusher, Options(o => { o.MaxBatchSize = 2; o.MaxRetries = 0; o.OnError = BatchErrorHandler<string>.DeadLetter(dlq); }));
        var a = new AckProbe();
        var b = new AckProbe();
        await sink.SendAsync(a, new Message<string>("a"));
        await sink.SendAsync(b, new Message<string>("b"));
        (await flusher.NextAsync()).Fail(new InvalidDataException("row rejected"));
        await bothSent.Task.WaitAsync(Wait);

        letters[1].InProgress();
        letters[1].InProgress();

        Assert.That(b.InProgressCount, Is.EqualTo(2), "the dead letter's keep-alive reaches its own original");
        Assert.That(a.InProgressCount, Is.Zero, "and no other message's token");
        letters[0].Ack();
        letters[1].Ack();
        Assert.That(await a.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        Assert.That(await b.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
    }
}
