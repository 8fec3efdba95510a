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
    private static ulong Load64(ReadOnlySpan<byte> s, int i)
    {
        ulong v = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref MemoryMarshal.GetReference(s), i));
        return BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Load32(ref byte s, int i)
    {
        uint v = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref s, i));
        return BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Load64(ref byte s, int i)
    {
        ulong v = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref s, i));
        return BitConverter.IsLittleEndian ? v : BinaryPrimitives.ReverseEndianness(v);
    }

    // Table size follows the block: a small page clears and probes a small table (as the reference encoder does).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(uint u, int shift) => (u * 0x1e35a7bdu) >> shift;

    private static int CompressBlock(ReadOnlySpan<byte> src, Span<byte> dst, int d, int[] table)
    {
        int tableBits = Math.Clamp(BitOperations.Log2((uint)src.Length - 1) + 1, 8, TableBits);
        int shift = 32 - tableBits;
        Array.Clear(table, 0, 1 << tableBits);

        // Bounds are established up front: every load stays below sLimit + 8 <= src.Length, every hash is below
        // 1 << tableBits <= table.Length, so the loops index through references without per-access checks.
        ref byte s0 = ref MemoryMarshal.GetReference(src);
        ref int t0 = ref MemoryMarshal.GetArrayDataReference(table);
        int sLimit = src.Length - InputMargin;
        int nextEmit = 0;
        int s = 1;
        uint nextHash = Hash(Load32(ref s0, s), shift);
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

                ref int slot = ref Unsafe.Add(ref t0, (nint)nextHash);
                candidate = slot;
                slot = s;
                nextHash = Hash(Load32(ref s0, nextS), shift);
            }
            while (Load32(ref s0, s) != Load32(ref s0, candidate));

            d = EmitShortLiteral(ref s0, nextEmit, s - nextEmit, dst, d);
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

                ulong x = Load64(ref s0, s - 1);
                Unsafe.Add(ref t0, (nint)Hash((uint)x, shift)) = s - 1;
                ref int current = ref Unsafe.Add(ref t0, (nint)Hash((uint)(x >> 8), shift));
                candidate = current;
                current = s;
                if ((uint)(x >> 8) != Load32(ref s0, candidate))
                {
                    nextHash = Hash((uint)(x >> 16), shift);
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

    /// <summary>
    /// A literal found inside the block's margin: up to 16 bytes are copied as two 8-byte moves (the source has at
    /// least 15 bytes past the literal start and the destination the slack of <see cref="MaxCompressedLength"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int EmitShortLiteral(ref byte s0, int start, int length, Span<byte> dst, int d)
    {
        if (length is > 0 and <= 16 && dst.Length - d >= 17 + 16)
        {
            ref byte o = ref MemoryMarshal.GetReference(dst);
            Unsafe.Add(ref o, d) = (byte)((length - 1) << 2);
            ref byte from = ref Unsafe.Add(ref s0, start);
            ref byte to = ref Unsafe.Add(ref o, d + 1);
            Unsafe.WriteUnaligned(ref to, Unsafe.ReadUnaligned<ulong>(ref from));
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, 8), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, 8)));
            return d + 1 + length;
        }

        return EmitLiteral(dst, d, MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref s0, start), length));
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
