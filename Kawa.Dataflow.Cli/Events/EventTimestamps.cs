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

        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out value))
        {
            return false;
        }

        t_last = value;
        t_lastText = text;
        return true;
    }
}
