using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Tests.Parquet.Lake;
using static Kawa.Dataflow.Tests.Parquet.Sink.SinkRunHost;

namespace Kawa.Dataflow.Tests.Parquet.Sink;

/// <summary>
/// Real OS failures through <c>ParquetDestination</c> in a child process (the fault host's <c>sink-run</c>): a file-size
/// limit (<c>prlimit --fsize</c>, EFBIG) mid-file and at commit, and permission denied as user nobody (<c>setpriv</c>) at
/// create and at commit. The host negatively acks a failed flush (no retry) and goes on, so later files are observed too.
/// </summary>
[NonParallelizable]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ParquetDestinationRealFailureTests
{
    private static readonly string[] AsNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];

    private TempDirectory _root = null!;

    [SetUp]
    public void SetUp() => _root = new TempDirectory();

    [TearDown]
    public void TearDown()
    {
        File.SetUnixFileMode(_root.Path, (UnixFileMode)0b111_101_101);
        _root.Dispose();
    }

    private Dictionary<string, object> Spec(int rows, int payloadBytes, int batchSize, long fileMaxRows, int? rowGroupMaxRows = null)
    {
        var spec = new Dictionary<string, object>
        {
            ["Root"] = _root.Path,
            ["Instance"] = "real-failure",
            ["Rows"] = rows,
            ["PayloadBytes"] = payloadBytes,
            ["BatchSize"] = batchSize,
            ["FileMaxRows"] = fileMaxRows,
        };
        if (rowGroupMaxRows is { } r)
        {
            spec["RowGroupMaxRows"] = r;
        }

        return spec;
    }

    [Test]
    public async Task SinkRun_RowGroupWriteHitsTheFileSizeLimitMidFile_EveryRowOfThatFileNackedTemporaryRemovedLaterFileCommits()
    {
        // Row groups of 8 rows x 10,000 random bytes (~80 KB): the first file (40 rows, flushes of 4) cannot hold four
        // of them under the 280,000-byte limit, so a row-group write late in the file fails (in a flush near its end,
        // after most of its flushes were appended to it). The 8 rows after it make a second file of ~80 KB.
        using var host = Start(Spec(rows: 48, payloadBytes: 10_000, batchSize: 4, fileMaxRows: 40, rowGroupMaxRows: 8), wrapper: ["prlimit", "--fsize=280000"]);

        var result = await host.Process.WaitForResultAsync();

        var failures = Failures(result);
        var (acked, nacked) = host.Outcomes();
        Assert.Multiple(() =>
        {
            Assert.That(failures, Has.Length.EqualTo(1), result.Json + result.Stderr);
            Assert.That(failures[0].Failure, Is.EqualTo(nameof(LakeWriteFailure.FileTooLarge)));
            Assert.That(failures[0].File, Does.StartWith("part-").And.EndWith(".parquet"));
            Assert.That(failures[0].Message, Does.Contain(failures[0].File!).And.Contain("file too large"), "the error names the file and the cause");
            Assert.That(nacked, Is.EqualTo(Range(0, 40)), "the failing flush's rows and every earlier flush's rows held by that file");
            Assert.That(acked, Is.EqualTo(Range(40, 8)), "the next file still commits and acks");
            Assert.That(result.Remaining, Has.Length.EqualTo(1).And.None.StartsWith("."), "the half-written temporary file was removed");
            Assert.That(result.Remaining![0], Is.Not.EqualTo(failures[0].File));
            Assert.That(VisibleIds(_root.Path), Is.EqualTo(acked));
        });
    }

    [Test]
    public async Task SinkRun_CommitHitsTheFileSizeLimit_FlushFailsNothingAckedTemporaryRemoved()
    {
        // Rows stay buffered until the file's commit (one row group): the commit's write of ~20 KB meets an 8 KiB limit.
        using var host = Start(Spec(rows: 20, payloadBytes: 2_000, batchSize: 5, fileMaxRows: 10), wrapper: ["prlimit", "--fsize=8192"]);

        var result = await host.Process.WaitForResultAsync();

        var failures = Failures(result);
        var (acked, nacked) = host.Outcomes();
        Assert.Multiple(() =>
        {
            Assert.That(failures, Has.Length.EqualTo(2), result.Json + result.Stderr);
            Assert.That(failures.Select(f => f.Failure), Has.All.EqualTo(nameof(LakeWriteFailure.FileTooLarge)));
            Assert.That(failures.Select(f => f.File).Distinct().Count(), Is.EqualTo(2), "each file fails on its own");
            Assert.That(failures.Select(f => f.Message.Contains(f.File!, StringComparison.Ordinal) && f.Message.Contains("file too large", StringComparison.Ordinal)), Has.All.True);
            Assert.That(acked, Is.Empty);
            Assert.That(nacked, Is.EqualTo(Range(0, 20)));
            Assert.That(result.Remaining, Is.Empty, "both temporaries were removed");
        });
    }

    [Test]
    public async Task SinkRun_AsNobodyInARootOwnedLake_CreateFailsPermissionDeniedEveryRowNackedNothingLeft()
    {
        // CI runs as root, which ignores permission bits: the sink runs as nobody, the lake root is root's (rwxr-xr-x).
        using var host = Start(Spec(rows: 10, payloadBytes: 10, batchSize: 5, fileMaxRows: 10), wrapper: AsNobody);

        var result = await host.Process.WaitForResultAsync();

        var failures = Failures(result);
        var (acked, nacked) = host.Outcomes();
        Assert.Multiple(() =>
        {
            Assert.That(failures, Has.Length.EqualTo(2), result.Json + result.Stderr);
            Assert.That(failures.Select(f => f.Failure), Has.All.EqualTo(nameof(LakeWriteFailure.PermissionDenied)));
            Assert.That(failures.Select(f => f.Message.Contains(f.File!, StringComparison.Ordinal) && f.Message.Contains("permission denied", StringComparison.Ordinal)), Has.All.True,
                string.Join(" | ", failures.Select(f => f.Message)));
            Assert.That(acked, Is.Empty);
            Assert.That(nacked, Is.EqualTo(Range(0, 10)));
            Assert.That(_root.AllFiles(), Is.Empty);
        });
    }

    [Test]
    public async Task SinkRun_LakeTurnsReadOnlyBeforeTheRename_CommitFailsPermissionDeniedNothingAckedTemporaryLeftForCleanup()
    {
        // nobody may write the lake root while it writes the file; between its fsync and its rename the root loses
        // that permission (a real EACCES on rename, and on the removal of the temporary).
        File.SetUnixFileMode(_root.Path, (UnixFileMode)0b111_111_111);
        using var host = Start(Spec(rows: 10, payloadBytes: 10, batchSize: 5, fileMaxRows: 10), "after-fsync-before-rename", AsNobody, resumable: true);
        var temp = await host.Process.WaitUntilReadyAsync();
        File.SetUnixFileMode(_root.Path, (UnixFileMode)0b111_101_101);
        await host.Process.ResumeAsync();

        var result = await host.Process.WaitForResultAsync();

        var failures = Failures(result);
        var (acked, nacked) = host.Outcomes();
        Assert.Multiple(() =>
        {
            Assert.That(failures, Has.Length.EqualTo(1), result.Json + result.Stderr);
            Assert.That(failures[0].Failure, Is.EqualTo(nameof(LakeWriteFailure.PermissionDenied)));
            Assert.That(failures[0].Message, Does.Contain(failures[0].File!).And.Contain("could not be committed").And.Contain("permission denied"));
            Assert.That(acked, Is.Empty);
            Assert.That(nacked, Is.EqualTo(Range(0, 10)));
            Assert.That(SinkTestSupport.Committed(_root), Is.Empty, "nothing visible");
            Assert.That(File.Exists(temp), Is.True, "the temporary cannot be removed from a read-only directory (docs/lake.md)");
        });

        // It is an own leftover of the instance: the next start's cleanup removes it.
        File.SetUnixFileMode(_root.Path, (UnixFileMode)0b111_111_111);
        var cleanup = await new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = _root.Path, InstanceId = "real-failure" }).CleanupAsync();
        Assert.That(cleanup.Removed, Is.EqualTo(1));
        Assert.That(_root.AllFiles(), Is.Empty);
    }
}
