using System.Collections.Concurrent;
using Amazon.S3;
using Amazon.S3.Model;
using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Sink;
using Kawa.Dataflow.Tests.Parquet.Lake;
using static Kawa.Dataflow.Tests.Parquet.Sink.SinkTestSupport;

namespace Kawa.Dataflow.Tests.Parquet.Sink;

/// <summary>The sink end to end against a real S3 protocol server (s3rver on loopback).</summary>
public sealed class ParquetDestinationS3Tests
{
    private const string Bucket = "lake";

    [Test]
    public async Task Pipeline_ToS3_DuckDbReadsEveryRowInItsPartition()
    {
        await using var s3 = await S3rverFixture.StartAsync(Bucket);
        using var client = s3.CreateClient();
        var storage = new S3LakeStorage(client, new S3LakeStorageOptions { BucketName = Bucket, Prefix = "events", InstanceId = "s3-sink", PartSize = S3LakeStorageOptions.MinimumPartSize });
        var options = new ParquetDestinationOptions<SinkEvent>
        {
            Storage = storage,
            Partitioning = PartitionPath<SinkEvent>.Parse("origin={key}"),
            Batching = new BatchingOptions<SinkEvent> { MaxBatchSize = 50 },
        };
        var messages = Enumerable.Range(0, 300).Select(i => Event(i, "o" + (i % 3), minute: i)).ToList();
        var outcomes = new ConcurrentBag<AckOutcome>();
        await using (var destination = new ParquetDestination<SinkEvent>(options))
        {
            await Kawa.Dataflow.Pipeline.Create("s3").From(new EnumerableSource<SinkEvent>(messages, (_, o) => outcomes.Add(o))).To(destination).Build().RunAsync();
        }

        // Download the committed objects into a local tree and let DuckDB read it with Hive partitioning.
        using var local = new TempDirectory();
        var listing = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = Bucket, Prefix = "events/" });
        Assert.That(listing.S3Objects, Has.Count.EqualTo(3), "one file per partition");
        foreach (var obj in listing.S3Objects)
        {
            using var response = await client.GetObjectAsync(Bucket, obj.Key);
            var target = local.Combine(obj.Key.Split('/'));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            await using var file = File.Create(target);
            await response.ResponseStream.CopyToAsync(file);
        }

        var result = DuckDb.Query($"SELECT origin, count(*) AS n, sum(Id) AS s FROM read_parquet({DuckDb.Lit(local.Path + "/**/*.parquet")}, hive_partitioning=true) GROUP BY origin ORDER BY origin");
        for (var i = 0; i < 3; i++)
        {
            Assert.That(result.Str(i, "origin"), Is.EqualTo("o" + i));
            Assert.That(result.Long(i, "n"), Is.EqualTo(100));
            Assert.That(result.Long(i, "s"), Is.EqualTo(messages.Where(m => m.Value.Id % 3 == i).Sum(m => m.Value.Id)));
        }

        Assert.That(outcomes, Has.Count.EqualTo(300).And.All.EqualTo(AckOutcome.Acked));
    }
}
