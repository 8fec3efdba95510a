using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Tests.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Parquet.Sink;

/// <summary>The sink in a child process SIGKILLed while a file is open: what was acked is committed, nothing else is visible.</summary>
public sealed class ParquetDestinationCrashTests
{
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
