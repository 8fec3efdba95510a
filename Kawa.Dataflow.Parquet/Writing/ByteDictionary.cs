using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Kawa.Dataflow.Parquet.Format;

namespace Kawa.Dataflow.Parquet.Writing;

/// <summary>
/// A dictionary of byte strings (BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY values) that writes its unique values straight
/// into a PLAIN dictionary page as they are added, and finds repeats by hashing the bytes: no per-value object, array
/// or string is allocated.
/// </summary>
/// <remarks>Open addressing with linear probing over a power-of-two table kept under half full. The hash is seeded
/// per process, so crafted values cannot be aimed at one bucket across runs.</remarks>
internal sealed class ByteDictionary
{
    private static readonly ulong Seed = (ulong)Random.Shared.NextInt64() | 1;

    private readonly bool _lengthPrefixed;
    private int[] _buckets = []; // entry + 1; 0 is empty
    private int[] _starts = [];  // where each entry's bytes start in the page
    private int[] _lengths = [];
    private uint[] _hashes = [];
    private ByteBuffer _page = null!;

    /// <param name="lengthPrefixed">True for BYTE_ARRAY (PLAIN = 4-byte length + bytes); false for FIXED_LEN_BYTE_ARRAY.</param>
    public ByteDictionary(bool lengthPrefixed) => _lengthPrefixed = lengthPrefixed;

    public int Count { get; private set; }

    /// <summary>Starts an empty dictionary whose PLAIN page is written into <paramref name="page"/> (appended to its current content).</summary>
    public void Reset(ByteBuffer page)
    {
        _page = page;
        Count = 0;
        if (_buckets.Length == 0)
        {
            Pooled.Grow(ref _buckets, 1024);
        }

        _buckets.AsSpan().Clear();
    }

    /// <summary>The entry of <paramref name="value"/>, added (and written to the page) if it is new.</summary>
    public int GetOrAdd(ReadOnlySpan<byte> value)
    {
        uint hash = Hash(value);
        int mask = _buckets.Length - 1;
        int b = (int)hash & mask;
        while (true)
        {
            int e = _buckets[b] - 1;
            if (e < 0)
            {
                break;
            }

            if (_hashes[e] == hash && _lengths[e] == value.Length && value.SequenceEqual(_page.WrittenSpan.Slice(_starts[e], value.Length)))
            {
                return e;
            }

            b = (b + 1) & mask;
        }

        int entry = Count;
        if (entry == _starts.Length)
        {
            Pooled.Grow(ref _starts, entry + 1);
            Pooled.Grow(ref _lengths, entry + 1);
            Pooled.Grow(ref _hashes, entry + 1);
        }

        if (_lengthPrefixed)
        {
            _page.WriteInt32LittleEndian(value.Length);
        }

        _starts[entry] = _page.Length;
        _lengths[entry] = value.Length;
        _hashes[entry] = hash;
        _page.Write(value);
        _buckets[b] = entry + 1;
        Count = entry + 1;
        if (Count * 2 > _buckets.Length)
        {
            Rehash();
        }

        return entry;
    }

    /// <summary>Returns pooled arrays; the dictionary can be reused after <see cref="Reset"/>.</summary>
    public void Release()
    {
        Pooled.Return(ref _buckets);
        Pooled.Return(ref _starts);
        Pooled.Return(ref _lengths);
        Pooled.Return(ref _hashes);
        Count = 0;
    }

    private void Rehash()
    {
        int[] buckets = [];
        Pooled.Grow(ref buckets, _buckets.Length * 2);
        buckets.AsSpan().Clear();
        int mask = buckets.Length - 1;
        for (int e = 0; e < Count; e++)
        {
            int b = (int)_hashes[e] & mask;
            while (buckets[b] != 0)
            {
                b = (b + 1) & mask;
            }

            buckets[b] = e + 1;
        }

        Pooled.Return(ref _buckets);
        _buckets = buckets;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(ReadOnlySpan<byte> value)
    {
        const ulong Multiplier = 0x9E3779B97F4A7C15;
        ulong h = Seed ^ ((ulong)value.Length * Multiplier);
        ref byte r = ref MemoryMarshal.GetReference(value);
        int i = 0;
        for (; i + 8 <= value.Length; i += 8)
        {
            h = ulong.RotateLeft((h ^ Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref r, i))) * Multiplier, 31);
        }

        if (i < value.Length)
        {
            ulong tail = 0;
            for (int k = value.Length - 1; k >= i; k--)
            {
                tail = (tail << 8) | Unsafe.Add(ref r, k);
            }

            h = ulong.RotateLeft((h ^ tail) * Multiplier, 31);
        }

        h ^= h >> 29;
        h *= 0xBF58476D1CE4E5B9;
        h ^= h >> 32;
        return (uint)h;
    }
}

/// <summary>The decision rule shared by every dictionary-encoded byte column (strings, binary, fixed-length).</summary>
internal static class DictionaryRule
{
    /// <summary>Values seen before the repetition check.</summary>
    public const int ProbeValues = 4096;

    /// <summary>
    /// True when the dictionary should be abandoned for PLAIN: it passed <paramref name="maxBytes"/>, or after
    /// <see cref="ProbeValues"/> values more than half were distinct (it would only add bytes).
    /// </summary>
    public static bool ShouldFallBack(long dictionaryBytes, int maxBytes, int values, int unique) =>
        dictionaryBytes > maxBytes || (values == ProbeValues && unique > values / 2);
}
