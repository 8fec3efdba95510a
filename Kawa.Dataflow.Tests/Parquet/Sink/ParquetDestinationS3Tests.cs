using System.Collections.Concurrent;
using Amazon.S3;
using Amazon.S3.Model;
using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Reading;
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

    [Test]
    public async Task MemoryBudget_ManyOpenPartitionsOnS3_RowGroupsAndPartBuffersTogetherStayWithinTheBudget()
    {
        // 16 partitions on S3 under a 512 KiB budget, about 1.4 MB of encoded rows. A file's written row groups wait in
        // its S3 part buffer until the part fills (5 MiB, never here) or the file commits: counted outside the budget,
        // the parts would end up holding all of it. Counted, the sink writes row groups out and then commits the files
        // holding the most.
        await using var s3 = await S3rverFixture.StartAsync(Bucket);
        using var client = s3.CreateClient();
        var storage = new S3LakeStorage(client, new S3LakeStorageOptions { BucketName = Bucket, Prefix = "budget", InstanceId = "s3-budget", PartSize = S3LakeStorageOptions.MinimumPartSize });
        const long budget = 512 * 1024;
        const int rows = 48_000;
        var options = new ParquetDestinationOptions<SinkEvent>
        {
            Storage = storage,
            Partitioning = PartitionPath<SinkEvent>.Parse("p={key}"),
            MemoryBudgetBytes = budget,
            KeepAliveInterval = Timeout.InfiniteTimeSpan,
            Batching = new BatchingOptions<SinkEvent> { MaxBatchSize = 100, MaxBatchAge = Timeout.InfiniteTimeSpan, MaxRetries = 0, FlushTimeout = Timeout.InfiniteTimeSpan },
        };
        var acked = 0;
        await using (var destination = new ParquetDestination<SinkEvent>(options))
        {
            for (var i = 0; i < rows; i++)
            {
                // Runs of 100 rows per partition, so each flush appends to one file; text that compresses about 3:1.
                var message = Event(i, "p" + (i / 100 % 16));
                message.Value.Host = string.Join('-', Enumerable.Range(0, 40).Select(k => ((i * 7919 + k * 104729) % 1000).ToString(System.Globalization.CultureInfo.InvariantCulture)));
                await destination.SendAsync(AckToken.Create(outcome =>
                {
                    if (outcome.Kind == AckKind.Ack)
                    {
                        Interlocked.Increment(ref acked);
                    }
                }), message);
            }

            Assert.That(destination.BufferedBytes, Is.LessThanOrEqualTo(budget));
            await destination.FlushAsync();

            Assert.That(destination.PeakBufferedBytes, Is.GreaterThan(budget / 2).And.LessThanOrEqualTo(budget),
                "row-group buffers plus S3 part buffers, measured after every append and every budget enforcement");
        }

        var objects = (await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = Bucket, Prefix = "budget/" })).S3Objects;
        TestContext.Out.WriteLine($"parts peak {storage.Memory.Peak} B, {objects.Count} objects");

        // The storage's own gauge sees every chunk as it is taken. While a row group is written out its encoded bytes
        // reach the part before its buffer is released, so the parts alone may pass the budget by one chunk, never more.
        Assert.That(storage.Memory.Peak, Is.GreaterThan(0).And.LessThanOrEqualTo(budget + S3PartBuffer.ChunkSize));
        Assert.That(storage.Memory.Current, Is.Zero, "every part buffer went back to the pool");
        Assert.That(acked, Is.EqualTo(rows));

        Assert.That(objects, Has.Count.GreaterThan(16), "files were committed early to free their parts");
        long read = 0;
        using var local = new TempDirectory();
        foreach (var obj in objects)
        {
            var target = local.Combine(obj.Key.Split('/'));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            using (var response = await client.GetObjectAsync(Bucket, obj.Key))
            await using (var file = File.Create(target))
            {
                await response.ResponseStream.CopyToAsync(file);
            }

            await using var reader = await ParquetReader.OpenAsync(target);
            read += (await reader.ReadAllAsync<SinkEvent>()).Count;
        }

        Assert.That(read, Is.EqualTo(rows));
    }

    [Test]
    public async Task Pipeline_ToS3_OneFileOverTenMiB_UploadedInAtLeastThreeFiveMiBParts_DuckDbAndOurReaderReadEveryRow()
    {
        // 11,000 rows of 1,000 random bytes: one file of ~11 MB, more than two 5 MiB parts (the S3 minimum).
        const int rows = 11_000;
        const int payload = 1_000;
        await using var s3 = await S3rverFixture.StartAsync(Bucket);
        using var client = new PartCountingClient(s3.CreateConfig());
        var storage = new S3LakeStorage(client, new S3LakeStorageOptions { BucketName = Bucket, Prefix = "big", InstanceId = "s3-parts", PartSize = S3LakeStorageOptions.MinimumPartSize });
        var options = new ParquetDestinationOptions<PayloadRow>
        {
            Storage = storage,
            RowGroupMaxRows = 1_000,
            FileMaxAge = TimeSpan.FromMinutes(30),
            Batching = new BatchingOptions<PayloadRow> { MaxBatchSize = 500 },
        };
        var outcomes = new ConcurrentBag<AckOutcome>();
        await using (var destination = new ParquetDestination<PayloadRow>(options))
        {
            // Driven directly, not by a pipeline: a pipeline at its in-flight limit goes idle and commits the file early.
            for (var i = 0; i < rows; i++)
            {
                await destination.SendAsync(AckToken.Create(outcomes.Add), new Message<PayloadRow>(new PayloadRow { Id = i, Data = PayloadRow.Payload(i, payload) }));
            }

            await destination.FlushAsync();
        }

        var listing = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = Bucket, Prefix = "big/" });
        Assert.That(listing.S3Objects, Has.Count.EqualTo(1), "one file");
        var obj = listing.S3Objects[0];
        Assert.That(obj.Size, Is.GreaterThan(10L * 1024 * 1024));
        Assert.That(client.PartsUploaded.Where(p => p.Key == obj.Key).Select(p => p.PartNumber), Is.EqualTo(new[] { 1, 2, 3 }),
            "s3rver accepted three parts of this object's upload");
        Assert.That(client.Completed, Is.EqualTo(new[] { (obj.Key, 3) }), "and completed the upload from those three parts");
        Assert.That(outcomes, Has.Count.EqualTo(rows).And.All.EqualTo(AckOutcome.Acked));

        using var local = new TempDirectory();
        var target = local.Combine("big.parquet");
        using (var response = await client.GetObjectAsync(Bucket, obj.Key))
        await using (var file = File.Create(target))
        {
            await response.ResponseStream.CopyToAsync(file);
        }

        var duck = DuckDb.Query($"SELECT count(*) AS n, count(DISTINCT Id) AS d, min(Id) AS lo, max(Id) AS hi, sum(octet_length(Data)) AS bytes FROM read_parquet({DuckDb.Lit(target)})");
        Assert.That((duck.Long(0, "n"), duck.Long(0, "d"), duck.Long(0, "lo"), duck.Long(0, "hi"), duck.Long(0, "bytes")), Is.EqualTo((rows, rows, 0L, rows - 1L, (long)rows * payload)));
        await using var reader = await ParquetReader.OpenAsync(target);
        var read = await reader.ReadAllAsync<PayloadRow>();
        Assert.That(read.Select(r => r.Id), Is.EqualTo(Enumerable.Range(0, rows).Select(i => (long)i)));
        Assert.That(read.All(r => r.Data.AsSpan().SequenceEqual(PayloadRow.Payload(r.Id, payload))), Is.True, "every payload byte-exact");
    }

    /// <summary>A real client to s3rver that records each part s3rver accepted and each upload it completed.</summary>
    private sealed class PartCountingClient(AmazonS3Config config) : AmazonS3Client(S3rverFixture.Credentials, config)
    {
        private readonly ConcurrentQueue<(string Key, int PartNumber)> _parts = new();
        private readonly ConcurrentQueue<(string Key, int Parts)> _completed = new();

        public (string Key, int PartNumber)[] PartsUploaded => [.. _parts];

        public (string Key, int Parts)[] Completed => [.. _completed];

        public override async Task<UploadPartResponse> UploadPartAsync(UploadPartRequest request, CancellationToken cancellationToken = default)
        {
            var response = await base.UploadPartAsync(request, cancellationToken);
            _parts.Enqueue((request.Key, request.PartNumber ?? 0));
            return response;
        }

        public override async Task<CompleteMultipartUploadResponse> CompleteMultipartUploadAsync(CompleteMultipartUploadRequest request, CancellationToken cancellationToken = default)
        {
            var response = await base.CompleteMultipartUploadAsync(request, cancellationToken);
            _completed.Enqueue((request.Key, request.PartETags.Count));
            return response;
        }
    }
}
