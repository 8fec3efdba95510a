namespace Kawa.Dataflow.Tests.Infrastructure;

public class FakeTimeProviderTests
{
    [Test]
    public void Advance_FiresDueTimersInDueOrderOnly()
    {
        var time = new FakeTimeProvider();
        var fired = new List<string>();
        using var late = time.CreateTimer(_ => fired.Add("late"), null, TimeSpan.FromSeconds(5), Timeout.InfiniteTimeSpan);
        using var early = time.CreateTimer(_ => fired.Add("early"), null, TimeSpan.FromSeconds(2), Timeout.InfiniteTimeSpan);

        time.Advance(TimeSpan.FromSeconds(4));
        Assert.That(fired, Is.EqualTo(new[] { "early" }));
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.That(fired, Is.EqualTo(new[] { "early", "late" }));
        Assert.That(time.GetUtcNow(), Is.EqualTo(new DateTimeOffset(2026, 1, 1, 0, 0, 5, TimeSpan.Zero)));
    }

    [Test]
    public void Dispose_TimerNeverFires()
    {
        var time = new FakeTimeProvider();
        var fired = false;
        var timer = time.CreateTimer(_ => fired = true, null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);

        timer.Dispose();
        time.Advance(TimeSpan.FromSeconds(2));

        Assert.That(fired, Is.False);
        Assert.That(time.ActiveTimers, Is.Zero);
    }

    [Test]
    public void Advance_PeriodicTimer_FiresEachPeriod()
    {
        var time = new FakeTimeProvider();
        var count = 0;
        using var timer = time.CreateTimer(_ => count++, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

        time.Advance(TimeSpan.FromSeconds(3.5));

        Assert.That(count, Is.EqualTo(3));
    }

    [Test]
    public async Task TaskDelay_WithFakeTime_CompletesOnAdvance()
    {
        var time = new FakeTimeProvider();
        var delay = Task.Delay(TimeSpan.FromMinutes(1), time);
        await time.WaitForActiveTimersAsync(1);
        Assert.That(delay.IsCompleted, Is.False);

        time.Advance(TimeSpan.FromMinutes(1));

        await delay.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
