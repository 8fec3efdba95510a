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

    private static readonly JsonDocumentOptions s_json = new() { MaxDepth = 64 };

    private static void ParseJson(ReadOnlyMemory<byte> raw, EventRecord record)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(raw, s_json);
        }
        catch (JsonException ex)
        {
            var reason = ex.Message;
            var cut = reason.IndexOf(" LineNumber:", StringComparison.Ordinal);
            throw new EventParseException("json", "invalid JSON: " + (cut >= 0 ? reason[..cut] : reason).Trim(), raw, ex.BytePositionInLine ?? -1, ex);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new EventParseException("json", $"expected a JSON object, got {document.RootElement.ValueKind.ToString().ToLowerInvariant()}", raw);
            }

            // Collect first: a failure half-way must leave the record as it was.
            // Sized once from the document (no list growth per event on the hot path).
            var fields = new KeyValuePair<string, FieldValue>[document.RootElement.GetPropertyCount()];
            var count = 0;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name.Length == 0)
                {
                    throw new EventParseException("json", "a property has an empty name", raw);
                }

                fields[count++] = new(property.Name, FieldValue.FromJson(property.Value));
            }

            record.EnsureCapacity(record.Count + count);
            for (var i = 0; i < count; i++)
            {
                record.Set(fields[i].Key, fields[i].Value);
            }
        }
    }

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
