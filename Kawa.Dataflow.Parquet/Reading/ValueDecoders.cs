using System.Buffers.Binary;
using System.Text;
using Kawa.Dataflow.Parquet.Format;

namespace Kawa.Dataflow.Parquet.Reading;

/// <summary>Raw decoded values of one page or dictionary, in the column's physical type.</summary>
internal sealed class RawValues
{
    public int Count;
    public bool[]? Bools;
    public int[]? Ints;
    public long[]? Longs;
    public float[]? Floats;
    public double[]? Doubles;
    public byte[][]? Bytes;
}

/// <summary>Decoders for the value encodings of Encodings.md.</summary>
internal static class ValueDecoders
{
    public static RawValues DecodePlain(ReadOnlySpan<byte> data, PhysicalType type, int typeLength, int count, string path)
    {
        var r = new RawValues { Count = count };
        int pos = 0;
        switch (type)
        {
            case PhysicalType.Boolean:
                Need(data, (count + 7) / 8, path);
                r.Bools = new bool[count];
                for (int i = 0; i < count; i++) r.Bools[i] = (data[i >> 3] & (1 << (i & 7))) != 0;
                break;
            case PhysicalType.Int32:
                Need(data, count * 4L, path);
                r.Ints = new int[count];
                for (int i = 0; i < count; i++) r.Ints[i] = BinaryPrimitives.ReadInt32LittleEndian(data[(i * 4)..]);
                break;
            case PhysicalType.Int64:
                Need(data, count * 8L, path);
                r.Longs = new long[count];
                for (int i = 0; i < count; i++) r.Longs[i] = BinaryPrimitives.ReadInt64LittleEndian(data[(i * 8)..]);
                break;
            case PhysicalType.Float:
                Need(data, count * 4L, path);
                r.Floats = new float[count];
                for (int i = 0; i < count; i++) r.Floats[i] = BinaryPrimitives.ReadSingleLittleEndian(data[(i * 4)..]);
                break;
            case PhysicalType.Double:
                Need(data, count * 8L, path);
                r.Doubles = new double[count];
                for (int i = 0; i < count; i++) r.Doubles[i] = BinaryPrimitives.ReadDoubleLittleEndian(data[(i * 8)..]);
                break;
            case PhysicalType.Int96:
                typeLength = 12;
                goto case PhysicalType.FixedLenByteArray;
            case PhysicalType.FixedLenByteArray:
                Need(data, (long)count * typeLength, path);
                r.Bytes = new byte[count][];
                for (int i = 0; i < count; i++) r.Bytes[i] = data.Slice(i * typeLength, typeLength).ToArray();
                break;
            case PhysicalType.ByteArray:
                r.Bytes = new byte[count][];
                for (int i = 0; i < count; i++)
                {
                    Need(data[pos..], 4, path);
                    int len = BinaryPrimitives.ReadInt32LittleEndian(data[pos..]);
                    if (len < 0) throw Corrupt(path, "negative byte array length");
                    Need(data[(pos + 4)..], len, path);
                    r.Bytes[i] = data.Slice(pos + 4, len).ToArray();
                    pos += 4 + len;
                }

                break;
        }

        return r;
    }

    public static RawValues DecodeByteStreamSplit(ReadOnlySpan<byte> data, PhysicalType type, int typeLength, int count, string path)
    {
        int width = type switch
        {
            PhysicalType.Int32 or PhysicalType.Float => 4,
            PhysicalType.Int64 or PhysicalType.Double => 8,
            _ => typeLength,
        };
        Need(data, (long)width * count, path);
        var joined = new byte[width * count];
        for (int i = 0; i < count; i++)
        {
            for (int b = 0; b < width; b++)
            {
                joined[(i * width) + b] = data[(b * count) + i];
            }
        }

        return DecodePlain(joined, type, typeLength, count, path);
    }

    /// <summary>DELTA_BINARY_PACKED; returns the values and the bytes consumed.</summary>
    public static long[] DecodeDeltaBinaryPacked(ReadOnlySpan<byte> data, out int consumed, string path)
    {
        int pos = 0;
        int blockSize = (int)ReadUVarInt(data, ref pos, path);
        int miniblocks = (int)ReadUVarInt(data, ref pos, path);
        int total = (int)ReadUVarInt(data, ref pos, path);
        long first = ZigZag(ReadUVarInt(data, ref pos, path));
        if (miniblocks <= 0 || blockSize <= 0 || blockSize % miniblocks != 0 || total < 0)
        {
            throw Corrupt(path, "invalid DELTA_BINARY_PACKED header");
        }

        var result = new long[total];
        if (total == 0)
        {
            consumed = pos;
            return result;
        }

        result[0] = first;
        int n = 1;
        int perMini = blockSize / miniblocks;
        long prev = first;
        while (n < total)
        {
            long minDelta = ZigZag(ReadUVarInt(data, ref pos, path));
            Need(data[pos..], miniblocks, path);
            var widths = data.Slice(pos, miniblocks).ToArray();
            pos += miniblocks;
            for (int m = 0; m < miniblocks && n < total; m++)
            {
                int w = widths[m];
                int bytes = perMini * w / 8;
                Need(data[pos..], bytes, path);
                var packed = data.Slice(pos, bytes);
                pos += bytes;
                ulong acc = 0;
                int accBits = 0, bp = 0;
                for (int k = 0; k < perMini && n < total; k++)
                {
                    ulong v = 0;
                    int got = 0;
                    while (got < w)
                    {
                        if (accBits == 0)
                        {
                            acc = packed[bp++];
                            accBits = 8;
                        }

                        int take = Math.Min(w - got, accBits);
                        v |= (acc & ((1UL << take) - 1)) << got;
                        acc >>= take;
                        accBits -= take;
                        got += take;
                    }

                    prev = unchecked(prev + minDelta + (long)v);
                    result[n++] = prev;
                }
            }
        }

        consumed = pos;
        return result;
    }

    public static byte[][] DecodeDeltaLengthByteArray(ReadOnlySpan<byte> data, int count, out int consumed, string path)
    {
        var lengths = DecodeDeltaBinaryPacked(data, out int pos, path);
        var result = new byte[count][];
        for (int i = 0; i < count; i++)
        {
            int len = (int)lengths[i];
            Need(data[pos..], len, path);
            result[i] = data.Slice(pos, len).ToArray();
            pos += len;
        }

        consumed = pos;
        return result;
    }

    public static byte[][] DecodeDeltaByteArray(ReadOnlySpan<byte> data, int count, string path)
    {
        var prefixes = DecodeDeltaBinaryPacked(data, out int pos, path);
        var suffixes = DecodeDeltaLengthByteArray(data[pos..], count, out _, path);
        var result = new byte[count][];
        byte[] previous = [];
        for (int i = 0; i < count; i++)
        {
            int p = (int)prefixes[i];
            var v = new byte[p + suffixes[i].Length];
            previous.AsSpan(0, p).CopyTo(v);
            suffixes[i].CopyTo(v, p);
            result[i] = v;
            previous = v;
        }

        return result;
    }

    private static long ZigZag(ulong v) => (long)(v >> 1) ^ -(long)(v & 1);

    private static ulong ReadUVarInt(ReadOnlySpan<byte> data, ref int pos, string path)
    {
        ulong result = 0;
        int shift = 0;
        while (true)
        {
            if (pos >= data.Length) throw Corrupt(path, "truncated varint");
            byte b = data[pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
            shift += 7;
            if (shift > 63) throw Corrupt(path, "varint too long");
        }
    }

    private static void Need(ReadOnlySpan<byte> data, long n, string path)
    {
        if (n > data.Length)
        {
            throw Corrupt(path, "page data is shorter than its values");
        }
    }

    internal static InvalidDataException Corrupt(string path, string what) =>
        new($"Column '{path}': {what}; the Parquet file is corrupt or uses an unsupported layout.");

    public static string Utf8(byte[] b) => Encoding.UTF8.GetString(b);
}
