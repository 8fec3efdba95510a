using System.Buffers.Binary;
using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Parquet.Writing;

/// <summary>Conversions from .NET values to Parquet physical values (and back), with the documented rules.</summary>
internal static class ValueConversions
{
    private static readonly long UnixEpochTicks = DateTime.UnixEpoch.Ticks;
    private static readonly int UnixEpochDayNumber = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;
    private static readonly UInt128[] Pow10 = BuildPow10();

    /// <summary>Ticks (100 ns) to microseconds, rounding toward negative infinity.</summary>
    public static long FloorDiv10(long ticks) => ticks >= 0 ? ticks / 10 : ((ticks + 1) / 10) - 1;

    /// <summary>UTC ticks relative to the Unix epoch. Local times convert to UTC; Unspecified is taken as UTC.</summary>
    public static long UnixTicks(DateTime value)
    {
        if (value.Kind == DateTimeKind.Local)
        {
            value = value.ToUniversalTime();
        }

        return value.Ticks - UnixEpochTicks;
    }

    public static long ToTimestamp(long unixTicks, ParquetTimestampUnit unit, string path)
    {
        if (unit == ParquetTimestampUnit.Microseconds)
        {
            return FloorDiv10(unixTicks);
        }

        if (unixTicks > long.MaxValue / 100 || unixTicks < long.MinValue / 100)
        {
            throw new ParquetWriteException($"Column '{path}': timestamp {new DateTime(unixTicks + UnixEpochTicks, DateTimeKind.Utc):O} is outside the range of TIMESTAMP(NANOS) (1677-09-21 to 2262-04-11); use microseconds.");
        }

        return unixTicks * 100;
    }

    public static DateTime FromTimestamp(long value, ParquetTimestampUnit unit) =>
        new(checked(UnixEpochTicks + (unit == ParquetTimestampUnit.Microseconds ? checked(value * 10) : FloorDiv(value, 100))), DateTimeKind.Utc);

    public static long FloorDiv(long a, long b) => a >= 0 ? a / b : ((a + 1) / b) - 1;

    public static int ToDate(DateOnly d) => d.DayNumber - UnixEpochDayNumber;

    public static DateOnly FromDate(int days) => DateOnly.FromDayNumber(checked(days + UnixEpochDayNumber));

    public static long ToTimeMicros(TimeOnly t) => t.Ticks / 10;

    public static long ToDurationMicros(TimeSpan t) => FloorDiv10(t.Ticks);

    public static void WriteUuid(Guid g, Span<byte> destination) => g.TryWriteBytes(destination, bigEndian: true, out _);

    public static Guid ReadUuid(ReadOnlySpan<byte> source) => new(source, bigEndian: true);

    /// <summary>The unscaled integer of <paramref name="value"/> at <paramref name="scale"/>; throws instead of rounding.</summary>
    public static Int128 Unscale(decimal value, int precision, int scale, string path)
    {
        Span<int> bits = stackalloc int[4];
        decimal.GetBits(value, bits);
        UInt128 mantissa = ((UInt128)(uint)bits[2] << 64) | ((UInt128)(uint)bits[1] << 32) | (uint)bits[0];
        int exponent = (bits[3] >> 16) & 0xFF;
        bool negative = bits[3] < 0;
        if (exponent > scale)
        {
            var divisor = Pow10[exponent - scale];
            var quotient = UInt128.DivRem(mantissa, divisor);
            if (quotient.Remainder != 0)
            {
                throw new ParquetWriteException($"Column '{path}': value {value} has more than {scale} fractional digits and does not fit DECIMAL({precision}, {scale}); it is not rounded.");
            }

            mantissa = quotient.Quotient;
        }
        else if (exponent < scale)
        {
            var factor = Pow10[scale - exponent];
            if (mantissa > UInt128.MaxValue / factor)
            {
                throw Overflow(value, precision, scale, path);
            }

            mantissa *= factor;
        }

        if (mantissa >= Pow10[precision])
        {
            throw Overflow(value, precision, scale, path);
        }

        return negative ? -(Int128)mantissa : (Int128)mantissa;
    }

    private static ParquetWriteException Overflow(decimal value, int precision, int scale, string path) =>
        new($"Column '{path}': value {value} needs more than {precision - scale} integer digits and does not fit DECIMAL({precision}, {scale}).");

    /// <summary>Writes the big-endian two's complement of <paramref name="unscaled"/> into all of <paramref name="destination"/>.</summary>
    public static void WriteBigEndian(Int128 unscaled, Span<byte> destination)
    {
        Span<byte> full = stackalloc byte[16];
        BinaryPrimitives.WriteInt128BigEndian(full, unscaled);
        full[(16 - destination.Length)..].CopyTo(destination);
    }

    public static Int128 ReadBigEndian(ReadOnlySpan<byte> source)
    {
        if (source.Length > 16)
        {
            // Wider than 16 bytes: leading bytes must be sign extension.
            source = source[(source.Length - 16)..];
        }

        Span<byte> full = stackalloc byte[16];
        byte fill = source.Length > 0 && (source[0] & 0x80) != 0 ? (byte)0xFF : (byte)0;
        full.Fill(fill);
        source.CopyTo(full[(16 - source.Length)..]);
        return BinaryPrimitives.ReadInt128BigEndian(full);
    }

    /// <summary>The decimal of an unscaled integer; reduces trailing zeros when the scale exceeds 28, and fails when the value cannot be held exactly.</summary>
    public static decimal ToDecimal(Int128 unscaled, int scale)
    {
        bool negative = unscaled < 0;
        UInt128 m = negative ? (UInt128)(-unscaled) : (UInt128)unscaled;
        while ((scale > 28 || m >> 96 != 0) && scale > 0 && m % 10 == 0)
        {
            m /= 10;
            scale--;
        }

        if (scale > 28 || m >> 96 != 0)
        {
            throw new InvalidDataException($"Decimal value {(negative ? "-" : "")}{m}e-{scale} cannot be represented exactly by System.Decimal.");
        }

        return new decimal((int)(uint)m, (int)(uint)(m >> 32), (int)(uint)(m >> 64), negative, (byte)scale);
    }

    private static UInt128[] BuildPow10()
    {
        var p = new UInt128[39];
        p[0] = 1;
        for (int i = 1; i < p.Length; i++)
        {
            p[i] = p[i - 1] * 10;
        }

        return p;
    }
}
