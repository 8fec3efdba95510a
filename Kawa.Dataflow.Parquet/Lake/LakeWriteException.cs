namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>Why a lake file could not be written or committed.</summary>
public enum LakeWriteFailure
{
    /// <summary>Not one of the known causes; see the inner exception.</summary>
    Other = 0,

    /// <summary>The process may not create or write the file or its directory (EACCES/EPERM, S3 403).</summary>
    PermissionDenied,

    /// <summary>The device or quota is full (ENOSPC/EDQUOT).</summary>
    DiskFull,

    /// <summary>The file exceeds the process's or file system's size limit (EFBIG, e.g. <c>ulimit -f</c>).</summary>
    FileTooLarge,

    /// <summary>A file already exists under the final name; commits never overwrite.</summary>
    AlreadyExists,

    /// <summary>The remote store refused or failed the request (S3 error other than the above).</summary>
    StorageError,

    /// <summary>The network or remote store could not be reached.</summary>
    Unavailable,
}

/// <summary>A lake file could not be written or committed. The file is not visible and its partial data was removed.</summary>
/// <remarks>
/// The messages meant for the file are not durable: the sink must not ack them (it negatively acks them or stops,
/// per its error policy). <see cref="Exception.Message"/> names the file, the cause and the underlying error.
/// </remarks>
public sealed class LakeWriteException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="relativePath">The final path of the file that failed.</param>
    /// <param name="failure">The classified cause.</param>
    /// <param name="message">What failed, naming the file.</param>
    /// <param name="innerException">The underlying error.</param>
    public LakeWriteException(string relativePath, LakeWriteFailure failure, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        RelativePath = relativePath;
        Failure = failure;
    }

    /// <summary>The final path (relative to the lake root) of the file that failed.</summary>
    public string RelativePath { get; }

    /// <summary>The classified cause.</summary>
    public LakeWriteFailure Failure { get; }

    internal static LakeWriteException From(string relativePath, string operation, Exception error)
    {
        var failure = Classify(error);
        var message = $"Lake file '{relativePath}' could not be {operation}: {Describe(failure)}. {error.Message}";
        return new LakeWriteException(relativePath, failure, message, error);
    }

    internal static string Describe(LakeWriteFailure failure) => failure switch
    {
        LakeWriteFailure.PermissionDenied => "permission denied",
        LakeWriteFailure.DiskFull => "no space left on device",
        LakeWriteFailure.FileTooLarge => "file too large (size limit exceeded)",
        LakeWriteFailure.AlreadyExists => "a file with that name already exists",
        LakeWriteFailure.StorageError => "the storage service refused the request",
        LakeWriteFailure.Unavailable => "the storage service is unreachable",
        _ => "I/O error",
    };

    // On Unix .NET puts the raw errno into IOException.HResult; on Windows it is a Win32 HRESULT.
    private const int Eperm = 1, Eacces = 13, Eexist = 17, Efbig = 27, Enospc = 28, Edquot = 122;
    private const int HrDiskFull = unchecked((int)0x80070070), HrHandleDiskFull = unchecked((int)0x80070027);
    private const int HrFileExists = unchecked((int)0x80070050), HrAlreadyExists = unchecked((int)0x800700B7);

    internal static LakeWriteFailure Classify(Exception error) => error switch
    {
        LakeWriteException lake => lake.Failure,
        UnauthorizedAccessException => LakeWriteFailure.PermissionDenied,
        IOException io => io.HResult switch
        {
            Eacces or Eperm => LakeWriteFailure.PermissionDenied,
            Enospc or Edquot or HrDiskFull or HrHandleDiskFull => LakeWriteFailure.DiskFull,
            Efbig => LakeWriteFailure.FileTooLarge,
            Eexist or HrFileExists or HrAlreadyExists => LakeWriteFailure.AlreadyExists,
            _ => LakeWriteFailure.Other,
        },
        _ => LakeWriteFailure.Other,
    };
}
