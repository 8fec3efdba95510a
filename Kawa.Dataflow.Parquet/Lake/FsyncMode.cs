namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>How hard <see cref="LocalLakeStorage"/> pushes a commit to the disk.</summary>
public enum FsyncMode
{
    /// <summary>
    /// The default: fsync the file before the rename and its directory after it (and the parent of every directory
    /// created), so a committed file survives a power loss. The price is one or two disk flushes per file.
    /// </summary>
    Full = 0,

    /// <summary>Fsync the file only: its bytes are durable, but after a power loss its name may be missing.</summary>
    FileOnly,

    /// <summary>
    /// No fsync: the file still appears atomically (rename), and survives a process crash, but a power loss or
    /// kernel crash can lose or truncate recently committed files that were already acked. For benchmarks and
    /// scratch data.
    /// </summary>
    None,
}
