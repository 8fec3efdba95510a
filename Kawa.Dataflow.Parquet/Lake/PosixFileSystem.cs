using System.Runtime.InteropServices;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>The two file-system calls .NET has no API for: fsync of a directory, and a rename that never replaces.</summary>
/// <remarks>
/// <para>Directory fsync makes a rename or a new entry durable. On Linux and macOS the directory is opened read-only with
/// <c>O_DIRECTORY</c> and fsynced through libc. On Windows this is a no-op: NTFS journals metadata, and a directory
/// cannot be opened for flushing through the APIs .NET exposes, so a rename there is as durable as the file system makes it.</para>
/// <para>No-replace rename: <c>File.Move(overwrite: false)</c> checks for the target and then calls <c>rename()</c>, which
/// would replace a file created in between. On Linux <c>renameat2(RENAME_NOREPLACE)</c> does both in one atomic step.</para>
/// </remarks>
internal static partial class PosixFileSystem
{
    private const int ORdOnly = 0;
    private const int OCloExec = 0x80000;

    public static bool IsSupported { get; } = OperatingSystem.IsLinux() || OperatingSystem.IsMacOS();

    private const int AtFdCwd = -100;
    private const uint RenameNoReplace = 1;
    private const int Enosys = 38;
    private static bool s_renameat2Missing;

    /// <summary>
    /// Renames <paramref name="source"/> to <paramref name="destination"/> atomically, failing with <c>EEXIST</c>
    /// (<see cref="Exception.HResult"/> 17) if the destination exists. Falls back to <see cref="File.Move(string, string, bool)"/>
    /// (check, then rename) off Linux and where the file system does not support <c>RENAME_NOREPLACE</c>.
    /// </summary>
    public static void MoveNoReplace(string source, string destination)
    {
        if (OperatingSystem.IsLinux() && !Volatile.Read(ref s_renameat2Missing))
        {
            try
            {
                if (Renameat2(AtFdCwd, source, AtFdCwd, destination, RenameNoReplace) == 0)
                {
                    return;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno is not (Einval or Enosys))
                {
                    throw Error("renameat2", $"{source}' -> '{destination}", errno);
                }
            }
            catch (EntryPointNotFoundException)
            {
                Volatile.Write(ref s_renameat2Missing, true); // glibc older than 2.28, or musl without it
            }
        }
        File.Move(source, destination, overwrite: false);
    }

    /// <summary>Fsyncs <paramref name="directory"/>; throws <see cref="IOException"/> with the errno on failure.</summary>
    public static void FsyncDirectory(string directory)
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

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Renameat2(int oldDirectory, string oldPath, int newDirectory, string newPath, uint flags);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncNative(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
