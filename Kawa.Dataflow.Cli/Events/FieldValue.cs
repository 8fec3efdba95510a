using System.Globalization;
using System.Text.Json;

namespace Kawa.Dataflow.Cli.Events;

/// <summary>The type of a <see cref="FieldValue"/>.</summary>
internal enum FieldKind : byte
{
    /// <summary>No value (JSON <c>null</c>, a <c>-</c> in a log line, a missing optional group).</summary>
    Null = 0,

    /// <summary>Text.</summary>
    String,

    /// <summary>A 64-bit integer.</summary>
    Long,

    /// <summary>A 64-bit floating-point number.</summary>
    Double,

    /// <summary>True or false.</summary>
    Bool,

    /// <summary>An instant with its UTC offset.</summary>
    Timestamp,

    /// <summary>A nested JSON object or array, kept as parsed (a <see cref="JsonElement"/>).</summary>
    Json,
}

/// <summary>
/// One typed field value: string, long, double, bool, timestamp, null or nested JSON.
/// </summary>
/// <remarks>
/// A 24-byte struct: scalars live in <c>_bits</c> (a double's bits, a timestamp's UTC ticks) and only strings and
/// JSON elements use the reference slot, so numeric fields cost no allocation. <c>default</c> is <see cref="Null"/>.
/// Equality is by kind and value; timestamps compare by instant and offset (like <see cref="DateTimeOffset.EqualsExact"/>).
/// </remarks>
internal readonly struct FieldValue : IEquatable<FieldValue>
{
    private readonly object? _ref;
    private readonly long _bits;
    private readonly short _offsetMinutes;

    private FieldValue(FieldKind kind, object? reference, long bits, short offsetMinutes = 0)
    {
        Kind = kind;
        _ref = reference;
        _bits = bits;
        _offsetMinutes = offsetMinutes;
    }

    /// <summary>The value's type.</summary>
    public FieldKind Kind { get; }

    /// <summary>Whether this is <see cref="Null"/>.</summary>
    public bool IsNull => Kind == FieldKind.Null;

    /// <summary>The null value.</summary>
    public static FieldValue Null => default;

    /// <summary>A string value; <see langword="null"/> gives <see cref="Null"/>.</summary>
    public static FieldValue From(string? value) => value is null ? Null : new(FieldKind.String, value, 0);

    /// <summary>An integer value.</summary>
    public static FieldValue From(long value) => new(FieldKind.Long, null, value);

    /// <summary>A floating-point value.</summary>
    public static FieldValue From(double value) => new(FieldKind.Double, null, BitConverter.DoubleToInt64Bits(value));

    /// <summary>A boolean value.</summary>
    public static FieldValue From(bool value) => new(FieldKind.Bool, null, value ? 1 : 0);

    /// <summary>A timestamp value; the offset is kept.</summary>
    public static FieldValue From(DateTimeOffset value) => new(FieldKind.Timestamp, null, value.UtcTicks, checked((short)value.Offset.TotalMinutes));

    /// <summary>
    /// A value from a JSON element: strings, numbers (integral → long, else double), booleans and null map to scalars;
    /// objects and arrays are kept as <see cref="FieldKind.Json"/>. The element is cloned, so it outlives its document.
    /// </summary>
    public static FieldValue FromJson(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => From(element.GetString()),
        JsonValueKind.Number => element.TryGetInt64(out var l) ? From(l) : From(element.GetDouble()),
        JsonValueKind.True => From(true),
        JsonValueKind.False => From(false),
        JsonValueKind.Null or JsonValueKind.Undefined => Null,
        _ => new(FieldKind.Json, element.Clone(), 0),
    };

    /// <summary>The string; throws unless <see cref="Kind"/> is <see cref="FieldKind.String"/>.</summary>
    public string AsString() => Kind == FieldKind.String ? (string)_ref! : throw WrongKind(FieldKind.String);

    /// <summary>The integer; throws unless <see cref="Kind"/> is <see cref="FieldKind.Long"/>.</summary>
    public long AsLong() => Kind == FieldKind.Long ? _bits : throw WrongKind(FieldKind.Long);

    /// <summary>The number as a double; accepts <see cref="FieldKind.Long"/> and <see cref="FieldKind.Double"/>.</summary>
    public double AsDouble() => Kind switch
    {
        FieldKind.Double => BitConverter.Int64BitsToDouble(_bits),
        FieldKind.Long => _bits,
        _ => throw WrongKind(FieldKind.Double),
    };

    /// <summary>The boolean; throws unless <see cref="Kind"/> is <see cref="FieldKind.Bool"/>.</summary>
    public bool AsBool() => Kind == FieldKind.Bool ? _bits != 0 : throw WrongKind(FieldKind.Bool);

    /// <summary>The timestamp with its original offset; throws unless <see cref="Kind"/> is <see cref="FieldKind.Timestamp"/>.</summary>
    public DateTimeOffset AsTimestamp() => Kind == FieldKind.Timestamp
        ? new DateTimeOffset(_bits, TimeSpan.Zero).ToOffset(TimeSpan.FromMinutes(_offsetMinutes))
        : throw WrongKind(FieldKind.Timestamp);

    /// <summary>The nested JSON; throws unless <see cref="Kind"/> is <see cref="FieldKind.Json"/>.</summary>
    public JsonElement AsJson() => Kind == FieldKind.Json ? (JsonElement)_ref! : throw WrongKind(FieldKind.Json);

    /// <summary>Whether the value is a number (long or double).</summary>
    public bool IsNumber => Kind is FieldKind.Long or FieldKind.Double;

    /// <summary>The value as a boxed CLR object (<see langword="null"/>, string, long, double, bool, DateTimeOffset or JsonElement).</summary>
    public object? ToObject() => Kind switch
    {
        FieldKind.Null => null,
        FieldKind.String => _ref,
        FieldKind.Long => _bits,
        FieldKind.Double => AsDouble(),
        FieldKind.Bool => _bits != 0,
        FieldKind.Timestamp => AsTimestamp(),
        FieldKind.Json => _ref,
        _ => null,
    };

    /// <summary>
    /// Invariant text for templates and string comparisons: ISO 8601 (round-trip) for timestamps, raw JSON for nested values,
    /// <c>true</c>/<c>false</c>, and the empty string for null.
    /// </summary>
    public override string ToString() => Kind switch
    {
        FieldKind.Null => string.Empty,
        FieldKind.String => (string)_ref!,
        FieldKind.Long => _bits.ToString(CultureInfo.InvariantCulture),
        FieldKind.Double => AsDouble().ToString("R", CultureInfo.InvariantCulture),
        FieldKind.Bool => _bits != 0 ? "true" : "false",
        FieldKind.Timestamp => AsTimestamp().ToString("o", CultureInfo.InvariantCulture),
        FieldKind.Json => ((JsonElement)_ref!).GetRawText(),
        _ => string.Empty,
    };

    /// <summary>Formats with <paramref name="format"/> (timestamps and numbers use it; other kinds ignore it).</summary>
    public string ToString(string? format) => string.IsNullOrEmpty(format) ? ToString() : Kind switch
    {
        FieldKind.Timestamp => AsTimestamp().ToString(format, CultureInfo.InvariantCulture),
        FieldKind.Long => _bits.ToString(format, CultureInfo.InvariantCulture),
        FieldKind.Double => AsDouble().ToString(format, CultureInfo.InvariantCulture),
        _ => ToString(),
    };

    /// <inheritdoc/>
    public bool Equals(FieldValue other) => Kind == other.Kind && Kind switch
    {
        FieldKind.Null => true,
        FieldKind.String => string.Equals((string)_ref!, (string)other._ref!, StringComparison.Ordinal),
        FieldKind.Json => string.Equals(ToString(), other.ToString(), StringComparison.Ordinal),
        FieldKind.Timestamp => _bits == other._bits && _offsetMinutes == other._offsetMinutes,
        _ => _bits == other._bits,
    };

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is FieldValue other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => Kind switch
    {
        FieldKind.String => HashCode.Combine(Kind, StringComparer.Ordinal.GetHashCode((string)_ref!)),
        FieldKind.Json => HashCode.Combine(Kind, StringComparer.Ordinal.GetHashCode(ToString())),
        _ => HashCode.Combine(Kind, _bits),
    };

    /// <summary>Equality by kind and value.</summary>
    public static bool operator ==(FieldValue left, FieldValue right) => left.Equals(right);

    /// <summary>Inequality by kind and value.</summary>
    public static bool operator !=(FieldValue left, FieldValue right) => !left.Equals(right);

    private InvalidOperationException WrongKind(FieldKind wanted) => new($"The field value is a {Kind}, not a {wanted}.");
}
