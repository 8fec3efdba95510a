using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Kawa.Dataflow.Parquet.Format;

/// <summary>
/// A Snappy block compressor (raw format, no framing, as Parquet uses) that writes into a caller's buffer.
/// Greedy 4-byte hash matching over 64 KiB blocks with the usual skip heuristic for incompressible input;
/// output is standard Snappy (decoded here by IronSnappy, and by every Parquet reader).
/// </summary>
internal static class SnappyEncoder
{
    private const int BlockSize = 1 << 16;
    private const int TableBits = 14;
    private const int InputMargin = 15;
    private const int MinNonLiteralBlockSize = 17;

    public static int MaxCompressedLength(int sourceLength) => 32 + sourceLength + (sourceLength / 6);

    /// <summary>Compresses <paramref name="source"/> into <paramref name="destination"/> (at least <see cref="MaxCompressedLength"/> bytes); returns the length.</summary>
    public static int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int[] table)
    {
        int d = 0;
        uint n = (uint)source.Length;
        while (n >= 0x80)
        {
            destination[d++] = (byte)(n | 0x80);
            n >>= 7;
        }

        destination[d++] = (byte)n;
        for (int start = 0; start < source.Length; start += BlockSize)
        {
            var block = source.Slice(start, Math.Min(BlockSize, source.Length - start));
            d = block.Length < MinNonLiteralBlockSize
                ? EmitLiteral(destination, d, block)
                : CompressBlock(block, destination, d, table);
        }

        return d;
    }

    // Unchecked little-endian loads: every caller stays at least 8 bytes inside the block (InputMargin), which
    // the span-sliced form paid for with a bounds check per probe.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Load32(ReadOnlySpan<byte> s, int i)
    {
        uint v = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref MemoryMarshal.GetReference(s), i));
        return BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Load64(ReadOnlySpan<byte> s, int i)
    {
        ulong v = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref MemoryMarshal.GetReference(s), i));
        return BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Hash(uint u) => (int)((u * 0x1e35a7bdu) >> (32 - TableBits));

    private static int CompressBlock(ReadOnlySpan<byte> src, Span<byte> dst, int d, int[] table)
    {
        Array.Clear(table, 0, 1 << TableBits);
        int sLimit = src.Length - InputMargin;
        int nextEmit = 0;
        int s = 1;
        int nextHash = Hash(Load32(src, s));
        while (true)
        {
            int skip = 32;
            int nextS = s;
            int candidate;
            do
            {
                s = nextS;
                int bytesBetween = skip >> 5;
                nextS = s + bytesBetween;
                skip += bytesBetween;
                if (nextS > sLimit)
                {
                    goto Remainder;
                }

                candidate = table[nextHash];
                table[nextHash] = s;
                nextHash = Hash(Load32(src, nextS));
            }
            while (Load32(src, s) != Load32(src, candidate));

            d = EmitLiteral(dst, d, src[nextEmit..s]);
            while (true)
            {
                int baseS = s;
                s = ExtendMatch(src, candidate + 4, s + 4);
                d = EmitCopy(dst, d, baseS - candidate, s - baseS);
                nextEmit = s;
                if (s >= sLimit)
                {
                    goto Remainder;
                }

                ulong x = Load64(src, s - 1);
                table[Hash((uint)x)] = s - 1;
                int currHash = Hash((uint)(x >> 8));
                candidate = table[currHash];
                table[currHash] = s;
                if ((uint)(x >> 8) != Load32(src, candidate))
                {
                    nextHash = Hash((uint)(x >> 16));
                    s++;
                    break;
                }
            }
        }

    Remainder:
        if (nextEmit < src.Length)
        {
            d = EmitLiteral(dst, d, src[nextEmit..]);
        }

        return d;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ExtendMatch(ReadOnlySpan<byte> src, int i, int s)
    {
        while (s + 8 <= src.Length)
        {
            ulong a = Load64(src, i);
            ulong b = Load64(src, s);
            ulong diff = a ^ b;
            if (diff != 0)
            {
                return s + (BitOperations.TrailingZeroCount(diff) >> 3);
            }

            i += 8;
            s += 8;
        }

        while (s < src.Length && src[i] == src[s])
        {
            i++;
            s++;
        }

        return s;
    }

    private static int EmitLiteral(Span<byte> dst, int d, ReadOnlySpan<byte> lit)
    {
        if (lit.Length == 0)
        {
            return d;
        }

        int n = lit.Length - 1;
        if (n < 60)
        {
            dst[d++] = (byte)(n << 2);
        }
        else if (n < 1 << 8)
        {
            dst[d++] = 60 << 2;
            dst[d++] = (byte)n;
        }
        else if (n < 1 << 16)
        {
            dst[d++] = 61 << 2;
            dst[d++] = (byte)n;
            dst[d++] = (byte)(n >> 8);
        }
        else
        {
            dst[d++] = 62 << 2;
            dst[d++] = (byte)n;
            dst[d++] = (byte)(n >> 8);
            dst[d++] = (byte)(n >> 16);
        }

        lit.CopyTo(dst[d..]);
        return d + lit.Length;
    }

    private static int EmitCopy(Span<byte> dst, int d, int offset, int length)
    {
        while (length >= 68)
        {
            d = Copy2(dst, d, offset, 64);
            length -= 64;
        }

        if (length > 64)
        {
            d = Copy2(dst, d, offset, 60);
            length -= 60;
        }

        if (length >= 12 || offset >= 2048)
        {
            return Copy2(dst, d, offset, length);
        }

        dst[d++] = (byte)(((offset >> 8) << 5) | ((length - 4) << 2) | 1);
        dst[d++] = (byte)offset;
        return d;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Copy2(Span<byte> dst, int d, int offset, int length)
    {
        dst[d++] = (byte)(((length - 1) << 2) | 2);
        dst[d++] = (byte)offset;
        dst[d++] = (byte)(offset >> 8);
        return d;
    }
}
