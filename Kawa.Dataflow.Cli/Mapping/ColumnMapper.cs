using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli.Mapping;

/// <summary>A column's physical type.</summary>
internal enum ColumnType
{
    /// <summary>UTF-8 text.</summary>
    String,

    /// <summary>64-bit integer.</summary>
    Long,

    /// <summary>32-bit integer.</summary>
    Int,

    /// <summary>64-bit floating point.</summary>
    Double,

    /// <summary>Boolean.</summary>
    Bool,

    /// <summary>UTC instant.</summary>
    Timestamp,

    /// <summary>JSON text.</summary>
    Json,

    /// <summary>Bytes.</summary>
    Binary,
}

/// <summary>One output column: its name, type, where its value comes from, and whether it may be null.</summary>
internal sealed record ColumnSpec(string Name, ColumnType Type, string Source, bool Nullable);

/// <summary>A message whose fields do not fit the columns; the destination decides its fate (typically terminate or dead-letter).</summary>
internal sealed class RowMappingException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RowMappingException(string column, string reason)
        : base($"column '{column}': {reason}")
    {
        Column = column;
    }

    /// <summary>Creates the exception with a message only.</summary>
    public RowMappingException()
        : this("?", "mapping failed")
    {
    }

    /// <summary>Creates the exception with a message only.</summary>
    public RowMappingException(string message)
        : this("?", message)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public RowMappingException(string message, Exception innerException)
        : base(message, innerException)
    {
        Column = "?";
    }

    /// <summary>The column that could not be filled.</summary>
    public string Column { get; }
}

/// <summary>
/// Turns a message's fields and properties into one row of column values for a table writer (the Parquet destination),
/// following the destination's <c>columns</c> (or the default schema) and <c>extraColumn</c>.
/// </summary>
/// <remarks>
/// <para>Values come out as CLR objects: <see cref="string"/>, <see cref="long"/>, <see cref="int"/>, <see cref="double"/>,
/// <see cref="bool"/>, <see cref="DateTimeOffset"/> (UTC), JSON text (<see cref="string"/>), <see cref="byte"/>[] or
/// <see langword="null"/>.</para>
/// <para>Coercions: numbers and text convert to the column's number type when exact (<c>"200"</c> → 200, 2.0 → 2; 2.5
/// into a long column is an error); text parses as a timestamp (ISO 8601, UTC assumed) or boolean; anything prints into a
/// string column (timestamps ISO 8601, nested JSON as text); a json column takes any value as JSON; a binary column takes
/// the raw payload or text as UTF-8. A missing field is null; null in a non-nullable column, or a value that does not
/// convert, throws <see cref="RowMappingException"/> naming the column.</para>
/// <para>Fields that no column reads go, as one JSON object, to the extra column when configured; otherwise they are
/// dropped and counted in <see cref="UnmappedFields"/>. Thread-safe.</para>
/// </remarks>
internal sealed class ColumnMapper
{
    private readonly ColumnSpec[] _columns;
    private readonly HashSet<string> _mappedFields;
    private readonly int[] _hints;
    private readonly bool _hasExtra;
    private long _unmapped;

    /// <summary>Creates a mapper over explicit columns.</summary>
    /// <param name="columns">The columns (without the extra column).</param>
    /// <param name="extraColumn">The JSON column for unmapped fields, or <see langword="null"/> to count them.</param>
    public ColumnMapper(IEnumerable<ColumnSpec> columns, string? extraColumn = null)
    {
        var list = columns.ToList();
        _mappedFields = new HashSet<string>(list.Where(c => !c.Source.StartsWith('$')).Select(c => c.Source), StringComparer.Ordinal);
        if (extraColumn is not null)
        {
            list.Add(new ColumnSpec(extraColumn, ColumnType.Json, "$extra", Nullable: true));
            _hasExtra = true;
        }

        _columns = [.. list];
        _hints = new int[_columns.Length];
    }

    /// <summary>The mapper a validated <see cref="ParquetDestinationOptions"/> describes (default schema when it lists no columns).</summary>
    /// <param name="options">The destination's options.</param>
    /// <param name="deadLetter">Whether it is the dead-letter destination: its default schema adds the failure columns of <see cref="DeadLetterRecords"/>.</param>
    public static ColumnMapper From(ParquetDestinationOptions options, bool deadLetter = false)
    {
        var defaults = deadLetter ? DeadLetterRecords.DefaultColumns : ConfigValidator.DefaultParquetColumns;
        var columns = options.Columns.Count == 0
            ? defaults.Select(c => new ColumnSpec(c.Name, ParseType(c.Type), c.Source, Nullable: true))
            : options.Columns.Select(c => new ColumnSpec(c!.Name!, ParseType(c.Type), c.Source ?? c.Name!, c.Nullable));
        return new ColumnMapper(columns, options.ExtraColumn);
    }

    /// <summary>The output columns in order (the extra column last).</summary>
    public IReadOnlyList<ColumnSpec> Columns => _columns;

    /// <summary>Fields dropped because no column reads them and there is no extra column.</summary>
    public long UnmappedFields => Interlocked.Read(ref _unmapped);

    /// <summary>The row for <paramref name="message"/>, one value per <see cref="Columns"/> entry.</summary>
    /// <exception cref="RowMappingException">A value is null in a non-nullable column or does not convert.</exception>
    public object?[] Map(in Message<EventRecord> message)
    {
        var record = message.Value;
        var row = new object?[_columns.Length];
        for (var i = 0; i < _columns.Length; i++)
        {
            var column = _columns[i];
            object? value;
            if (column.Source == "$extra")
            {
                value = Extra(record);
            }
            else if (column.Source == MessageProperties.Raw && column.Type == ColumnType.Binary)
            {
                value = record.Raw.ToArray();
            }
            else
            {
                var field = column.Source.StartsWith('$') ? MessageProperties.Get(message, column.Source) : FieldAt(record, column.Source, i);
                value = Convert(field, column);
            }

            if (value is null && !column.Nullable)
            {
                throw new RowMappingException(column.Name, $"is not nullable, but {(column.Source.StartsWith('$') ? "message property" : "field")} '{column.Source}' is missing or null");
            }

            row[i] = value;
        }

        if (!_hasExtra)
        {
            var unmapped = 0;
            for (var i = 0; i < record.Count; i++)
            {
                if (!_mappedFields.Contains(record.GetAt(i).Key))
                {
                    unmapped++;
                }
            }

            if (unmapped > 0)
            {
                Interlocked.Add(ref _unmapped, unmapped);
            }
        }

        return row;
    }

    /// <summary>
    /// The field <paramref name="name"/> of <paramref name="record"/>, looked for first where column
    /// <paramref name="column"/> found it last time: events of one stream mostly share their field order.
    /// </summary>
    private FieldValue FieldAt(EventRecord record, string name, int column)
    {
        var hint = _hints[column];
        if (hint < record.Count && record.GetAt(hint) is var (candidate, value) && string.Equals(candidate, name, StringComparison.Ordinal))
        {
            return value;
        }

        var index = record.IndexOf(name);
        if (index < 0)
        {
            return FieldValue.Null;
        }

        _hints[column] = index; // a race only costs the next event a search
        return record.GetAt(index).Value;
    }

    private string? Extra(EventRecord record)
    {
        var allMapped = true;
        for (var i = 0; i < record.Count && allMapped; i++)
        {
            allMapped = _mappedFields.Contains(record.GetAt(i).Key);
        }

        if (allMapped)
        {
            return null;
        }

        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            EventRecordJson.Write(writer, record, name => !_mappedFields.Contains(name));
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static object? Convert(FieldValue value, ColumnSpec column)
    {
        if (value.IsNull)
        {
            return null;
        }

        var inv = CultureInfo.InvariantCulture;
        switch (column.Type)
        {
            case ColumnType.String:
                return value.ToString();
            case ColumnType.Json:
                var buffer = new ArrayBufferWriter<byte>();
                using (var writer = new Utf8JsonWriter(buffer))
                {
                    EventRecordJson.WriteValue(writer, value);
                }

                return Encoding.UTF8.GetString(buffer.WrittenSpan);
            case ColumnType.Binary:
                return Encoding.UTF8.GetBytes(value.ToString());
            case ColumnType.Long or ColumnType.Int:
                long l;
                if (value.Kind == FieldKind.Long)
                {
                    l = value.AsLong();
                }
                else if (value.Kind == FieldKind.Double && value.AsDouble() is var d && d == Math.Floor(d) && d is >= long.MinValue and < long.MaxValue)
                {
                    l = (long)d;
                }
                else if (value.Kind == FieldKind.String && long.TryParse(value.AsString(), NumberStyles.AllowLeadingSign, inv, out var parsed))
                {
                    l = parsed;
                }
                else
                {
                    throw Mismatch(column, value);
                }

                if (column.Type == ColumnType.Int)
                {
                    return l is >= int.MinValue and <= int.MaxValue ? (int)l : throw new RowMappingException(column.Name, $"{l} does not fit a 32-bit int");
                }

                return l;
            case ColumnType.Double:
                if (value.IsNumber)
                {
                    return value.AsDouble();
                }

                return value.Kind == FieldKind.String && double.TryParse(value.AsString(), NumberStyles.Float, inv, out var dbl) ? dbl : throw Mismatch(column, value);
            case ColumnType.Bool:
                if (value.Kind == FieldKind.Bool)
                {
                    return value.AsBool();
                }

                return value.Kind == FieldKind.String && bool.TryParse(value.AsString(), out var b) ? b : throw Mismatch(column, value);
            case ColumnType.Timestamp:
                if (value.Kind == FieldKind.Timestamp)
                {
                    return value.AsTimestamp().ToUniversalTime();
                }

                return value.Kind == FieldKind.String && EventTimestamps.TryParse(value.AsString(), out var t)
                    ? t.ToUniversalTime()
                    : throw Mismatch(column, value);
            default:
                throw new RowMappingException(column.Name, $"unsupported column type {column.Type}");
        }
    }

    private static RowMappingException Mismatch(ColumnSpec column, FieldValue value)
    {
        var text = value.ToString();
        if (text.Length > 64)
        {
            text = text[..64] + "…";
        }

        return new RowMappingException(column.Name, $"cannot convert {value.Kind.ToString().ToLowerInvariant()} '{text}' from '{column.Source}' to {column.Type.ToString().ToLowerInvariant()}");
    }

    /// <summary>The column type a validated configuration names.</summary>
    public static ColumnType ParseType(string type) => type switch
    {
        "string" => ColumnType.String,
        "long" => ColumnType.Long,
        "int" => ColumnType.Int,
        "double" => ColumnType.Double,
        "bool" => ColumnType.Bool,
        "timestamp" => ColumnType.Timestamp,
        "json" => ColumnType.Json,
        "binary" => ColumnType.Binary,
        _ => throw new ArgumentException($"unknown column type '{type}'", nameof(type)),
    };
}
