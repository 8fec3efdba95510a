namespace Kawa.Dataflow.Parquet.Format;

// The Parquet file metadata model (parquet.thrift) with the fields this library reads or writes.
// Field ids follow the Apache Parquet specification; unknown fields are skipped when reading.

internal enum PhysicalType
{
    Boolean = 0,
    Int32 = 1,
    Int64 = 2,
    Int96 = 3,
    Float = 4,
    Double = 5,
    ByteArray = 6,
    FixedLenByteArray = 7,
}

internal enum ConvertedType
{
    Utf8 = 0,
    Map = 1,
    MapKeyValue = 2,
    List = 3,
    Enum = 4,
    Decimal = 5,
    Date = 6,
    TimeMillis = 7,
    TimeMicros = 8,
    TimestampMillis = 9,
    TimestampMicros = 10,
    UInt8 = 11,
    UInt16 = 12,
    UInt32 = 13,
    UInt64 = 14,
    Int8 = 15,
    Int16 = 16,
    Int32 = 17,
    Int64 = 18,
    Json = 19,
    Bson = 20,
    Interval = 21,
}

internal enum Repetition
{
    Required = 0,
    Optional = 1,
    Repeated = 2,
}

internal enum PageEncoding
{
    Plain = 0,
    PlainDictionary = 2,
    Rle = 3,
    BitPacked = 4,
    DeltaBinaryPacked = 5,
    DeltaLengthByteArray = 6,
    DeltaByteArray = 7,
    RleDictionary = 8,
    ByteStreamSplit = 9,
}

internal enum CompressionCodec
{
    Uncompressed = 0,
    Snappy = 1,
    Gzip = 2,
    Lzo = 3,
    Brotli = 4,
    Lz4 = 5,
    Zstd = 6,
    Lz4Raw = 7,
}

internal enum PageType
{
    DataPage = 0,
    IndexPage = 1,
    DictionaryPage = 2,
    DataPageV2 = 3,
}

internal enum TimeUnit
{
    Millis = 1,
    Micros = 2,
    Nanos = 3,
}

/// <summary>The LogicalType union; <see cref="Kind"/> is the union field id.</summary>
internal sealed class LogicalType
{
    public const int String = 1, Map = 2, List = 3, Enum = 4, Decimal = 5, Date = 6, Time = 7, Timestamp = 8,
        Integer = 10, Unknown = 11, Json = 12, Bson = 13, Uuid = 14, Float16 = 15;

    public int Kind { get; init; }

    public int Scale { get; init; }

    public int Precision { get; init; }

    public bool IsAdjustedToUtc { get; init; }

    public TimeUnit Unit { get; init; }

    public int BitWidth { get; init; }

    public bool IsSigned { get; init; }

    public void Write(ThriftCompactWriter w, short fieldId)
    {
        w.StructField(fieldId);
        w.StructField((short)Kind);
        switch (Kind)
        {
            case Decimal:
                w.I32(1, Scale);
                w.I32(2, Precision);
                break;
            case Time:
            case Timestamp:
                w.Bool(1, IsAdjustedToUtc);
                w.StructField(2);
                w.EmptyStructField((short)Unit);
                w.StructEnd();
                break;
            case Integer:
                w.I8(1, (sbyte)BitWidth);
                w.Bool(2, IsSigned);
                break;
        }

        w.StructEnd();
        w.StructEnd();
    }

    public static LogicalType? Read(ref ThriftCompactReader r)
    {
        LogicalType? result = null;
        short saved = r.StructBegin();
        while (r.NextField(out short id, out var type))
        {
            if (type != ThriftType.Struct)
            {
                r.Skip(type);
                continue;
            }

            int scale = 0, precision = 0, bitWidth = 0;
            bool adjusted = false, signed = false;
            var unit = TimeUnit.Micros;
            short s2 = r.StructBegin();
            while (r.NextField(out short fid, out var ft))
            {
                switch (id, fid)
                {
                    case (Decimal, 1): scale = r.ReadI32(); break;
                    case (Decimal, 2): precision = r.ReadI32(); break;
                    case (Time or Timestamp, 1): adjusted = r.ReadBool(); break;
                    case (Time or Timestamp, 2) when ft == ThriftType.Struct:
                        {
                            short s3 = r.StructBegin();
                            while (r.NextField(out short uid, out var ut))
                            {
                                unit = (TimeUnit)uid;
                                r.Skip(ut);
                            }

                            r.StructEnd(s3);
                            break;
                        }

                    case (Integer, 1): bitWidth = r.ReadI8(); break;
                    case (Integer, 2): signed = r.ReadBool(); break;
                    default: r.Skip(ft); break;
                }
            }

            r.StructEnd(s2);
            result = new LogicalType
            {
                Kind = id, Scale = scale, Precision = precision, IsAdjustedToUtc = adjusted, Unit = unit,
                BitWidth = bitWidth, IsSigned = signed,
            };
        }

        r.StructEnd(saved);
        return result;
    }
}

internal sealed class SchemaElement
{
    public PhysicalType? Type { get; set; }

    public int? TypeLength { get; set; }

    public Repetition? RepetitionType { get; set; }

    public string Name { get; set; } = "";

    public int? NumChildren { get; set; }

    public ConvertedType? ConvertedType { get; set; }

    public int? Scale { get; set; }

    public int? Precision { get; set; }

    public int? FieldId { get; set; }

    public LogicalType? LogicalType { get; set; }

    public void Write(ThriftCompactWriter w)
    {
        w.StructBegin();
        if (Type is { } t) w.I32(1, (int)t);
        if (TypeLength is { } tl) w.I32(2, tl);
        if (RepetitionType is { } rt) w.I32(3, (int)rt);
        w.String(4, Name);
        if (NumChildren is { } nc) w.I32(5, nc);
        if (ConvertedType is { } ct) w.I32(6, (int)ct);
        if (Scale is { } sc) w.I32(7, sc);
        if (Precision is { } p) w.I32(8, p);
        if (FieldId is { } fi) w.I32(9, fi);
        LogicalType?.Write(w, 10);
        w.StructEnd();
    }

    public static SchemaElement Read(ref ThriftCompactReader r)
    {
        var e = new SchemaElement();
        short saved = r.StructBegin();
        while (r.NextField(out short id, out var type))
        {
            switch (id)
            {
                case 1: e.Type = (PhysicalType)r.ReadI32(); break;
                case 2: e.TypeLength = r.ReadI32(); break;
                case 3: e.RepetitionType = (Repetition)r.ReadI32(); break;
                case 4: e.Name = r.ReadString(); break;
                case 5: e.NumChildren = r.ReadI32(); break;
                case 6: e.ConvertedType = (ConvertedType)r.ReadI32(); break;
                case 7: e.Scale = r.ReadI32(); break;
                case 8: e.Precision = r.ReadI32(); break;
                case 9: e.FieldId = r.ReadI32(); break;
                case 10 when type == ThriftType.Struct: e.LogicalType = LogicalType.Read(ref r); break;
                default: r.Skip(type); break;
            }
        }

        r.StructEnd(saved);
        return e;
    }
}

internal sealed class Statistics
{
    public byte[]? Max { get; set; }

    public byte[]? Min { get; set; }

    public long? NullCount { get; set; }

    public long? DistinctCount { get; set; }

    public byte[]? MaxValue { get; set; }

    public byte[]? MinValue { get; set; }

    public bool? IsMaxValueExact { get; set; }

    public bool? IsMinValueExact { get; set; }

    public void Write(ThriftCompactWriter w, short fieldId)
    {
        w.StructField(fieldId);
        if (Max is { } mx) w.Binary(1, mx);
        if (Min is { } mn) w.Binary(2, mn);
        if (NullCount is { } nc) w.I64(3, nc);
        if (DistinctCount is { } dc) w.I64(4, dc);
        if (MaxValue is { } mxv) w.Binary(5, mxv);
        if (MinValue is { } mnv) w.Binary(6, mnv);
        if (IsMaxValueExact is { } mxe) w.Bool(7, mxe);
        if (IsMinValueExact is { } mne) w.Bool(8, mne);
        w.StructEnd();
    }

    public static Statistics Read(ref ThriftCompactReader r)
    {
        var s = new Statistics();
        short saved = r.StructBegin();
        while (r.NextField(out short id, out var type))
        {
            switch (id)
            {
                case 1: s.Max = r.ReadBinaryCopy(); break;
                case 2: s.Min = r.ReadBinaryCopy(); break;
                case 3: s.NullCount = r.ReadI64(); break;
                case 4: s.DistinctCount = r.ReadI64(); break;
                case 5: s.MaxValue = r.ReadBinaryCopy(); break;
                case 6: s.MinValue = r.ReadBinaryCopy(); break;
                case 7: s.IsMaxValueExact = r.ReadBool(); break;
                case 8: s.IsMinValueExact = r.ReadBool(); break;
                default: r.Skip(type); break;
            }
        }

        r.StructEnd(saved);
        return s;
    }
}

internal sealed class KeyValue
{
    public string Key { get; set; } = "";

    public string? Value { get; set; }

    public void Write(ThriftCompactWriter w)
    {
        w.StructBegin();
        w.String(1, Key);
        if (Value is not null) w.String(2, Value);
        w.StructEnd();
    }

    public static KeyValue Read(ref ThriftCompactReader r)
    {
        var kv = new KeyValue();
        short saved = r.StructBegin();
        while (r.NextField(out short id, out var type))
        {
            switch (id)
            {
                case 1: kv.Key = r.ReadString(); break;
                case 2: kv.Value = r.ReadString(); break;
                default: r.Skip(type); break;
            }
        }

        r.StructEnd(saved);
        return kv;
    }
}

internal sealed class ColumnMetaData
{
    public PhysicalType Type { get; set; }

    public List<PageEncoding> Encodings { get; set; } = [];

    public List<string> PathInSchema { get; set; } = [];

    public CompressionCodec Codec { get; set; }

    public long NumValues { get; set; }

    public long TotalUncompressedSize { get; set; }

    public long TotalCompressedSize { get; set; }

    public long DataPageOffset { get; set; }

    public long? DictionaryPageOffset { get; set; }

    public Statistics? Statistics { get; set; }

    public void Write(ThriftCompactWriter w, short fieldId)
    {
        w.StructField(fieldId);
        w.I32(1, (int)Type);
        w.ListField(2, ThriftType.I32, Encodings.Count);
        foreach (var e in Encodings) w.I32Value((int)e);
        w.ListField(3, ThriftType.Binary, PathInSchema.Count);
        foreach (var p in PathInSchema) w.StringValue(p);
        w.I32(4, (int)Codec);
        w.I64(5, NumValues);
        w.I64(6, TotalUncompressedSize);
        w.I64(7, TotalCompressedSize);
        w.I64(9, DataPageOffset);
        if (DictionaryPageOffset is { } d) w.I64(11, d);
        Statistics?.Write(w, 12);
        w.StructEnd();
    }

    public static ColumnMetaData Read(ref ThriftCompactReader r)
    {
        var m = new ColumnMetaData();
        short saved = r.StructBegin();
        while (r.NextField(out short id, out var type))
        {
            switch (id)
            {
                case 1: m.Type = (PhysicalType)r.ReadI32(); break;
                case 2:
                    {
                        int n = r.ReadListHeader(out _);
                        for (int i = 0; i < n; i++) m.Encodings.Add((PageEncoding)r.ReadI32());
                        break;
                    }

                case 3:
                    {
                        int n = r.ReadListHeader(out _);
                        for (int i = 0; i < n; i++) m.PathInSchema.Add(r.ReadString());
                        break;
                    }

                case 4: m.Codec = (CompressionCodec)r.ReadI32(); break;
                case 5: m.NumValues = r.ReadI64(); break;
                case 6: m.TotalUncompressedSize = r.ReadI64(); break;
                case 7: m.TotalCompressedSize = r.ReadI64(); break;
                case 9: m.DataPageOffset = r.ReadI64(); break;
                case 11: m.DictionaryPageOffset = r.ReadI64(); break;
                case 12 when type == ThriftType.Struct: m.Statistics = Statistics.Read(ref r); break;
                default: r.Skip(type); break;
            }
        }

        r.StructEnd(saved);
        return m;
    }
}

internal sealed class ColumnChunk
{
    public string? FilePath { get; set; }

    public long FileOffset { get; set; }

    public ColumnMetaData? MetaData { get; set; }

    public void Write(ThriftCompactWriter w)
    {
        w.StructBegin();
        if (FilePath is not null) w.String(1, FilePath);
        w.I64(2, FileOffset);
        MetaData?.Write(w, 3);
        w.StructEnd();
    }

    public static ColumnChunk Read(ref ThriftCompactReader r)
    {
        var c = new ColumnChunk();
        short saved = r.StructBegin();
        while (r.NextField(out short id, out var type))
        {
            switch (id)
            {
                case 1: c.FilePath = r.ReadString(); break;
                case 2: c.FileOffset = r.ReadI64(); break;
                case 3 when type == ThriftType.Struct: c.MetaData = ColumnMetaData.Read(ref r); break;
                default: r.Skip(type); break;
            }
        }

        r.StructEnd(saved);
        return c;
    }
}

internal sealed class RowGroup
{
    public List<ColumnChunk> Columns { get; set; } = [];

    public long TotalByteSize { get; set; }

    public long NumRows { get; set; }

    public long? FileOffset { get; set; }

    public long? TotalCompressedSize { get; set; }

    public short? Ordinal { get; set; }

    public void Write(ThriftCompactWriter w)
    {
        w.StructBegin();
        w.ListField(1, ThriftType.Struct, Columns.Count);
        foreach (var c in Columns) c.Write(w);
        w.I64(2, TotalByteSize);
        w.I64(3, NumRows);
        if (FileOffset is { } fo) w.I64(5, fo);
        if (TotalCompressedSize is { } tc) w.I64(6, tc);
        if (Ordinal is { } o) w.I16(7, o);
        w.StructEnd();
    }

    public static RowGroup Read(ref ThriftCompactReader r)
    {
        var g = new RowGroup();
        short saved = r.StructBegin();
        while (r.NextField(out short id, out var type))
        {
            switch (id)
            {
                case 1:
                    {
                        int n = r.ReadListHeader(out _);
                        for (int i = 0; i < n; i++) g.Columns.Add(ColumnChunk.Read(ref r));
                        break;
                    }

                case 2: g.TotalByteSize = r.ReadI64(); break;
                case 3: g.NumRows = r.ReadI64(); break;
                case 5: g.FileOffset = r.ReadI64(); break;
                case 6: g.TotalCompressedSize = r.ReadI64(); break;
                case 7: g.Ordinal = (short)r.ReadI32(); break;
                default: r.Skip(type); break;
            }
        }

        r.StructEnd(saved);
        return g;
    }
}

internal sealed class FileMetaData
{
    public int Version { get; set; } = 1;

    public List<SchemaElement> Schema { get; set; } = [];

    public long NumRows { get; set; }

    public List<RowGroup> RowGroups { get; set; } = [];

    public List<KeyValue>? KeyValueMetadata { get; set; }

    public string? CreatedBy { get; set; }

    /// <summary>Number of TypeDefinedOrder entries (one per leaf column) written in <c>column_orders</c>; null when absent.</summary>
    public int? TypeDefinedColumnOrders { get; set; }

    public void Write(ThriftCompactWriter w)
    {
        w.StructBegin();
        w.I32(1, Version);
        w.ListField(2, ThriftType.Struct, Schema.Count);
        foreach (var e in Schema) e.Write(w);
        w.I64(3, NumRows);
        w.ListField(4, ThriftType.Struct, RowGroups.Count);
        foreach (var g in RowGroups) g.Write(w);
        if (KeyValueMetadata is { Count: > 0 } kvs)
        {
            w.ListField(5, ThriftType.Struct, kvs.Count);
            foreach (var kv in kvs) kv.Write(w);
        }

        if (CreatedBy is not null) w.String(6, CreatedBy);
        if (TypeDefinedColumnOrders is { } n)
        {
            w.ListField(7, ThriftType.Struct, n);
            for (int i = 0; i < n; i++)
            {
                w.StructBegin();
                w.EmptyStructField(1);
                w.StructEnd();
            }
        }

        w.StructEnd();
    }

    public static FileMetaData Read(ReadOnlySpan<byte> data)
    {
        var r = new ThriftCompactReader(data);
        var m = new FileMetaData();
        short saved = r.StructBegin();
        while (r.NextField(out short id, out var type))
        {
            switch (id)
            {
                case 1: m.Version = r.ReadI32(); break;
                case 2:
                    {
                        int n = r.ReadListHeader(out _);
                        for (int i = 0; i < n; i++) m.Schema.Add(SchemaElement.Read(ref r));
                        break;
                    }

                case 3: m.NumRows = r.ReadI64(); break;
                case 4:
                    {
                        int n = r.ReadListHeader(out _);
                        for (int i = 0; i < n; i++) m.RowGroups.Add(RowGroup.Read(ref r));
                        break;
                    }

                case 5:
                    {
                        int n = r.ReadListHeader(out _);
                        m.KeyValueMetadata = [];
                        for (int i = 0; i < n; i++) m.KeyValueMetadata.Add(KeyValue.Read(ref r));
                        break;
                    }

                case 6: m.CreatedBy = r.ReadString(); break;
                case 7:
                    {
                        int n = r.ReadListHeader(out _);
                        for (int i = 0; i < n; i++) r.Skip(ThriftType.Struct);
                        m.TypeDefinedColumnOrders = n;
                        break;
                    }

                default: r.Skip(type); break;
            }
        }

        r.StructEnd(saved);
        return m;
    }
}

internal sealed class DataPageHeader
{
    public int NumValues { get; set; }

    public PageEncoding Encoding { get; set; }

    public PageEncoding DefinitionLevelEncoding { get; set; } = PageEncoding.Rle;

    public PageEncoding RepetitionLevelEncoding { get; set; } = PageEncoding.Rle;
}

internal sealed class DataPageHeaderV2
{
    public int NumValues { get; set; }

    public int NumNulls { get; set; }

    public int NumRows { get; set; }

    public PageEncoding Encoding { get; set; }

    public int DefinitionLevelsByteLength { get; set; }

    public int RepetitionLevelsByteLength { get; set; }

    public bool IsCompressed { get; set; } = true;
}

internal sealed class PageHeader
{
    public PageType Type { get; set; }

    public int UncompressedPageSize { get; set; }

    public int CompressedPageSize { get; set; }

    public DataPageHeader? DataPageHeader { get; set; }

    public int DictionaryNumValues { get; set; }

    public PageEncoding DictionaryEncoding { get; set; }

    public DataPageHeaderV2? DataPageHeaderV2 { get; set; }

    public void Write(ThriftCompactWriter w)
    {
        w.StructBegin();
        w.I32(1, (int)Type);
        w.I32(2, UncompressedPageSize);
        w.I32(3, CompressedPageSize);
        if (DataPageHeader is { } d)
        {
            w.StructField(5);
            w.I32(1, d.NumValues);
            w.I32(2, (int)d.Encoding);
            w.I32(3, (int)d.DefinitionLevelEncoding);
            w.I32(4, (int)d.RepetitionLevelEncoding);
            w.StructEnd();
        }

        if (DataPageHeaderV2 is { } v2)
        {
            w.StructField(8);
            w.I32(1, v2.NumValues);
            w.I32(2, v2.NumNulls);
            w.I32(3, v2.NumRows);
            w.I32(4, (int)v2.Encoding);
            w.I32(5, v2.DefinitionLevelsByteLength);
            w.I32(6, v2.RepetitionLevelsByteLength);
            if (!v2.IsCompressed)
            {
                w.Bool(7, false);
            }

            w.StructEnd();
        }

        if (Type == PageType.DictionaryPage)
        {
            w.StructField(7);
            w.I32(1, DictionaryNumValues);
            w.I32(2, (int)DictionaryEncoding);
            w.StructEnd();
        }

        w.StructEnd();
    }

    public static PageHeader Read(ReadOnlySpan<byte> data, out int headerLength)
    {
        var r = new ThriftCompactReader(data);
        var h = new PageHeader();
        short saved = r.StructBegin();
        while (r.NextField(out short id, out var type))
        {
            switch (id)
            {
                case 1: h.Type = (PageType)r.ReadI32(); break;
                case 2: h.UncompressedPageSize = r.ReadI32(); break;
                case 3: h.CompressedPageSize = r.ReadI32(); break;
                case 5 when type == ThriftType.Struct:
                    {
                        var d = new DataPageHeader();
                        short s = r.StructBegin();
                        while (r.NextField(out short fid, out var ft))
                        {
                            switch (fid)
                            {
                                case 1: d.NumValues = r.ReadI32(); break;
                                case 2: d.Encoding = (PageEncoding)r.ReadI32(); break;
                                case 3: d.DefinitionLevelEncoding = (PageEncoding)r.ReadI32(); break;
                                case 4: d.RepetitionLevelEncoding = (PageEncoding)r.ReadI32(); break;
                                default: r.Skip(ft); break;
                            }
                        }

                        r.StructEnd(s);
                        h.DataPageHeader = d;
                        break;
                    }

                case 7 when type == ThriftType.Struct:
                    {
                        short s = r.StructBegin();
                        while (r.NextField(out short fid, out var ft))
                        {
                            switch (fid)
                            {
                                case 1: h.DictionaryNumValues = r.ReadI32(); break;
                                case 2: h.DictionaryEncoding = (PageEncoding)r.ReadI32(); break;
                                default: r.Skip(ft); break;
                            }
                        }

                        r.StructEnd(s);
                        break;
                    }

                case 8 when type == ThriftType.Struct:
                    {
                        var d = new DataPageHeaderV2();
                        short s = r.StructBegin();
                        while (r.NextField(out short fid, out var ft))
                        {
                            switch (fid)
                            {
                                case 1: d.NumValues = r.ReadI32(); break;
                                case 2: d.NumNulls = r.ReadI32(); break;
                                case 3: d.NumRows = r.ReadI32(); break;
                                case 4: d.Encoding = (PageEncoding)r.ReadI32(); break;
                                case 5: d.DefinitionLevelsByteLength = r.ReadI32(); break;
                                case 6: d.RepetitionLevelsByteLength = r.ReadI32(); break;
                                case 7: d.IsCompressed = r.ReadBool(); break;
                                default: r.Skip(ft); break;
                            }
                        }

                        r.StructEnd(s);
                        h.DataPageHeaderV2 = d;
                        break;
                    }

                default: r.Skip(type); break;
            }
        }

        r.StructEnd(saved);
        headerLength = r.Position;
        return h;
    }
}
