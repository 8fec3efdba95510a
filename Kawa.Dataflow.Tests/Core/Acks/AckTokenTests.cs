namespace Kawa.Dataflow.Tests.Core.Acks;

public class AckTokenTests
{
    [Test]
    public void Ack_Twice_ThrowsAndSourceSeesOnlyFirst()
    {
        var seen = new List<AckOutcome>();
        var token = AckToken.Create(seen.Add);

        token.Ack();

        Assert.Throws<InvalidOperationException>(() => token.Nack());
        Assert.That(seen, Is.EqualTo(new[] { AckOutcome.Acked }));
        Assert.That(token.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public void Nack_WithDelay_PassesDelayToSource()
    {
        AckOutcome? seen = null;
        var token = AckToken.Create(o => seen = o);

        token.Nack(TimeSpan.FromSeconds(3));

        Assert.That(seen, Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(3))));
    }

    [Test]
    public void Nack_NegativeDelay_ThrowsAndLeavesTokenPending()
    {
        var token = AckToken.Create(_ => { });

        Assert.Throws<ArgumentOutOfRangeException>(() => token.Nack(TimeSpan.FromSeconds(-1)));
        Assert.That(token.IsCompleted, Is.False);
    }

    [Test]
    public void InProgress_AfterFinalOutcome_IsIgnored()
    {
        var keepAlives = 0;
        var token = AckToken.Create(_ => { }, () => keepAlives++);

        token.InProgress();
        token.Terminate();
        token.InProgress();

        Assert.That(keepAlives, Is.EqualTo(1));
    }

    [Test]
    public void TryComplete_RacingThreads_ExactlyOneWins()
    {
        for (var round = 0; round < 200; round++)
        {
            var calls = 0;
            var token = AckToken.Create(_ => Interlocked.Increment(ref calls));
            var wins = 0;
            Parallel.For(0, 8, _ =>
            {
                if (token.TryComplete(AckOutcome.Acked))
                {
                    Interlocked.Increment(ref wins);
                }
            });
            Assert.That((wins, calls), Is.EqualTo((1, 1)));
        }
    }
}
