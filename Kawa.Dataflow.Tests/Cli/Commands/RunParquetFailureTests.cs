using System.Text.Json;

namespace Kawa.Dataflow.Tests.Cli.Commands;

/// <summary>A Parquet write that fails while <c>kawa run</c> runs is logged by the lake, naming the file; nothing is acked.</summary>
public sealed class RunParquetFailureTests
{
    [Test]
    public async Task Run_PartitionDirectoryBlockedByAFile_LogsTheFailedFileAcksNothingAndExitsRuntimeFailure()
    {
        var dir = Directory.CreateTempSubdirectory("kawa-run-fail-").FullName;
        try
        {
            var input = Path.Combine(dir, "in.log");
            File.WriteAllLines(input, File.ReadLines(TestPaths.AccessLog10k).Take(5));
            var lake = Path.Combine(dir, "lake");
            Directory.CreateDirectory(lake);
            // A real fault: the partition's directory cannot be created because a file holds its name.
            File.WriteAllText(Path.Combine(lake, "dt=2015-05-17"), "not a directory");
            var config = Path.Combine(dir, "config.json");
            File.WriteAllText(config, $$"""
                {
                  "pipeline": {
                    "name": "blocked",
                    "source": { "type": "file", "path": {{JsonSerializer.Serialize(input)}} },
                    "handlers": [ { "type": "parse", "format": "combined" } ],
                    "destination": { "type": "parquet", "path": {{JsonSerializer.Serialize(lake)}}, "partitionBy": "dt={ts:yyyy-MM-dd}", "rollAge": "00:00:01" }
                  },
                  "metrics": { "port": 0 }
                }
                """);

            var result = await KawaProcess.RunAsync(dir, null, "run", "--config", config);

            Assert.Multiple(() =>
            {
                Assert.That(result.ExitCode, Is.EqualTo(Kawa.Dataflow.Cli.ExitCodes.RuntimeFailure), result.Stderr);
                // The lake's own log line (only there when the daemon hands the sink its logger), then the final error.
                Assert.That(result.Stderr, Does.Contain("Lake file dt=2015-05-17/part-").And.Contain("failed: AlreadyExists"));
                Assert.That(result.Stderr, Does.Contain("0 acked").And.Contain("0 files committed"), "no line is acked while its file cannot be written");
                Assert.That(result.Stderr, Does.Contain("Nothing unfinished was acked"));
            });
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
