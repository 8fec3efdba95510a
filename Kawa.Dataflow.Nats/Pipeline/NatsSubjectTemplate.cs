using System.Globalization;
using System.Text;

namespace Kawa.Dataflow.Nats.Pipeline;

/// <summary>A subject built from a message: literal text with <c>{subject}</c>, <c>{topic}</c>, <c>{key}</c> or any
/// attribute name (<c>{stream}</c>, <c>{stream.sequence}</c>, ...) in braces.</summary>
internal sealed class NatsSubjectTemplate
{
    private readonly (string Text, bool IsPlaceholder)[] _parts;

    private NatsSubjectTemplate((string, bool)[] parts, string text)
    {
        _parts = parts;
        Text = text;
    }

    public string Text { get; }

    /// <exception cref="FormatException">Unbalanced braces or an empty placeholder.</exception>
    public static NatsSubjectTemplate Parse(string template)
    {
        var parts = new List<(string, bool)>();
        var i = 0;
        while (i < template.Length)
        {
            var open = template.IndexOf('{', i);
            var close = template.IndexOf('}', i);
            if (close >= 0 && (open < 0 || close < open))
            {
                throw new FormatException($"Subject template '{template}': '}}' at {close} has no '{{'.");
            }

            if (open < 0)
            {
                parts.Add((template[i..], false));
                break;
            }

            if (close < 0)
            {
                throw new FormatException($"Subject template '{template}': '{{' at {open} is not closed.");
            }

            if (open > i)
            {
                parts.Add((template[i..open], false));
            }

            var name = template[(open + 1)..close];
            if (name.Length == 0 || name.Contains('{', StringComparison.Ordinal))
            {
                throw new FormatException($"Subject template '{template}': empty or nested placeholder at {open}.");
            }

            parts.Add((name, true));
            i = close + 1;
        }

        return new NatsSubjectTemplate([.. parts], template);
    }

    /// <exception cref="InvalidOperationException">A placeholder has no value for this message.</exception>
    public string Render<T>(in Message<T> message)
    {
        if (_parts.Length == 1 && !_parts[0].IsPlaceholder)
        {
            return _parts[0].Text;
        }

        var builder = new StringBuilder();
        foreach (var (text, isPlaceholder) in _parts)
        {
            if (!isPlaceholder)
            {
                builder.Append(text);
                continue;
            }

            var value = text switch
            {
                "subject" => message.Attributes.TryGet(MessageAttributeKeys.Subject, out var s) ? s : message.Topic,
                "topic" => message.Topic,
                "key" => message.Key,
                _ => message.Attributes.TryGetValue(text, out var v) ? Convert.ToString(v, CultureInfo.InvariantCulture) : null,
            };
            if (string.IsNullOrEmpty(value))
            {
                throw new InvalidOperationException($"Subject template '{Text}': the message has no value for '{{{text}}}'.");
            }

            builder.Append(value);
        }

        return builder.ToString();
    }
}
