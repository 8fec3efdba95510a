using System.Numerics;
using Kawa.Dataflow.Parquet.Format;

namespace Kawa.Dataflow.Parquet.Schema;

/// <summary>Converts between <see cref="ParquetSchema"/> and the flattened SchemaElement list of the footer.</summary>
internal static class SchemaConverter
{
    private static readonly int[] DecimalBytes = BuildDecimalBytes();

    /// <summary>Bytes a FIXED_LEN_BYTE_ARRAY needs for DECIMAL(precision): the smallest n with 10^p - 1 ≤ 2^(8n-1) - 1.</summary>
    public static int DecimalByteLength(int precision) => DecimalBytes[precision];

    public static (PhysicalType Type, int Length) Physical(ParquetField f) => f.ValueType switch
    {
        ParquetValueType.Boolean => (PhysicalType.Boolean, 0),
        ParquetValueType.SByte or ParquetValueType.Int16 or ParquetValueType.Int32 or ParquetValueType.Byte
            or ParquetValueType.UInt16 or ParquetValueType.UInt32 or ParquetValueType.Date => (PhysicalType.Int32, 0),
        ParquetValueType.Int64 or ParquetValueType.UInt64 or ParquetValueType.Timestamp or ParquetValueType.Time
            or ParquetValueType.Duration => (PhysicalType.Int64, 0),
        ParquetValueType.Float => (PhysicalType.Float, 0),
        ParquetValueType.Double => (PhysicalType.Double, 0),
        ParquetValueType.Decimal => f.DecimalPrecision <= 9 ? (PhysicalType.Int32, 0)
            : f.DecimalPrecision <= 18 ? (PhysicalType.Int64, 0)
            : (PhysicalType.FixedLenByteArray, DecimalByteLength(f.DecimalPrecision)),
        ParquetValueType.Guid => (PhysicalType.FixedLenByteArray, 16),
        _ => (PhysicalType.ByteArray, 0),
    };

    public static List<SchemaElement> ToElements(ParquetSchema schema)
    {
        var list = new List<SchemaElement> { new() { Name = "schema", NumChildren = schema.Fields.Count } };
        foreach (var f in schema.Fields)
        {
            Add(f, list, f.IsNullable ? Repetition.Optional : Repetition.Required);
        }

        return list;
    }

    private static void Add(ParquetField f, List<SchemaElement> list, Repetition repetition)
    {
        switch (f.Kind)
        {
            case ParquetFieldKind.Value:
                list.Add(ValueElement(f, repetition));
                break;
            case ParquetFieldKind.Group:
                list.Add(new SchemaElement { Name = f.Name, RepetitionType = repetition, NumChildren = f.Children.Count });
                foreach (var c in f.Children)
                {
                    Add(c, list, c.IsNullable ? Repetition.Optional : Repetition.Required);
                }

                break;
            case ParquetFieldKind.List:
                list.Add(new SchemaElement
                {
                    Name = f.Name, RepetitionType = repetition, NumChildren = 1, ConvertedType = ConvertedType.List,
                    LogicalType = new LogicalType { Kind = LogicalType.List },
                });
                list.Add(new SchemaElement { Name = "list", RepetitionType = Repetition.Repeated, NumChildren = 1 });
                Add(f.Children[0], list, f.Children[0].IsNullable ? Repetition.Optional : Repetition.Required);
                break;
            case ParquetFieldKind.Map:
                list.Add(new SchemaElement
                {
                    Name = f.Name, RepetitionType = repetition, NumChildren = 1, ConvertedType = ConvertedType.Map,
                    LogicalType = new LogicalType { Kind = LogicalType.Map },
                });
                list.Add(new SchemaElement { Name = "key_value", RepetitionType = Repetition.Repeated, NumChildren = 2 });
                Add(f.Children[0], list, Repetition.Required);
                Add(f.Children[1], list, f.Children[1].IsNullable ? Repetition.Optional : Repetition.Required);
                break;
        }
    }

    private static SchemaElement ValueElement(ParquetField f, Repetition repetition)
    {
        var (type, length) = Physical(f);
        var e = new SchemaElement { Name = f.Name, RepetitionType = repetition, Type = type };
        if (type == PhysicalType.FixedLenByteArray)
        {
            e.TypeLength = length;
        }

        switch (f.ValueType)
        {
            case ParquetValueType.SByte: Int(e, 8, true, ConvertedType.Int8); break;
            case ParquetValueType.Int16: Int(e, 16, true, ConvertedType.Int16); break;
            case ParquetValueType.Byte: Int(e, 8, false, ConvertedType.UInt8); break;
            case ParquetValueType.UInt16: Int(e, 16, false, ConvertedType.UInt16); break;
            case ParquetValueType.UInt32: Int(e, 32, false, ConvertedType.UInt32); break;
            case ParquetValueType.UInt64: Int(e, 64, false, ConvertedType.UInt64); break;
            case ParquetValueType.Decimal:
                e.ConvertedType = ConvertedType.Decimal;
                e.Scale = f.DecimalScale;
                e.Precision = f.DecimalPrecision;
                e.LogicalType = new LogicalType { Kind = LogicalType.Decimal, Scale = f.DecimalScale, Precision = f.DecimalPrecision };
                break;
            case ParquetValueType.String:
                e.ConvertedType = ConvertedType.Utf8;
                e.LogicalType = new LogicalType { Kind = LogicalType.String };
                break;
            case ParquetValueType.Guid:
                e.LogicalType = new LogicalType { Kind = LogicalType.Uuid };
                break;
            case ParquetValueType.Timestamp:
                bool nanos = f.TimestampUnit == ParquetTimestampUnit.Nanoseconds;
                e.ConvertedType = nanos ? null : ConvertedType.TimestampMicros;
                e.LogicalType = new LogicalType { Kind = LogicalType.Timestamp, IsAdjustedToUtc = true, Unit = nanos ? TimeUnit.Nanos : TimeUnit.Micros };
                break;
            case ParquetValueType.Date:
                e.ConvertedType = ConvertedType.Date;
                e.LogicalType = new LogicalType { Kind = LogicalType.Date };
                break;
            case ParquetValueType.Time:
                e.LogicalType = new LogicalType { Kind = LogicalType.Time, IsAdjustedToUtc = false, Unit = TimeUnit.Micros };
                break;
        }

        return e;
    }

    private static void Int(SchemaElement e, int bits, bool signed, ConvertedType converted)
    {
        e.ConvertedType = converted;
        e.LogicalType = new LogicalType { Kind = LogicalType.Integer, BitWidth = bits, IsSigned = signed };
    }

    /// <summary>Rebuilds the field tree of a file's schema.</summary>
    public static ParquetSchema FromElements(List<SchemaElement> elements)
    {
        if (elements.Count == 0)
        {
            throw new InvalidDataException("The Parquet footer has an empty schema.");
        }

        int pos = 1;
        var fields = new List<ParquetField>();
        int n = elements[0].NumChildren ?? 0;
        for (int i = 0; i < n; i++)
        {
            fields.Add(ReadField(elements, ref pos, elements[0].Name));
        }

        return new ParquetSchema(fields, rowType: null);
    }

    private static ParquetField ReadField(List<SchemaElement> elements, ref int pos, string parentPath)
    {
        if (pos >= elements.Count)
        {
            throw new InvalidDataException("The Parquet footer's schema declares more children than it lists.");
        }

        var e = elements[pos++];
        string path = parentPath + "." + e.Name;
        bool nullable = e.RepetitionType == Repetition.Optional;
        if (e.RepetitionType == Repetition.Repeated)
        {
            // A bare repeated field (no LIST wrapper): a required list of required elements.
            var element = e.NumChildren is > 0 ? ReadGroup(elements, ref pos, e, path, nullable: false) : ValueField(e, path, nullable: false);
            return new ParquetField(e.Name, ParquetFieldKind.List, false, default, [element]) { DisplayPath = path, IsTwoLevelList = true, FileElement = e };
        }

        bool isList = e.ConvertedType == ConvertedType.List || e.LogicalType?.Kind == LogicalType.List;
        bool isMap = e.ConvertedType is ConvertedType.Map or ConvertedType.MapKeyValue || e.LogicalType?.Kind == LogicalType.Map;
        if (e.NumChildren is null or 0 && e.Type is not null)
        {
            return ValueField(e, path, nullable);
        }

        if (isList && e.NumChildren == 1)
        {
            var rep = elements[pos];
            if (rep.RepetitionType != Repetition.Repeated)
            {
                throw new InvalidDataException($"LIST field '{path}' has no repeated child; the schema is malformed.");
            }

            pos++;
            bool threeLevel = rep.NumChildren == 1 && rep.Name != "array" && rep.Name != e.Name + "_tuple";
            if (threeLevel)
            {
                var element = ReadField(elements, ref pos, path + "." + rep.Name);
                return new ParquetField(e.Name, ParquetFieldKind.List, nullable, default, [element])
                {
                    DisplayPath = path, RepeatedGroupName = rep.Name, FileElement = e,
                };
            }

            var twoLevel = rep.NumChildren is > 0 ? ReadGroup(elements, ref pos, rep, path + "." + rep.Name, nullable: false)
                : ValueField(rep, path + "." + rep.Name, nullable: false);
            return new ParquetField(e.Name, ParquetFieldKind.List, nullable, default, [twoLevel])
            {
                DisplayPath = path, IsTwoLevelList = true, FileElement = e,
            };
        }

        if (isMap && e.NumChildren == 1)
        {
            var kv = elements[pos++];
            if (kv.RepetitionType != Repetition.Repeated || kv.NumChildren != 2)
            {
                throw new InvalidDataException($"MAP field '{path}' must hold one repeated group with a key and a value; the schema is malformed.");
            }

            var key = ReadField(elements, ref pos, path + "." + kv.Name);
            var value = ReadField(elements, ref pos, path + "." + kv.Name);
            return new ParquetField(e.Name, ParquetFieldKind.Map, nullable, default, [key, value])
            {
                DisplayPath = path, RepeatedGroupName = kv.Name, FileElement = e,
            };
        }

        return ReadGroup(elements, ref pos, e, path, nullable);
    }

    private static ParquetField ReadGroup(List<SchemaElement> elements, ref int pos, SchemaElement e, string path, bool nullable)
    {
        var children = new List<ParquetField>();
        for (int i = 0; i < (e.NumChildren ?? 0); i++)
        {
            children.Add(ReadField(elements, ref pos, path));
        }

        return new ParquetField(e.Name, ParquetFieldKind.Group, nullable, default, children) { DisplayPath = path, FileElement = e };
    }

    private static ParquetField ValueField(SchemaElement e, string path, bool nullable)
    {
        var lt = e.LogicalType;
        var ct = e.ConvertedType;
        int precision = 0, scale = 0;
        var unit = ParquetTimestampUnit.Microseconds;
        ParquetValueType vt;
        if (lt?.Kind == LogicalType.Decimal || ct == ConvertedType.Decimal)
        {
            vt = ParquetValueType.Decimal;
            precision = lt?.Kind == LogicalType.Decimal ? lt.Precision : e.Precision ?? 0;
            scale = lt?.Kind == LogicalType.Decimal ? lt.Scale : e.Scale ?? 0;
        }
        else
        {
            vt = e.Type switch
            {
                PhysicalType.Boolean => ParquetValueType.Boolean,
                PhysicalType.Int32 => lt?.Kind == LogicalType.Date || ct == ConvertedType.Date ? ParquetValueType.Date
                    : lt?.Kind == LogicalType.Time || ct == ConvertedType.TimeMillis ? ParquetValueType.Time
                    : IntType(lt, ct, 32),
                PhysicalType.Int64 => lt?.Kind == LogicalType.Timestamp || ct is ConvertedType.TimestampMicros or ConvertedType.TimestampMillis ? ParquetValueType.Timestamp
                    : lt?.Kind == LogicalType.Time || ct == ConvertedType.TimeMicros ? ParquetValueType.Time
                    : IntType(lt, ct, 64),
                PhysicalType.Int96 => ParquetValueType.Timestamp,
                PhysicalType.Float => ParquetValueType.Float,
                PhysicalType.Double => ParquetValueType.Double,
                PhysicalType.ByteArray => lt?.Kind is LogicalType.String or LogicalType.Enum or LogicalType.Json
                    || ct is ConvertedType.Utf8 or ConvertedType.Enum or ConvertedType.Json ? ParquetValueType.String : ParquetValueType.Binary,
                PhysicalType.FixedLenByteArray => lt?.Kind == LogicalType.Uuid && e.TypeLength == 16 ? ParquetValueType.Guid : ParquetValueType.Binary,
                _ => throw new InvalidDataException($"Column '{path}' has no physical type; the schema is malformed."),
            };
            if (vt == ParquetValueType.Timestamp && lt?.Unit == TimeUnit.Nanos)
            {
                unit = ParquetTimestampUnit.Nanoseconds;
            }
        }

        return new ParquetField(e.Name, ParquetFieldKind.Value, nullable, vt, [])
        {
            DisplayPath = path, DecimalPrecision = precision, DecimalScale = scale, TimestampUnit = unit, FileElement = e,
            ClrType = ParquetSchemaBuilder.ClrTypeOf(vt),
        };
    }

    private static ParquetValueType IntType(LogicalType? lt, ConvertedType? ct, int physicalBits)
    {
        if (lt?.Kind == LogicalType.Integer)
        {
            return (lt.BitWidth, lt.IsSigned) switch
            {
                (8, true) => ParquetValueType.SByte,
                (16, true) => ParquetValueType.Int16,
                (8, false) => ParquetValueType.Byte,
                (16, false) => ParquetValueType.UInt16,
                (32, false) => ParquetValueType.UInt32,
                (64, false) => ParquetValueType.UInt64,
                _ => physicalBits == 32 ? ParquetValueType.Int32 : ParquetValueType.Int64,
            };
        }

        return ct switch
        {
            ConvertedType.Int8 => ParquetValueType.SByte,
            ConvertedType.Int16 => ParquetValueType.Int16,
            ConvertedType.UInt8 => ParquetValueType.Byte,
            ConvertedType.UInt16 => ParquetValueType.UInt16,
            ConvertedType.UInt32 => ParquetValueType.UInt32,
            ConvertedType.UInt64 => ParquetValueType.UInt64,
            _ => physicalBits == 32 ? ParquetValueType.Int32 : ParquetValueType.Int64,
        };
    }

    private static int[] BuildDecimalBytes()
    {
        var result = new int[39];
        for (int p = 1; p <= 38; p++)
        {
            var limit = BigInteger.Pow(10, p) - 1;
            int n = 1;
            while ((BigInteger.One << (8 * n - 1)) - 1 < limit)
            {
                n++;
            }

            result[p] = n;
        }

        return result;
    }
}
