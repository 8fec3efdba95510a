using System.Text;
using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli.Handlers;

/// <summary>
/// Parses Apache/nginx combined log lines, <c>%h %l %u [%t] "%r" %&gt;s %b "%{Referer}i" "%{User-agent}i"</c>, into
/// the fields of <see cref="CombinedLogFields"/>. Hand-written over the UTF-8 bytes: no regex, no per-token allocation
/// beyond the field strings.
/// </summary>
/// <remarks>
/// <para>What it tolerates, because real logs have it:</para>
/// <list type="bullet">
/// <item>Escaped quotes and backslashes inside quoted fields (<c>\"</c>, <c>\\</c>) are unescaped; other escapes
/// (<c>\xhh</c>) are kept as written, since the original bytes cannot be known.</item>
/// <item>Unescaped quotes inside the request or referrer: a quote closes a field only where the next field can start
/// (the request's before <c> status</c>, the referrer's before <c> "</c>); the user agent runs to the line's last quote.</item>
/// <item>A user agent whose closing quote is missing (a truncated line) runs to the end of the line.</item>
/// <item>Odd request lines: <c>"-"</c> gives null method, path and protocol; a request without a protocol
/// (HTTP/0.9, garbage) gives a null protocol; a single token (a TLS handshake logged as bytes) becomes the path with a
/// null method.</item>
/// <item>A <c>-</c> size (no body) is 0, so byte sums stay numbers; <c>-</c> ident, user, referrer and agent are null.</item>
/// <item>A line that ends after the size (the <em>common</em> log format) has null referrer and agent.</item>
/// <item>Trailing CR/LF and spaces are ignored.</item>
/// </list>
/// <para>The time keeps its offset while parsing and is stored in UTC (<c>+0200</c> at 12:00 is 10:00Z), so partitions by
/// hour are the same whichever zone a server logged in.</para>
/// </remarks>
internal static class CombinedLogParser
{
    private const string Format = "combined";

    /// <summary>Parses one line into <paramref name="record"/>.</summary>
    /// <exception cref="EventParseException">The line is not in combined (or common) log format; says where and why.</exception>
    public static void Parse(ReadOnlyMemory<byte> raw, EventRecord record)
    {
        var line = raw.Span;
        var end = line.Length;
        while (end > 0 && line[end - 1] is (byte)'\n' or (byte)'\r' or (byte)' ' or (byte)'\t')
        {
            end--;
        }

        line = line[..end];
        var pos = 0;

        var host = Token(line, ref pos, raw, "host");
        var ident = Token(line, ref pos, raw, "ident");

        // The user (%u) is rarely anything but '-', but it may hold spaces: it runs to the " [" that opens the time.
        var timeOpen = line[pos..].IndexOf(" ["u8);
        if (timeOpen < 0)
        {
            throw Fail(raw, "missing the time: no ' [' after host and ident", pos);
        }

        var user = line.Slice(pos, timeOpen);
        pos += timeOpen + 2;
        var timeClose = line[pos..].IndexOf((byte)']');
        if (timeClose < 0)
        {
            throw Fail(raw, "the time has no closing ']'", pos);
        }

        var ts = ParseTime(line.Slice(pos, timeClose), raw, pos);
        pos += timeClose + 1;

        Expect(line, ref pos, " \""u8, raw, "the request: expected ' \"' after the time");
        var requestEnd = FindClose(line, pos, static (l, i) => i + 2 < l.Length && l[i + 1] == (byte)' ' && IsDigitOrDash(l[i + 2]));
        if (requestEnd < 0)
        {
            throw Fail(raw, "the request has no closing quote followed by a status", pos);
        }

        var request = line[pos..requestEnd];
        pos = requestEnd + 2;

        var statusText = Token(line, ref pos, raw, "status", lastAllowed: false);
        if (!TryLong(statusText, out var status))
        {
            throw Fail(raw, $"the status is not a number: '{Decode(statusText)}'", pos - statusText.Length - 1);
        }

        var bytesStart = pos;
        var bytesText = Token(line, ref pos, raw, "size", lastAllowed: true);
        long bytes = 0;
        if (!(bytesText.Length == 1 && bytesText[0] == (byte)'-') && !TryLong(bytesText, out bytes))
        {
            throw Fail(raw, $"the size is neither a number nor '-': '{Decode(bytesText)}'", bytesStart);
        }

        string? referrer = null;
        string? agent = null;
        if (pos < line.Length)
        {
            if (line[pos] != (byte)'"')
            {
                throw Fail(raw, "expected the quoted referrer after the size", pos);
            }

            pos++;
            var refEnd = FindClose(line, pos, static (l, i) => i + 2 < l.Length && l[i + 1] == (byte)' ' && l[i + 2] == (byte)'"');
            if (refEnd < 0)
            {
                throw Fail(raw, "the referrer has no closing quote followed by the user agent", pos);
            }

            referrer = DashIsNull(Unescape(line[pos..refEnd]));
            pos = refEnd + 3;

            // The agent is the last field: its closing quote is the line's last byte; if the line was cut short, the rest.
            var agentEnd = line[^1] == (byte)'"' && line.Length - 1 >= pos ? line.Length - 1 : line.Length;
            agent = DashIsNull(Unescape(line[pos..agentEnd]));
        }

        record.Set(CombinedLogFields.Host, Decode(host));
        record.Set(CombinedLogFields.Ident, DashIsNull(Decode(ident)));
        record.Set(CombinedLogFields.User, DashIsNull(Decode(user)));
        record.Set(CombinedLogFields.Timestamp, ts);
        SplitRequest(Unescape(request), out var method, out var path, out var protocol);
        record.Set(CombinedLogFields.Method, method);
        record.Set(CombinedLogFields.Path, path);
        record.Set(CombinedLogFields.Protocol, protocol);
        record.Set(CombinedLogFields.Status, status);
        record.Set(CombinedLogFields.Bytes, bytes);
        record.Set(CombinedLogFields.Referrer, referrer);
        record.Set(CombinedLogFields.Agent, agent);
    }

    private static ReadOnlySpan<byte> Token(ReadOnlySpan<byte> line, ref int pos, ReadOnlyMemory<byte> raw, string what, bool lastAllowed = false)
    {
        if (pos >= line.Length)
        {
            throw Fail(raw, $"the line ends before the {what}", pos);
        }

        var space = line[pos..].IndexOf((byte)' ');
        if (space < 0)
        {
            if (!lastAllowed)
            {
                throw Fail(raw, $"the line ends after the {what}", pos);
            }

            var last = line[pos..];
            pos = line.Length;
            return last;
        }

        if (space == 0)
        {
            throw Fail(raw, $"the {what} is empty", pos);
        }

        var token = line.Slice(pos, space);
        pos += space + 1;
        return token;
    }

    private static void Expect(ReadOnlySpan<byte> line, ref int pos, ReadOnlySpan<byte> expected, ReadOnlyMemory<byte> raw, string what)
    {
        if (!line[pos..].StartsWith(expected))
        {
            throw Fail(raw, what, pos);
        }

        pos += expected.Length;
    }

    private delegate bool ClosePredicate(ReadOnlySpan<byte> line, int quoteIndex);

    // The first unescaped quote from start that the predicate accepts as a field's end.
    private static int FindClose(ReadOnlySpan<byte> line, int start, ClosePredicate accept)
    {
        for (var i = start; i < line.Length; i++)
        {
            if (line[i] == (byte)'\\')
            {
                i++;
            }
            else if (line[i] == (byte)'"' && accept(line, i))
            {
                return i;
            }
        }

        return -1;
    }

    private static bool IsDigitOrDash(byte b) => b is (>= (byte)'0' and <= (byte)'9') or (byte)'-';

    // dd/MMM/yyyy:HH:mm:ss +hhmm
    private static DateTimeOffset ParseTime(ReadOnlySpan<byte> t, ReadOnlyMemory<byte> raw, int at)
    {
        if (t.Length != 26 || t[2] != '/' || t[6] != '/' || t[11] != ':' || t[14] != ':' || t[17] != ':' || t[20] != ' ' || t[21] is not ((byte)'+' or (byte)'-'))
        {
            throw Fail(raw, $"the time is not dd/MMM/yyyy:HH:mm:ss +hhmm: '{Decode(t)}'", at);
        }

        var month = Month(t.Slice(3, 3));
        if (month == 0
            || !TryDigits(t[..2], out var day) || !TryDigits(t.Slice(7, 4), out var year)
            || !TryDigits(t.Slice(12, 2), out var hour) || !TryDigits(t.Slice(15, 2), out var minute)
            || !TryDigits(t.Slice(18, 2), out var second)
            || !TryDigits(t.Slice(22, 2), out var offHours) || !TryDigits(t.Slice(24, 2), out var offMinutes))
        {
            throw Fail(raw, $"the time is not dd/MMM/yyyy:HH:mm:ss +hhmm: '{Decode(t)}'", at);
        }

        try
        {
            var offset = new TimeSpan(offHours, offMinutes, 0);
            return new DateTimeOffset(year, month, day, hour, minute, second, t[21] == (byte)'-' ? -offset : offset).ToUniversalTime();
        }
        catch (ArgumentException ex)
        {
            throw new EventParseException(Format, $"the time is out of range: '{Decode(t)}'", raw, at, ex);
        }
    }

    private static int Month(ReadOnlySpan<byte> m)
    {
        ReadOnlySpan<byte> names = "JanFebMarAprMayJunJulAugSepOctNovDec"u8;
        for (var i = 0; i < 12; i++)
        {
            if (names.Slice(i * 3, 3).SequenceEqual(m))
            {
                return i + 1;
            }
        }

        return 0;
    }

    private static bool TryDigits(ReadOnlySpan<byte> s, out int value)
    {
        value = 0;
        foreach (var b in s)
        {
            if (b is < (byte)'0' or > (byte)'9')
            {
                return false;
            }

            value = (value * 10) + (b - '0');
        }

        return s.Length > 0;
    }

    private static bool TryLong(ReadOnlySpan<byte> s, out long value)
    {
        value = 0;
        if (s.Length is 0 or > 18)
        {
            return false;
        }

        foreach (var b in s)
        {
            if (b is < (byte)'0' or > (byte)'9')
            {
                return false;
            }

            value = (value * 10) + (b - '0');
        }

        return true;
    }

    private static void SplitRequest(string request, out string? method, out string? path, out string? protocol)
    {
        method = path = protocol = null;
        if (request.Length == 0 || request == "-")
        {
            return;
        }

        var first = request.IndexOf(' ', StringComparison.Ordinal);
        if (first < 0)
        {
            path = request; // A lone token (garbage, a TLS hello) is kept where a reader looks for it.
            return;
        }

        method = request[..first];
        var rest = request[(first + 1)..];
        var last = rest.LastIndexOf(' ');
        if (last >= 0 && rest.AsSpan(last + 1).StartsWith("HTTP/", StringComparison.OrdinalIgnoreCase))
        {
            path = rest[..last];
            protocol = rest[(last + 1)..];
        }
        else
        {
            path = rest;
        }
    }

    private static string? DashIsNull(string value) => value == "-" ? null : value;

    private static string Decode(ReadOnlySpan<byte> s) => Encoding.UTF8.GetString(s);

    private static string Unescape(ReadOnlySpan<byte> s)
    {
        if (s.IndexOf((byte)'\\') < 0)
        {
            return Decode(s);
        }

        var buffer = new byte[s.Length];
        var n = 0;
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == (byte)'\\' && i + 1 < s.Length && s[i + 1] is (byte)'"' or (byte)'\\')
            {
                i++;
            }

            buffer[n++] = s[i];
        }

        return Encoding.UTF8.GetString(buffer, 0, n);
    }

    private static EventParseException Fail(ReadOnlyMemory<byte> raw, string reason, long position) => new(Format, reason, raw, position);
}
