using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli.Handlers;

/// <summary>
/// The <c>parse</c> handler: turns <see cref="EventRecord.Raw"/> into fields (json, combined or regex) and passes the
/// same record on.
/// </summary>
/// <remarks>
/// Parsing is all-or-nothing: on failure the record is unchanged and an <see cref="EventParseException"/> carrying the
/// raw bytes goes to the stage's error policy (dead-letter keeps the original message whole). Stateless and thread-safe,
/// so any parallelism works.
/// </remarks>
internal sealed class ParseHandler : IHandler<EventRecord, EventRecord>
{
    private readonly Action<ReadOnlyMemory<byte>, EventRecord> _parse;

    private ParseHandler(Action<ReadOnlyMemory<byte>, EventRecord> parse) => _parse = parse;

    /// <summary>A JSON-object parser: each top-level property becomes a field (nested objects and arrays as JSON).</summary>
    public static ParseHandler Json() => new(ParseJson);

    /// <summary>A combined log parser (<see cref="CombinedLogParser"/>).</summary>
    public static ParseHandler Combined() => new(CombinedLogParser.Parse);

    /// <summary>A regex parser: named groups become fields, typed by <paramref name="types"/> (group → string, long, double, bool, timestamp).</summary>
    public static ParseHandler Regex(string pattern, IReadOnlyDictionary<string, string>? types = null)
    {
        var regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, TimeSpan.FromSeconds(1));
        var groups = regex.GetGroupNames().Where(g => !int.TryParse(g, out _))
            .Select(g => (Name: g, Type: types is not null && types.TryGetValue(g, out var t) ? t : "string"))
            .ToArray();
        return new((raw, record) => ParseRegex(regex, groups, raw, record));
    }

    /// <summary>Builds the handler a validated <see cref="ParseHandlerOptions"/> describes.</summary>
    public static ParseHandler From(ParseHandlerOptions options) => options.Format switch
    {
        "json" => Json(),
        "combined" => Combined(),
        "regex" => Regex(options.Pattern!, options.Types),
        _ => throw new ArgumentException($"unknown parse format '{options.Format}'", nameof(options)),
    };

    /// <inheritdoc/>
    public ValueTask<Messages<EventRecord>> HandleAsync(Message<EventRecord> message, CancellationToken cancellationToken = default)
    {
        _parse(message.Value.Raw, message.Value);
        return new(message);
    }

    private static readonly JsonReaderOptions s_json = new() { MaxDepth = 64 };

    /// <summary>Per thread: the fields of the event being parsed, kept until all of them parsed (all-or-nothing).</summary>
    [ThreadStatic]
    private static KeyValuePair<string, FieldValue>[]? t_fields;

    /// <summary>Per thread, by position: the property names seen last, so a stream of events with the same shape
    /// reuses one string per name instead of allocating one per field per event.</summary>
    [ThreadStatic]
    private static NameEntry[]? t_names;

    private sealed record NameEntry(byte[] Utf8, string Name);

    private static void ParseJson(ReadOnlyMemory<byte> raw, EventRecord record)
    {
        var reader = new Utf8JsonReader(raw.Span, s_json);
        var fields = t_fields ??= new KeyValuePair<string, FieldValue>[16];
        var count = 0;
        try
        {
            if (!reader.Read())
            {
                throw new EventParseException("json", "invalid JSON: the input is empty", raw);
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw new EventParseException("json", $"expected a JSON object, got {KindName(reader.TokenType)}", raw);
            }

            // Collect first: a failure half-way must leave the record as it was.
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = PropertyName(ref reader, count);
                if (name.Length == 0)
                {
                    throw new EventParseException("json", "a property has an empty name", raw);
                }

                reader.Read();
                if (count == fields.Length)
                {
                    Array.Resize(ref t_fields, count * 2);
                    fields = t_fields;
                }

                fields[count++] = new(name, Value(ref reader));
            }

            // Past the root object: anything but whitespace after it throws.
            reader.Read();
        }
        catch (JsonException ex)
        {
            Array.Clear(fields, 0, count);
            var reason = ex.Message;
            var cut = reason.IndexOf(" LineNumber:", StringComparison.Ordinal);
            throw new EventParseException("json", "invalid JSON: " + (cut >= 0 ? reason[..cut] : reason).Trim(), raw, ex.BytePositionInLine ?? -1, ex);
        }
        catch
        {
            Array.Clear(fields, 0, count);
            throw;
        }

        if (record.Count == 0 && Shape(fields, count) is { } shape)
        {
            var values = new FieldValue[count];
            for (var i = 0; i < count; i++)
            {
                values[i] = fields[i].Value;
            }

            record.Adopt(shape, values);
        }
        else
        {
            record.EnsureCapacity(record.Count + count);
            for (var i = 0; i < count; i++)
            {
                record.Set(fields[i].Key, fields[i].Value);
            }
        }

        Array.Clear(fields, 0, count);
    }

    /// <summary>Per thread: the names of the last event shape, shared by every record of that shape.</summary>
    [ThreadStatic]
    private static string[]? t_shape;

    /// <summary>
    /// The shared names array for these fields: the last one when the names are the same strings in the same order (the
    /// name cache makes them the same instances), else a new one; <see langword="null"/> when a name repeats (the
    /// record's own Set then keeps the last value).
    /// </summary>
    private static string[]? Shape(KeyValuePair<string, FieldValue>[] fields, int count)
    {
        var last = t_shape;
        if (last is not null && last.Length == count)
        {
            var same = true;
            for (var i = 0; i < count && same; i++)
            {
                same = ReferenceEquals(last[i], fields[i].Key);
            }

            if (same)
            {
                return last;
            }
        }

        var names = new string[count];
        for (var i = 0; i < count; i++)
        {
            names[i] = fields[i].Key;
            for (var j = 0; j < i; j++)
            {
                if (string.Equals(names[j], names[i], StringComparison.Ordinal))
                {
                    return null;
                }
            }
        }

        return t_shape = names;
    }

    /// <summary>The current property's name, from the per-position cache when it is the same as last time.</summary>
    private static string PropertyName(ref Utf8JsonReader reader, int position)
    {
        var names = t_names ??= new NameEntry[32];
        if (position < names.Length && names[position] is { } cached && reader.ValueTextEquals(cached.Utf8))
        {
            return cached.Name;
        }

        var name = reader.GetString()!;
        if (position < names.Length)
        {
            names[position] = new NameEntry(System.Text.Encoding.UTF8.GetBytes(name), name);
        }

        return name;
    }

    /// <summary>A scalar as its field value (integral numbers as long, others as double); objects and arrays as JSON.</summary>
    private static FieldValue Value(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String => FieldValue.From(reader.GetString()),
        JsonTokenType.Number => reader.TryGetInt64(out var l) ? FieldValue.From(l) : FieldValue.From(reader.GetDouble()),
        JsonTokenType.True => FieldValue.From(true),
        JsonTokenType.False => FieldValue.From(false),
        JsonTokenType.Null => FieldValue.Null,
        _ => FieldValue.FromJson(JsonElement.ParseValue(ref reader)),
    };

    private static string KindName(JsonTokenType token) => token switch
    {
        JsonTokenType.StartArray => "array",
        JsonTokenType.String => "string",
        JsonTokenType.Number => "number",
        JsonTokenType.True => "true",
        JsonTokenType.False => "false",
        JsonTokenType.Null => "null",
        _ => token.ToString().ToLowerInvariant(),
    };

    private static void ParseRegex(Regex regex, (string Name, string Type)[] groups, ReadOnlyMemory<byte> raw, EventRecord record)
    {
        var text = System.Text.Encoding.UTF8.GetString(raw.Span).TrimEnd('\r', '\n');
        Match match;
        try
        {
            match = regex.Match(text);
        }
        catch (RegexMatchTimeoutException ex)
        {
            throw new EventParseException("regex", "the pattern took longer than 1 s on this line", raw, -1, ex);
        }

        if (!match.Success)
        {
            throw new EventParseException("regex", "the line does not match the pattern", raw);
        }

        var values = new FieldValue[groups.Length];
        for (var i = 0; i < groups.Length; i++)
        {
            var (name, type) = groups[i];
            var group = match.Groups[name];
            values[i] = group.Success ? Convert(group.Value, type, name, raw) : FieldValue.Null;
        }

        for (var i = 0; i < groups.Length; i++)
        {
            record.Set(groups[i].Name, values[i]);
        }
    }

    private static FieldValue Convert(string value, string type, string group, ReadOnlyMemory<byte> raw)
    {
        var inv = CultureInfo.InvariantCulture;
        switch (type)
        {
            case "string":
                return FieldValue.From(value);
            case "long" when long.TryParse(value, NumberStyles.AllowLeadingSign, inv, out var l):
                return FieldValue.From(l);
            case "double" when double.TryParse(value, NumberStyles.Float, inv, out var d):
                return FieldValue.From(d);
            case "bool" when bool.TryParse(value, out var b):
                return FieldValue.From(b);
            case "timestamp" when DateTimeOffset.TryParse(value, inv, DateTimeStyles.AssumeUniversal, out var t):
                return FieldValue.From(t.ToUniversalTime());
            default:
                if (value.Length == 0)
                {
                    return FieldValue.Null; // An empty optional group is a missing value, not a conversion error.
                }

                throw new EventParseException("regex", $"group '{group}' is not a {type}: '{value}'", raw);
        }
    }
}
