namespace Kawa.Dataflow.Parquet.Schema;

/// <summary>Names the Parquet column a property is written to (takes precedence over <c>[JsonPropertyName]</c>).</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Parameter, AllowMultiple = false)]
public sealed class ParquetColumnAttribute : Attribute
{
    /// <summary>Creates the attribute.</summary>
    /// <param name="name">The column name.</param>
    public ParquetColumnAttribute(string name) => Name = name;

    /// <summary>The column name.</summary>
    public string Name { get; }
}

/// <summary>Leaves a property out of the Parquet schema.</summary>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false)]
public sealed class ParquetIgnoreAttribute : Attribute
{
}

/// <summary>Declares the DECIMAL precision and scale a <see cref="decimal"/> property is written with.</summary>
/// <remarks>
/// Without the attribute decimals are DECIMAL(38, 18). A value that does not fit (more integer digits than
/// <c>precision - scale</c>, or more fractional digits than <c>scale</c>) fails the write; it is never rounded.
/// </remarks>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false)]
public sealed class ParquetDecimalAttribute : Attribute
{
    /// <summary>Creates the attribute.</summary>
    /// <param name="precision">Total digits, 1 to 38.</param>
    /// <param name="scale">Digits after the decimal point, 0 to <paramref name="precision"/> (and at most 28, .NET's limit).</param>
    public ParquetDecimalAttribute(int precision, int scale)
    {
        Precision = precision;
        Scale = scale;
    }

    /// <summary>Total digits.</summary>
    public int Precision { get; }

    /// <summary>Digits after the decimal point.</summary>
    public int Scale { get; }
}
