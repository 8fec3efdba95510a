using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Tests.Cli.Events;

public class EventTimestampsTests
{
    [Test]
    public void TryParse_TextsInTurn_EachGetsItsOwnValue()
    {
        // The last text is remembered by reference: a different string, even one parsed before, is parsed again.
        string[] texts = ["2026-11-21T22:00:00.007Z", "2026-11-21T23:30:00+02:00", "2026-11-21 22:00:01", "2026-11-21T22:00:00.007Z"];
        DateTimeOffset[] expected =
        [
            new(2026, 11, 21, 22, 0, 0, 7, TimeSpan.Zero),
            new(2026, 11, 21, 21, 30, 0, TimeSpan.Zero),
            new(2026, 11, 21, 22, 0, 1, TimeSpan.Zero),
            new(2026, 11, 21, 22, 0, 0, 7, TimeSpan.Zero),
        ];

        var parsed = texts.Select(t => EventTimestamps.TryParse(new string(t.AsSpan()), out var v) ? v : default).ToArray();

        Assert.That(parsed, Is.EqualTo(expected));
        Assert.That(parsed[2].Offset, Is.EqualTo(TimeSpan.Zero), "no offset in the text means UTC");
    }

    [Test]
    public void TryParse_SameStringTwiceAndGarbage_SameValueThenFalse()
    {
        var text = "2026-01-02T03:04:05Z";

        Assert.That(EventTimestamps.TryParse(text, out var first), Is.True);
        Assert.That(EventTimestamps.TryParse(text, out var second), Is.True);
        Assert.That(second, Is.EqualTo(first));
        Assert.That(EventTimestamps.TryParse("not a time", out _), Is.False);
        Assert.That(EventTimestamps.TryParse(text, out var third) && third == first, Is.True);
    }
}
