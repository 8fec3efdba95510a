namespace Kawa.Dataflow.Parquet.Schema;

/// <summary>
/// Declares a flat schema at run time (column name, value type, nullability) for rows written as
/// <c>object?[]</c> with <see cref="Writing.ParquetRowWriter"/>.
/// </summary>
/// <remarks>
/// Each row's values must be in column order and of the column's .NET type (see <see cref="ParquetValueType"/>);
/// a Timestamp column takes <see cref="DateTime"/> or <see cref="DateTimeOffset"/>. A wrong type or a null in a
/// non-nullable column fails the write and names the column.
/// </remarks>
public sealed class ParquetSchemaBuilder
{
    private readonly List<ParquetField> _fields = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>Adds a value column.</summary>
    /// <param name="name">Column name (unique).</param>
    /// <param name="type">Value type; use <see cref="AddDecimal"/> for decimals with a precision other than (38, 18).</param>
    /// <param name="nullable">True for OPTIONAL (default), false for REQUIRED.</param>
    /// <param name="timestampUnit">Unit for timestamp columns.</param>
    /// <returns>This builder.</returns>
    public ParquetSchemaBuilder Add(string name, ParquetValueType type, bool nullable = true, ParquetTimestampUnit timestampUnit = ParquetTimestampUnit.Microseconds)
    {
        int precision = type == ParquetValueType.Decimal ? ClrSchemaFactory.DefaultDecimalPrecision : 0;
        int scale = type == ParquetValueType.Decimal ? ClrSchemaFactory.DefaultDecimalScale : 0;
        return AddField(name, type, nullable, precision, scale, timestampUnit);
    }

    /// <summary>Adds a DECIMAL(<paramref name="precision"/>, <paramref name="scale"/>) column.</summary>
    /// <param name="name">Column name (unique).</param>
    /// <param name="precision">Total digits, 1..38.</param>
    /// <param name="scale">Fractional digits, 0..min(precision, 28).</param>
    /// <param name="nullable">True for OPTIONAL (default), false for REQUIRED.</param>
    /// <returns>This builder.</returns>
    public ParquetSchemaBuilder AddDecimal(string name, int precision, int scale, bool nullable = true)
    {
        ClrSchemaFactory.ValidateDecimal(precision, scale, name);
        return AddField(name, ParquetValueType.Decimal, nullable, precision, scale, ParquetTimestampUnit.Microseconds);
    }

    /// <summary>Builds the schema.</summary>
    /// <returns>The schema.</returns>
    /// <exception cref="InvalidOperationException">No columns were added.</exception>
    public ParquetSchema Build()
    {
        if (_fields.Count == 0)
        {
            throw new InvalidOperationException("A Parquet schema needs at least one column.");
        }

        return new ParquetSchema([.. _fields], rowType: null);
    }

    private ParquetSchemaBuilder AddField(string name, ParquetValueType type, bool nullable, int precision, int scale, ParquetTimestampUnit unit)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!Enum.IsDefined(type))
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, $"Column '{name}' has an unknown value type.");
        }

        if (!_names.Add(name))
        {
            throw new ArgumentException($"Column '{name}' is declared twice; column names must be unique.", nameof(name));
        }

        _fields.Add(new ParquetField(name, ParquetFieldKind.Value, nullable, type, [])
        {
            ClrType = ClrTypeOf(type), DisplayPath = name, DecimalPrecision = precision, DecimalScale = scale, TimestampUnit = unit,
        });
        return this;
    }

    internal static Type ClrTypeOf(ParquetValueType type) => type switch
    {
        ParquetValueType.Boolean => typeof(bool),
        ParquetValueType.SByte => typeof(sbyte),
        ParquetValueType.Int16 => typeof(short),
        ParquetValueType.Int32 => typeof(int),
        ParquetValueType.Int64 => typeof(long),
        ParquetValueType.Byte => typeof(byte),
        ParquetValueType.UInt16 => typeof(ushort),
        ParquetValueType.UInt32 => typeof(uint),
        ParquetValueType.UInt64 => typeof(ulong),
        ParquetValueType.Float => typeof(float),
        ParquetValueType.Double => typeof(double),
        ParquetValueType.Decimal => typeof(decimal),
        ParquetValueType.String => typeof(string),
        ParquetValueType.Binary => typeof(byte[]),
        ParquetValueType.Guid => typeof(Guid),
        ParquetValueType.Timestamp => typeof(DateTime),
        ParquetValueType.Date => typeof(DateOnly),
        ParquetValueType.Time => typeof(TimeOnly),
        _ => typeof(TimeSpan),
    };
}
