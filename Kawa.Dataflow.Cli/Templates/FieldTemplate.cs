using System.Globalization;
using System.Text;
using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli.Templates;

/// <summary>
/// A text template with field placeholders: <c>dt={ts:yyyy-MM-dd}/hour={ts:HH}</c>, <c>logs.{status}</c>.
/// </summary>
/// <remarks>
/// <para>
/// A placeholder is <c>{field}</c> or <c>{field:format}</c>; the format applies to timestamps and numbers
/// (invariant culture). A field starting with <c>$</c> is a message property (<c>{$receivedAt:yyyy-MM-dd}</c>,
/// <c>{$subject}</c>). Braces cannot be escaped: partition paths and subjects never need them.
/// </para>
/// <para>
/// A missing or null field renders as <see cref="NullText"/>, so a message without the field still gets a
/// well-defined place instead of failing.
/// </para>
/// </remarks>
internal sealed class FieldTemplate
{
    /// <summary>What a missing or null field renders as.</summary>
    public const string NullText = "__null__";

    private readonly Part[] _parts;

    private FieldTemplate(string text, Part[] parts)
    {
        Text = text;
        _parts = parts;
    }

    /// <summary>The template as written.</summary>
    public string Text { get; }

    /// <summary>The placeholders in order: field name and format (<see langword="null"/> when none).</summary>
    public IEnumerable<(string Field, string? Format)> Placeholders => _parts.Where(p => p.Field is not null).Select(p => (p.Field!, p.Format));

    /// <summary>Parses a template.</summary>
    /// <exception cref="FormatException">An unclosed or empty placeholder, or a stray <c>}</c>, with its position.</exception>
    public static FieldTemplate Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = new List<Part>();
        var i = 0;
        while (i < text.Length)
        {
            var open = text.IndexOf('{', i);
            var close = text.IndexOf('}', i);
            if (close >= 0 && (open < 0 || close < open))
            {
                throw new FormatException($"unexpected '}}' at position {close + 1}");
            }

            if (open < 0)
            {
                parts.Add(new Part(text[i..], null, null));
                break;
            }

            if (open > i)
            {
                parts.Add(new Part(text[i..open], null, null));
            }

            var end = text.IndexOf('}', open + 1);
            var nested = text.IndexOf('{', open + 1);
            if (end < 0 || (nested >= 0 && nested < end))
            {
                throw new FormatException($"unclosed '{{' at position {open + 1}");
            }

            var inner = text[(open + 1)..end];
            var colon = inner.IndexOf(':', StringComparison.Ordinal);
            var field = (colon >= 0 ? inner[..colon] : inner).Trim();
            if (field.Length == 0)
            {
                throw new FormatException($"empty placeholder at position {open + 1}");
            }

            parts.Add(new Part(null, field, colon >= 0 ? inner[(colon + 1)..] : null));
            i = end + 1;
        }

        return new FieldTemplate(text, [.. parts]);
    }

    /// <summary>Renders the template for one event.</summary>
    /// <param name="record">The event's fields.</param>
    /// <param name="property">Resolves <c>$</c> message properties; <see langword="null"/> renders them as <see cref="NullText"/>.</param>
    /// <param name="escape">Makes a rendered value safe where it goes (a path segment, a subject token).</param>
    public string Render(EventRecord record, Func<string, FieldValue>? property = null, Func<string, string>? escape = null)
    {
        var sb = new StringBuilder();
        foreach (var part in _parts)
        {
            if (part.Literal is not null)
            {
                sb.Append(part.Literal);
                continue;
            }

            var value = part.Field![0] == '$'
                ? property?.Invoke(part.Field) ?? FieldValue.Null
                : record[part.Field];
            var text = value.IsNull ? NullText : value.ToString(part.Format);
            sb.Append(escape is null ? text : escape(text));
        }

        return sb.ToString();
    }

    /// <summary>Checks a format on a sample value of each kind it applies to.</summary>
    /// <returns>The reason it is invalid, or <see langword="null"/>.</returns>
    public static string? CheckFormat(string format)
    {
        try
        {
            _ = new DateTimeOffset(2000, 1, 2, 3, 4, 5, TimeSpan.Zero).ToString(format, CultureInfo.InvariantCulture);
            return null;
        }
        catch (FormatException ex)
        {
            return ex.Message;
        }
    }

    private sealed record Part(string? Literal, string? Field, string? Format);
}
