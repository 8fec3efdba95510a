using System.Diagnostics.CodeAnalysis;

namespace Kawa.Dataflow.Parquet.Schema;

/// <summary>The value types a Parquet column can hold, with the .NET type each maps to.</summary>
/// <remarks>See <c>docs/parquet.md</c> for the physical and logical Parquet type each one is written as.</remarks>
[SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "Members deliberately name the .NET type each value maps to.")]
public enum ParquetValueType
{
    /// <summary><see cref="bool"/>: BOOLEAN.</summary>
    Boolean,

    /// <summary><see cref="sbyte"/>: INT32 annotated INT(8, signed).</summary>
    SByte,

    /// <summary><see cref="short"/>: INT32 annotated INT(16, signed).</summary>
    Int16,

    /// <summary><see cref="int"/>: INT32.</summary>
    Int32,

    /// <summary><see cref="long"/>: INT64.</summary>
    Int64,

    /// <summary><see cref="byte"/>: INT32 annotated INT(8, unsigned).</summary>
    Byte,

    /// <summary><see cref="ushort"/>: INT32 annotated INT(16, unsigned).</summary>
    UInt16,

    /// <summary><see cref="uint"/>: INT32 annotated INT(32, unsigned).</summary>
    UInt32,

    /// <summary><see cref="ulong"/>: INT64 annotated INT(64, unsigned).</summary>
    UInt64,

    /// <summary><see cref="float"/>: FLOAT.</summary>
    Float,

    /// <summary><see cref="double"/>: DOUBLE.</summary>
    Double,

    /// <summary><see cref="decimal"/>: DECIMAL(precision, scale) as INT32, INT64 or FIXED_LEN_BYTE_ARRAY by precision.</summary>
    Decimal,

    /// <summary><see cref="string"/> (and enums, written by name): BYTE_ARRAY annotated STRING (UTF-8).</summary>
    String,

    /// <summary><c>byte[]</c>: BYTE_ARRAY without annotation.</summary>
    Binary,

    /// <summary><see cref="System.Guid"/>: FIXED_LEN_BYTE_ARRAY(16) annotated UUID, RFC 4122 (big-endian) byte order.</summary>
    Guid,

    /// <summary><see cref="System.DateTime"/> or <see cref="System.DateTimeOffset"/>: INT64 TIMESTAMP(isAdjustedToUTC=true, MICROS or NANOS).</summary>
    Timestamp,

    /// <summary><see cref="System.DateOnly"/>: INT32 DATE (days since 1970-01-01).</summary>
    Date,

    /// <summary><see cref="System.TimeOnly"/>: INT64 TIME(isAdjustedToUTC=false, MICROS).</summary>
    Time,

    /// <summary><see cref="System.TimeSpan"/>: INT64 microseconds without a logical type (Parquet has no duration type).</summary>
    Duration,
}

/// <summary>How a <see cref="ParquetField"/> is shaped.</summary>
public enum ParquetFieldKind
{
    /// <summary>A single value (a leaf column).</summary>
    Value,

    /// <summary>A nested record (Parquet group) whose <see cref="ParquetField.Children"/> are its fields.</summary>
    Group,

    /// <summary>A LIST; <see cref="ParquetField.Children"/> holds the single element field.</summary>
    List,

    /// <summary>A MAP; <see cref="ParquetField.Children"/> holds the key field (required) and the value field.</summary>
    Map,
}

/// <summary>The unit timestamps are stored in.</summary>
public enum ParquetTimestampUnit
{
    /// <summary>Microseconds since the Unix epoch (the default; DuckDB's TIMESTAMP WITH TIME ZONE precision).</summary>
    Microseconds,

    /// <summary>Nanoseconds since the Unix epoch; only 1677-09-21 to 2262-04-11 fit, other values fail to write.</summary>
    Nanoseconds,
}
