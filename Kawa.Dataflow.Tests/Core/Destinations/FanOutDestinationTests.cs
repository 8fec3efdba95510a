using Kawa.Dataflow.Tests.Infrastructure;
using NSubstitute;

namespace Kawa.Dataflow.Tests.Core.Destinations;

public class FanOutDestinationTests
{
    /// <summary>A destination that keeps the tokens it gets, for the test to settle.</summary>
    internal sealed class HoldingDestination<T> : IDestination<T>
    {
        public List<(AckToken Token, Messages<T> Messages)> Sent { get; } = [];

        public bool Flushed { get; private set; }

        public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
        {
            lock (Sent)
            {
                Sent.Add((ack, messages));
            }

            return default;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default)
        {
            Flushed = true;
            return default;
        }
    }

    [Test]
    public async Task SendAsync_DestinationKeepsItsTokenAlive_InProgressReachesTheOriginalUntilSettled()
    {
        var a = new HoldingDestination<int>();
        var b = new HoldingDestination<int>();
        var fanOut = new FanOutDestination<int>(a, b);
        var probe = new AckProbe();
        await fanOut.SendAsync(probe, new Message<int>(1));

        a.Sent[0].Token.InProgress();
        b.Sent[0].Token.InProgress();
        b.Sent[0].Token.InProgress();

        Assert.That(probe.InProgressCount, Is.EqualTo(3), "every keep-alive of a destination's copy reaches the source's token");
        Assert.That(probe.IsCompleted, Is.False, "a keep-alive is not an outcome");
        a.Sent[0].Token.Ack();
        b.Sent[0].Token.Ack();
        b.Sent[0].Token.InProgress();
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
        Assert.That(probe.InProgressCount, Is.EqualTo(3), "ignored once settled");
    }

    [Test]
    public async Task SendAsync_AllAck_AcksOnlyAfterTheLast()
    {
        var a = new HoldingDestination<int>();
        var b = new HoldingDestination<int>();
        var fanOut = new FanOutDestination<int>(a, b);
        var probe = new AckProbe();

        await fanOut.SendAsync(probe, new Message<int>(1));
        Assert.That(a.Sent.Single().Messages[0].Value, Is.EqualTo(1));
        Assert.That(b.Sent.Single().Messages[0].Value, Is.EqualTo(1));
        a.Sent[0].Token.Ack();
        Assert.That(probe.IsCompleted, Is.False, "b has not acked");
        b.Sent[0].Token.Ack();

        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task SendAsync_OneNacks_NacksWithLongestDelayOnceAllSettled()
    {
        var a = new HoldingDestination<int>();
        var b = new HoldingDestination<int>();
        var c = new HoldingDestination<int>();
        var fanOut = new FanOutDestination<int>(a, b, c);
        var probe = new AckProbe();
        await fanOut.SendAsync(probe, new Message<int>(1));

        a.Sent[0].Token.Nack(TimeSpan.FromSeconds(1));
        b.Sent[0].Token.Ack();
        c.Sent[0].Token.Nack(TimeSpan.FromSeconds(5));

        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(5))));
        Assert.That(probe.Completions, Is.EqualTo(1));
    }

    [Test]
    public async Task SendAsync_OneThrows_RethrowsAndNeverSettlesTheToken()
    {
        var a = new HoldingDestination<int>();
        var broken = new DestinationFunc<int>((_, _, _) => throw new IOException("sink down"));
        var fanOut = new FanOutDestination<int>(a, broken);
        var probe = new AckProbe();

        await Assert.ThrowsAsync<IOException>(async () => await fanOut.SendAsync(probe, new Message<int>(1)));
        a.Sent[0].Token.Ack(); // the healthy sink acks later

        Assert.That(probe.IsCompleted, Is.False, "a destination that throws leaves the token to the caller");
    }

    [Test]
    public async Task RunAsync_OneDestinationThrows_PipelineFailsAndTheMessageIsNegativelyAckedEvenWhenTheOtherAcksLater()
    {
        var healthy = new HoldingDestination<int>();
        var broken = new DestinationFunc<int>((ack, messages, _) =>
        {
            if (messages[0].Value == 3)
            {
                throw new IOException("sink down");
            }

            ack.Ack();
            return default;
        });
        var source = new Kawa.Dataflow.Tests.Core.Pipeline.TestSource<int>(Kawa.Dataflow.Tests.Core.Pipeline.TestMessages.Ints(6));
        var pipeline = Kawa.Dataflow.Pipeline.Create("fan-out-one-fails")
            .From(source)
            .To(new FanOutDestination<int>(healthy, broken))
            .Build(new PipelineOptions { SegmentSize = 1 });

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(Kawa.Dataflow.Tests.Core.Pipeline.TestMessages.Generous));
        Assert.That(error!.Stage, Is.EqualTo("destination"));
        Assert.That(error.InnerException, Is.TypeOf<IOException>());
        var failed = source.Tokens.Single(t => t.Id == 3);
        Assert.That(failed.Outcome, Is.EqualTo(AckOutcome.Negative()), "a destination that threw: redeliver, never ack");

        // The healthy destination wrote its copies and acks them now, after the run: no original may turn into an ack.
        foreach (var (token, _) in healthy.Sent)
        {
            token.Ack();
        }

        Assert.That(failed.Outcome, Is.EqualTo(AckOutcome.Negative()));
        Assert.That(failed.Completions, Is.EqualTo(1));
        Assert.That(source.Tokens.Select(t => t.Completions), Is.All.EqualTo(1), "every message read has exactly one outcome");
        Assert.That(source.Tokens.Where(t => t.Id < 3).Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked), "both copies of 0-2 are written: a late ack is a true one");
        Assert.That(source.Tokens.Where(t => t.Id > 3).Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Negative()), "read after the failure: not sent, redelivered");
    }

    [Test]
    public async Task FlushAsync_DrainsEveryDestination()
    {
        var a = new HoldingDestination<int>();
        var b = Substitute.For<IDestination<int>>();
        var fanOut = new FanOutDestination<int>(a, b);

        await fanOut.FlushAsync();

        Assert.That(a.Flushed, Is.True);
        await b.Received(1).FlushAsync(Arg.Any<CancellationToken>());
    }

    [Test]
    public async Task CommitHeldAsync_ForwardsToEveryDestination_SoTheHeldTokenIsAcked()
    {
        var a = new Kawa.Dataflow.Tests.Core.Pipeline.HoldingDestination<int>();
        var b = new Kawa.Dataflow.Tests.Core.Pipeline.HoldingDestination<int>();
        IDestination<int> fanOut = new FanOutDestination<int>(a, b);
        var probe = new AckProbe();
        await fanOut.SendAsync(probe, new Message<int>(7));

        await fanOut.CommitHeldAsync();

        Assert.That(a.Events, Is.EqualTo(new[] { "send 7", "commit 1" }));
        Assert.That(b.Events, Is.EqualTo(new[] { "send 7", "commit 1" }));
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }
}
