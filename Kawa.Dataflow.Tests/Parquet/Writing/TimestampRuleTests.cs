using Kawa.Dataflow.Parquet.Schema;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Parquet.Writing;

/// <summary>The documented timestamp rules (docs/parquet.md).</summary>
public class TimestampRuleTests
{
    [Test]
    public void UnixTicks_UnspecifiedKind_IsTakenAsUtc()
    {
        var unspecified = new DateTime(2024, 5, 6, 7, 8, 9, DateTimeKind.Unspecified);
        var utc = DateTime.SpecifyKind(unspecified, DateTimeKind.Utc);

        Assert.That(ValueConversions.UnixTicks(unspecified), Is.EqualTo(ValueConversions.UnixTicks(utc)));
    }

    [Test]
    public void UnixTicks_LocalKind_IsConvertedToUtc()
    {
        var local = new DateTime(2024, 5, 6, 7, 8, 9, DateTimeKind.Local);

        Assert.That(ValueConversions.UnixTicks(local), Is.EqualTo(local.ToUniversalTime().Ticks - DateTime.UnixEpoch.Ticks));
    }

    [TestCase(0L, 0L)]
    [TestCase(9L, 0L)]
    [TestCase(10L, 1L)]
    [TestCase(-1L, -1L)]
    [TestCase(-10L, -1L)]
    [TestCase(-11L, -2L)]
    public void ToTimestamp_SubMicrosecondTicks_TruncateTowardNegativeInfinity(long ticks, long micros)
    {
        Assert.That(ValueConversions.ToTimestamp(ticks, ParquetTimestampUnit.Microseconds, "c"), Is.EqualTo(micros));
    }

    [Test]
    public void ToTimestamp_Nanoseconds_OutOfRange_Throws()
    {
        long ticks = new DateTime(2300, 1, 1, 0, 0, 0, DateTimeKind.Utc).Ticks - DateTime.UnixEpoch.Ticks;

        var ex = Assert.Throws<ParquetWriteException>(() => ValueConversions.ToTimestamp(ticks, ParquetTimestampUnit.Nanoseconds, "Col"));

        Assert.That(ex!.Message, Does.Contain("Col").And.Contain("NANOS"));
    }

    [Test]
    public void Unscale_ExactValues_GiveUnscaledIntegers()
    {
        Assert.That(ValueConversions.Unscale(-1.5m, 38, 18, "c"), Is.EqualTo(Int128.Parse("-1500000000000000000", System.Globalization.CultureInfo.InvariantCulture)));
        Assert.That(ValueConversions.Unscale(1.2300m, 5, 2, "c"), Is.EqualTo((Int128)123), "trailing zeros beyond the scale are fine");
        Assert.Throws<ParquetWriteException>(() => ValueConversions.Unscale(decimal.MaxValue, 38, 18, "c"));
    }
}
