using System.Collections.Concurrent;
using Kawa.Dataflow.Parquet.Format;
using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Parquet.Writing;

internal sealed class BoolAppender(BooleanColumnWriter c) : LeafAppender<bool>
{
    public override ColumnWriter Column => c;

    public override void Append(bool value) => c.Append(value);
}

internal sealed class SByteAppender(Int32ColumnWriter c) : LeafAppender<sbyte>
{
    public override ColumnWriter Column => c;

    public override void Append(sbyte value) => c.Append(value);
}

internal sealed class Int16Appender(Int32ColumnWriter c) : LeafAppender<short>
{
    public override ColumnWriter Column => c;

    public override void Append(short value) => c.Append(value);
}

internal sealed class Int32Appender(Int32ColumnWriter c) : LeafAppender<int>
{
    public override ColumnWriter Column => c;

    public override void Append(int value) => c.Append(value);
}

internal sealed class ByteAppender(Int32ColumnWriter c) : LeafAppender<byte>
{
    public override ColumnWriter Column => c;

    public override void Append(byte value) => c.Append(value);
}

internal sealed class UInt16Appender(Int32ColumnWriter c) : LeafAppender<ushort>
{
    public override ColumnWriter Column => c;

    public override void Append(ushort value) => c.Append(value);
}

internal sealed class UInt32Appender(Int32ColumnWriter c) : LeafAppender<uint>
{
    public override ColumnWriter Column => c;

    public override void Append(uint value) => c.Append(unchecked((int)value));
}

internal sealed class Int64Appender(Int64ColumnWriter c) : LeafAppender<long>
{
    public override ColumnWriter Column => c;

    public override void Append(long value) => c.Append(value);
}

internal sealed class UInt64Appender(Int64ColumnWriter c) : LeafAppender<ulong>
{
    public override ColumnWriter Column => c;

    public override void Append(ulong value) => c.Append(unchecked((long)value));
}

internal sealed class FloatAppender(FloatColumnWriter c) : LeafAppender<float>
{
    public override ColumnWriter Column => c;

    public override void Append(float value) => c.Append(value);
}

internal sealed class DoubleAppender(DoubleColumnWriter c) : LeafAppender<double>
{
    public override ColumnWriter Column => c;

    public override void Append(double value) => c.Append(value);
}

internal sealed class DecimalAppender(ColumnWriter c, int precision, int scale, string path) : LeafAppender<decimal>
{
    public override ColumnWriter Column => c;

    public override void Append(decimal value)
    {
        var unscaled = ValueConversions.Unscale(value, precision, scale, path);
        switch (c)
        {
            case Int32ColumnWriter i32: i32.Append((int)unscaled); break;
            case Int64ColumnWriter i64: i64.Append((long)unscaled); break;
            case FixedLenColumnWriter f: ValueConversions.WriteBigEndian(unscaled, f.AppendSpan()); break;
        }
    }
}

internal sealed class StringAppender(ByteArrayColumnWriter c) : LeafAppender<string>
{
    public override ColumnWriter Column => c;

    public override void Append(string value) => c.AppendString(value);
}

internal sealed class BinaryAppender(ByteArrayColumnWriter c) : LeafAppender<byte[]>
{
    public override ColumnWriter Column => c;

    public override void Append(byte[] value) => c.AppendBytes(value);
}

internal sealed class GuidAppender(FixedLenColumnWriter c) : LeafAppender<Guid>
{
    public override ColumnWriter Column => c;

    public override void Append(Guid value) => ValueConversions.WriteUuid(value, c.AppendSpan());
}

internal sealed class DateTimeAppender(Int64ColumnWriter c, ParquetTimestampUnit unit, string path) : LeafAppender<DateTime>
{
    public override ColumnWriter Column => c;

    public override void Append(DateTime value) => c.Append(ValueConversions.ToTimestamp(ValueConversions.UnixTicks(value), unit, path));
}

internal sealed class DateTimeOffsetAppender(Int64ColumnWriter c, ParquetTimestampUnit unit, string path) : LeafAppender<DateTimeOffset>
{
    private static readonly long EpochTicks = DateTime.UnixEpoch.Ticks;

    public override ColumnWriter Column => c;

    public override void Append(DateTimeOffset value) => c.Append(ValueConversions.ToTimestamp(value.UtcTicks - EpochTicks, unit, path));
}

internal sealed class DateOnlyAppender(Int32ColumnWriter c) : LeafAppender<DateOnly>
{
    public override ColumnWriter Column => c;

    public override void Append(DateOnly value) => c.Append(ValueConversions.ToDate(value));
}

internal sealed class TimeOnlyAppender(Int64ColumnWriter c) : LeafAppender<TimeOnly>
{
    public override ColumnWriter Column => c;

    public override void Append(TimeOnly value) => c.Append(ValueConversions.ToTimeMicros(value));
}

internal sealed class TimeSpanAppender(Int64ColumnWriter c) : LeafAppender<TimeSpan>
{
    public override ColumnWriter Column => c;

    public override void Append(TimeSpan value) => c.Append(ValueConversions.ToDurationMicros(value));
}

/// <summary>Writes enum values by name (cached per value, so no allocation per row).</summary>
internal sealed class EnumAppender<TEnum>(ByteArrayColumnWriter c) : LeafAppender<TEnum>
    where TEnum : struct, Enum
{
    private static readonly ConcurrentDictionary<TEnum, string> Names = new();

    public override ColumnWriter Column => c;

    public override void Append(TEnum value) => c.AppendString(Names.GetOrAdd(value, static v => v.ToString()));
}

/// <summary>Builds column buffers and node writers for a schema.</summary>
internal static class WriterFactory
{
    // Compiled property getters, shared by every writer of a type: compiling them cost milliseconds and ~100 KB
    // per file, which showed in short files (a sink rolls many).
    private static readonly ConcurrentDictionary<(Type Owner, System.Reflection.PropertyInfo Property), Delegate> Getters = new();

    public static ColumnWriter[] CreateColumns(ParquetSchema schema, int dictionaryMaxBytes)
    {
        var columns = new ColumnWriter[schema.Columns.Count];
        for (int i = 0; i < columns.Length; i++)
        {
            var d = schema.Columns[i];
            var f = d.Field;
            var (type, length) = SchemaConverter.Physical(f);
            columns[i] = type switch
            {
                PhysicalType.Boolean => new BooleanColumnWriter(d),
                PhysicalType.Int32 => new Int32ColumnWriter(d, f.ValueType is ParquetValueType.Byte or ParquetValueType.UInt16 or ParquetValueType.UInt32),
                PhysicalType.Int64 => new Int64ColumnWriter(d, f.ValueType == ParquetValueType.UInt64),
                PhysicalType.Float => new FloatColumnWriter(d),
                PhysicalType.Double => new DoubleColumnWriter(d),
                PhysicalType.FixedLenByteArray => new FixedLenColumnWriter(d, length, signed: f.ValueType == ParquetValueType.Decimal),
                _ => new ByteArrayColumnWriter(d, isString: f.ValueType == ParquetValueType.String, dictionaryMaxBytes),
            };
        }

        return columns;
    }

    /// <summary>Creates the appender for a leaf of .NET type <paramref name="clrType"/> (non-nullable form).</summary>
    public static object CreateAppender(ParquetField f, Type clrType, ColumnWriter c)
    {
        string path = f.DisplayPath;
        if (clrType.IsEnum)
        {
            return Activator.CreateInstance(typeof(EnumAppender<>).MakeGenericType(clrType), c)!;
        }

        return clrType switch
        {
            _ when clrType == typeof(bool) => new BoolAppender((BooleanColumnWriter)c),
            _ when clrType == typeof(sbyte) => new SByteAppender((Int32ColumnWriter)c),
            _ when clrType == typeof(short) => new Int16Appender((Int32ColumnWriter)c),
            _ when clrType == typeof(int) => new Int32Appender((Int32ColumnWriter)c),
            _ when clrType == typeof(byte) => new ByteAppender((Int32ColumnWriter)c),
            _ when clrType == typeof(ushort) => new UInt16Appender((Int32ColumnWriter)c),
            _ when clrType == typeof(uint) => new UInt32Appender((Int32ColumnWriter)c),
            _ when clrType == typeof(long) => new Int64Appender((Int64ColumnWriter)c),
            _ when clrType == typeof(ulong) => new UInt64Appender((Int64ColumnWriter)c),
            _ when clrType == typeof(float) => new FloatAppender((FloatColumnWriter)c),
            _ when clrType == typeof(double) => new DoubleAppender((DoubleColumnWriter)c),
            _ when clrType == typeof(decimal) => new DecimalAppender(c, f.DecimalPrecision, f.DecimalScale, path),
            _ when clrType == typeof(string) => new StringAppender((ByteArrayColumnWriter)c),
            _ when clrType == typeof(byte[]) => new BinaryAppender((ByteArrayColumnWriter)c),
            _ when clrType == typeof(Guid) => new GuidAppender((FixedLenColumnWriter)c),
            _ when clrType == typeof(DateTime) => new DateTimeAppender((Int64ColumnWriter)c, f.TimestampUnit, path),
            _ when clrType == typeof(DateTimeOffset) => new DateTimeOffsetAppender((Int64ColumnWriter)c, f.TimestampUnit, path),
            _ when clrType == typeof(DateOnly) => new DateOnlyAppender((Int32ColumnWriter)c),
            _ when clrType == typeof(TimeOnly) => new TimeOnlyAppender((Int64ColumnWriter)c),
            _ when clrType == typeof(TimeSpan) => new TimeSpanAppender((Int64ColumnWriter)c),
            _ => throw new NotSupportedException($"Column '{path}': no writer for .NET type {clrType}."),
        };
    }

    public static GroupWriter<T> CreateTyped<T>(ParquetSchema schema, ColumnWriter[] columns)
    {
        int leaf = 0;
        var members = CreateMembers(typeof(T), schema.Fields, columns, ref leaf, 0);
        return new GroupWriter<T>(typeof(T).Name, nullable: false, (MemberWriter<T>[])members);
    }

    private static Array CreateMembers(Type owner, IReadOnlyList<ParquetField> fields, ColumnWriter[] columns, ref int leaf, int rep)
    {
        var memberType = typeof(MemberWriter<>).MakeGenericType(owner);
        var members = Array.CreateInstance(memberType, fields.Count);
        for (int i = 0; i < fields.Count; i++)
        {
            var f = fields[i];
            var prop = f.Property!;
            var node = CreateNode(f, prop.PropertyType, columns, ref leaf, rep);
            var getter = Getters.GetOrAdd((owner, prop), static key =>
            {
                var p = System.Linq.Expressions.Expression.Parameter(key.Owner, "o");
                return System.Linq.Expressions.Expression.Lambda(
                    typeof(Func<,>).MakeGenericType(key.Owner, key.Property.PropertyType),
                    System.Linq.Expressions.Expression.Property(p, key.Property), p).Compile();
            });
            members.SetValue(Activator.CreateInstance(typeof(MemberWriter<,>).MakeGenericType(owner, prop.PropertyType), getter, node), i);
        }

        return members;
    }

    /// <summary>Creates the writer for field <paramref name="f"/> whose declared .NET type is <paramref name="declared"/>.</summary>
    private static object CreateNode(ParquetField f, Type declared, ColumnWriter[] columns, ref int leaf, int rep)
    {
        string path = f.DisplayPath;
        switch (f.Kind)
        {
            case ParquetFieldKind.Value:
                {
                    var column = columns[leaf++];
                    var underlying = Nullable.GetUnderlyingType(declared);
                    if (underlying is not null)
                    {
                        var appender = CreateAppender(f, underlying, column);
                        return Activator.CreateInstance(typeof(OptionalStructLeaf<>).MakeGenericType(underlying), path, appender)!;
                    }

                    var a = CreateAppender(f, declared, column);
                    var leafType = f.IsNullable ? typeof(OptionalLeaf<>) : typeof(RequiredLeaf<>);
                    return Activator.CreateInstance(leafType.MakeGenericType(declared), path, a)!;
                }

            case ParquetFieldKind.Group:
                {
                    var members = CreateMembers(declared, f.Children, columns, ref leaf, rep);
                    return Activator.CreateInstance(typeof(GroupWriter<>).MakeGenericType(declared), path, f.IsNullable, members)!;
                }

            case ParquetFieldKind.List:
                {
                    ClrSchemaFactory.TryGetElementType(declared, out var elementType);
                    var element = CreateNode(f.Children[0], elementType, columns, ref leaf, rep + 1);
                    return Activator.CreateInstance(typeof(ListWriter<,>).MakeGenericType(declared, elementType), path, f.IsNullable, rep + 1, element)!;
                }

            default:
                {
                    ClrSchemaFactory.TryGetDictionaryTypes(declared, out var keyType, out var valueType);
                    var key = CreateNode(f.Children[0], keyType, columns, ref leaf, rep + 1);
                    var value = CreateNode(f.Children[1], valueType, columns, ref leaf, rep + 1);
                    return Activator.CreateInstance(typeof(MapWriter<,,>).MakeGenericType(declared, keyType, valueType), path, f.IsNullable, rep + 1, key, value)!;
                }
        }
    }

    public static ValueWriter<object?>[] CreateDynamic(ParquetSchema schema, ColumnWriter[] columns)
    {
        var writers = new ValueWriter<object?>[schema.Fields.Count];
        for (int i = 0; i < writers.Length; i++)
        {
            var f = schema.Fields[i];
            if (f.Kind != ParquetFieldKind.Value)
            {
                throw new NotSupportedException($"Column '{f.Name}': dynamic rows support value columns only.");
            }

            var clr = ParquetSchemaBuilder.ClrTypeOf(f.ValueType);
            var appender = CreateAppender(f, clr, columns[i]);
            Func<object, object?>? convert = f.ValueType == ParquetValueType.Timestamp
                ? static o => o is DateTimeOffset dto ? dto.UtcDateTime : null
                : null;
            writers[i] = (ValueWriter<object?>)Activator.CreateInstance(
                typeof(BoxedLeaf<>).MakeGenericType(clr), f.DisplayPath, f.IsNullable, appender, convert)!;
        }

        return writers;
    }
}
