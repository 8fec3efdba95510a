using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>
/// Hive-style escaping of partition values, so that no value can add a path segment, leave the lake root, hide a
/// directory, or exceed a file-name length limit.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Percent-encoded as <c>%XX</c> (the character code, as Hive and Spark decode it): control characters,
/// <c>/ \ " # % ' * : = ? { [ ] ^ &lt; &gt; | ~</c>, a leading <c>.</c> or <c>_</c> (readers hide such names), and a
/// trailing <c>.</c> or space (invalid on Windows). So <c>..</c> becomes <c>%2E.</c> and <c>../../etc</c> becomes
/// <c>%2E.%2F..%2Fetc</c>: one harmless segment (without separators, <c>..</c> inside a name is just text). Lone UTF-16 surrogates become <c>%uXXXX</c>. Other Unicode stays.</item>
/// <item><see langword="null"/> or empty becomes <see cref="DefaultPartitionName"/>, as in Hive.</item>
/// <item>Values whose escaped form is longer than <see cref="MaxEncodedBytes"/> UTF-8 bytes are cut and end in
/// <c>~</c> plus 16 hex digits of the value's SHA-256: still unique, no longer reversible. A raw <c>~</c> is escaped,
/// so a cut value never collides with an uncut one.</item>
/// </list>
/// </remarks>
public static class PartitionValue
{
    /// <summary>What a null or empty value becomes: <c>__HIVE_DEFAULT_PARTITION__</c>.</summary>
    public const string DefaultPartitionName = "__HIVE_DEFAULT_PARTITION__";

    /// <summary>The longest escaped value in UTF-8 bytes (file names are limited to 255 bytes).</summary>
    public const int MaxEncodedBytes = 128;

    private const int HashChars = 16;

    /// <summary>Escapes <paramref name="value"/> for use as (part of) one path segment.</summary>
    /// <param name="value">The raw value.</param>
    /// <returns>A non-empty string without separators or control characters that is never <c>.</c> or <c>..</c>.</returns>
    public static string Escape(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return DefaultPartitionName;
        }
        var builder = new StringBuilder(value.Length + 8);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                builder.Append(c).Append(value[++i]);
            }
            else if (char.IsSurrogate(c))
            {
                builder.Append("%u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
            }
            else if (NeedsEscape(c) || (i == 0 && c is '.' or '_') || (i == value.Length - 1 && c is '.' or ' '))
            {
                builder.Append('%').Append(((int)c).ToString("X2", CultureInfo.InvariantCulture));
            }
            else
            {
                builder.Append(c);
            }
        }
        var escaped = builder.ToString();
        return Encoding.UTF8.GetByteCount(escaped) <= MaxEncodedBytes ? escaped : Shorten(escaped, value);
    }

    /// <summary>Reverses <see cref="Escape"/> for values that were not cut (<c>%XX</c> and <c>%uXXXX</c> decoded).</summary>
    /// <param name="escaped">An escaped value.</param>
    /// <returns>The original value; <see langword="null"/> for <see cref="DefaultPartitionName"/>.</returns>
    public static string? Unescape(string escaped)
    {
        ArgumentNullException.ThrowIfNull(escaped);
        if (escaped == DefaultPartitionName)
        {
            return null;
        }
        var builder = new StringBuilder(escaped.Length);
        for (var i = 0; i < escaped.Length; i++)
        {
            if (escaped[i] == '%' && i + 5 < escaped.Length && escaped[i + 1] == 'u'
                && int.TryParse(escaped.AsSpan(i + 2, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var unit))
            {
                builder.Append((char)unit);
                i += 5;
            }
            else if (escaped[i] == '%' && i + 2 < escaped.Length
                && int.TryParse(escaped.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code))
            {
                builder.Append((char)code);
                i += 2;
            }
            else
            {
                builder.Append(escaped[i]);
            }
        }
        return builder.ToString();
    }

    private static bool NeedsEscape(char c) =>
        char.IsControl(c) || c is '"' or '#' or '%' or '\'' or '*' or '/' or ':' or '=' or '?' or '\\' or '{' or '[' or ']' or '^' or '<' or '>' or '|' or '~';

    /// <summary>Whether <paramref name="c"/> may appear in a template's literal text (the escape set minus <c>=</c>).</summary>
    internal static bool IsSafeLiteral(char c) => c == '=' || (!NeedsEscape(c) && !char.IsSurrogate(c));

    private static string Shorten(string escaped, string original)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(original)))[..HashChars];
        var budget = MaxEncodedBytes - HashChars - 1;
        var bytes = 0;
        var end = 0;
        while (end < escaped.Length)
        {
            // Keep %XX, %uXXXX and surrogate pairs whole.
            var length = escaped[end] == '%' ? (end + 1 < escaped.Length && escaped[end + 1] == 'u' ? 6 : 3)
                : char.IsHighSurrogate(escaped[end]) ? 2 : 1;
            length = Math.Min(length, escaped.Length - end);
            var size = Encoding.UTF8.GetByteCount(escaped.AsSpan(end, length));
            if (bytes + size > budget)
            {
                break;
            }
            bytes += size;
            end += length;
        }
        var cut = escaped[..end];
        // A cut may end in '.' or ' ' (escaped only at the very end of the full value); keep names portable.
        while (cut.Length > 0 && cut[^1] is '.' or ' ')
        {
            cut = cut[..^1];
        }
        return cut + "~" + hash;
    }
}
