using System.Text;
using System.Text.Json.Serialization;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Sink;
using Kawa.Dataflow.Tests.Nats.Infrastructure;
using Kawa.Dataflow.Tests.Parquet;

namespace Kawa.Dataflow.Tests.Docs;

public sealed record AccessEvent(DateTimeOffset Time, string Path, int Status, long Bytes);

[JsonSerializable(typeof(AccessEvent))]
[JsonSerializable(typeof(Writing.Order))]
internal sealed partial class AppJson : JsonSerializerContext;

/// <summary>The README's "From code" example, run as written against a real nats-server and read back by DuckDB; a
/// second test keeps the README's text and this file's code the same.</summary>
[NonParallelizable]
public class ReadmeExampleTests
{
    private static string ThisFile => Path.Combine(DuckDb.Root, "Kawa.Dataflow.Tests", "Docs", "ReadmeExampleTests.cs");

    [Test]
    public async Task ReadmeExample_JetStreamToParquetLake_WritesOnlyServerErrorsAndAcksEverything()
    {
        await using var server = await NatsServerProcess.StartAsync();
        await using (var publisher = await NatsTestHelpers.ConnectAsync(server))
        {
            var js = new JetStreamContext(publisher);
            await js.CreateStreamAsync(new StreamConfig { Name = "LOGS", Subjects = ["logs.>"] });
            for (var i = 0; i < 300; i++)
            {
                var e = new AccessEvent(new DateTimeOffset(2026, 11, 21 + (i % 2), 23, 59, 0, TimeSpan.Zero), "/p/" + i, i % 3 == 0 ? 503 : 200, i);
                await js.PublishAsync("logs.web", System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(e, AppJson.Default.AccessEvent));
            }
        }

        using var lake = new TempDir();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await RunReadmeExampleAsync(server.Url, lake.Path, timeout.Token);

        var rows = DuckDb.Query($"SELECT CAST(dt AS VARCHAR) AS dt, count(*) AS n, min(Status) AS lo, sum(Bytes) AS b FROM read_parquet({DuckDb.Lit(lake.Path + "/**/*.parquet")}, hive_partitioning=true) GROUP BY dt ORDER BY dt");
        Assert.That(rows.Rows, Has.Length.EqualTo(2));
        Assert.That((rows.Str(0, "dt"), rows.Long(0, "n"), rows.Long(0, "lo")), Is.EqualTo(("2026-11-21", 50L, 503L)));
        Assert.That((rows.Str(1, "dt"), rows.Long(1, "n")), Is.EqualTo(("2026-11-22", 50L)));
        Assert.That(rows.Long(0, "b") + rows.Long(1, "b"), Is.EqualTo(Enumerable.Range(0, 300).Where(i => i % 3 == 0).Sum()));
        await using var check = await NatsTestHelpers.ConnectAsync(server);
        var info = await new JetStreamContext(check).GetConsumerAsync("LOGS", "lake-writer");
        Assert.That((info.NumPending, info.NumAckPending), Is.EqualTo((0UL, 0L)), "filtered-out events are acked too");
    }

    [Test]
    public void Readme_FromCodeExample_IsTheCodeThisFixtureRuns()
    {
        var readme = File.ReadAllText(Path.Combine(DuckDb.Root, "README.md"));
        var section = readme.IndexOf("## From code", StringComparison.Ordinal);
        Assert.That(section, Is.GreaterThan(0), "README has a 'From code' section");
        var start = readme.IndexOf("```csharp\n", section, StringComparison.Ordinal) + "```csharp\n".Length;
        var end = readme.IndexOf("```", start, StringComparison.Ordinal);
        var example = Normalize(readme[start..end]);

        Assert.That(Normalize(File.ReadAllText(ThisFile)), Does.Contain(example), "README's example differs from RunReadmeExampleAsync: change both");
    }

    private static string Normalize(string code)
        => string.Join('\n', code.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));

    private static async Task RunReadmeExampleAsync(string natsUrl, string lakePath, CancellationToken cancellationToken)
    {
        // Read a durable JetStream consumer, decoding JSON with a source-generated contract.
        await using var source = await NatsJetStreamSource<AccessEvent>.StartAsync(
            new NatsConnectionOptions { Servers = [natsUrl] },
            new NatsJetStreamSourceOptions
            {
                Stream = "LOGS",
                Durable = "lake-writer",
                AckWait = TimeSpan.FromMinutes(2),   // longer than the sink holds a file open
                StopAtEnd = true,                    // a batch job: finish once the stream is drained
            },
            NatsPayloadCodec.Json(AppJson.Default.AccessEvent),
            cancellationToken: cancellationToken);

        // Write Hive-partitioned Parquet; a message is acked only when its file is committed. Before its first file the
        // sink removes what a crashed run of this instance left behind.
        var lake = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = lakePath });
        await using var sink = new ParquetDestination<AccessEvent>(new ParquetDestinationOptions<AccessEvent>
        {
            Storage = lake,
            Partitioning = PartitionPath<AccessEvent>.Parse("dt={ts:yyyy-MM-dd}",
                new PartitionPathOptions<AccessEvent> { Timestamp = m => m.Value.Time }),
            FileMaxAge = TimeSpan.FromMinutes(1),
        });

        var pipeline = Pipeline.Create("server-errors")
            .From(source)
            .Handle("5xx-only", Handler.Filter<AccessEvent>(m => m.Value.Status >= 500),
                new StageOptions { MaxDegreeOfParallelism = 2 })
            .To(sink)
            .Build();   // also checks the consumer's limits: max_ack_pending, and an ack wait above the sink's hold
        await pipeline.RunAsync(cancellationToken);
    }
}
