using System.Globalization;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli.Handlers;

/// <summary>
/// The <c>filter</c> handler: passes a record on when its conditions hold (<c>all</c> or <c>any</c>), else emits nothing,
/// which finishes the message (the pipeline acks it: filtered out is done, not failed).
/// </summary>
/// <remarks>
/// Comparison rules: a missing or null field fails every op but <c>!=</c> (which it passes); a numeric field, or text
/// that parses as a number, compares numerically with a value that parses as a number; a timestamp field compares by
/// instant with a value that parses as a date; everything else compares as ordinal text.
/// <c>contains</c> and <c>startsWith</c> are ordinal and case-sensitive. The handler never throws on data.
/// </remarks>
internal sealed class FilterHandler : IHandler<EventRecord, EventRecord>
{
    private readonly Condition[] _conditions;
    private readonly bool _any;

    /// <summary>Creates a filter over conditions (field, op, value).</summary>
    public FilterHandler(IEnumerable<(string Field, string Op, string? Value)> conditions, bool any = false)
    {
        _conditions = conditions.Select(c => new Condition(c.Field, c.Op, c.Value)).ToArray();
        _any = any;
    }

    /// <summary>Builds the handler a validated <see cref="FilterHandlerOptions"/> describes.</summary>
    public static FilterHandler From(FilterHandlerOptions options)
        => new(options.Conditions.Select(c => (c!.Field!, c.Op!, c.Value)), options.Match == "any");

    /// <inheritdoc/>
    public ValueTask<Messages<EventRecord>> HandleAsync(Message<EventRecord> message, CancellationToken cancellationToken = default)
        => new(Matches(message.Value) ? new Messages<EventRecord>(message) : Messages<EventRecord>.None);

    /// <summary>Whether <paramref name="record"/> passes.</summary>
    public bool Matches(EventRecord record)
    {
        foreach (var condition in _conditions)
        {
            var ok = condition.Test(record);
            if (_any && ok)
            {
                return true;
            }

            if (!_any && !ok)
            {
                return false;
            }
        }

        return !_any;
    }

    private sealed class Condition
    {
        private readonly string _field;
        private readonly string _op;
        private readonly string _text;
        private readonly double? _number;
        private readonly DateTimeOffset? _time;

        public Condition(string field, string op, string? value)
        {
            _field = field;
            _op = op;
            _text = value ?? string.Empty;
            if (double.TryParse(_text, NumberStyles.Float, CultureInfo.InvariantCulture, out var n))
            {
                _number = n;
            }

            if (DateTimeOffset.TryParse(_text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t))
            {
                _time = t;
            }
        }

        public bool Test(EventRecord record)
        {
            var present = record.TryGet(_field, out var value) && !value.IsNull;
            if (_op == "exists")
            {
                return present;
            }

            if (!present)
            {
                return _op == "!=";
            }

            switch (_op)
            {
                case "contains":
                    return value.ToString().Contains(_text, StringComparison.Ordinal);
                case "startsWith":
                    return value.ToString().StartsWith(_text, StringComparison.Ordinal);
            }

            int cmp;
            if (value.IsNumber && _number is { } number)
            {
                cmp = value.AsDouble().CompareTo(number);
            }
            else if (value.Kind == FieldKind.String && _number is { } n
                && double.TryParse(value.AsString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var fieldNumber))
            {
                cmp = fieldNumber.CompareTo(n); // Numeric text (a regex group without a type hint): "10" > "9".
            }
            else if (value.Kind == FieldKind.Timestamp && _time is { } time)
            {
                cmp = value.AsTimestamp().CompareTo(time);
            }
            else if (value.Kind == FieldKind.Bool && bool.TryParse(_text, out var b))
            {
                cmp = value.AsBool().CompareTo(b);
            }
            else
            {
                cmp = string.CompareOrdinal(value.ToString(), _text);
            }

            return _op switch
            {
                "==" => cmp == 0,
                "!=" => cmp != 0,
                "<" => cmp < 0,
                "<=" => cmp <= 0,
                ">" => cmp > 0,
                ">=" => cmp >= 0,
                _ => throw new InvalidOperationException($"unknown filter op '{_op}'"),
            };
        }
    }
}
