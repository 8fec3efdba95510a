using System.Buffers;

namespace Kawa.Dataflow.Parquet.Format;

/// <summary>
/// Growable arrays rented from <see cref="ArrayPool{T}.Shared"/>: row-group buffers are large and short-lived, so
/// pooling them keeps writing many files from churning the large object heap (and the full GCs that follow).
/// </summary>
internal static class Pooled
{
    public static void Grow<T>(ref T[] array, int needed)
    {
        if (needed <= array.Length)
        {
            return;
        }

        long size = Math.Max(needed, Math.Max(1024L, (long)array.Length * 2));
        var next = ArrayPool<T>.Shared.Rent((int)Math.Min(size, Array.MaxLength));
        array.AsSpan().CopyTo(next);
        Return(ref array);
        array = next;
    }

    public static void Return<T>(ref T[] array)
    {
        if (array.Length > 0)
        {
            ArrayPool<T>.Shared.Return(array);
        }

        array = [];
    }
}
