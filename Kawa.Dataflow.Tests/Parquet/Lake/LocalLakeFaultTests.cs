using Kawa.Dataflow.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Parquet.Lake;

/// <summary>
/// Real faults: a child process (the fault host) writes through <see cref="LocalLakeStorage"/> and is SIGKILLed at a named
/// point, or runs as an unprivileged user, or under a file-size limit. Whatever happens, no reader ever sees a partial
/// file, and a file that is not committed is never acked (the sink acks only after CommitAsync returned).
/// </summary>
/// <remarks>Linux only: it needs setpriv, prlimit and POSIX signals.</remarks>
[NonParallelizable]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LocalLakeFaultTests
{
    private const int Size = 3 * 1024 * 1024;
    private const string Relative = "dt=2024-05-01/hour=10/part-crash.snappy.parquet";
    private TempDirectory _root = null!;

    [SetUp]
    public void SetUp() => _root = new TempDirectory();

    [TearDown]
    public void TearDown() => _root.Dispose();

    private FaultHostProcess StartWriter(string instance, string? fault = null, string[]? wrapper = null, string relative = Relative, long size = Size, bool resumable = false) =>
        FaultHostProcess.Start(["local-write", _root.Path, relative, size.ToString(System.Globalization.CultureInfo.InvariantCulture), instance], fault, wrapper,
            resumable ? new Dictionary<string, string> { ["KAWA_FAULT_RESUME"] = "stdin" } : null);

    private static readonly string[] AsNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];

    [Test]
    public async Task FaultHost_NoFault_CommitsTheCompleteFile()
    {
        using var host = StartWriter("writer-a");

        var result = await host.WaitForResultAsync();

        Assert.That(result.Ok, Is.True, result.Message + result.Stderr);
        Assert.That(_root.AllFiles(), Is.EqualTo(new[] { Relative }));
        Assert.That(File.ReadAllBytes(_root.Combine(Relative)), Is.EqualTo(LakeContent.Pattern(Size)));
    }

    [TestCase("mid-write")]
    [TestCase("after-write-before-fsync")]
    [TestCase("after-fsync-before-rename")]
    public async Task Kill_BeforeRename_NoVisibleFileOnlyATemporaryThatTheNextStartOfTheSameInstanceRemoves(string fault)
    {
        using var host = StartWriter("writer-a", fault);
        var temp = await host.WaitUntilReadyAsync();
        await host.KillAsync();

        // Not committed, so the sink never acked these messages: they are redelivered and written again.
        var left = _root.AllFiles();
        Assert.That(left, Has.Length.EqualTo(1));
        Assert.That(Path.GetFileName(left[0]), Does.StartWith(".").And.Not.EndWith(".parquet"));
        Assert.That(_root.Combine(left[0]), Is.EqualTo(temp));
        Assert.That(new FileInfo(temp).Length, Is.GreaterThan(0), "the crash left real bytes behind");

        var restarted = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = _root.Path, InstanceId = "writer-a" });
        var cleanup = await restarted.CleanupAsync();

        Assert.That(cleanup, Is.EqualTo(new LakeCleanupResult(Removed: 1, Failed: 0, Kept: 0)));
        Assert.That(_root.AllFiles(), Is.Empty);
    }

    [Test]
    public async Task Kill_MidWrite_RestartedProcessOfTheSameInstanceRemovesTheLeftoverAndWritesAgain()
    {
        using (var crashed = StartWriter("writer-a", "mid-write"))
        {
            await crashed.WaitUntilReadyAsync();
            await crashed.KillAsync();
        }
        Assert.That(_root.AllFiles(), Has.Length.EqualTo(1), "the crash left a temporary file");

        // The redelivered messages are written again by the restarted daemon.
        using var restarted = StartWriter("writer-a");
        var result = await restarted.WaitForResultAsync();

        Assert.That(result.Ok, Is.True, result.Message + result.Stderr);
        Assert.That(result.Cleanup, Is.EqualTo(new LakeCleanupResult(Removed: 1, Failed: 0, Kept: 0)));
        Assert.That(_root.AllFiles(), Is.EqualTo(new[] { Relative }));
        Assert.That(File.ReadAllBytes(_root.Combine(Relative)), Is.EqualTo(LakeContent.Pattern(Size)));
    }

    [Test]
    public async Task TwoLiveProcesses_SecondStartsWhileTheFirstWrites_FirstFileSurvivesAndBothCommit()
    {
        using var first = StartWriter("writer-a", "mid-write", relative: "dt=1/part-a.parquet", resumable: true);
        var firstTemp = await first.WaitUntilReadyAsync();

        using var second = StartWriter("writer-b", relative: "dt=1/part-b.parquet");
        var secondResult = await second.WaitForResultAsync();
        Assert.That(File.Exists(firstTemp), Is.True, "writer-b's startup cleanup must not touch a live writer's file");
        await first.ResumeAsync();
        var firstResult = await first.WaitForResultAsync();

        Assert.Multiple(() =>
        {
            Assert.That(secondResult.Ok, Is.True, secondResult.Message + secondResult.Stderr);
            Assert.That(secondResult.Cleanup, Is.EqualTo(new LakeCleanupResult(Removed: 0, Failed: 0, Kept: 1)));
            Assert.That(firstResult.Ok, Is.True, firstResult.Message + firstResult.Stderr);
            Assert.That(_root.AllFiles(), Is.EqualTo(new[] { "dt=1/part-a.parquet", "dt=1/part-b.parquet" }));
            Assert.That(File.ReadAllBytes(_root.Combine("dt=1", "part-a.parquet")), Is.EqualTo(LakeContent.Pattern(Size)));
        });
    }

    /// <summary>Durability cannot be observed without pulling the plug, so the system calls themselves are checked.</summary>
    [TestCase(FsyncMode.Full, new[] { "fsync <root>", "fsync <temp>", "renameat2 NOREPLACE", "fsync <dir>" })]
    [TestCase(FsyncMode.FileOnly, new[] { "fsync <temp>", "renameat2 NOREPLACE" })]
    [TestCase(FsyncMode.None, new[] { "renameat2 NOREPLACE" })]
    public async Task Commit_TracedWithStrace_FsyncsTheFileBeforeTheRenameAndTheDirectoryAfterIt(FsyncMode mode, string[] expected)
    {
        Assume.That(File.Exists("/usr/bin/strace"), Is.True, "needs strace (apt-get install strace)");
        var trace = _root.Path + ".strace";
        try
        {
            using var host = FaultHostProcess.Start(
                ["local-write", _root.Path, "dt=1/part.parquet", "1000", "writer-a", mode.ToString()],
                wrapper: ["strace", "-f", "-y", "-qq", "-e", "trace=fsync,renameat2", "-o", trace]);
            var result = await host.WaitForResultAsync();
            Assert.That(result.Ok, Is.True, result.Message + result.Stderr);

            var dir = _root.Combine("dt=1");
            var calls = File.ReadLines(trace)
                .Select(line => line.Contains("renameat2(", StringComparison.Ordinal) && line.Contains("/.part.parquet.tmp-writer-a-", StringComparison.Ordinal)
                        && line.Contains($"\"{dir}/part.parquet\"", StringComparison.Ordinal) && line.Contains("RENAME_NOREPLACE", StringComparison.Ordinal) ? "renameat2 NOREPLACE"
                    : line.Contains($"fsync(", StringComparison.Ordinal) && line.Contains($"<{dir}/.part.parquet.tmp-writer-a-", StringComparison.Ordinal) ? "fsync <temp>"
                    : line.Contains("fsync(", StringComparison.Ordinal) && line.Contains($"<{dir}>", StringComparison.Ordinal) ? "fsync <dir>"
                    : line.Contains("fsync(", StringComparison.Ordinal) && line.Contains($"<{_root.Path}>", StringComparison.Ordinal) ? "fsync <root>"
                    : null)
                .OfType<string>()
                .ToArray();

            Assert.That(calls, Is.EqualTo(expected), "the fsync of a new directory's parent, the file, the no-replace rename, the directory: in this order");
        }
        finally
        {
            File.Delete(trace);
        }
    }

    [Test]
    public async Task Kill_AfterRenameBeforeDirectorySync_FileVisibleAndComplete()
    {
        using var host = StartWriter("writer-a", "after-rename-before-dirsync");
        await host.WaitUntilReadyAsync();
        await host.KillAsync();

        // The process died before CommitAsync returned, so the sink never acked: the redelivered messages will be
        // written to a new file (at-least-once: duplicates are possible, loss is not).
        Assert.That(_root.AllFiles(), Is.EqualTo(new[] { Relative }));
        Assert.That(File.ReadAllBytes(_root.Combine(Relative)), Is.EqualTo(LakeContent.Pattern(Size)));
    }

    [Test]
    public async Task Kill_MidWrite_AnotherInstancesStartupKeepsTheLeftoverUntilItIsStale()
    {
        using var host = StartWriter("writer-a", "mid-write");
        var temp = await host.WaitUntilReadyAsync();
        await host.KillAsync();
        var maxFileAge = TimeSpan.FromMinutes(5);
        var time = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var other = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = _root.Path, InstanceId = "writer-b", MaxFileAge = maxFileAge }, timeProvider: time);

        // The killed writer ran with the default MaxFileAge (1 hour), longer than this cleaner's, and its name says so.
        var writersAge = new LocalLakeStorageOptions().MaxFileAge;

        var early = await other.CleanupAsync();
        time.Advance(2 * maxFileAge + TimeSpan.FromMinutes(1));
        var pastTwiceTheCleanersAge = await other.CleanupAsync();
        time.Advance(2 * writersAge - 2 * maxFileAge);
        var late = await other.CleanupAsync();

        Assert.That(early, Is.EqualTo(new LakeCleanupResult(Removed: 0, Failed: 0, Kept: 1)), "writer-a might be alive: never touch its file");
        Assert.That(pastTwiceTheCleanersAge, Is.EqualTo(new LakeCleanupResult(Removed: 0, Failed: 0, Kept: 1)),
            "writer-a declared a longer MaxFileAge than the cleaner's: it might still be alive");
        Assert.That(late, Is.EqualTo(new LakeCleanupResult(Removed: 1, Failed: 0, Kept: 0)));
        Assert.That(File.Exists(temp), Is.False);
    }

    [Test]
    public async Task Create_AsUnprivilegedUserInARootOwnedDirectory_PermissionDeniedNamingTheFile()
    {
        // CI runs as root, which ignores permission bits: the writer runs as nobody instead.
        using var host = StartWriter("writer-a", wrapper: AsNobody);

        var result = await host.WaitForResultAsync();

        // CreateAsync threw: no file, nothing to ack; the sink negatively acks (or stops) per its policy.
        Assert.Multiple(() =>
        {
            Assert.That(result.ExitCode, Is.EqualTo(2), result.Message + result.Stderr);
            Assert.That(result.Failure, Is.EqualTo(nameof(LakeWriteFailure.PermissionDenied)));
            Assert.That(result.File, Is.EqualTo(Relative));
            Assert.That(result.Message, Does.Contain(Relative).And.Contain("permission denied"));
            Assert.That(_root.AllFiles(), Is.Empty);
        });
    }

    [Test]
    public async Task Create_AsUnprivilegedUserInAReadOnlyPartitionDirectory_PermissionDeniedAndNothingLeft()
    {
        // nobody may write the root, but the partition directory (created by root) is read-only to it.
        File.SetUnixFileMode(_root.Path, (UnixFileMode)0b111_111_111);
        var partition = Directory.CreateDirectory(_root.Combine("dt=2024-05-01", "hour=10"));
        File.SetUnixFileMode(_root.Combine("dt=2024-05-01"), (UnixFileMode)0b111_111_111);
        File.SetUnixFileMode(partition.FullName, (UnixFileMode)0b111_101_101);
        using var host = StartWriter("writer-a", wrapper: AsNobody);

        var result = await host.WaitForResultAsync();

        Assert.That(result.Failure, Is.EqualTo(nameof(LakeWriteFailure.PermissionDenied)), result.Message + result.Stderr);
        Assert.That(result.Message, Does.Contain(Relative));
        Assert.That(_root.AllFiles(), Is.Empty);
    }

    [Test]
    public async Task Commit_DirectoryTurnsReadOnlyBeforeTheRename_PermissionDeniedNothingVisibleAndCleanupRemovesTheTemporary()
    {
        // nobody owns the partition directory while it writes; just before the rename it loses write permission.
        File.SetUnixFileMode(_root.Path, (UnixFileMode)0b111_111_111);
        var partition = Directory.CreateDirectory(_root.Combine("dt=2024-05-01", "hour=10")).FullName;
        File.SetUnixFileMode(_root.Combine("dt=2024-05-01"), (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(partition, (UnixFileMode)0b111_111_111);
        using var host = StartWriter("writer-a", "after-fsync-before-rename", AsNobody, resumable: true);
        var temp = await host.WaitUntilReadyAsync();
        File.SetUnixFileMode(partition, (UnixFileMode)0b111_101_101);
        await host.ResumeAsync();

        var result = await host.WaitForResultAsync();

        // CommitAsync threw: the sink does not ack, the messages are redelivered.
        Assert.Multiple(() =>
        {
            Assert.That(result.ExitCode, Is.EqualTo(2), result.Message + result.Stderr);
            Assert.That(result.Failure, Is.EqualTo(nameof(LakeWriteFailure.PermissionDenied)));
            Assert.That(result.Message, Does.Contain(Relative).And.Contain("could not be committed"));
            Assert.That(File.Exists(_root.Combine(Relative)), Is.False, "nothing visible");
            Assert.That(File.Exists(temp), Is.True, "the temporary could not be deleted either: the directory is read-only");
        });
        File.SetUnixFileMode(partition, (UnixFileMode)0b111_111_111);
        var cleanup = await new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = _root.Path, InstanceId = "writer-a" }).CleanupAsync();
        Assert.That(cleanup.Removed, Is.EqualTo(1));
        Assert.That(_root.AllFiles(), Is.Empty);
    }

    [Test]
    public async Task Startup_OwnLeftoverThatCannotBeDeleted_CountedAsFailedAndTheWriterStillWrites()
    {
        // A leftover of writer-a in a directory writer-a (running as nobody) may not modify: cleanup is best effort.
        File.SetUnixFileMode(_root.Path, (UnixFileMode)0b111_111_111);
        var locked = Directory.CreateDirectory(_root.Combine("locked")).FullName;
        var leftover = Path.Combine(locked, ".part-old.parquet.tmp-writer-a-0badf00d");
        await File.WriteAllBytesAsync(leftover, [1, 2, 3]);
        using var host = StartWriter("writer-a", wrapper: AsNobody, relative: "dt=1/part.parquet", size: 1000);

        var result = await host.WaitForResultAsync();

        Assert.That(result.Ok, Is.True, result.Message + result.Stderr);
        Assert.That(result.Cleanup, Is.EqualTo(new LakeCleanupResult(Removed: 0, Failed: 1, Kept: 0)));
        Assert.That(File.Exists(leftover), Is.True);
        Assert.That(File.Exists(_root.Combine("dt=1", "part.parquet")), Is.True);
    }

    [Test]
    public async Task Write_UnderAFileSizeLimit_FileTooLargeNamingTheFileAndTheTemporaryIsRemoved()
    {
        // The kernel refuses writes past 1 MiB (EFBIG; the host ignores SIGXFSZ) while the file wants 3 MiB.
        using var host = StartWriter("writer-a", wrapper: ["prlimit", "--fsize=1048576"]);

        var result = await host.WaitForResultAsync();

        // The write threw: the file is gone, the sink must not ack its messages.
        Assert.Multiple(() =>
        {
            Assert.That(result.ExitCode, Is.EqualTo(2), result.Message + result.Stderr);
            Assert.That(result.Failure, Is.EqualTo(nameof(LakeWriteFailure.FileTooLarge)));
            Assert.That(result.File, Is.EqualTo(Relative));
            Assert.That(result.Message, Does.Contain(Relative).And.Contain("file too large"));
            Assert.That(_root.AllFiles(), Is.Empty, "the half-written temporary file is removed");
        });
    }

    [Test]
    public async Task Write_OnAFullFileSystem_DiskFullNamingTheFileAndTheTemporaryIsRemoved()
    {
        // A 1 MiB tmpfs in a private mount namespace over the lake root, for the child only; the file wants 3 MiB.
        Assume.That(CanMountPrivateTmpfs(), Is.True, "needs 'unshare --mount' (root or CAP_SYS_ADMIN) to mount a small tmpfs");
        string[] smallDisk = ["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o size=1048576 kawa-lake-full \"$0\" && exec \"$@\"", _root.Path];
        using var host = StartWriter("writer-a", wrapper: smallDisk);

        var result = await host.WaitForResultAsync();

        // The write threw: the sink must not ack the file's messages.
        Assert.Multiple(() =>
        {
            Assert.That(result.ExitCode, Is.EqualTo(2), result.Message + result.Stderr);
            Assert.That(result.Failure, Is.EqualTo(nameof(LakeWriteFailure.DiskFull)));
            Assert.That(result.Message, Does.Contain(Relative).And.Contain("no space left on device"));
            Assert.That(result.Remaining, Is.Empty, "the half-written temporary file is removed, freeing the space");
        });
    }

    private static bool CanMountPrivateTmpfs()
    {
        using var probe = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("unshare", ["--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o size=4096 probe /mnt"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        });
        if (probe is null)
        {
            return false;
        }
        probe.WaitForExit(30_000);
        return probe.HasExited && probe.ExitCode == 0;
    }

    [Test]
    public async Task Write_UnderAFileSizeLimitLargerThanTheFile_Commits()
    {
        using var host = StartWriter("writer-a", wrapper: ["prlimit", "--fsize=8388608"]);

        var result = await host.WaitForResultAsync();

        Assert.That(result.Ok, Is.True, result.Message + result.Stderr);
        Assert.That(new FileInfo(_root.Combine(Relative)).Length, Is.EqualTo(Size));
    }
}
