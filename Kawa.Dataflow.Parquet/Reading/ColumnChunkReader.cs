using System.Buffers.Binary;
using Kawa.Dataflow.Parquet.Format;
using Kawa.Dataflow.Parquet.Schema;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Parquet.Reading;

/// <summary>One decoded column chunk: levels per entry and the non-null values as .NET objects.</summary>
internal sealed class ColumnData
{
    public int[]? Def;
    public int[]? Rep;
    public object?[] Values = [];
    public int Entries;
    public int EntryPos;
    public int ValuePos;
}

/// <summary>Decodes a column chunk's pages (dictionary, data v1 and v2) into <see cref="ColumnData"/>.</summary>
internal static class ColumnChunkReader
{
    public static ColumnData Read(ReadOnlySpan<byte> chunk, ColumnDescriptor column, ColumnMetaData meta)
    {
        string path = column.DottedPath;
        var element = column.Field.FileElement;
        var physical = meta.Type;
        int typeLength = element?.TypeLength ?? 0;
        var convert = Converter(column.Field, physical);
        int maxDef = column.MaxDefinitionLevel, maxRep = column.MaxRepetitionLevel;
        long total = meta.NumValues;
        if (total > int.MaxValue)
        {
            throw ValueDecoders.Corrupt(path, "column chunk has more than int.MaxValue values");
        }

        var data = new ColumnData
        {
            Def = maxDef > 0 ? new int[total] : null,
            Rep = maxRep > 0 ? new int[total] : null,
        };
        var values = new List<object?>((int)total);
        object?[]? dictionary = null;
        int entries = 0;
        int pos = 0;
        while (entries < total && pos < chunk.Length)
        {
            var header = PageHeader.Read(chunk[pos..], out int headerLength);
            pos += headerLength;
            if (header.CompressedPageSize < 0 || pos + header.CompressedPageSize > chunk.Length)
            {
                throw ValueDecoders.Corrupt(path, "a page extends past its column chunk");
            }

            var body = chunk.Slice(pos, header.CompressedPageSize);
            pos += header.CompressedPageSize;
            switch (header.Type)
            {
                case PageType.DictionaryPage:
                    {
                        var bytes = Compression.Decompress(meta.Codec, body, header.UncompressedPageSize);
                        var raw = ValueDecoders.DecodePlain(bytes, physical, typeLength, header.DictionaryNumValues, path);
                        dictionary = new object?[raw.Count];
                        for (int i = 0; i < raw.Count; i++) dictionary[i] = convert(raw, i);
                        break;
                    }

                case PageType.DataPage:
                    {
                        var h = header.DataPageHeader ?? throw ValueDecoders.Corrupt(path, "data page without its header");
                        var bytes = Compression.Decompress(meta.Codec, body, header.UncompressedPageSize);
                        int n = h.NumValues;
                        CheckRoom(entries, n, total, path);
                        ReadOnlySpan<byte> span = bytes;
                        int p = 0;
                        if (maxRep > 0) p += RleBitPackedHybrid.DecodeLengthPrefixed(span[p..], RleBitPackedHybrid.BitWidth(maxRep), data.Rep.AsSpan(entries, n));
                        if (maxDef > 0) p += RleBitPackedHybrid.DecodeLengthPrefixed(span[p..], RleBitPackedHybrid.BitWidth(maxDef), data.Def.AsSpan(entries, n));
                        int present = CountPresent(data.Def, entries, n, maxDef);
                        DecodeValues(span[p..], h.Encoding, physical, typeLength, present, dictionary, convert, values, path);
                        entries += n;
                        break;
                    }

                case PageType.DataPageV2:
                    {
                        var h = header.DataPageHeaderV2 ?? throw ValueDecoders.Corrupt(path, "data page v2 without its header");
                        int n = h.NumValues;
                        CheckRoom(entries, n, total, path);
                        int levelBytes = h.RepetitionLevelsByteLength + h.DefinitionLevelsByteLength;
                        if (levelBytes < 0 || levelBytes > body.Length) throw ValueDecoders.Corrupt(path, "level lengths exceed the page");
                        if (maxRep > 0) RleBitPackedHybrid.Decode(body[..h.RepetitionLevelsByteLength], RleBitPackedHybrid.BitWidth(maxRep), data.Rep.AsSpan(entries, n));
                        if (maxDef > 0) RleBitPackedHybrid.Decode(body.Slice(h.RepetitionLevelsByteLength, h.DefinitionLevelsByteLength), RleBitPackedHybrid.BitWidth(maxDef), data.Def.AsSpan(entries, n));
                        var valueBody = body[levelBytes..];
                        byte[] valueBytes = h.IsCompressed && meta.Codec != CompressionCodec.Uncompressed
                            ? Compression.Decompress(meta.Codec, valueBody, header.UncompressedPageSize - levelBytes)
                            : valueBody.ToArray();
                        int present = CountPresent(data.Def, entries, n, maxDef);
                        DecodeValues(valueBytes, h.Encoding, physical, typeLength, present, dictionary, convert, values, path);
                        entries += n;
                        break;
                    }

                default:
                    break;
            }
        }

        if (entries != total)
        {
            throw ValueDecoders.Corrupt(path, $"column chunk holds {entries} of its {total} values");
        }

        data.Entries = entries;
        data.Values = values.ToArray();
        return data;
    }

    private static void CheckRoom(int entries, int n, long total, string path)
    {
        if (n < 0 || entries + (long)n > total)
        {
            throw ValueDecoders.Corrupt(path, "pages hold more values than the column chunk declares");
        }
    }

    private static int CountPresent(int[]? def, int start, int n, int maxDef)
    {
        if (def is null)
        {
            return n;
        }

        int c = 0;
        for (int i = start; i < start + n; i++)
        {
            if (def[i] == maxDef) c++;
        }

        return c;
    }

    private static void DecodeValues(ReadOnlySpan<byte> data, PageEncoding encoding, PhysicalType physical, int typeLength, int count,
        object?[]? dictionary, Func<RawValues, int, object?> convert, List<object?> output, string path)
    {
        if (count == 0)
        {
            return;
        }

        RawValues raw;
        switch (encoding)
        {
            case PageEncoding.Plain:
                raw = ValueDecoders.DecodePlain(data, physical, typeLength, count, path);
                break;
            case PageEncoding.PlainDictionary:
            case PageEncoding.RleDictionary:
                {
                    if (dictionary is null) throw ValueDecoders.Corrupt(path, "dictionary-encoded page without a dictionary page");
                    if (data.Length < 1) throw ValueDecoders.Corrupt(path, "empty dictionary-index page");
                    var idx = new int[count];
                    RleBitPackedHybrid.Decode(data[1..], data[0], idx);
                    foreach (int i in idx)
                    {
                        if ((uint)i >= (uint)dictionary.Length) throw ValueDecoders.Corrupt(path, "dictionary index out of range");
                        output.Add(dictionary[i]);
                    }

                    return;
                }

            case PageEncoding.Rle when physical == PhysicalType.Boolean:
                {
                    var bits = new int[count];
                    RleBitPackedHybrid.DecodeLengthPrefixed(data, 1, bits);
                    raw = new RawValues { Count = count, Bools = bits.Select(b => b != 0).ToArray() };
                    break;
                }

            case PageEncoding.DeltaBinaryPacked:
                {
                    var longs = ValueDecoders.DecodeDeltaBinaryPacked(data, out _, path);
                    raw = physical == PhysicalType.Int32
                        ? new RawValues { Count = count, Ints = longs.Take(count).Select(l => unchecked((int)l)).ToArray() }
                        : new RawValues { Count = count, Longs = longs };
                    break;
                }

            case PageEncoding.DeltaLengthByteArray:
                raw = new RawValues { Count = count, Bytes = ValueDecoders.DecodeDeltaLengthByteArray(data, count, out _, path) };
                break;
            case PageEncoding.DeltaByteArray:
                raw = new RawValues { Count = count, Bytes = ValueDecoders.DecodeDeltaByteArray(data, count, path) };
                break;
            case PageEncoding.ByteStreamSplit:
                raw = ValueDecoders.DecodeByteStreamSplit(data, physical, typeLength, count, path);
                break;
            default:
                throw new NotSupportedException($"Column '{path}' uses encoding {encoding}, which Kawa.Dataflow.Parquet cannot read.");
        }

        for (int i = 0; i < count; i++)
        {
            output.Add(convert(raw, i));
        }
    }

    /// <summary>Maps a raw physical value to the .NET value of the field's logical type.</summary>
    private static Func<RawValues, int, object?> Converter(ParquetField f, PhysicalType physical)
    {
        var lt = f.FileElement?.LogicalType;
        int scale = f.DecimalScale;
        switch (physical)
        {
            case PhysicalType.Boolean:
                return static (r, i) => r.Bools![i];
            case PhysicalType.Int32:
                return f.ValueType switch
                {
                    ParquetValueType.SByte => static (r, i) => (sbyte)r.Ints![i],
                    ParquetValueType.Int16 => static (r, i) => (short)r.Ints![i],
                    ParquetValueType.Byte => static (r, i) => (byte)r.Ints![i],
                    ParquetValueType.UInt16 => static (r, i) => (ushort)r.Ints![i],
                    ParquetValueType.UInt32 => static (r, i) => unchecked((uint)r.Ints![i]),
                    ParquetValueType.Date => static (r, i) => ValueConversions.FromDate(r.Ints![i]),
                    ParquetValueType.Time => static (r, i) => new TimeOnly(r.Ints![i] * TimeSpan.TicksPerMillisecond),
                    ParquetValueType.Decimal => (r, i) => ValueConversions.ToDecimal(r.Ints![i], scale),
                    _ => static (r, i) => r.Ints![i],
                };
            case PhysicalType.Int64:
                {
                    var unit = lt?.Unit ?? (f.FileElement?.ConvertedType == ConvertedType.TimestampMillis ? TimeUnit.Millis : TimeUnit.Micros);
                    bool utc = lt is null || lt.IsAdjustedToUtc;
                    return f.ValueType switch
                    {
                        ParquetValueType.UInt64 => static (r, i) => unchecked((ulong)r.Longs![i]),
                        ParquetValueType.Timestamp => (r, i) => Timestamp(r.Longs![i], unit, utc),
                        ParquetValueType.Time => (r, i) => new TimeOnly(unit switch
                        {
                            TimeUnit.Millis => r.Longs![i] * TimeSpan.TicksPerMillisecond,
                            TimeUnit.Nanos => r.Longs![i] / 100,
                            _ => r.Longs![i] * 10,
                        }),
                        ParquetValueType.Decimal => (r, i) => ValueConversions.ToDecimal(r.Longs![i], scale),
                        _ => static (r, i) => r.Longs![i],
                    };
                }

            case PhysicalType.Int96:
                return static (r, i) =>
                {
                    var b = r.Bytes![i];
                    long nanos = BinaryPrimitives.ReadInt64LittleEndian(b);
                    int julian = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(8));
                    return new DateTime(DateTime.UnixEpoch.Ticks + ((julian - 2440588L) * TimeSpan.TicksPerDay) + (nanos / 100), DateTimeKind.Utc);
                };
            case PhysicalType.Float:
                return static (r, i) => r.Floats![i];
            case PhysicalType.Double:
                return static (r, i) => r.Doubles![i];
            default:
                return f.ValueType switch
                {
                    ParquetValueType.String => static (r, i) => ValueDecoders.Utf8(r.Bytes![i]),
                    ParquetValueType.Guid => static (r, i) => ValueConversions.ReadUuid(r.Bytes![i]),
                    ParquetValueType.Decimal => (r, i) => ValueConversions.ToDecimal(ValueConversions.ReadBigEndian(r.Bytes![i]), scale),
                    _ => static (r, i) => r.Bytes![i],
                };
        }
    }

    private static DateTime Timestamp(long v, TimeUnit unit, bool utc)
    {
        long ticks = unit switch
        {
            TimeUnit.Millis => checked(v * TimeSpan.TicksPerMillisecond),
            TimeUnit.Nanos => ValueConversions.FloorDiv(v, 100),
            _ => checked(v * 10),
        };
        return new DateTime(checked(DateTime.UnixEpoch.Ticks + ticks), utc ? DateTimeKind.Utc : DateTimeKind.Unspecified);
    }
}
