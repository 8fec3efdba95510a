using System.Runtime.InteropServices;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>fsync of a directory, which .NET has no API for: it makes a rename or a new entry durable.</summary>
/// <remarks>
/// On Linux and macOS the directory is opened read-only with <c>O_DIRECTORY</c> and fsynced through libc.
/// On Windows this is a no-op: NTFS journals metadata, and a directory cannot be opened for flushing through
/// the APIs .NET exposes, so a rename there is as durable as the file system makes it.
/// </remarks>
internal static partial class PosixDirectory
{
    private const int ORdOnly = 0;
    private const int OCloExec = 0x80000;

    public static bool IsSupported { get; } = OperatingSystem.IsLinux() || OperatingSystem.IsMacOS();

    /// <summary>Fsyncs <paramref name="directory"/>; throws <see cref="IOException"/> with the errno on failure.</summary>
    public static void Fsync(string directory)
    {
        if (!IsSupported)
        {
            return;
        }
        var flags = ORdOnly | ODirectory() | (OperatingSystem.IsLinux() ? OCloExec : 0);
        var fd = Open(directory, flags);
        if (fd < 0)
        {
            throw Error("open", directory);
        }
        try
        {
            if (FsyncNative(fd) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                // Some file systems (and /proc-like mounts) cannot fsync directories; that is not a write failure.
                if (errno is not (Einval or Enotsup))
                {
                    throw Error("fsync", directory, errno);
                }
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    private const int Einval = 22;
    private const int Enotsup = 95;

    private static int ODirectory() => OperatingSystem.IsMacOS()
        ? 0x100000
        : RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.Arm64 or Architecture.Arm => 0x4000,
            _ => 0x10000,
        };

    private static IOException Error(string call, string directory, int? errno = null)
    {
        var code = errno ?? Marshal.GetLastPInvokeError();
        return new IOException($"{call}('{directory}') failed: {Marshal.GetPInvokeErrorMessage(code)} (errno {code}).", code);
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncNative(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
