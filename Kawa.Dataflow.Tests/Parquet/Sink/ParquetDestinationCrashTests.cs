using Amazon.S3.Model;
using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Tests.Parquet.Lake;
using static Kawa.Dataflow.Tests.Parquet.Sink.SinkRunHost;

namespace Kawa.Dataflow.Tests.Parquet.Sink;

/// <summary>
/// The sink in a child process SIGKILLed at named fault points (the sink's own, the local storage's commit steps, S3
/// mid-upload): what was acked is committed, and the file being written when it died is neither visible nor acked.
/// </summary>
[NonParallelizable]
public sealed class ParquetDestinationCrashTests
{
    /// <summary>Two files of 10 rows (flushes of 5, a row group per flush): the first commits, the second is killed.
    /// Rows of 20,000 random bytes make each row group (~100 KB) larger than the file stream's buffer, so a row group
    /// written out is in the file by the time the fault point is reached.</summary>
    private static Dictionary<string, object> TwoLocalFiles(TempDirectory root, int occurrence) => new()
    {
        ["Root"] = root.Path,
        ["Instance"] = "crash-run",
        ["Rows"] = 20,
        ["PayloadBytes"] = 20_000,
        ["BatchSize"] = 5,
        ["FileMaxRows"] = 10,
        ["RowGroupMaxRows"] = 5,
        ["FaultOccurrence"] = occurrence,
    };

    // Each point's occurrence is its first time in the second file (rows 10-19): the sink's points come per flush
    // (mid-batch, after-row-group: flushes 3 and 4 are the second file's; the 4th is its second flush, so an earlier
    // flush's rows sit in it too), the commit steps once per file.
    [TestCase("mid-batch", 4)]
    [TestCase("after-row-group", 4)]
    [TestCase("before-rename", 2)]
    [TestCase("after-write-before-fsync", 2)]
    [TestCase("after-fsync-before-rename", 2)]
    public async Task SinkRun_KilledAtAFaultPointOfTheSecondFile_NoneOfItsRowsAckedNorVisible_TheFirstFileAckedAndRead(string fault, int occurrence)
    {
        using var root = new TempDirectory();
        using var host = Start(TwoLocalFiles(root, occurrence), fault);
        await host.Process.WaitUntilReadyAsync();
        await host.Process.KillAsync();

        var (acked, nacked) = host.Outcomes();
        Assert.Multiple(() =>
        {
            Assert.That(acked, Is.EqualTo(Range(0, 10)), "the first file's rows were acked after its commit; none of the second file's");
            Assert.That(nacked, Is.Empty);
            Assert.That(VisibleIds(root.Path), Is.EqualTo(Range(0, 10)), "DuckDB's glob sees the first file only");
            Assert.That(SinkTestSupport.Committed(root), Has.Length.EqualTo(1));
            var temps = root.AllFiles().Where(f => Path.GetFileName(f).StartsWith('.')).ToArray();
            Assert.That(temps, Has.Length.EqualTo(1), "the second file died as a hidden temporary");
            Assert.That(new FileInfo(root.Combine(temps[0])).Length, Is.GreaterThan(0), "with its bytes written: the kill came mid-file, not before it");
        });
    }

    [Test]
    public async Task SinkRun_KilledAfterTheRenameBeforeTheAck_FileVisibleButItsRowsUnacked()
    {
        using var root = new TempDirectory();
        using var host = Start(TwoLocalFiles(root, occurrence: 2), "after-rename");
        await host.Process.WaitUntilReadyAsync();
        await host.Process.KillAsync();

        // The one window where a crash duplicates: the rows are visible and will be redelivered (never lost).
        var (acked, _) = host.Outcomes();
        Assert.That(acked, Is.EqualTo(Range(0, 10)));
        Assert.That(VisibleIds(root.Path), Is.EqualTo(Range(0, 20)));
    }

    [Test]
    public async Task SinkRun_ToS3_KilledMidUploadOfTheSecondFile_NoObjectOfItAndNoneOfItsRowsAcked()
    {
        const string bucket = "lake";
        const int rowsPerFile = 5500;
        const int payload = 1200;
        await using var s3 = await S3rverFixture.StartAsync(bucket);

        // ~6.6 MB files with 5 MiB parts: the first file uploads two parts and commits; the third part upload is the
        // second file's first, after which the host blocks and is killed.
        using var host = Start(
            new Dictionary<string, object>
            {
                ["S3Url"] = s3.ServiceUrl,
                ["Bucket"] = bucket,
                ["PartSize"] = Kawa.Dataflow.Parquet.Lake.S3LakeStorageOptions.MinimumPartSize,
                ["Instance"] = "crash-s3",
                ["Rows"] = 2 * rowsPerFile,
                ["PayloadBytes"] = payload,
                ["BatchSize"] = 500,
                ["FileMaxRows"] = rowsPerFile,
                ["RowGroupMaxRows"] = 500,
                ["FaultOccurrence"] = 3,
            },
            "mid-upload");
        var key = await host.Process.WaitUntilReadyAsync();
        await host.Process.KillAsync();

        using var client = s3.CreateClient();
        var listing = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket });
        var keys = (listing.S3Objects ?? []).Select(o => o.Key).ToList();
        var (acked, nacked) = host.Outcomes();
        Assert.That(acked, Is.EqualTo(Range(0, rowsPerFile)), "the first file's rows only");
        Assert.That(nacked, Is.Empty);
        Assert.That(keys, Has.Count.EqualTo(1).And.Not.Contain(key), "only the first file is an object; the killed one is not");
        var pending = Directory.EnumerateFiles(s3.DataPath, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Where(f => f.Contains("uploads", StringComparison.Ordinal)).ToList();
        Assert.That(pending, Is.Not.Empty, "the second file's first part really was uploaded before the kill");

        using var local = new TempDirectory();
        var target = local.Combine("first.parquet");
        using (var response = await client.GetObjectAsync(bucket, keys[0]))
        await using (var file = File.Create(target))
        {
            await response.ResponseStream.CopyToAsync(file);
        }

        Assert.That(VisibleIds(local.Path), Is.EqualTo(Range(0, rowsPerFile)), "DuckDB reads every acked row from the committed object");
    }

    public sealed class SinkRow
    {
        public long Id { get; set; }
    }

    [Test]
    public async Task SinkWrite_KilledWithAnOpenFile_EveryAckedRowIsCommitted_OpenRowsUnackedAndInvisible_CleanedUpAtRestart()
    {
        using var root = new TempDirectory();
        var ackLog = root.Combine("..", Path.GetFileName(root.Path) + ".acks");
        try
        {
            using (var host = FaultHostProcess.Start(["sink-write", root.Path, "crash-sink", ackLog], fault: "sink-open"))
            {
                await host.WaitUntilReadyAsync();
                await host.KillAsync();
            }

            var acked = File.ReadAllLines(ackLog).Select(long.Parse).Order().ToArray();
            var committed = new List<long>();
            var files = root.AllFiles();
            foreach (var file in files.Where(f => f.EndsWith(".parquet", StringComparison.Ordinal) && !Path.GetFileName(f).StartsWith('.')))
            {
                await using var reader = await ParquetReader.OpenAsync(root.Combine(file));
                committed.AddRange((await reader.ReadAllAsync<SinkRow>()).Select(r => r.Id));
            }

            Assert.That(acked, Is.EqualTo(Enumerable.Range(5, 20).Select(i => (long)i)), "rows 5-24 were in committed files");
            Assert.That(committed.Order(), Is.EqualTo(acked), "every acked row is in a committed file; nothing unacked is visible");
            Assert.That(files.Where(f => f.StartsWith("p=open/", StringComparison.Ordinal)).Select(Path.GetFileName), Has.Exactly(1).StartWith("."),
                "rows 0-4 died in the open file's hidden temporary: never acked, so the source redelivers them");

            using var restart = FaultHostProcess.Start(["sink-write", root.Path, "crash-sink", ackLog]);
            var result = await restart.WaitForResultAsync();
            Assert.That(result.Ok, Is.True, result.Stderr);
            Assert.That(result.Cleanup!.Value.Removed, Is.EqualTo(1), "the restart removed the dead run's temporary file");
            Assert.That(result.Remaining!.Where(f => Path.GetFileName(f).StartsWith('.')), Is.Empty);
        }
        finally
        {
            File.Delete(ackLog);
        }
    }
}
