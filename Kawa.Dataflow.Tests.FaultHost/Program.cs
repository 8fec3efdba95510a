using System.Runtime.InteropServices;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.S3;
using Kawa.Dataflow.Parquet.Lake;

namespace Kawa.Dataflow.Tests.FaultHost;

/// <summary>
/// Writes one lake file through the real storage code and prints one JSON line describing the outcome.
/// </summary>
/// <remarks>
/// Commands (all sizes in bytes; the content is byte i = i % 251, so readers can check it):
/// <code>
/// local-write &lt;root&gt; &lt;relativePath&gt; &lt;size&gt; &lt;instanceId&gt; [Full|FileOnly|None]
/// s3-write &lt;serviceUrl&gt; &lt;bucket&gt; &lt;key&gt; &lt;size&gt; &lt;partSize&gt; &lt;instanceId&gt;
/// sink-write &lt;root&gt; &lt;instanceId&gt; &lt;ackLog&gt;     (SinkWrite.cs)
/// sink-run &lt;spec json&gt;                         (SinkRun.cs: a ParquetDestination with ack log and fault points)
/// </code>
/// <c>local-write</c> first runs the storage's startup cleanup, as a daemon does, and reports it in its JSON.
/// The environment variable <c>KAWA_FAULT</c> names a point where the host prints <c>READY {json}</c> and blocks until
/// it is killed: <c>mid-write</c>, <c>after-write-before-fsync</c>, <c>after-fsync-before-rename</c>,
/// <c>after-rename-before-dirsync</c> (local), <c>mid-upload</c> (S3, after the first part is uploaded).
/// With <c>KAWA_FAULT_RESUME=stdin</c> the host instead waits for a line on stdin and then continues.
/// Exit codes: 0 committed, 2 <see cref="LakeWriteException"/> (JSON has file, failure and message), 3 other error,
/// 4 usage, 99 a fault point waited two minutes without being killed.
/// </remarks>
internal static partial class Program
{
    private static readonly TimeSpan BlockLimit = TimeSpan.FromMinutes(2);

    public static async Task<int> Main(string[] args)
    {
        IgnoreFileSizeSignal();
        var fault = Environment.GetEnvironmentVariable("KAWA_FAULT");
        try
        {
            return args switch
            {
            ["local-write", var root, var path, var size, var instance, .. var rest] =>
                await LocalWriteAsync(root, path, long.Parse(size), instance, rest.Length > 0 ? Enum.Parse<FsyncMode>(rest[0]) : FsyncMode.Full, fault).ConfigureAwait(false),
            ["s3-write", var url, var bucket, var key, var size, var partSize, var instance] =>
                await S3WriteAsync(url, bucket, key, long.Parse(size), int.Parse(partSize), instance, fault).ConfigureAwait(false),
            ["sink-write", var root, var instance, var ackLog] =>
                await SinkWriteAsync(root, instance, ackLog, fault).ConfigureAwait(false),
            ["sink-run", var spec] =>
                await SinkRunAsync(spec, fault).ConfigureAwait(false),
                _ => Usage(),
            };
        }
        catch (LakeWriteException error)
        {
            Emit(new { ok = false, file = error.RelativePath, failure = error.Failure.ToString(), message = error.Message });
            return 2;
        }
        catch (Exception error)
        {
            Emit(new { ok = false, file = (string?)null, failure = "Unexpected", message = error.ToString() });
            return 3;
        }
    }

    private static async Task<int> LocalWriteAsync(string root, string relativePath, long size, string instance, FsyncMode fsync, string? fault)
    {
        var storage = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = root, InstanceId = instance, Fsync = fsync });
        storage.CommitStepReached = (step, temp) =>
        {
            var name = step switch
            {
                LocalCommitStep.AfterWriteBeforeFsync => "after-write-before-fsync",
                LocalCommitStep.AfterFsyncBeforeRename => "after-fsync-before-rename",
                _ => "after-rename-before-dirsync",
            };
            if (name == fault)
            {
                Block(name, temp);
            }
        };
        // As a daemon does at startup: remove this instance's leftovers of an earlier run before writing.
        var cleanup = await storage.CleanupAsync().ConfigureAwait(false);
        try
        {
            await using var file = await storage.CreateAsync(relativePath).ConfigureAwait(false);
            await WriteContentAsync(file.Stream, size, fault == "mid-write" ? size / 2 : -1, () => Block("mid-write", ((LocalLakeFile)file).TemporaryPath)).ConfigureAwait(false);
            await file.CommitAsync().ConfigureAwait(false);
            Emit(new { ok = true, file = relativePath, bytes = file.BytesWritten, remaining = Remaining(root), cleanup });
            return 0;
        }
        catch (LakeWriteException error)
        {
            // What is left under the root, hidden files included: the test may not see this file system (a private tmpfs).
            Emit(new { ok = false, file = error.RelativePath, failure = error.Failure.ToString(), message = error.Message, remaining = Remaining(root), cleanup });
            return 2;
        }
    }

    private static string[] Remaining(string root) => Directory
        .EnumerateFiles(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true })
        .Select(path => Path.GetRelativePath(root, path).Replace('\\', '/'))
        .Order(StringComparer.Ordinal)
        .ToArray();

    private static async Task<int> S3WriteAsync(string serviceUrl, string bucket, string key, long size, int partSize, string instance, string? fault)
    {
        using var client = CreateS3Client(serviceUrl);
        var storage = new S3LakeStorage(client, new S3LakeStorageOptions { BucketName = bucket, InstanceId = instance, PartSize = partSize });
        await using var file = await storage.CreateAsync(key).ConfigureAwait(false);
        // partSize + 1 bytes: the first part has been uploaded by the time the write returns.
        await WriteContentAsync(file.Stream, size, fault == "mid-upload" ? partSize + 1L : -1, () => Block("mid-upload", key)).ConfigureAwait(false);
        await file.CommitAsync().ConfigureAwait(false);
        Emit(new { ok = true, file = key, bytes = file.BytesWritten });
        return 0;
    }

    /// <summary>A client for a local S3 (s3rver): path-style, dummy credentials, checksums only when required.</summary>
    internal static AmazonS3Client CreateS3Client(string serviceUrl) => new(
        new BasicAWSCredentials("S3RVER", "S3RVER"),
        new AmazonS3Config
        {
            ServiceURL = serviceUrl,
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        });

    private static async Task WriteContentAsync(Stream stream, long size, long faultAt, Action fault)
    {
        var chunk = new byte[64 * 1024];
        long written = 0;
        while (written < size)
        {
            var count = (int)Math.Min(chunk.Length, size - written);
            if (faultAt >= 0 && written < faultAt && written + count >= faultAt)
            {
                count = (int)(faultAt - written);
            }
            for (var i = 0; i < count; i++)
            {
                chunk[i] = (byte)((written + i) % 251);
            }
            await stream.WriteAsync(chunk.AsMemory(0, count)).ConfigureAwait(false);
            written += count;
            if (written == faultAt)
            {
                await stream.FlushAsync().ConfigureAwait(false);
                fault();
            }
        }
    }

    private static void Block(string fault, string where)
    {
        Console.Out.WriteLine("READY " + JsonSerializer.Serialize(new { fault, where }));
        Console.Out.Flush();
        if (Environment.GetEnvironmentVariable("KAWA_FAULT_RESUME") == "stdin")
        {
            // The test changes the world (e.g. permissions) while we wait, then lets the commit go on.
            _ = Console.In.ReadLine();
            return;
        }
        using var never = new ManualResetEventSlim();
        never.Wait(BlockLimit);
        Environment.Exit(99);
    }

    private static void Emit(object result)
    {
        Console.Out.WriteLine(JsonSerializer.Serialize(result));
        Console.Out.Flush();
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: local-write <root> <relativePath> <size> <instanceId> [Full|FileOnly|None] | s3-write <serviceUrl> <bucket> <key> <size> <partSize> <instanceId> | sink-write <root> <instanceId> <ackLog> | sink-run <spec json>");
        return 4;
    }

    /// <summary>Under a file-size limit the kernel sends SIGXFSZ, which kills by default; ignored, write() returns EFBIG instead.</summary>
    private static void IgnoreFileSizeSignal()
    {
        if (OperatingSystem.IsLinux())
        {
            const int sigxfsz = 25;
            _ = Signal(sigxfsz, 1 /* SIG_IGN */);
        }
    }

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial nint Signal(int signal, nint handler);
}
