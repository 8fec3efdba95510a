using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Parquet.Writing;

/// <summary>Page compression codec.</summary>
public enum ParquetCompression
{
    /// <summary>No compression.</summary>
    Uncompressed,

    /// <summary>Snappy (the default): fast, moderate ratio; what DuckDB and Spark write by default.</summary>
    Snappy,

    /// <summary>GZIP (RFC 1952) at <see cref="System.IO.Compression.CompressionLevel.Optimal"/>.</summary>
    Gzip,

    /// <summary>Brotli at quality 5, window 22.</summary>
    Brotli,

    /// <summary>
    /// ZSTD is NOT supported: no zstd implementation is available to this library. Choosing it fails option
    /// validation with <see cref="NotSupportedException"/>; reading a ZSTD file fails the same way.
    /// </summary>
    Zstd,
}

/// <summary>Layout of data pages.</summary>
public enum ParquetDataPageVersion
{
    /// <summary>DATA_PAGE (v1, the default): levels and values compressed together; read by every reader.</summary>
    V1,

    /// <summary>
    /// DATA_PAGE_V2: levels stay uncompressed in front of the compressed values, and the header counts rows and
    /// nulls, so readers can skip pages and read levels without decompressing. Older readers may not support it.
    /// </summary>
    V2,
}

/// <summary>Settings of a <see cref="ParquetWriter{T}"/> or <see cref="ParquetRowWriter"/>.</summary>
/// <remarks>Validated once when the writer is created; every problem is reported at once.</remarks>
public sealed class ParquetWriterOptions
{
    /// <summary>Page compression. Default <see cref="ParquetCompression.Snappy"/>.</summary>
    public ParquetCompression Compression { get; set; } = ParquetCompression.Snappy;

    /// <summary>
    /// Target rows per row group. Default 122,880 (as DuckDB): row groups of that size keep the writer's buffers small
    /// and warm, and readers can split files across threads. A row group is flushed before a batch that would exceed it;
    /// a single batch is never split (so a batch larger than this makes one larger row group).
    /// </summary>
    public int RowGroupMaxRows { get; set; } = DefaultRowGroupMaxRows;

    /// <summary>The default of <see cref="RowGroupMaxRows"/>, shared by the lake sink and the daemon so all three agree.</summary>
    internal const int DefaultRowGroupMaxRows = 122_880;

    /// <summary>Target uncompressed bytes per row group; checked after each batch. Default 128 MiB.</summary>
    public long RowGroupMaxBytes { get; set; } = 128L * 1024 * 1024;

    /// <summary>Target uncompressed bytes per data page. Default 1 MiB.</summary>
    public int PageSize { get; set; } = 1024 * 1024;

    /// <summary>
    /// Largest dictionary per column chunk before the column falls back to PLAIN encoding. Default 1 MiB;
    /// 0 disables dictionary encoding.
    /// </summary>
    public int DictionaryMaxBytes { get; set; } = 1024 * 1024;

    /// <summary>Longest string/binary min and max statistic; longer ones are truncated (max rounded up). Default 64.</summary>
    public int StatisticsMaxBytes { get; set; } = 64;

    /// <summary>Unit of DateTime/DateTimeOffset columns of typed schemas. Default microseconds.</summary>
    public ParquetTimestampUnit TimestampUnit { get; set; } = ParquetTimestampUnit.Microseconds;

    /// <summary>Data page layout. Default <see cref="ParquetDataPageVersion.V1"/>.</summary>
    public ParquetDataPageVersion DataPageVersion { get; set; } = ParquetDataPageVersion.V1;

    /// <summary>
    /// Most threads that encode and compress the column chunks of one row group at the same time. Default
    /// <see cref="Environment.ProcessorCount"/>; 1 encodes on the calling thread only. Above 1, a row group that fills
    /// up during a write is also encoded and written in the background while the next rows are added (one at a time;
    /// the next flush, <c>FlushRowGroupAsync</c> and <c>CompleteAsync</c> wait for it and throw its error). Rows are
    /// always added on the caller's thread, and the file's bytes do not depend on this setting.
    /// </summary>
    public int MaxDegreeOfParallelism { get; set; } = Environment.ProcessorCount;

    /// <summary>Key-value metadata written to the footer. Default empty.</summary>
    public IDictionary<string, string> KeyValueMetadata { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Throws one exception listing every invalid setting.</summary>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    /// <exception cref="NotSupportedException"><see cref="Compression"/> is <see cref="ParquetCompression.Zstd"/>.</exception>
    public void Validate()
    {
        if (Compression == ParquetCompression.Zstd)
        {
            throw new NotSupportedException("ParquetWriterOptions.Compression: ZSTD is not supported by Kawa.Dataflow.Parquet (no zstd implementation is available); use Snappy, Gzip, Brotli or Uncompressed.");
        }

        var problems = new List<string>();
        if (!Enum.IsDefined(Compression)) problems.Add($"ParquetWriterOptions.Compression: unknown codec {Compression}.");
        if (RowGroupMaxRows < 1) problems.Add($"ParquetWriterOptions.RowGroupMaxRows must be at least 1 (was {RowGroupMaxRows}).");
        if (RowGroupMaxBytes < 1024) problems.Add($"ParquetWriterOptions.RowGroupMaxBytes must be at least 1024 (was {RowGroupMaxBytes}).");
        if (PageSize < 1024) problems.Add($"ParquetWriterOptions.PageSize must be at least 1024 (was {PageSize}).");
        if (DictionaryMaxBytes < 0) problems.Add($"ParquetWriterOptions.DictionaryMaxBytes must not be negative (was {DictionaryMaxBytes}).");
        if (!Enum.IsDefined(DataPageVersion)) problems.Add($"ParquetWriterOptions.DataPageVersion: unknown version {DataPageVersion}.");
        if (MaxDegreeOfParallelism < 1) problems.Add($"ParquetWriterOptions.MaxDegreeOfParallelism must be at least 1 (was {MaxDegreeOfParallelism}).");
        if (StatisticsMaxBytes < 8) problems.Add($"ParquetWriterOptions.StatisticsMaxBytes must be at least 8 (was {StatisticsMaxBytes}).");
        if (!Enum.IsDefined(TimestampUnit)) problems.Add($"ParquetWriterOptions.TimestampUnit: unknown unit {TimestampUnit}.");
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", problems));
        }
    }
}
