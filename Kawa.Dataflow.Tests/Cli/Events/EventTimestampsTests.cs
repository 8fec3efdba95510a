using System.Globalization;
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

    [TestCase("2026-11-21T22:00:00Z")]
    [TestCase("2026-11-21T22:00:00.1234567Z")]
    [TestCase("2024-02-29T23:59:59.9999999+14:00")]
    [TestCase("0001-01-01T00:00:00Z")]
    [TestCase("9999-12-31T23:59:59.9999999Z")]
    [TestCase("2026-03-01T00:30:00-05:30")]
    [TestCase("2026-03-01T00:30:00.5-00:00")]
    public void TryParseRfc3339_MachineForm_SameValueAndOffsetAsTheGeneralParser(string text)
    {
        Assert.That(EventTimestamps.TryParseRfc3339(text, out var fast), Is.True);
        Assert.That(DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var general), Is.True);
        Assert.That((fast.UtcTicks, fast.Offset), Is.EqualTo((general.UtcTicks, general.Offset)));
    }

    [TestCase("2026-02-29T00:00:00Z", TestName = "not a leap year")]
    [TestCase("2026-11-21T24:00:00Z", TestName = "hour 24")]
    [TestCase("2026-12-31T23:59:60Z", TestName = "leap second")]
    [TestCase("2026-11-21 22:00:00Z", TestName = "space separator")]
    [TestCase("2026-11-21t22:00:00z", TestName = "lower case")]
    [TestCase("2026-11-21T22:00:00.12345678Z", TestName = "eight fraction digits")]
    [TestCase("2026-11-21T22:00:00.Z", TestName = "empty fraction")]
    [TestCase("2026-11-21T22:00:00", TestName = "no offset")]
    [TestCase("2026-11-21T22:00:00+0200", TestName = "offset without colon")]
    [TestCase("2026-11-21T22:00:00+15:00", TestName = "offset too large")]
    [TestCase("9999-12-31T23:00:00-02:00", TestName = "beyond the last instant in UTC")]
    [TestCase("２026-11-21T22:00:00Z", TestName = "non-ASCII digit")]
    public void TryParseRfc3339_OtherForms_LeftToTheGeneralParser(string text)
    {
        Assert.That(EventTimestamps.TryParseRfc3339(text, out _), Is.False);
    }

    [Test]
    public void TryParse_TwentyThousandRandomMachineTimes_AgreeWithTheGeneralParser()
    {
        var random = new Random(11);
        var fast = 0;
        for (var i = 0; i < 20_000; i++)
        {
            var instant = new DateTime(random.NextInt64(DateTime.MinValue.Ticks + TimeSpan.TicksPerDay, DateTime.MaxValue.Ticks - TimeSpan.TicksPerDay));
            var digits = random.Next(0, 8);
            var offsetMinutes = random.Next(-14 * 60, (14 * 60) + 1);
            var offset = offsetMinutes == 0 && random.Next(2) == 0 ? "Z" : (offsetMinutes < 0 ? "-" : "+") + TimeSpan.FromMinutes(Math.Abs(offsetMinutes)).ToString("hh\\:mm", CultureInfo.InvariantCulture);
            var text = instant.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture)
                + (digits == 0 ? "" : "." + instant.ToString(digits == 1 ? "%f" : new string('f', digits), CultureInfo.InvariantCulture)) + offset;

            var general = DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var expected);
            var parsed = EventTimestamps.TryParse(text, out var actual);

            Assert.That(parsed, Is.EqualTo(general), text);
            if (general)
            {
                Assert.That((actual.UtcTicks, actual.Offset), Is.EqualTo((expected.UtcTicks, expected.Offset)), text);
            }

            fast += EventTimestamps.TryParseRfc3339(text, out _) ? 1 : 0;
        }

        Assert.That(fast, Is.GreaterThan(19_000), "the texts are in the machine form the fast path reads");
    }
}
