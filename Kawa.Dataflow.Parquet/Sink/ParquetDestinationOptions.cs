using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Parquet.Sink;

/// <summary>Settings of a <see cref="ParquetDestination{T}"/>: where files go, how they are partitioned, cut and rolled.</summary>
/// <typeparam name="T">The message payload type.</typeparam>
/// <remarks>
/// <para>Validated once, when the destination is built; every problem is reported at once, each naming its property
/// (see <see cref="Validate"/>).</para>
/// <para>A file is committed (and its messages acked) at the first of: <see cref="FileMaxRows"/> rows,
/// <see cref="FileMaxBytes"/> estimated bytes, <see cref="FileMaxAge"/> since it was opened, more than
/// <see cref="MaxOpenFiles"/> open files (the least recently used is committed), a schema change in its partition, or the drain.
/// Messages stay in flight (unacked) until their file commits: keep <see cref="FileMaxAge"/> well below the pipeline's
/// patience and <see cref="FileMaxRows"/> below its <c>MaxInFlightMessages</c>, or the pipeline waits for the age roll.</para>
/// </remarks>
public sealed class ParquetDestinationOptions<T>
{
    /// <summary>Where files are written and committed. Required.</summary>
    public ILakeStorage? Storage { get; set; }

    /// <summary>The Hive-style partition directory of each message. Default <see cref="PartitionPath{T}.None"/> (all files at the root).</summary>
    public PartitionPath<T> Partitioning { get; set; } = PartitionPath<T>.None;

    /// <summary>Page compression. Default <see cref="ParquetCompression.Snappy"/>.</summary>
    public ParquetCompression Compression { get; set; } = ParquetCompression.Snappy;

    /// <summary>Rows per row group: a row group is written out when it reaches this many rows. Default 122,880, the
    /// same as <see cref="ParquetWriterOptions.RowGroupMaxRows"/> (DuckDB's row-group size: the writer's buffers stay
    /// small and warm, and readers can split a file across threads; see docs/parquet.md). A file of
    /// <see cref="FileMaxRows"/> rows then holds about 33 row groups.</summary>
    public int RowGroupMaxRows { get; set; } = ParquetWriterOptions.DefaultRowGroupMaxRows;

    /// <summary>Uncompressed bytes per row group: a row group is written out when it reaches this size. Default 128 MiB.</summary>
    public long RowGroupMaxBytes { get; set; } = 128L * 1024 * 1024;

    /// <summary>Rows per file; the file is committed when it reaches this many. Default 4,000,000.</summary>
    public long FileMaxRows { get; set; } = 4_000_000;

    /// <summary>Estimated bytes per file (written plus buffered); the file is committed when it reaches this size. Default 512 MiB.</summary>
    public long FileMaxBytes { get; set; } = 512L * 1024 * 1024;

    /// <summary>The longest a file stays open, counted from its first row; it is then committed. Default 1 minute
    /// (messages stay unacked, and count against the pipeline's in-flight limit, until their file commits).</summary>
    /// <remarks>Must be finite and below the storage's <see cref="ILakeStorage.MaxFileAge"/> (default 1 hour): the
    /// temporary names declare that age, and another instance's startup cleanup spares them until they are older than
    /// twice it (or twice its own, if longer), so a file kept open longer could be removed while it is written. To roll by size only, set a long age here and a longer one on the storage.</remarks>
    public TimeSpan FileMaxAge { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The most files open at once (one per active partition and schema); opening one more commits the
    /// least recently written. Default 64.</summary>
    public int MaxOpenFiles { get; set; } = 64;

    /// <summary>The most bytes held in memory across ALL open files: their row-group buffers plus what the storage holds
    /// for them (an S3 file's part not yet uploaded, a local file's write buffer). When exceeded, the largest row-group buffer is written out; when
    /// no row group is left to write, the file whose storage holds the most is committed. Default 256 MiB.</summary>
    public long MemoryBudgetBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Whether the destination runs <see cref="ILakeStorage.CleanupAsync"/> once, before it opens its first
    /// file, to remove a crashed earlier run's leftovers. Default <see langword="true"/>.</summary>
    /// <remarks>The cleanup removes only this instance's leftovers (same <see cref="ILakeStorage.InstanceId"/>, not open
    /// in this process) and other instances' temporary files older than twice the storage's
    /// <see cref="ILakeStorage.MaxFileAge"/>. Its failure is logged, not thrown. Turn it off when the application
    /// cleans the storage itself at start.</remarks>
    public bool CleanupAtStart { get; set; } = true;

    /// <summary>How long the source waits for an ack before redelivering (JetStream's <c>ack_wait</c>). Default 30 seconds.</summary>
    public TimeSpan AckWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often messages held in open files are reported in progress (<see cref="DeferredAcks.InProgress"/>),
    /// so the source does not redeliver them. Default <see langword="null"/>: a third of <see cref="AckWait"/>.
    /// <see cref="Timeout.InfiniteTimeSpan"/> disables it.</summary>
    public TimeSpan? KeepAliveInterval { get; set; }

    /// <summary>How messages are grouped into flushes before they reach the open files (size, age, retries, errors).
    /// Default: <see cref="BatchingOptions{T}"/>'s defaults. <see cref="BatchingOptions{T}.FlushParallelism"/> must be 1
    /// (files are appended in order). <see cref="BatchingOptions{T}.PipelineName"/> can stay unset: the destination passes
    /// the name of the pipeline it is given to on to its batching.</summary>
    public BatchingOptions<T> Batching { get; set; } = new();

    /// <summary>Extra key-value metadata written to every file's footer. Default empty.</summary>
    public IDictionary<string, string> KeyValueMetadata { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// Test-only crash hook, off (null) by default: called with the name of each point the sink reaches where a crash
    /// matters (see <see cref="ParquetFaultPoints"/>), so a test host can kill the process exactly there.
    /// </summary>
    internal Action<string>? FaultPointReached { get; set; }

    /// <summary>The effective keep-alive interval.</summary>
    internal TimeSpan EffectiveKeepAlive => KeepAliveInterval ?? AckWait / 3;

    /// <summary>Checks every setting and returns every problem found, each naming its property; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        const string P = "ParquetDestinationOptions.";
        if (Storage is null) problems.Add(P + "Storage is required.");
        if (Partitioning is null) problems.Add(P + "Partitioning must not be null (use PartitionPath<T>.None).");
        if (!Enum.IsDefined(Compression)) problems.Add($"{P}Compression: unknown codec {Compression}.");
        if (Compression is ParquetCompression.Zstd) problems.Add(P + "Compression: ZSTD is not supported (no zstd implementation is available); use Snappy, Gzip, Brotli or Uncompressed.");
        if (RowGroupMaxRows < 1) problems.Add($"{P}RowGroupMaxRows must be at least 1 (was {RowGroupMaxRows}).");
        if (RowGroupMaxBytes < 1024) problems.Add($"{P}RowGroupMaxBytes must be at least 1024 (was {RowGroupMaxBytes}).");
        if (FileMaxRows < 1) problems.Add($"{P}FileMaxRows must be at least 1 (was {FileMaxRows}).");
        if (FileMaxBytes < 1024) problems.Add($"{P}FileMaxBytes must be at least 1024 (was {FileMaxBytes}).");
        if (FileMaxAge <= TimeSpan.Zero && FileMaxAge != Timeout.InfiniteTimeSpan) problems.Add($"{P}FileMaxAge must be positive (was {FileMaxAge}).");
        else if (Storage is not null && (FileMaxAge == Timeout.InfiniteTimeSpan || FileMaxAge >= Storage.MaxFileAge))
        {
            var age = FileMaxAge == Timeout.InfiniteTimeSpan ? "infinite" : FileMaxAge.ToString();
            problems.Add($"{P}FileMaxAge ({age}) must be finite and below the storage's MaxFileAge ({Storage.MaxFileAge}): another instance's startup cleanup removes temporary files older than twice MaxFileAge, so a file open longer could be removed while it is written. Lower FileMaxAge or raise MaxFileAge in the storage's options.");
        }
        if (MaxOpenFiles < 1) problems.Add($"{P}MaxOpenFiles must be at least 1 (was {MaxOpenFiles}).");
        if (MemoryBudgetBytes < 1024) problems.Add($"{P}MemoryBudgetBytes must be at least 1024 (was {MemoryBudgetBytes}).");
        if (Storage is LocalLakeStorage local && MemoryBudgetBytes < local.BufferSize)
        {
            // Each open file's write buffer counts in the budget: below one buffer, every batch would commit its own file.
            problems.Add($"{P}MemoryBudgetBytes ({MemoryBudgetBytes}) must be at least the local storage's BufferSize ({local.BufferSize}), which each open file holds; lower BufferSize or raise the budget.");
        }
        if (AckWait <= TimeSpan.Zero) problems.Add($"{P}AckWait must be positive (was {AckWait}).");
        if (KeepAliveInterval is { } k && k <= TimeSpan.Zero && k != Timeout.InfiniteTimeSpan) problems.Add($"{P}KeepAliveInterval must be positive or Timeout.InfiniteTimeSpan (was {k}).");
        if (KeepAliveInterval is { } k2 && k2 > TimeSpan.Zero && k2 >= AckWait) problems.Add($"{P}KeepAliveInterval ({k2}) must be shorter than AckWait ({AckWait}), or messages are redelivered between keep-alives.");
        if (Batching is null)
        {
            problems.Add(P + "Batching must not be null.");
        }
        else
        {
            if (Batching.FlushParallelism != 1) problems.Add($"{P}Batching.FlushParallelism must be 1 for a Parquet sink (was {Batching.FlushParallelism}): rows are appended to open files in order.");
            foreach (var problem in Batching.Validate())
            {
                problems.Add(P + "Batching: " + problem);
            }
        }

        return problems;
    }

    internal ParquetWriterOptions WriterOptions()
    {
        var options = new ParquetWriterOptions { Compression = Compression, RowGroupMaxRows = RowGroupMaxRows, RowGroupMaxBytes = RowGroupMaxBytes };
        foreach (var kv in KeyValueMetadata)
        {
            options.KeyValueMetadata[kv.Key] = kv.Value;
        }

        return options;
    }
}
