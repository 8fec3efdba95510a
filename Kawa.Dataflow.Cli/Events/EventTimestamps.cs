using System.Globalization;

namespace Kawa.Dataflow.Cli.Events;

/// <summary>Parses an event's timestamp text (ISO 8601 and the other forms <see cref="DateTimeOffset.TryParse(string?, IFormatProvider?, DateTimeStyles, out DateTimeOffset)"/>
/// accepts; no offset means UTC).</summary>
/// <remarks>
/// The Parquet sink reads an event's <c>ts</c> twice in a row, for its partition and for its column: the last text parsed
/// on each thread is remembered by reference, so the same string is parsed once.
/// </remarks>
internal static class EventTimestamps
{
    [ThreadStatic]
    private static string? t_lastText;

    [ThreadStatic]
    private static DateTimeOffset t_last;

    public static bool TryParse(string text, out DateTimeOffset value)
    {
        if (ReferenceEquals(text, t_lastText))
        {
            value = t_last;
            return true;
        }

        if (!TryParseRfc3339(text, out value)
            && !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out value))
        {
            return false;
        }

        t_last = value;
        t_lastText = text;
        return true;
    }

    /// <summary>
    /// The common machine form, <c>yyyy-MM-ddTHH:mm:ss[.f{1,7}](Z|±HH:mm)</c>, read directly: the general parser costs
    /// several times more and every event's time goes through here. Anything else (other separators, more than seven
    /// fraction digits, a leap second, out-of-range fields) returns <see langword="false"/> for the general parser to
    /// decide, so results never differ from it.
    /// </summary>
    internal static bool TryParseRfc3339(ReadOnlySpan<char> text, out DateTimeOffset value)
    {
        value = default;
        if (text.Length < 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':'
            || !Digits(text, 0, 4, out var year) || !Digits(text, 5, 2, out var month) || !Digits(text, 8, 2, out var day)
            || !Digits(text, 11, 2, out var hour) || !Digits(text, 14, 2, out var minute) || !Digits(text, 17, 2, out var second)
            || year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month)
            || hour > 23 || minute > 59 || second > 59)
        {
            return false;
        }

        var pos = 19;
        long fraction = 0;
        if (text[pos] == '.')
        {
            var start = ++pos;
            while (pos < text.Length && char.IsAsciiDigit(text[pos]))
            {
                fraction = (fraction * 10) + (text[pos] - '0');
                pos++;
            }

            var digits = pos - start;
            if (digits is 0 or > 7)
            {
                return false;
            }

            for (var i = digits; i < 7; i++)
            {
                fraction *= 10;
            }
        }

        TimeSpan offset;
        if (pos == text.Length - 1 && text[pos] == 'Z')
        {
            offset = TimeSpan.Zero;
        }
        else if (pos == text.Length - 6 && text[pos] is '+' or '-' && text[pos + 3] == ':'
            && Digits(text, pos + 1, 2, out var offsetHours) && Digits(text, pos + 4, 2, out var offsetMinutes)
            && offsetHours <= 14 && offsetMinutes <= 59 && (offsetHours * 60) + offsetMinutes <= 14 * 60)
        {
            offset = new TimeSpan(offsetHours, offsetMinutes, 0);
            if (text[pos] == '-')
            {
                offset = -offset;
            }
        }
        else
        {
            return false;
        }

        var ticks = new DateTime(year, month, day, hour, minute, second).Ticks + fraction;
        var utcTicks = ticks - offset.Ticks;
        if (utcTicks < DateTime.MinValue.Ticks || utcTicks > DateTime.MaxValue.Ticks)
        {
            return false;
        }

        value = new DateTimeOffset(ticks, offset);
        return true;

        static bool Digits(ReadOnlySpan<char> s, int start, int count, out int number)
        {
            number = 0;
            for (var i = start; i < start + count; i++)
            {
                if (!char.IsAsciiDigit(s[i]))
                {
                    return false;
                }

                number = (number * 10) + (s[i] - '0');
            }

            return true;
        }
    }
}
