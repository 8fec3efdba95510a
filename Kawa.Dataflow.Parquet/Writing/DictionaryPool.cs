using System.Collections.Concurrent;

namespace Kawa.Dataflow.Parquet.Writing;

/// <summary>
/// Value-to-index tables for dictionary encoding, shared by the column writers of every file: each file's writers would
/// otherwise grow fresh tables (thousands of entries, on the large object heap) once per file and column, which drove
/// full GCs in a sink that rolls many files.
/// </summary>
/// <remarks>
/// A table comes back cleared with its capacity kept. At most <see cref="Kept"/> idle tables are kept per key type, so
/// what stays allocated when idle is bounded by the writers' peak use; a table is only handed out to a writer asking
/// for the same comparer.
/// </remarks>
internal static class DictionaryPool<TKey>
    where TKey : notnull
{
    /// <summary>Idle tables kept per key type.</summary>
    public const int Kept = 32;

    private static readonly ConcurrentQueue<Dictionary<TKey, int>> s_idle = new();

    public static Dictionary<TKey, int> Rent(IEqualityComparer<TKey> comparer)
    {
        // A mismatched comparer cannot happen for one key type in this writer; if it did, the table just is not reused.
        if (s_idle.TryDequeue(out var table) && ReferenceEquals(table.Comparer, comparer))
        {
            return table;
        }

        return new Dictionary<TKey, int>(comparer);
    }

    /// <summary>Clears <paramref name="table"/> and keeps it for the next writer (nulls the caller's reference).</summary>
    public static void Return(ref Dictionary<TKey, int>? table)
    {
        if (table is null)
        {
            return;
        }

        table.Clear();
        if (s_idle.Count < Kept)
        {
            s_idle.Enqueue(table);
        }

        table = null;
    }
}
