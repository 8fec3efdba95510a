using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Kawa.Dataflow.Parquet.Format;
using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Parquet.Writing;

/// <summary>
/// Fixed-width numeric columns (INT32, INT64, FLOAT, DOUBLE). PLAIN is the little-endian array itself; a
/// dictionary is tried at flush and kept only when values repeat enough and it stays under the size limit.
/// </summary>
internal abstract class PrimitiveColumnWriter<T> : ColumnWriter
    where T : unmanaged
{
    private T[] _values = [];
    private int _count;

    protected PrimitiveColumnWriter(ColumnDescriptor column, PhysicalType type)
        : base(column, type)
    {
    }

    public override int ValueCount => _count;

    protected override long ValueBytes => (long)_count * Unsafe.SizeOf<T>();

    protected ReadOnlySpan<T> Values => _values.AsSpan(0, _count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Append(T value)
    {
        if (_count == _values.Length)
        {
            Pooled.Grow(ref _values, _count + 1);
        }

        _values[_count++] = value;
    }

    protected override ColumnMark MarkValues(int entries, int nulls) => new(entries, nulls, _count, 0, 0);

    protected override void RollbackValues(ColumnMark mark) => _count = mark.Values;

    protected override void ResetValues() => _count = 0;

    protected override void SwapValues(ColumnWriter other)
    {
        var o = (PrimitiveColumnWriter<T>)other;
        (_values, o._values) = (o._values, _values);
        (_count, o._count) = (o._count, _count);
    }

    protected override void ReleaseValues()
    {
        Pooled.Return(ref _values);
        DictionaryPool<T>.Return(ref _dictionary);
        _unique = null;
    }

    private Dictionary<T, int>? _dictionary;
    private List<T>? _unique;

    protected abstract IEqualityComparer<T> Comparer { get; }

    protected override bool TryBuildDictionary(ChunkContext ctx, ByteBuffer page, out int dictionaryCount)
    {
        bool built = BuildDictionary(ctx, page, out dictionaryCount);
        if (_dictionary is { Count: > RetainedDictionaryEntries })
        {
            // A large table is not kept with the open file between row groups (many files may be open); it goes back
            // to the shared pool for whichever writer needs one next.
            DictionaryPool<T>.Return(ref _dictionary);
            _unique = null;
        }

        return built;
    }

    private const int RetainedDictionaryEntries = 16 * 1024;

    private bool BuildDictionary(ChunkContext ctx, ByteBuffer page, out int dictionaryCount)
    {
        dictionaryCount = 0;
        int size = Unsafe.SizeOf<T>();
        int limit = ctx.DictionaryMaxBytes / size;
        if (limit <= 0 || _count < 64)
        {
            return false;
        }

        // Kept across row groups (cleared, capacity retained) so trying a dictionary allocates nothing in steady state.
        var dict = _dictionary ??= DictionaryPool<T>.Rent(Comparer);
        var uniq = _unique ??= [];
        dict.Clear();
        uniq.Clear();
        var indices = ctx.Indices;
        Pooled.Grow(ref indices, _count);
        ctx.Indices = indices;
        var values = Values;
        for (int i = 0; i < values.Length; i++)
        {
            ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(dict, values[i], out bool exists);
            if (!exists)
            {
                slot = uniq.Count;
                uniq.Add(values[i]);
                if (uniq.Count > limit)
                {
                    return false;
                }
            }

            indices[i] = slot;

            // Mostly distinct values: a dictionary would only add bytes; stop early.
            if ((i & 4095) == 4095 && uniq.Count * 2 > i)
            {
                return false;
            }
        }

        // Keep the dictionary only when indices are clearly smaller than the values.
        double indexBytes = IndexBytes(uniq.Count);
        if ((uniq.Count * (double)size) + (values.Length * indexBytes) > values.Length * (double)size * 0.75)
        {
            return false;
        }

        page.Write(MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(uniq)));
        dictionaryCount = uniq.Count;
        return true;
    }

    protected override void EncodeValues(ChunkContext ctx, ByteBuffer page, int from, int to, bool dictionary, int dictionaryCount)
    {
        if (dictionary)
        {
            WriteIndices(page, ctx.Indices.AsSpan(from, to - from), dictionaryCount);
        }
        else
        {
            page.Write(MemoryMarshal.AsBytes(_values.AsSpan(from, to - from)));
        }
    }

    protected override double BytesPerValue(bool dictionary, int dictionaryCount) =>
        dictionary ? IndexBytes(dictionaryCount) : Unsafe.SizeOf<T>();

    protected override bool TryGetPlainValues(int from, int to, out ReadOnlySpan<byte> values)
    {
        values = MemoryMarshal.AsBytes(_values.AsSpan(from, to - from));
        return BitConverter.IsLittleEndian;
    }

    protected static byte[] Bytes(T value) => MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)).ToArray();

    /// <summary>The smallest and largest value in the order of <typeparamref name="TNumber"/> (signed or unsigned).</summary>
    protected static (TNumber Min, TNumber Max) MinMax<TNumber>(ReadOnlySpan<TNumber> values)
        where TNumber : System.Numerics.INumber<TNumber>, System.Numerics.IMinMaxValue<TNumber>
    {
        TNumber min = TNumber.MaxValue, max = TNumber.MinValue;
        foreach (var x in values)
        {
            min = TNumber.Min(min, x);
            max = TNumber.Max(max, x);
        }

        return (min, max);
    }
}

internal sealed class Int32ColumnWriter(ColumnDescriptor column, bool unsigned) : PrimitiveColumnWriter<int>(column, PhysicalType.Int32)
{
    protected override IEqualityComparer<int> Comparer => EqualityComparer<int>.Default;

    protected override (byte[]? Min, byte[]? Max, bool Exact) ComputeMinMax(ChunkContext ctx, bool dictionary)
    {
        var v = Values;
        if (unsigned)
        {
            var (umin, umax) = MinMax(MemoryMarshal.Cast<int, uint>(v));
            return (Bytes((int)umin), Bytes((int)umax), true);
        }

        var (min, max) = MinMax(v);
        return (Bytes(min), Bytes(max), true);
    }
}

internal sealed class Int64ColumnWriter(ColumnDescriptor column, bool unsigned) : PrimitiveColumnWriter<long>(column, PhysicalType.Int64)
{
    protected override IEqualityComparer<long> Comparer => EqualityComparer<long>.Default;

    protected override (byte[]? Min, byte[]? Max, bool Exact) ComputeMinMax(ChunkContext ctx, bool dictionary)
    {
        var v = Values;
        if (unsigned)
        {
            var (umin, umax) = MinMax(MemoryMarshal.Cast<long, ulong>(v));
            return (Bytes((long)umin), Bytes((long)umax), true);
        }

        var (min, max) = MinMax(v);
        return (Bytes(min), Bytes(max), true);
    }
}

/// <summary>Compares floats and doubles by bit pattern so -0.0, +0.0 and NaN payloads stay distinct in dictionaries.</summary>
internal sealed class BitwiseComparer : IEqualityComparer<double>, IEqualityComparer<float>
{
    public static readonly BitwiseComparer Instance = new();

    public bool Equals(double x, double y) => BitConverter.DoubleToInt64Bits(x) == BitConverter.DoubleToInt64Bits(y);

    public int GetHashCode(double obj) => BitConverter.DoubleToInt64Bits(obj).GetHashCode();

    public bool Equals(float x, float y) => BitConverter.SingleToInt32Bits(x) == BitConverter.SingleToInt32Bits(y);

    public int GetHashCode(float obj) => BitConverter.SingleToInt32Bits(obj);
}

/// <summary>Min/max statistics of FLOAT and DOUBLE columns, written once for both widths.</summary>
/// <remarks>Generic over the struct type, so the JIT compiles a separate loop for float and for double:
/// no boxing and no interface calls per value.</remarks>
internal static class FloatingMinMax
{
    /// <summary>False when every value is NaN (or there are none): the chunk then has no min/max.</summary>
    public static bool TryCompute<T>(ReadOnlySpan<T> values, out T min, out T max)
        where T : struct, IFloatingPointIeee754<T>
    {
        // NaN is left out of min/max; min -0.0 and max +0.0 so zero of either sign is covered (parquet.thrift rules).
        min = T.PositiveInfinity;
        max = T.NegativeInfinity;
        bool any = false;
        foreach (T x in values)
        {
            if (T.IsNaN(x))
            {
                continue;
            }

            any = true;
            if (x < min) min = x;
            if (x > max) max = x;
        }

        if (!any)
        {
            return false;
        }

        if (min == T.Zero) min = T.NegativeZero;
        if (max == T.Zero) max = T.Zero;
        return true;
    }
}

internal sealed class DoubleColumnWriter(ColumnDescriptor column) : PrimitiveColumnWriter<double>(column, PhysicalType.Double)
{
    protected override IEqualityComparer<double> Comparer => BitwiseComparer.Instance;

    protected override (byte[]? Min, byte[]? Max, bool Exact) ComputeMinMax(ChunkContext ctx, bool dictionary)
        => FloatingMinMax.TryCompute(Values, out var min, out var max) ? (Bytes(min), Bytes(max), true) : (null, null, true);
}

internal sealed class FloatColumnWriter(ColumnDescriptor column) : PrimitiveColumnWriter<float>(column, PhysicalType.Float)
{
    protected override IEqualityComparer<float> Comparer => BitwiseComparer.Instance;

    protected override (byte[]? Min, byte[]? Max, bool Exact) ComputeMinMax(ChunkContext ctx, bool dictionary)
        => FloatingMinMax.TryCompute(Values, out var min, out var max) ? (Bytes(min), Bytes(max), true) : (null, null, true);
}

/// <summary>BOOLEAN column: PLAIN is one bit per value, least significant bit first.</summary>
internal sealed class BooleanColumnWriter(ColumnDescriptor column) : ColumnWriter(column, PhysicalType.Boolean)
{
    private bool[] _values = [];
    private int _count;

    public override int ValueCount => _count;

    protected override long ValueBytes => _count / 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Append(bool value)
    {
        if (_count == _values.Length)
        {
            Pooled.Grow(ref _values, _count + 1);
        }

        _values[_count++] = value;
    }

    protected override ColumnMark MarkValues(int entries, int nulls) => new(entries, nulls, _count, 0, 0);

    protected override void RollbackValues(ColumnMark mark) => _count = mark.Values;

    protected override void ResetValues() => _count = 0;

    protected override void ReleaseValues() => Pooled.Return(ref _values);

    protected override void SwapValues(ColumnWriter other)
    {
        var o = (BooleanColumnWriter)other;
        (_values, o._values) = (o._values, _values);
        (_count, o._count) = (o._count, _count);
    }

    protected override bool TryBuildDictionary(ChunkContext ctx, ByteBuffer page, out int dictionaryCount)
    {
        dictionaryCount = 0;
        return false;
    }

    protected override void EncodeValues(ChunkContext ctx, ByteBuffer page, int from, int to, bool dictionary, int dictionaryCount)
    {
        int n = to - from;
        var dst = page.GetSpan((n + 7) / 8);
        dst.Clear();
        for (int i = 0; i < n; i++)
        {
            if (_values[from + i])
            {
                dst[i >> 3] |= (byte)(1 << (i & 7));
            }
        }
    }

    protected override double BytesPerValue(bool dictionary, int dictionaryCount) => 0.125;

    protected override (byte[]? Min, byte[]? Max, bool Exact) ComputeMinMax(ChunkContext ctx, bool dictionary)
    {
        bool anyTrue = false, anyFalse = false;
        for (int i = 0; i < _count; i++)
        {
            if (_values[i]) anyTrue = true;
            else anyFalse = true;
        }

        return ([(byte)(anyFalse ? 0 : 1)], [(byte)(anyTrue ? 1 : 0)], true);
    }
}
