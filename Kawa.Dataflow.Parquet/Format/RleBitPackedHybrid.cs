using System.Buffers.Binary;

namespace Kawa.Dataflow.Parquet.Format;

/// <summary>
/// The RLE / bit-packed hybrid encoding (Encodings.md) used for repetition and definition levels, dictionary
/// indices and RLE booleans. Runs of 8 or more equal values become RLE runs; everything else is bit-packed in
/// groups of 8, least significant bit first.
/// </summary>
internal static class RleBitPackedHybrid
{
    /// <summary>Number of bits needed to store <paramref name="maxValue"/>.</summary>
    public static int BitWidth(int maxValue) => maxValue <= 0 ? 0 : 32 - int.LeadingZeroCount(maxValue);

    public static void Encode(ReadOnlySpan<int> values, int bitWidth, ByteBuffer output)
    {
        int n = values.Length;
        int i = 0;
        int literalStart = 0; // start of pending literal values (not yet written)
        while (i < n)
        {
            int v = values[i];
            int run = 1;
            while (i + run < n && values[i + run] == v)
            {
                run++;
            }

            if (run >= 8)
            {
                // Top up the pending literals to a multiple of 8 with values from this run.
                int pending = i - literalStart;
                int pad = (8 - (pending & 7)) & 7;
                if (pending > 0 && run - pad >= 8)
                {
                    WriteBitPacked(values.Slice(literalStart, pending + pad), bitWidth, output);
                    i += pad;
                    run -= pad;
                    literalStart = i;
                }
                else if (pending > 0)
                {
                    i += run;
                    continue;
                }

                WriteRle(v, run, bitWidth, output);
                i += run;
                literalStart = i;
            }
            else
            {
                i += run;
            }
        }

        if (literalStart < n)
        {
            WriteBitPacked(values[literalStart..], bitWidth, output);
        }
    }

    /// <summary>Encodes a single repeated value (fast path for columns without nulls).</summary>
    public static void EncodeRun(int value, int count, int bitWidth, ByteBuffer output)
    {
        if (count > 0)
        {
            WriteRle(value, count, bitWidth, output);
        }
    }

    private static void WriteRle(int value, int count, int bitWidth, ByteBuffer output)
    {
        WriteVarInt(output, (uint)count << 1);
        int bytes = (bitWidth + 7) / 8;
        for (int b = 0; b < bytes; b++)
        {
            output.WriteByte((byte)(value >> (8 * b)));
        }
    }

    private static void WriteBitPacked(ReadOnlySpan<int> values, int bitWidth, ByteBuffer output)
    {
        int groups = (values.Length + 7) / 8;
        WriteVarInt(output, ((uint)groups << 1) | 1);
        int totalBytes = groups * bitWidth;
        var dst = output.GetSpan(totalBytes);
        dst.Clear();
        if (bitWidth == 0)
        {
            return;
        }

        ulong acc = 0;
        int accBits = 0;
        int pos = 0;
        int count = groups * 8;
        for (int k = 0; k < count; k++)
        {
            ulong v = k < values.Length ? (uint)values[k] : 0u;
            acc |= v << accBits;
            accBits += bitWidth;
            while (accBits >= 8)
            {
                dst[pos++] = (byte)acc;
                acc >>= 8;
                accBits -= 8;
            }
        }

        if (accBits > 0)
        {
            dst[pos] = (byte)acc;
        }
    }

    internal static void WriteVarInt(ByteBuffer output, uint v)
    {
        while (v >= 0x80)
        {
            output.WriteByte((byte)(v | 0x80));
            v >>= 7;
        }

        output.WriteByte((byte)v);
    }

    /// <summary>Decodes exactly <paramref name="destination"/>.Length values; returns the bytes consumed.</summary>
    public static int Decode(ReadOnlySpan<byte> data, int bitWidth, Span<int> destination)
    {
        if (bitWidth is < 0 or > 32)
        {
            throw new InvalidDataException($"RLE/bit-packed data declares bit width {bitWidth}; the page is corrupt.");
        }

        int pos = 0;
        int written = 0;
        int byteWidth = (bitWidth + 7) / 8;
        while (written < destination.Length)
        {
            uint header = ReadVarInt(data, ref pos);
            if ((header & 1) == 0)
            {
                int count = (int)(header >> 1);
                if (pos + byteWidth > data.Length)
                {
                    throw new InvalidDataException("An RLE run ends past its page; the page is corrupt.");
                }

                int value = 0;
                for (int b = 0; b < byteWidth; b++)
                {
                    value |= data[pos + b] << (8 * b);
                }

                pos += byteWidth;
                int take = Math.Min(count, destination.Length - written);
                destination.Slice(written, take).Fill(value);
                written += take;
            }
            else
            {
                int groups = (int)(header >> 1);
                int count = groups * 8;
                int bytes = groups * bitWidth;
                if (pos + bytes > data.Length)
                {
                    // Some writers truncate the last bit-packed run to the bytes actually needed.
                    bytes = data.Length - pos;
                }

                var src = data.Slice(pos, bytes);
                pos += bytes;
                int take = Math.Min(count, destination.Length - written);
                Unpack(src, bitWidth, destination.Slice(written, take));
                written += take;
            }
        }

        return pos;
    }

    private static void Unpack(ReadOnlySpan<byte> src, int bitWidth, Span<int> dst)
    {
        if (bitWidth == 0)
        {
            dst.Clear();
            return;
        }

        ulong mask = (1UL << bitWidth) - 1;
        ulong acc = 0;
        int accBits = 0;
        int pos = 0;
        for (int k = 0; k < dst.Length; k++)
        {
            while (accBits < bitWidth)
            {
                ulong b = pos < src.Length ? src[pos] : 0UL;
                pos++;
                acc |= b << accBits;
                accBits += 8;
            }

            dst[k] = (int)(acc & mask);
            acc >>= bitWidth;
            accBits -= bitWidth;
        }
    }

    private static uint ReadVarInt(ReadOnlySpan<byte> data, ref int pos)
    {
        uint result = 0;
        int shift = 0;
        while (true)
        {
            if (pos >= data.Length)
            {
                throw new InvalidDataException("RLE/bit-packed data ends inside a run header; the page is corrupt.");
            }

            byte b = data[pos++];
            result |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }

            shift += 7;
            if (shift > 28)
            {
                throw new InvalidDataException("RLE/bit-packed run header is too long; the page is corrupt.");
            }
        }
    }

    /// <summary>Reads a 4-byte little-endian length followed by that many bytes of hybrid data (v1 levels).</summary>
    public static int DecodeLengthPrefixed(ReadOnlySpan<byte> data, int bitWidth, Span<int> destination)
    {
        if (data.Length < 4)
        {
            throw new InvalidDataException("A level block is shorter than its 4-byte length prefix; the page is corrupt.");
        }

        int len = BinaryPrimitives.ReadInt32LittleEndian(data);
        if (len < 0 || len > data.Length - 4)
        {
            throw new InvalidDataException("A level block's length exceeds its page; the page is corrupt.");
        }

        Decode(data.Slice(4, len), bitWidth, destination);
        return 4 + len;
    }
}
