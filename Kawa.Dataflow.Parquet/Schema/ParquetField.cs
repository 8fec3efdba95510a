using System.Reflection;

namespace Kawa.Dataflow.Parquet.Schema;

/// <summary>One field of a <see cref="ParquetSchema"/>: a value column, a nested group, a list or a map.</summary>
public sealed class ParquetField
{
    internal ParquetField(string name, ParquetFieldKind kind, bool isNullable, ParquetValueType valueType, IReadOnlyList<ParquetField> children)
    {
        Name = name;
        Kind = kind;
        IsNullable = isNullable;
        ValueType = valueType;
        Children = children;
    }

    /// <summary>The column (or group) name as written to the file.</summary>
    public string Name { get; }

    /// <summary>Value, group, list or map.</summary>
    public ParquetFieldKind Kind { get; }

    /// <summary>True when the field is OPTIONAL (may be null); false when REQUIRED.</summary>
    public bool IsNullable { get; }

    /// <summary>The value type of a <see cref="ParquetFieldKind.Value"/> field (meaningless for other kinds).</summary>
    public ParquetValueType ValueType { get; }

    /// <summary>Group fields, the list element, or the map key and value.</summary>
    public IReadOnlyList<ParquetField> Children { get; }

    /// <summary>DECIMAL precision (decimal fields only).</summary>
    public int DecimalPrecision { get; internal init; }

    /// <summary>DECIMAL scale (decimal fields only).</summary>
    public int DecimalScale { get; internal init; }

    /// <summary>Unit of a timestamp field.</summary>
    public ParquetTimestampUnit TimestampUnit { get; internal init; }

    /// <summary>The .NET type the field maps to (the property type for schemas built from a type).</summary>
    public Type? ClrType { get; internal init; }

    /// <summary>The property the field was built from, if any.</summary>
    internal PropertyInfo? Property { get; init; }

    /// <summary>Enum type of a string field that holds enum names.</summary>
    internal Type? EnumType { get; init; }

    /// <summary>Dotted path used in error messages (for example <c>Order.Lines.Price</c>).</summary>
    internal string DisplayPath { get; init; } = "";

    /// <summary>Name of the repeated group of a list or map read from a file, when not the standard list/key_value.</summary>
    internal string? RepeatedGroupName { get; init; }

    /// <summary>True for a legacy two-level list read from a file (the repeated field is the element).</summary>
    internal bool IsTwoLevelList { get; init; }

    /// <summary>Physical details read from a file's schema (null for schemas built here).</summary>
    internal Format.SchemaElement? FileElement { get; init; }

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        ParquetFieldKind.Value => $"{Name}: {ValueType}{(IsNullable ? "?" : "")}",
        ParquetFieldKind.List => $"{Name}: list<{Children[0]}>{(IsNullable ? "?" : "")}",
        ParquetFieldKind.Map => $"{Name}: map<{Children[0]}, {Children[1]}>{(IsNullable ? "?" : "")}",
        _ => $"{Name}: {{{string.Join(", ", Children)}}}{(IsNullable ? "?" : "")}",
    };
}
