using System.Globalization;
using System.Text;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>How a <see cref="DateTime"/> of <see cref="DateTimeKind.Unspecified"/> kind is turned into UTC for partitioning.</summary>
public enum UnspecifiedDateTimeHandling
{
    /// <summary>The default: the value already is UTC (what most serializers and databases mean).</summary>
    AssumeUtc = 0,

    /// <summary>The value is in the host's local time zone and is converted.</summary>
    AssumeLocal,

    /// <summary>Refuse it: evaluating the partition throws, naming the token.</summary>
    Reject,
}

/// <summary>Options of <see cref="PartitionPath{T}"/>.</summary>
/// <typeparam name="T">The payload type.</typeparam>
public sealed class PartitionPathOptions<T>
{
    /// <summary>
    /// The event time for <c>{ts:...}</c> tokens. Default: <see langword="null"/>, meaning the message's
    /// <see cref="MessageAttributeKeys.Timestamp"/>, else <see cref="MessageAttributeKeys.ReceivedAt"/>, else the clock's now.
    /// </summary>
    public Func<Message<T>, DateTimeOffset?>? Timestamp { get; set; }

    /// <summary>Reads a payload field by name for <c>{field:NAME}</c> tokens (e.g. from the row the format writer sees). Default: none; templates with field tokens then fail to parse.</summary>
    public Func<Message<T>, string, object?>? Field { get; set; }

    /// <summary>What an unspecified-kind <see cref="DateTime"/> value means. Default: <see cref="UnspecifiedDateTimeHandling.AssumeUtc"/>.</summary>
    public UnspecifiedDateTimeHandling UnspecifiedDateTimes { get; set; } = UnspecifiedDateTimeHandling.AssumeUtc;

    /// <summary>The clock for messages without a timestamp. Default: <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}

/// <summary>
/// Computes the Hive-style partition directory of a message, e.g. <c>dt=2024-05-01/hour=10</c>, from a template or a delegate.
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// <para>Template tokens (everything else is literal text; segments are separated by <c>/</c>):</para>
/// <list type="table">
/// <item><term><c>{ts:FORMAT}</c></term><description>The event time in UTC, formatted with a .NET custom format
/// (invariant culture), e.g. <c>{ts:yyyy-MM-dd}</c>, <c>{ts:HH}</c>. See <see cref="PartitionPathOptions{T}.Timestamp"/>.</description></item>
/// <item><term><c>{topic}</c>, <c>{key}</c>, <c>{subject}</c></term><description>The message's topic, key, or subject attribute.</description></item>
/// <item><term><c>{attr:NAME}</c>, <c>{attr:NAME:FORMAT}</c></term><description>A message attribute by name.</description></item>
/// <item><term><c>{field:NAME}</c>, <c>{field:NAME:FORMAT}</c></term><description>A payload field through <see cref="PartitionPathOptions{T}.Field"/>.</description></item>
/// </list>
/// <para>Every value is escaped with <see cref="PartitionValue.Escape"/> (so it cannot add segments or leave the
/// root); literal text may only hold characters that need no escaping, plus <c>=</c>. <see cref="DateTime"/> values
/// are converted to UTC by kind: <see cref="DateTimeKind.Local"/> is converted, <see cref="DateTimeKind.Unspecified"/>
/// follows <see cref="PartitionPathOptions{T}.UnspecifiedDateTimes"/>; <see cref="DateTimeOffset"/> values use their
/// UTC instant. Other formattable values use the invariant culture.</para>
/// <para>A delegate (<see cref="FromDelegate"/>) returns a <c>/</c>-separated path whose every segment is escaped the same way.</para>
/// </remarks>
public sealed class PartitionPath<T>
{
    private readonly Func<Message<T>, string> _evaluate;

    private PartitionPath(string template, Func<Message<T>, string> evaluate)
    {
        Template = template;
        _evaluate = evaluate;
    }

    /// <summary>No partitioning: every file goes to the lake root.</summary>
    public static PartitionPath<T> None { get; } = new("", static _ => "");

    /// <summary>The template, or <c>&lt;delegate&gt;</c>.</summary>
    public string Template { get; }

    /// <summary>Parses a template such as <c>dt={ts:yyyy-MM-dd}/hour={ts:HH}</c>.</summary>
    /// <param name="template">The template; empty means no partitioning.</param>
    /// <param name="options">Where timestamps and fields come from. Default: the message's attributes.</param>
    /// <exception cref="FormatException">The template is malformed; the message says where and why.</exception>
    public static PartitionPath<T> Parse(string template, PartitionPathOptions<T>? options = null)
    {
        ArgumentNullException.ThrowIfNull(template);
        options ??= new PartitionPathOptions<T>();
        if (template.Length == 0)
        {
            return None;
        }
        var segments = SplitSegments(template).ToArray();
        var compiled = new List<Func<Message<T>, string>>[segments.Length];
        for (var s = 0; s < segments.Length; s++)
        {
            compiled[s] = ParseSegment(template, segments[s], options);
        }
        var parts = compiled.SelectMany((segment, index) => index == 0 ? segment : segment.Prepend(static _ => "/")).ToArray();
        var cache = new PathCache(parts.Length);
        return new PartitionPath<T>(template, message => cache.Evaluate(parts, message));
    }

    /// <summary>
    /// Remembers the last path and the part values it was built from: consecutive messages mostly fall in the same
    /// partition, and their parts come back as the same string instances (literals, cached timestamps), so the path is
    /// compared by reference and reused instead of being built again for every message.
    /// </summary>
    private sealed class PathCache(int parts)
    {
        private Entry? _last;

        [ThreadStatic]
        private static string?[]? t_values;

        public string Evaluate(Func<Message<T>, string>[] compiled, Message<T> message)
        {
            var values = t_values is { } scratch && scratch.Length >= parts ? scratch : t_values = new string?[Math.Max(parts, 8)];
            for (var i = 0; i < parts; i++)
            {
                values[i] = compiled[i](message);
            }

            var last = Volatile.Read(ref _last);
            if (last is not null && SameParts(last.Parts, values))
            {
                return last.Path;
            }

            var path = string.Concat(values.AsSpan(0, parts)!);
            Volatile.Write(ref _last, new Entry(values[..parts]!, path));
            return path;
        }

        private bool SameParts(string[] previous, string?[] current)
        {
            for (var i = 0; i < parts; i++)
            {
                if (!ReferenceEquals(previous[i], current[i]) && !string.Equals(previous[i], current[i], StringComparison.Ordinal))
                {
                    return false;
                }
            }

            return true;
        }

        private sealed record Entry(string[] Parts, string Path);
    }

    /// <summary>Partitions with a delegate returning a <c>/</c>-separated path; each segment is escaped (empty segments become <see cref="PartitionValue.DefaultPartitionName"/>).</summary>
    /// <param name="selector">Computes the raw path of a message.</param>
    public static PartitionPath<T> FromDelegate(Func<Message<T>, string?> selector)
    {
        ArgumentNullException.ThrowIfNull(selector);
        return new PartitionPath<T>("<delegate>", message =>
        {
            var raw = selector(message);
            return string.IsNullOrEmpty(raw) ? "" : string.Join('/', raw.Split('/').Select(PartitionValue.Escape));
        });
    }

    /// <summary>The partition directory of <paramref name="message"/>, relative to the lake root (empty for none).</summary>
    /// <exception cref="FormatException">A value could not be formatted (for example an unspecified-kind time with <see cref="UnspecifiedDateTimeHandling.Reject"/>).</exception>
    public string Evaluate(Message<T> message) => _evaluate(message);

    /// <summary>The relative path of a file named <paramref name="fileName"/> in the partition of <paramref name="message"/>.</summary>
    public string PathFor(Message<T> message, string fileName)
    {
        var directory = Evaluate(message);
        return directory.Length == 0 ? fileName : directory + "/" + fileName;
    }

    /// <summary>Splits at '/' outside braces, so a token's format may contain '/' (its output is escaped).</summary>
    private static List<string> SplitSegments(string template)
    {
        var segments = new List<string>();
        var start = 0;
        var inToken = false;
        for (var i = 0; i < template.Length; i++)
        {
            switch (template[i])
            {
                case '{':
                    inToken = true;
                    break;
                case '}':
                    inToken = false;
                    break;
                case '/' when !inToken:
                    segments.Add(template[start..i]);
                    start = i + 1;
                    break;
            }
        }
        segments.Add(template[start..]);
        return segments;
    }

    private static List<Func<Message<T>, string>> ParseSegment(string template, string segment, PartitionPathOptions<T> options)
    {
        if (segment.Length == 0)
        {
            throw Error(template, "it has an empty segment (leading, trailing or doubled '/')");
        }
        var parts = new List<Func<Message<T>, string>>();
        var literal = new StringBuilder();
        for (var i = 0; i < segment.Length; i++)
        {
            var c = segment[i];
            if (c == '{')
            {
                var close = segment.IndexOf('}', i + 1);
                if (close < 0)
                {
                    throw Error(template, $"'{{' at '{segment[i..]}' is not closed");
                }
                if (literal.Length > 0)
                {
                    var text = literal.ToString();
                    parts.Add(_ => text);
                    literal.Clear();
                }
                var token = segment[(i + 1)..close];
                parts.Add(CompileToken(template, token, options));
                i = close;
            }
            else if (c == '}')
            {
                throw Error(template, $"'}}' at position {i} of segment '{segment}' has no '{{'");
            }
            else if (!PartitionValue.IsSafeLiteral(c))
            {
                throw Error(template, $"the literal character '{(char.IsControl(c) ? $"U+{(int)c:X4}" : c.ToString())}' in segment '{segment}' is not allowed in a path");
            }
            else
            {
                if (i == 0 && c is '.' or '_')
                {
                    throw Error(template, $"segment '{segment}' starts with '{c}', which readers treat as hidden");
                }
                literal.Append(c);
            }
        }
        if (literal.Length > 0)
        {
            var text = literal.ToString();
            parts.Add(_ => text);
        }
        return parts;
    }

    /// <remarks>Values are escaped the same wherever they stand in a segment: a leading '.' or '_' is always encoded.</remarks>
    private static Func<Message<T>, string> CompileToken(string template, string token, PartitionPathOptions<T> options)
    {
        var colon = token.IndexOf(':', StringComparison.Ordinal);
        var name = colon < 0 ? token : token[..colon];
        var argument = colon < 0 ? null : token[(colon + 1)..];
        switch (name)
        {
            case "ts":
                if (string.IsNullOrEmpty(argument))
                {
                    throw Error(template, "{ts} needs a format, e.g. {ts:yyyy-MM-dd}");
                }
                CheckFormat(template, token, argument);
                var format = argument;
                var timestamp = options.Timestamp;
                var clock = options.TimeProvider ?? TimeProvider.System;
                var cache = new TimestampTextCache(format);
                return message =>
                {
                    var time = timestamp?.Invoke(message)
                        ?? (message.Attributes.TryGet(MessageAttributeKeys.Timestamp, out var ts) ? ts
                        : message.Attributes.TryGet(MessageAttributeKeys.ReceivedAt, out var received) ? received
                        : clock.GetUtcNow());
                    return cache.Format(time.UtcDateTime);
                };
            case "topic" when argument is null:
                return message => PartitionValue.Escape(message.Topic);
            case "key" when argument is null:
                return message => PartitionValue.Escape(message.Key);
            case "subject" when argument is null:
                return message => PartitionValue.Escape(message.Attributes.GetOrDefault(MessageAttributeKeys.Subject, null!));
            case "attr" or "field":
                {
                    if (string.IsNullOrEmpty(argument))
                    {
                        throw Error(template, $"{{{name}}} needs a name, e.g. {{{name}:region}}");
                    }
                    var second = argument.IndexOf(':', StringComparison.Ordinal);
                    var fieldName = second < 0 ? argument : argument[..second];
                    var valueFormat = second < 0 ? null : argument[(second + 1)..];
                    var unspecified = options.UnspecifiedDateTimes;
                    if (name == "attr")
                    {
                        return message => PartitionValue.Escape(Format(template, token,
                            message.Attributes.TryGetValue(fieldName, out var value) ? value : null, valueFormat, unspecified));
                    }
                    var field = options.Field ?? throw Error(template, $"{{{token}}} reads a payload field, but {nameof(PartitionPathOptions<T>.Field)} is not set");
                    return message => PartitionValue.Escape(Format(template, token, field(message, fieldName), valueFormat, unspecified));
                }
            default:
                throw Error(template, $"unknown token '{{{token}}}'; use {{ts:FORMAT}}, {{topic}}, {{key}}, {{subject}}, {{attr:NAME}} or {{field:NAME}}");
        }
    }

    /// <summary>
    /// The escaped text of a <c>{ts:FORMAT}</c> token for the last second seen. A format without fractions of a second
    /// ('f', 'F') gives the same text for every time within one second, and event times mostly come in order, so the
    /// text is formatted once per second rather than once per message.
    /// </summary>
    private sealed class TimestampTextCache(string format)
    {
        private readonly bool _bySecond = format.IndexOfAny(['f', 'F']) < 0;
        private Entry? _last;

        public string Format(DateTime utc)
        {
            var second = utc.Ticks / TimeSpan.TicksPerSecond;
            var last = Volatile.Read(ref _last);
            if (_bySecond && last is not null && last.Second == second)
            {
                return last.Text;
            }

            var text = PartitionValue.Escape(utc.ToString(format, CultureInfo.InvariantCulture));
            if (_bySecond)
            {
                Volatile.Write(ref _last, new Entry(second, text));
            }

            return text;
        }

        private sealed record Entry(long Second, string Text);
    }

    /// <summary>Formats a value for a partition: times in UTC by kind, everything else invariant.</summary>
    internal static string? Format(string template, string token, object? value, string? format, UnspecifiedDateTimeHandling unspecified)
    {
        switch (value)
        {
            case null:
                return null;
            case DateTimeOffset offset:
                return offset.UtcDateTime.ToString(format ?? "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            case DateTime time:
                var utc = time.Kind switch
                {
                    DateTimeKind.Utc => time,
                    DateTimeKind.Local => time.ToUniversalTime(),
                    _ => unspecified switch
                    {
                        UnspecifiedDateTimeHandling.AssumeUtc => DateTime.SpecifyKind(time, DateTimeKind.Utc),
                        UnspecifiedDateTimeHandling.AssumeLocal => DateTime.SpecifyKind(time, DateTimeKind.Local).ToUniversalTime(),
                        _ => throw new FormatException($"Partition template '{template}', token '{{{token}}}': the DateTime {time:o} has no kind (Unspecified) and UnspecifiedDateTimes is Reject; give it a kind or use DateTimeOffset."),
                    },
                };
                return utc.ToString(format ?? "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            case IFormattable formattable:
                return formattable.ToString(format, CultureInfo.InvariantCulture);
            default:
                return value.ToString();
        }
    }

    private static void CheckFormat(string template, string token, string format)
    {
        try
        {
            _ = new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc).ToString(format, CultureInfo.InvariantCulture);
        }
        catch (FormatException error)
        {
            throw new FormatException($"Partition template '{template}': the format in '{{{token}}}' is invalid: {error.Message}", error);
        }
    }

    private static FormatException Error(string template, string problem) => new($"Partition template '{template}' is invalid: {problem}.");
}
