namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>
/// A lake file that holds memory for written bytes while it is open (an S3 part while it fills, a local file's write
/// buffer). The Parquet sink counts <see cref="BufferedBytes"/> against its memory budget together with its row-group
/// buffers.
/// </summary>
internal interface IBufferingLakeFile
{
    /// <summary>Bytes of memory the file holds now; readable from any thread.</summary>
    long BufferedBytes { get; }
}
