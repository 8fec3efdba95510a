namespace Kawa.Dataflow.Parquet.Sink;

/// <summary>
/// Names of the points where <see cref="ParquetDestination{T}"/> calls its test-only crash hook
/// (<c>ParquetDestinationOptions.FaultPointReached</c>): the places where a process death must still lose nothing.
/// </summary>
/// <remarks>At each of them the affected messages are not acked yet, so a crash there must end in redelivery, never loss;
/// only <see cref="AfterRename"/> leaves their rows visible too (duplicates after redelivery, bounded by what was in flight).</remarks>
internal static class ParquetFaultPoints
{
    /// <summary>A flushed batch's rows were appended to an open file's row-group buffer; the batch is not yet settled.</summary>
    public const string MidBatch = "mid-batch";

    /// <summary>A row group was just written out to a file that has no footer yet (still under its temporary name).</summary>
    public const string AfterRowGroup = "after-row-group";

    /// <summary>A file is written whole, footer included, under its temporary name; not yet fsynced and renamed.</summary>
    public const string BeforeRename = "before-rename";

    /// <summary>A file was renamed to its final name (visible to readers) and its messages are not acked yet.</summary>
    public const string AfterRename = "after-rename";

    /// <summary>All of them.</summary>
    public static readonly IReadOnlyList<string> All = [MidBatch, AfterRowGroup, BeforeRename, AfterRename];
}
