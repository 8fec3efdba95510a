using System.Runtime.CompilerServices;
using Kawa.Dataflow.Parquet.Format;
using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Parquet.Writing;

/// <summary>
/// Scratch buffers and settings of one encoding worker: the column writers of a file use one context at a time
/// (one per worker when chunks are encoded in parallel).
/// </summary>
internal sealed class ChunkContext
{
    public ChunkContext(CompressionCodec codec, int pageSize, int dictionaryMaxBytes, int statisticsMaxBytes, bool dataPageV2 = false)
    {
        DataPageV2 = dataPageV2;
        Codec = codec;
        PageSize = pageSize;
        DictionaryMaxBytes = dictionaryMaxBytes;
        StatisticsMaxBytes = statisticsMaxBytes;
        HeaderWriter = new ThriftCompactWriter(Header);
    }

    public CompressionCodec Codec { get; }

    /// <summary>Write DATA_PAGE_V2 pages (levels uncompressed before the compressed values).</summary>
    public bool DataPageV2 { get; }

    public int PageSize { get; }

    public int DictionaryMaxBytes { get; }

    public int StatisticsMaxBytes { get; }

    public ByteBuffer Page { get; } = new(1 << 16);

    public ByteBuffer Compressed { get; } = new(1 << 16);

    /// <summary>The chunk output of serial encoding (parallel encoding writes into each column's own buffer).</summary>
    public ByteBuffer Chunk { get; } = new(1 << 16);

    public ByteBuffer Header { get; } = new(256);

    public ThriftCompactWriter HeaderWriter { get; }

    public int[] Indices { get; set; } = [];

    public void Release()
    {
        Page.Release();
        Compressed.Release();
        Chunk.Release();
        var indices = Indices;
        Pooled.Return(ref indices);
        Indices = indices;
    }
}

/// <summary>State of a column before a batch, so a batch that fails part-way can be undone.</summary>
internal readonly record struct ColumnMark(int Entries, int Nulls, int Values, int Aux, long Aux2);

/// <summary>
/// Buffers one leaf column of the current row group (values plus Dremel levels) and encodes it as a column
/// chunk: optional dictionary page, data pages (v1), statistics.
/// </summary>
internal abstract class ColumnWriter
{
    private int[] _def = [];
    private int[] _rep = [];
    private readonly int _maxDef;
    private readonly int _maxRep;

    protected ColumnWriter(ColumnDescriptor column, PhysicalType physicalType)
    {
        Column = column;
        PhysicalType = physicalType;
        _maxDef = column.MaxDefinitionLevel;
        _maxRep = column.MaxRepetitionLevel;
    }

    public ColumnDescriptor Column { get; }

    public PhysicalType PhysicalType { get; }

    /// <summary>Level entries (values and nulls at every level) buffered.</summary>
    public int Entries { get; private set; }

    /// <summary>Entries whose definition level is below the maximum (null or empty at some level).</summary>
    public int Nulls { get; private set; }

    public abstract int ValueCount { get; }

    /// <summary>Approximate uncompressed bytes buffered (values and levels).</summary>
    public long EstimatedBytes => ValueBytes + (_maxDef > 0 ? Entries / 4 : 0) + (_maxRep > 0 ? Entries / 4 : 0);

    protected abstract long ValueBytes { get; }

    /// <summary>Records the levels of one entry; value writers call it after appending the value (if any).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Level(int rep, int def)
    {
        if (_maxRep > 0)
        {
            if (Entries == _rep.Length)
            {
                Pooled.Grow(ref _rep, Entries + 1);
            }

            _rep[Entries] = rep;
        }

        if (_maxDef > 0)
        {
            if (Entries == _def.Length)
            {
                Pooled.Grow(ref _def, Entries + 1);
            }

            _def[Entries] = def;
            if (def < _maxDef)
            {
                Nulls++;
            }
        }

        Entries++;
    }

    public ColumnMark Mark() => MarkValues(Entries, Nulls);

    public void Rollback(ColumnMark mark)
    {
        Entries = mark.Entries;
        Nulls = mark.Nulls;
        RollbackValues(mark);
    }

    public void Reset()
    {
        Entries = 0;
        Nulls = 0;
        ResetValues();
    }

    /// <summary>Returns pooled buffers; the writer is not used afterwards.</summary>
    public void Release()
    {
        Pooled.Return(ref _def);
        Pooled.Return(ref _rep);
        _parallelOutput?.Release();
        ReleaseValues();
    }

    protected abstract void ReleaseValues();

    /// <summary>
    /// Exchanges the buffered row group (values, levels, shredding state) with <paramref name="other"/>, a writer of
    /// the same column and type: the full row group can then be encoded from <paramref name="other"/> while rows
    /// are added here. Encoding scratch state stays with each instance.
    /// </summary>
    public void SwapWith(ColumnWriter other)
    {
        (_def, other._def) = (other._def, _def);
        (_rep, other._rep) = (other._rep, _rep);
        (Entries, other.Entries) = (other.Entries, Entries);
        (Nulls, other.Nulls) = (other.Nulls, Nulls);
        SwapValues(other);
    }

    protected abstract void SwapValues(ColumnWriter other);

    protected abstract ColumnMark MarkValues(int entries, int nulls);

    protected abstract void RollbackValues(ColumnMark mark);

    protected abstract void ResetValues();

    /// <summary>Decides on dictionary encoding; when chosen, writes the PLAIN dictionary into <paramref name="page"/> and returns its entry count.</summary>
    protected abstract bool TryBuildDictionary(ChunkContext ctx, ByteBuffer page, out int dictionaryCount);

    /// <summary>Writes values [<paramref name="from"/>, <paramref name="to"/>) PLAIN, or as dictionary indices when <paramref name="dictionary"/>.</summary>
    protected abstract void EncodeValues(ChunkContext ctx, ByteBuffer page, int from, int to, bool dictionary, int dictionaryCount);

    /// <summary>Average encoded bytes of one value, used to size pages.</summary>
    protected abstract double BytesPerValue(bool dictionary, int dictionaryCount);

    /// <summary>Min/max of the buffered values (already in Parquet statistics encoding), or nulls when there are none.</summary>
    protected abstract (byte[]? Min, byte[]? Max, bool Exact) ComputeMinMax(ChunkContext ctx, bool dictionary);

    /// <summary>
    /// Writes the column's values as PLAIN bytes without copying when they are stored that way already (fixed-width
    /// values, encoded byte arrays); lets a page without levels be compressed straight from the column buffer.
    /// </summary>
    protected virtual bool TryGetPlainValues(int from, int to, out ReadOnlySpan<byte> values)
    {
        values = default;
        return false;
    }

    /// <summary>The chunk buffer used when this column is encoded in parallel with others (kept across row groups).</summary>
    internal ByteBuffer ParallelOutput => _parallelOutput ??= new ByteBuffer(1 << 16);

    private ByteBuffer? _parallelOutput;

    /// <summary>Encodes the buffered column as a chunk into <paramref name="chunk"/> (cleared first); <paramref name="fileOffset"/> is where the chunk will start in the file.</summary>
    public ColumnChunk WriteChunk(ChunkContext ctx, ByteBuffer chunk, long fileOffset)
    {
        chunk.Clear();
        long uncompressedTotal = 0;
        var meta = new ColumnMetaData
        {
            Type = PhysicalType,
            PathInSchema = [.. Column.Path],
            Codec = ctx.Codec,
            NumValues = Entries,
        };

        ctx.Page.Clear();
        int dictionaryCount = 0;
        bool dictionary = ValueCount > 0 && TryBuildDictionary(ctx, ctx.Page, out dictionaryCount);

        if (dictionary)
        {
            meta.DictionaryPageOffset = fileOffset;
            uncompressedTotal += WritePage(ctx, chunk, ctx.Page.WrittenSpan, new PageHeader
            {
                Type = PageType.DictionaryPage,
                DictionaryNumValues = dictionaryCount,
                DictionaryEncoding = PageEncoding.Plain,
            });
        }

        meta.DataPageOffset = fileOffset + chunk.Length;
        double perValue = Math.Max(0.125, BytesPerValue(dictionary, dictionaryCount));
        int valuesPerPage = (int)Math.Clamp(ctx.PageSize / perValue, 1, int.MaxValue / 4);
        int entriesPerPage = (int)Math.Min(int.MaxValue, Math.Max(4096L, valuesPerPage * 4L));
        int e = 0, v = 0;
        while (e < Entries || (e == 0 && Entries == 0))
        {
            int e1, v1;
            if (_maxDef == 0 && _maxRep == 0)
            {
                e1 = (int)Math.Min(Entries, (long)e + valuesPerPage);
                v1 = e1;
            }
            else
            {
                e1 = e;
                v1 = v;
                while (e1 < Entries)
                {
                    if (e1 > e && (_maxRep == 0 || _rep[e1] == 0) && (v1 - v >= valuesPerPage || e1 - e >= entriesPerPage))
                    {
                        break;
                    }

                    if (_maxDef == 0 || _def[e1] == _maxDef)
                    {
                        v1++;
                    }

                    e1++;
                }
            }

            uncompressedTotal += WriteDataPage(ctx, chunk, e, e1, v, v1, dictionary, dictionaryCount);
            e = e1;
            v = v1;
            if (Entries == 0)
            {
                break;
            }
        }

        meta.Encodings = dictionary ? [PageEncoding.Plain, PageEncoding.Rle, PageEncoding.RleDictionary] : [PageEncoding.Plain, PageEncoding.Rle];
        meta.TotalCompressedSize = chunk.Length;
        meta.TotalUncompressedSize = uncompressedTotal;
        var (min, max, exact) = ValueCount > 0 ? ComputeMinMax(ctx, dictionary) : (null, null, true);
        meta.Statistics = new Statistics
        {
            NullCount = Nulls,
            MinValue = min,
            MaxValue = max,
            IsMinValueExact = min is null ? null : exact,
            IsMaxValueExact = max is null ? null : exact,
        };
        return new ColumnChunk { FileOffset = meta.DictionaryPageOffset ?? meta.DataPageOffset, MetaData = meta };
    }

    private long WriteDataPage(ChunkContext ctx, ByteBuffer chunk, int e0, int e1, int v0, int v1, bool dictionary, int dictionaryCount)
    {
        if (ctx.DataPageV2)
        {
            return WriteDataPageV2(ctx, chunk, e0, e1, v0, v1, dictionary, dictionaryCount);
        }

        var header = new PageHeader
        {
            Type = PageType.DataPage,
            DataPageHeader = new DataPageHeader
            {
                NumValues = e1 - e0,
                Encoding = dictionary ? PageEncoding.RleDictionary : PageEncoding.Plain,
                DefinitionLevelEncoding = PageEncoding.Rle,
                RepetitionLevelEncoding = PageEncoding.Rle,
            },
        };

        // A required, non-repeated PLAIN page is the value bytes themselves: compress them where they lie.
        if (_maxRep == 0 && _maxDef == 0 && !dictionary && v1 > v0 && TryGetPlainValues(v0, v1, out var plain))
        {
            return WritePage(ctx, chunk, plain, header);
        }

        var page = ctx.Page;
        page.Clear();
        if (_maxRep > 0)
        {
            WriteLevels(page, _rep.AsSpan(e0, e1 - e0), RleBitPackedHybrid.BitWidth(_maxRep));
        }

        if (_maxDef > 0)
        {
            WriteLevels(page, _def.AsSpan(e0, e1 - e0), RleBitPackedHybrid.BitWidth(_maxDef));
        }

        if (v1 > v0)
        {
            EncodeValues(ctx, page, v0, v1, dictionary, dictionaryCount);
        }

        return WritePage(ctx, chunk, page.WrittenSpan, header);
    }

    /// <summary>
    /// DATA_PAGE_V2: repetition then definition levels (RLE hybrid, no length prefix, never compressed), then the
    /// values, compressed alone. The header carries the level lengths and the page's rows and nulls.
    /// </summary>
    private long WriteDataPageV2(ChunkContext ctx, ByteBuffer chunk, int e0, int e1, int v0, int v1, bool dictionary, int dictionaryCount)
    {
        var page = ctx.Page;
        page.Clear();
        int repLength = 0, defLength = 0, rows = e1 - e0;
        if (_maxRep > 0)
        {
            RleBitPackedHybrid.Encode(_rep.AsSpan(e0, e1 - e0), RleBitPackedHybrid.BitWidth(_maxRep), page);
            repLength = page.Length;
            rows = 0;
            foreach (int r in _rep.AsSpan(e0, e1 - e0))
            {
                if (r == 0)
                {
                    rows++;
                }
            }
        }

        if (_maxDef > 0)
        {
            RleBitPackedHybrid.Encode(_def.AsSpan(e0, e1 - e0), RleBitPackedHybrid.BitWidth(_maxDef), page);
            defLength = page.Length - repLength;
        }

        int levels = page.Length;
        ReadOnlySpan<byte> values;
        if (v1 <= v0)
        {
            values = default;
        }
        else if (!dictionary && TryGetPlainValues(v0, v1, out var plain))
        {
            values = plain;
        }
        else
        {
            EncodeValues(ctx, page, v0, v1, dictionary, dictionaryCount);
            values = page.WrittenSpan[levels..];
        }

        var compressed = Compression.Compress(ctx.Codec, values, ctx.Compressed);
        var header = new PageHeader
        {
            Type = PageType.DataPageV2,
            UncompressedPageSize = levels + values.Length,
            CompressedPageSize = levels + compressed.Length,
            DataPageHeaderV2 = new DataPageHeaderV2
            {
                NumValues = e1 - e0,
                NumNulls = (e1 - e0) - (v1 - v0),
                NumRows = rows,
                Encoding = dictionary ? PageEncoding.RleDictionary : PageEncoding.Plain,
                DefinitionLevelsByteLength = defLength,
                RepetitionLevelsByteLength = repLength,
                IsCompressed = ctx.Codec != CompressionCodec.Uncompressed,
            },
        };
        ctx.Header.Clear();
        header.Write(ctx.HeaderWriter);
        chunk.Write(ctx.Header.WrittenSpan);
        chunk.Write(page.WrittenSpan[..levels]);
        chunk.Write(compressed);
        return ctx.Header.Length + levels + values.Length;
    }

    private static void WriteLevels(ByteBuffer page, ReadOnlySpan<int> levels, int bitWidth)
    {
        int lengthAt = page.Length;
        page.GetSpan(4);
        int start = page.Length;
        RleBitPackedHybrid.Encode(levels, bitWidth, page);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(page.WrittenSpan.Slice(lengthAt, 4), page.Length - start);
    }

    /// <summary>Compresses <paramref name="body"/>, writes header and compressed body to the chunk, returns header + uncompressed body bytes.</summary>
    private static long WritePage(ChunkContext ctx, ByteBuffer chunk, ReadOnlySpan<byte> body, PageHeader header)
    {
        var compressed = Compression.Compress(ctx.Codec, body, ctx.Compressed);
        header.UncompressedPageSize = body.Length;
        header.CompressedPageSize = compressed.Length;
        ctx.Header.Clear();
        header.Write(ctx.HeaderWriter);
        chunk.Write(ctx.Header.WrittenSpan);
        chunk.Write(compressed);
        return ctx.Header.Length + body.Length;
    }

    protected static void WriteIndices(ByteBuffer page, ReadOnlySpan<int> indices, int dictionaryCount)
    {
        int bitWidth = Math.Max(1, RleBitPackedHybrid.BitWidth(dictionaryCount - 1));
        page.WriteByte((byte)bitWidth);
        RleBitPackedHybrid.Encode(indices, bitWidth, page);
    }

    protected static double IndexBytes(int dictionaryCount) => Math.Max(1, RleBitPackedHybrid.BitWidth(dictionaryCount - 1)) / 8.0;
}
