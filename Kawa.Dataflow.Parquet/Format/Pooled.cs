using System.Buffers;
using System.Runtime.CompilerServices;

namespace Kawa.Dataflow.Parquet.Format;

/// <summary>
/// Growable arrays rented from a pool: row-group buffers are large and short-lived, so pooling them keeps writing
/// many files from churning the large object heap (and the full GCs that follow).
/// </summary>
/// <remarks>
/// Arrays of 64 KiB and more (large-object-heap sizes, whose churn drives full GCs) come from a process-wide pool of our
/// own rather than <see cref="ArrayPool{T}.Shared"/>, which also drops idle arrays at every full GC:
/// the shared pool keeps one large array per thread, and a writer's buffers are rented and returned on whichever
/// thread-pool thread its async flush or a parallel encoding worker runs, so large rentals kept missing and
/// allocating afresh. Our pool is not per thread and keeps at most <see cref="LargeArraysPerSize"/> arrays of
/// each power-of-two size: what stays allocated when idle is bounded by the writers' peak use.
/// </remarks>
internal static class Pooled
{
    /// <summary>Arrays of at least this many bytes use the large-array pool.</summary>
    public const int LargeArrayBytes = 64 * 1024;

    /// <summary>Idle large arrays kept per power-of-two size and element type.</summary>
    public const int LargeArraysPerSize = 32;

    public static void Grow<T>(ref T[] array, int needed)
    {
        if (needed <= array.Length)
        {
            return;
        }

        long size = Math.Max(needed, Math.Max(1024L, (long)array.Length * 2));
        var next = Rent<T>((int)Math.Min(size, Array.MaxLength));
        array.AsSpan().CopyTo(next);
        Return(ref array);
        array = next;
    }

    public static void Return<T>(ref T[] array)
    {
        if (array.Length > 0)
        {
            PoolFor<T>(array.Length).Return(array);
        }

        array = [];
    }

    private static T[] Rent<T>(int length) => PoolFor<T>(length).Rent(length);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ArrayPool<T> PoolFor<T>(int length) =>
        (long)length * Unsafe.SizeOf<T>() >= LargeArrayBytes ? Large<T>.Pool : ArrayPool<T>.Shared;

    private static class Large<T>
    {
        public static readonly ArrayPool<T> Pool = ArrayPool<T>.Create(1 << 30, LargeArraysPerSize);
    }
}
