using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;

namespace Kawa.Dataflow.Tests.Nats.Client;

public class NatsReconnectDelayTests
{
    private static readonly NatsConnectionOptions NoJitter = new() { ReconnectWait = TimeSpan.FromMilliseconds(100), ReconnectJitter = TimeSpan.Zero };

    [Test]
    public void ReconnectDelay_FirstRound_NoWait()
        => Assert.That(NatsConnection.ReconnectDelay(0, NoJitter, new FixedRandom(0.9)), Is.EqualTo(TimeSpan.Zero));

    [Test]
    public void ReconnectDelay_LaterRounds_DoublesUpToEightTimesTheBase()
    {
        var delays = Enumerable.Range(1, 7).Select(round => NatsConnection.ReconnectDelay(round, NoJitter, new FixedRandom(0.5)).TotalMilliseconds);

        Assert.That(delays, Is.EqualTo(new[] { 100.0, 200, 400, 800, 800, 800, 800 }));
    }

    [Test]
    public void ReconnectDelay_HugeRound_StaysAtTheCapWithoutOverflow()
        => Assert.That(NatsConnection.ReconnectDelay(int.MaxValue, NoJitter, new FixedRandom(0)), Is.EqualTo(TimeSpan.FromMilliseconds(800)));

    [Test]
    public void ReconnectDelay_JitterExtremes_FromBaseToJustBelowBasePlusJitter()
    {
        var options = new NatsConnectionOptions { ReconnectWait = TimeSpan.FromSeconds(1), ReconnectJitter = TimeSpan.FromMilliseconds(500) };

        var lowest = NatsConnection.ReconnectDelay(2, options, new FixedRandom(0));
        var highest = NatsConnection.ReconnectDelay(2, options, new FixedRandom(Math.BitDecrement(1.0)));

        Assert.That(lowest, Is.EqualTo(TimeSpan.FromSeconds(2)));
        Assert.That(highest, Is.LessThan(TimeSpan.FromMilliseconds(2500)).And.GreaterThan(TimeSpan.FromMilliseconds(2499)));
    }

    [Test]
    public void ReconnectDelay_SeededRandom_SpreadsOverTheWholeJitterRange()
    {
        var options = new NatsConnectionOptions { ReconnectWait = TimeSpan.FromSeconds(1), ReconnectJitter = TimeSpan.FromMilliseconds(500) };
        var random = new Random(42);

        var extras = Enumerable.Range(0, 1000).Select(_ => (NatsConnection.ReconnectDelay(1, options, random) - TimeSpan.FromSeconds(1)).TotalMilliseconds).ToArray();

        Assert.That(extras.Min(), Is.GreaterThanOrEqualTo(0.0).And.LessThan(50.0), "never below the base; low end of the range used");
        Assert.That(extras.Max(), Is.LessThan(500.0).And.GreaterThan(450.0), "never the full jitter; high end of the range used");
    }

    [Test]
    public void ReconnectDelay_BaseTooLongForATimer_CappedAtTheLongestTimer()
    {
        var options = new NatsConnectionOptions { ReconnectWait = TimeSpan.FromDays(30), ReconnectJitter = TimeSpan.FromDays(30) };

        Assert.That(NatsConnection.ReconnectDelay(9, options, new FixedRandom(0.99)), Is.EqualTo(NatsConnection.MaxReconnectDelay));
        Assert.That(NatsConnection.ReconnectDelay(1, options, new FixedRandom(0)), Is.EqualTo(TimeSpan.FromDays(30)));
    }

    /// <summary>A random source that always draws <paramref name="value"/>.</summary>
    private sealed class FixedRandom(double value) : Random
    {
        public override double NextDouble() => value;
    }
}
