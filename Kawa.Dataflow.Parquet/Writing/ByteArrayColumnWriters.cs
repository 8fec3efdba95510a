using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Kawa.Dataflow.Parquet.Format;
using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Parquet.Writing;

/// <summary>
/// BYTE_ARRAY column. Strings start in dictionary mode keyed by the .NET string itself (a repeated value costs a
/// hash lookup, no UTF-8 encoding); when the dictionary passes the size limit or values are mostly distinct, the
/// column falls back to PLAIN for the rest of the row group. Binary values are kept PLAIN and a dictionary over
/// their bytes is tried when the row group is written, with the same rule (<see cref="DictionaryRule"/>). PLAIN
/// values are kept already encoded (4-byte length + bytes), so a PLAIN page is a copy.
/// </summary>
internal sealed class ByteArrayColumnWriter : ColumnWriter
{
    private readonly bool _isString;
    private ByteBuffer _data = new(1 << 16);
    private int[] _offsets = [];
    private int _count;

    // Dictionary mode (strings only).
    private bool _dictionaryMode;
    private Dictionary<string, int>? _dict;
    private List<string>? _uniq;
    private int[] _indices = [];
    private long _dictBytes;
    private readonly int _dictionaryMaxBytes;

    public ByteArrayColumnWriter(ColumnDescriptor column, bool isString, int dictionaryMaxBytes)
        : base(column, PhysicalType.ByteArray)
    {
        _isString = isString;
        _dictionaryMaxBytes = dictionaryMaxBytes;
        ResetValues();
    }

    public override int ValueCount => _count;

    protected override long ValueBytes => _dictionaryMode ? _dictBytes + (_count * 2L) : _data.Length;

    public void AppendString(string value)
    {
        if (_dictionaryMode)
        {
            ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_dict!, value, out bool exists);
            if (!exists)
            {
                slot = _uniq!.Count;
                _uniq.Add(value);
                _dictBytes += 4 + Encoding.UTF8.GetByteCount(value);
            }

            if (_count == _indices.Length)
            {
                Pooled.Grow(ref _indices, _count + 1);
            }

            _indices[_count++] = slot;
            if (DictionaryRule.ShouldFallBack(_dictBytes, _dictionaryMaxBytes, _count, _uniq!.Count))
            {
                FallBackToPlain();
            }

            return;
        }

        int max = Encoding.UTF8.GetMaxByteCount(value.Length);
        int start = _data.Length;
        var span = _data.GetFreeSpan(4 + max);
        int n = Encoding.UTF8.GetBytes(value, span[4..]);
        BinaryPrimitives.WriteInt32LittleEndian(span, n);
        _data.Advance(4 + n);
        AddOffset(start);
    }

    public void AppendBytes(ReadOnlySpan<byte> value)
    {
        int start = _data.Length;
        _data.WriteInt32LittleEndian(value.Length);
        _data.Write(value);
        AddOffset(start);
    }

    private void AddOffset(int start)
    {
        if (_count == _offsets.Length)
        {
            Pooled.Grow(ref _offsets, _count + 1);
        }

        _offsets[_count++] = start;
    }

    private void FallBackToPlain()
    {
        int n = _count;
        _count = 0;
        _dictionaryMode = false;
        for (int i = 0; i < n; i++)
        {
            AppendString(_uniq![_indices[i]]);
        }

        _dict!.Clear();
        _uniq!.Clear();
        _dictBytes = 0;
    }

    protected override ColumnMark MarkValues(int entries, int nulls) =>
        new(entries, nulls, _count, _dictionaryMode ? _uniq!.Count : -1, _dictBytes);

    protected override void RollbackValues(ColumnMark mark)
    {
        if (_dictionaryMode)
        {
            for (int i = _uniq!.Count - 1; i >= mark.Aux; i--)
            {
                _dict!.Remove(_uniq[i]);
                _uniq.RemoveAt(i);
            }

            _dictBytes = mark.Aux2;
        }
        else if (mark.Values < _count)
        {
            _data.SetLength(_offsets[mark.Values]);
        }

        _count = mark.Values;
    }

    protected override void ResetValues()
    {
        _count = 0;
        _data.Clear();
        _dictBytes = 0;
        _dictionaryMode = _isString && _dictionaryMaxBytes > 0;
        if (_dictionaryMode)
        {
            _dict ??= DictionaryPool<string>.Rent(StringComparer.Ordinal);
            _uniq ??= [];
            _dict.Clear();
            _uniq.Clear();
        }
    }

    protected override void ReleaseValues()
    {
        _data.Release();
        _dictionaryCopy.Release();
        Pooled.Return(ref _offsets);
        Pooled.Return(ref _indices);
        DictionaryPool<string>.Return(ref _dict);
        _uniq?.Clear();
        _bytes?.Release();
    }

    private ByteDictionary? _bytes;

    protected override void SwapValues(ColumnWriter other)
    {
        var o = (ByteArrayColumnWriter)other;
        (_data, o._data) = (o._data, _data);
        (_offsets, o._offsets) = (o._offsets, _offsets);
        (_count, o._count) = (o._count, _count);
        (_dictionaryMode, o._dictionaryMode) = (o._dictionaryMode, _dictionaryMode);
        (_dict, o._dict) = (o._dict, _dict);
        (_uniq, o._uniq) = (o._uniq, _uniq);
        (_indices, o._indices) = (o._indices, _indices);
        (_dictBytes, o._dictBytes) = (o._dictBytes, _dictBytes);
    }

    private int _dictionaryPageStart;
    private int _dictionaryPageLength;

    protected override bool TryBuildDictionary(ChunkContext ctx, ByteBuffer page, out int dictionaryCount)
    {
        dictionaryCount = 0;
        if (!_isString)
        {
            return TryBuildBinaryDictionary(ctx, page, out dictionaryCount);
        }

        if (!_dictionaryMode)
        {
            return false;
        }

        foreach (string s in _uniq!)
        {
            int max = Encoding.UTF8.GetMaxByteCount(s.Length);
            var span = page.GetFreeSpan(4 + max);
            int n = Encoding.UTF8.GetBytes(s, span[4..]);
            BinaryPrimitives.WriteInt32LittleEndian(span, n);
            page.Advance(4 + n);
        }

        // Statistics read the encoded dictionary; keep a copy since the page buffer is reused for data pages.
        _dictionaryCopy.Clear();
        _dictionaryCopy.Write(page.WrittenSpan);
        _dictionaryPageStart = 0;
        _dictionaryPageLength = page.Length;
        dictionaryCount = _uniq.Count;
        return true;
    }

    private readonly ByteBuffer _dictionaryCopy = new(256);

    /// <summary>Binary values: a dictionary over the buffered PLAIN bytes, built into the page, indices into <c>ctx.Indices</c>.</summary>
    private bool TryBuildBinaryDictionary(ChunkContext ctx, ByteBuffer page, out int dictionaryCount)
    {
        var values = new LengthPrefixedValues(_data);
        return ByteDictionaryBuilder.TryBuild(ref _bytes, lengthPrefixed: true, ctx, page, _count, ref values, out dictionaryCount);
    }

    internal const int ByteDictionaryRetainedEntries = 16 * 1024;

    protected override void EncodeValues(ChunkContext ctx, ByteBuffer page, int from, int to, bool dictionary, int dictionaryCount)
    {
        if (dictionary)
        {
            WriteIndices(page, (_dictionaryMode ? _indices : ctx.Indices).AsSpan(from, to - from), dictionaryCount);
        }
        else
        {
            int start = _offsets[from];
            int end = to < _count ? _offsets[to] : _data.Length;
            page.Write(_data.WrittenSpan[start..end]);
        }
    }

    protected override double BytesPerValue(bool dictionary, int dictionaryCount) =>
        dictionary ? IndexBytes(dictionaryCount) : _count == 0 ? 4 : (double)_data.Length / _count;

    protected override bool TryGetPlainValues(int from, int to, out ReadOnlySpan<byte> values)
    {
        if (_dictionaryMode)
        {
            values = default;
            return false;
        }

        int start = _offsets[from];
        int end = to < _count ? _offsets[to] : _data.Length;
        values = _data.WrittenSpan[start..end];
        return true;
    }

    protected override (byte[]? Min, byte[]? Max, bool Exact) ComputeMinMax(ChunkContext ctx, bool dictionary)
    {
        ReadOnlySpan<byte> data = dictionary && _dictionaryMode ? _dictionaryCopy.WrittenSpan.Slice(_dictionaryPageStart, _dictionaryPageLength) : _data.WrittenSpan;
        ReadOnlySpan<byte> min = default, max = default;
        bool first = true;
        int pos = 0;
        while (pos < data.Length)
        {
            int len = BinaryPrimitives.ReadInt32LittleEndian(data[pos..]);
            var value = data.Slice(pos + 4, len);
            pos += 4 + len;
            if (first)
            {
                min = max = value;
                first = false;
                continue;
            }

            if (value.SequenceCompareTo(min) < 0) min = value;
            if (value.SequenceCompareTo(max) > 0) max = value;
        }

        return StatisticsTruncation.Truncate(min, max, ctx.StatisticsMaxBytes, _isString);
    }
}

/// <summary>
/// FIXED_LEN_BYTE_ARRAY column (UUIDs, wide decimals). Values are kept PLAIN; a dictionary over their bytes is tried
/// when the row group is written, with the rule of strings (<see cref="DictionaryRule"/>).
/// </summary>
internal sealed class FixedLenColumnWriter(ColumnDescriptor column, int length, bool signed) : ColumnWriter(column, PhysicalType.FixedLenByteArray)
{
    private ByteBuffer _data = new(4096);
    private int _count;

    public int Length => length;

    public override int ValueCount => _count;

    protected override long ValueBytes => _data.Length;

    /// <summary>Reserves the next value's bytes for the caller to fill.</summary>
    public Span<byte> AppendSpan()
    {
        _count++;
        return _data.GetSpan(length);
    }

    protected override ColumnMark MarkValues(int entries, int nulls) => new(entries, nulls, _count, 0, 0);

    protected override void RollbackValues(ColumnMark mark)
    {
        _count = mark.Values;
        _data.SetLength(_count * length);
    }

    protected override void ResetValues()
    {
        _count = 0;
        _data.Clear();
    }

    protected override void ReleaseValues()
    {
        _data.Release();
        _bytes?.Release();
        _bytes = null;
    }

    private ByteDictionary? _bytes;

    protected override void SwapValues(ColumnWriter other)
    {
        var o = (FixedLenColumnWriter)other;
        (_data, o._data) = (o._data, _data);
        (_count, o._count) = (o._count, _count);
    }

    protected override bool TryBuildDictionary(ChunkContext ctx, ByteBuffer page, out int dictionaryCount)
    {
        var values = new FixedLengthValues(_data, length);
        return ByteDictionaryBuilder.TryBuild(ref _bytes, lengthPrefixed: false, ctx, page, _count, ref values, out dictionaryCount);
    }

    protected override void EncodeValues(ChunkContext ctx, ByteBuffer page, int from, int to, bool dictionary, int dictionaryCount)
    {
        if (dictionary)
        {
            WriteIndices(page, ctx.Indices.AsSpan(from, to - from), dictionaryCount);
        }
        else
        {
            page.Write(_data.WrittenSpan.Slice(from * length, (to - from) * length));
        }
    }

    protected override double BytesPerValue(bool dictionary, int dictionaryCount) => dictionary ? IndexBytes(dictionaryCount) : length;

    protected override bool TryGetPlainValues(int from, int to, out ReadOnlySpan<byte> values)
    {
        values = _data.WrittenSpan.Slice(from * length, (to - from) * length);
        return true;
    }

    protected override (byte[]? Min, byte[]? Max, bool Exact) ComputeMinMax(ChunkContext ctx, bool dictionary)
    {
        var data = _data.WrittenSpan;
        var min = data[..length];
        var max = min;
        for (int i = 1; i < _count; i++)
        {
            var v = data.Slice(i * length, length);
            if (Compare(v, min) < 0) min = v;
            if (Compare(v, max) > 0) max = v;
        }

        return (min.ToArray(), max.ToArray(), true);
    }

    private int Compare(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (signed && (sbyte)a[0] != (sbyte)b[0])
        {
            // Big-endian two's complement: the first byte decides the sign.
            return ((sbyte)a[0]).CompareTo((sbyte)b[0]);
        }

        return a.SequenceCompareTo(b);
    }
}

/// <summary>A forward pass over a column chunk's buffered values, one value per <see cref="Next"/>.</summary>
/// <remarks>Implemented by structs and used as a generic constraint, so each layout gets its own inlined loop.</remarks>
internal interface IByteValueCursor
{
    /// <summary>The next value; valid until the next call.</summary>
    ReadOnlySpan<byte> Next();
}

/// <summary>BYTE_ARRAY values buffered PLAIN: a 4-byte little-endian length, then the bytes.</summary>
internal struct LengthPrefixedValues(ByteBuffer data) : IByteValueCursor
{
    private int _pos;

    public ReadOnlySpan<byte> Next()
    {
        // Read through the buffer each time: the page may grow, but the value buffer does not change here.
        var span = data.WrittenSpan;
        int len = BinaryPrimitives.ReadInt32LittleEndian(span[_pos..]);
        var value = span.Slice(_pos + 4, len);
        _pos += 4 + len;
        return value;
    }
}

/// <summary>FIXED_LEN_BYTE_ARRAY values buffered back to back, <c>length</c> bytes each.</summary>
internal struct FixedLengthValues(ByteBuffer data, int length) : IByteValueCursor
{
    private int _pos;

    public ReadOnlySpan<byte> Next()
    {
        var value = data.WrittenSpan.Slice(_pos, length);
        _pos += length;
        return value;
    }
}

/// <summary>Builds the dictionary page of a byte-valued chunk, for BYTE_ARRAY and FIXED_LEN_BYTE_ARRAY alike.</summary>
/// <remarks>One copy of the size-limit fallback and of the rule that a large table is not kept between row groups,
/// so the two column kinds cannot disagree on when dictionary encoding is abandoned.</remarks>
internal static class ByteDictionaryBuilder
{
    /// <summary>Writes the dictionary into <paramref name="page"/> and its indices into <c>ctx.Indices</c>; false
    /// (page rolled back) when dictionaries are off or the table outgrew <c>ctx.DictionaryMaxBytes</c>.</summary>
    public static bool TryBuild<TValues>(ref ByteDictionary? cached, bool lengthPrefixed, ChunkContext ctx, ByteBuffer page, int count, ref TValues values, out int dictionaryCount)
        where TValues : struct, IByteValueCursor
    {
        dictionaryCount = 0;
        if (ctx.DictionaryMaxBytes <= 0)
        {
            return false;
        }

        var dict = cached ??= new ByteDictionary(lengthPrefixed);
        int pageStart = page.Length;
        dict.Reset(page);
        var indices = ctx.Indices;
        Pooled.Grow(ref indices, count);
        ctx.Indices = indices;
        bool built = true;
        for (int i = 0; i < count; i++)
        {
            indices[i] = dict.GetOrAdd(values.Next());
            if (DictionaryRule.ShouldFallBack(page.Length - pageStart, ctx.DictionaryMaxBytes, i + 1, dict.Count))
            {
                page.SetLength(pageStart);
                built = false;
                break;
            }
        }

        dictionaryCount = dict.Count;
        if (dict.Count > ByteArrayColumnWriter.ByteDictionaryRetainedEntries)
        {
            // A large table is not kept with the open file between row groups.
            dict.Release();
            cached = null;
        }

        return built;
    }
}

/// <summary>Truncates long byte-array statistics: the minimum is cut (still a lower bound), the maximum cut and incremented.</summary>
internal static class StatisticsTruncation
{
    public static (byte[]? Min, byte[]? Max, bool Exact) Truncate(ReadOnlySpan<byte> min, ReadOnlySpan<byte> max, int limit, bool utf8)
    {
        bool exact = true;
        byte[] minOut;
        byte[]? maxOut;
        if (min.Length > limit)
        {
            exact = false;
            int cut = utf8 ? Utf8Boundary(min, limit) : limit;
            minOut = min[..cut].ToArray();
        }
        else
        {
            minOut = min.ToArray();
        }

        if (max.Length > limit)
        {
            exact = false;
            maxOut = utf8 ? IncrementUtf8(max, limit) : IncrementBytes(max, limit);
        }
        else
        {
            maxOut = max.ToArray();
        }

        return (minOut, maxOut, exact);
    }

    /// <summary>Largest cut ≤ limit that does not split a UTF-8 sequence.</summary>
    private static int Utf8Boundary(ReadOnlySpan<byte> s, int limit)
    {
        int cut = limit;
        while (cut > 0 && (s[cut] & 0xC0) == 0x80)
        {
            cut--;
        }

        return cut;
    }

    private static byte[]? IncrementBytes(ReadOnlySpan<byte> s, int limit)
    {
        var b = s[..limit].ToArray();
        for (int i = b.Length - 1; i >= 0; i--)
        {
            if (b[i] != 0xFF)
            {
                b[i]++;
                return b[..(i + 1)];
            }
        }

        return null;
    }

    /// <summary>Cuts at a code point boundary and increments the last code point that can be (skipping surrogates), so the result stays valid UTF-8 and above every string with that prefix.</summary>
    private static byte[]? IncrementUtf8(ReadOnlySpan<byte> s, int limit)
    {
        int cut = Utf8Boundary(s, limit);
        string prefix = Encoding.UTF8.GetString(s[..cut]);
        var runes = prefix.EnumerateRunes().ToList();
        for (int i = runes.Count - 1; i >= 0; i--)
        {
            int next = runes[i].Value + 1;
            if (next == 0xD800)
            {
                next = 0xE000;
            }

            if (next <= 0x10FFFF)
            {
                var sb = new StringBuilder();
                for (int k = 0; k < i; k++)
                {
                    sb.Append(runes[k].ToString());
                }

                sb.Append(new Rune(next).ToString());
                return Encoding.UTF8.GetBytes(sb.ToString());
            }
        }

        return null;
    }
}
