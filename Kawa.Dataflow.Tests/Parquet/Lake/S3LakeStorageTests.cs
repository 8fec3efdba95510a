using System.Net;
using Amazon.S3;
using Amazon.S3.Model;
using Kawa.Dataflow.Parquet.Lake;
using Microsoft.Extensions.Options;

namespace Kawa.Dataflow.Tests.Parquet.Lake;

/// <summary>S3 storage against a real local S3 (s3rver), and a crash of a real child process mid-upload.</summary>
[NonParallelizable]
public sealed class S3LakeStorageTests
{
    private const string Bucket = "lake";
    private const int FiveMiB = 5 * 1024 * 1024;
    private S3rverFixture _s3 = null!;
    private AmazonS3Client _client = null!;

    [OneTimeSetUp]
    public async Task StartS3()
    {
        _s3 = await S3rverFixture.StartAsync(Bucket);
        _client = _s3.CreateClient();
    }

    [OneTimeTearDown]
    public async Task StopS3()
    {
        _client?.Dispose();
        if (_s3 is not null)
        {
            await _s3.DisposeAsync();
        }
    }

    private S3LakeStorage Storage(string instance = "writer-a", string prefix = "events/", string bucket = Bucket, IAmazonS3? client = null) =>
        new(client ?? _client, new S3LakeStorageOptions { BucketName = bucket, Prefix = prefix, InstanceId = instance, PartSize = FiveMiB });

    private async Task<byte[]?> ReadObjectAsync(string key)
    {
        try
        {
            using var response = await _client.GetObjectAsync(Bucket, key);
            using var buffer = new MemoryStream();
            await response.ResponseStream.CopyToAsync(buffer);
            return buffer.ToArray();
        }
        catch (AmazonS3Exception error) when (error.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    private async Task<List<string>> KeysAsync(string prefix)
    {
        var response = await _client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = Bucket, Prefix = prefix });
        return (response.S3Objects ?? []).Select(o => o.Key).ToList();
    }

    [Test]
    public async Task CommitAsync_ElevenMiBWithFiveMiBParts_UploadsThreePartsAndReadsBackByteExact()
    {
        var storage = Storage();
        var content = LakeContent.Pattern(11 * 1024 * 1024);
        await using var file = await storage.CreateAsync("dt=2024-05-01/big.parquet");
        for (var offset = 0; offset < content.Length; offset += 100_000)
        {
            await file.Stream.WriteAsync(content.AsMemory(offset, Math.Min(100_000, content.Length - offset)));
        }
        var partsBeforeCommit = ((S3LakeFile)file).PartsUploaded;
        Assert.That(await ReadObjectAsync("events/dt=2024-05-01/big.parquet"), Is.Null, "nothing is visible before the commit");

        await file.CommitAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(partsBeforeCommit, Is.EqualTo(2), "full parts are uploaded as they fill: memory stays at one part");
            Assert.That(((S3LakeFile)file).PartsUploaded, Is.EqualTo(3));
            Assert.That(await ReadObjectAsync("events/dt=2024-05-01/big.parquet"), Is.EqualTo(content));
        });
    }

    [Test]
    public async Task CommitAsync_ExactlyTwoParts_NoEmptyLastPart()
    {
        var storage = Storage();
        var content = LakeContent.Pattern(2 * FiveMiB);
        await using var file = await storage.CreateAsync("exact/two.parquet");
        file.Stream.Write(content, 0, content.Length);

        await file.CommitAsync();

        Assert.That(((S3LakeFile)file).PartsUploaded, Is.EqualTo(2));
        Assert.That(await ReadObjectAsync("events/exact/two.parquet"), Is.EqualTo(content));
    }

    [Test]
    public async Task CommitAsync_SmallFile_OnePutObjectWithoutMultipartUpload()
    {
        var storage = Storage();
        var content = LakeContent.Pattern(1000);
        await using var file = await storage.CreateAsync("small/part.parquet");
        await file.Stream.WriteAsync(content);

        await file.CommitAsync();

        Assert.That(((S3LakeFile)file).UploadId, Is.Null);
        Assert.That(await ReadObjectAsync("events/small/part.parquet"), Is.EqualTo(content));
    }

    [Test]
    public async Task AbortAsync_AfterAPartWasUploaded_NoObjectVisible()
    {
        var storage = Storage();
        var file = await storage.CreateAsync("aborted/part.parquet");
        await file.Stream.WriteAsync(LakeContent.Pattern(FiveMiB + 10));
        Assert.That(((S3LakeFile)file).UploadId, Is.Not.Null);

        await file.AbortAsync();

        Assert.That(await ReadObjectAsync("events/aborted/part.parquet"), Is.Null);
        Assert.That(await KeysAsync("events/aborted/"), Is.Empty);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await file.CommitAsync());
    }

    [Test]
    public async Task KillMidUpload_ChildProcess_NoVisibleObject()
    {
        using var host = FaultHostProcess.Start(
            ["s3-write", _s3.ServiceUrl, Bucket, "crash/dt=1/part.parquet", (11 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture), FiveMiB.ToString(System.Globalization.CultureInfo.InvariantCulture), "writer-a"],
            fault: "mid-upload");
        await host.WaitUntilReadyAsync();
        await host.KillAsync();

        // The writer died before CommitAsync returned: nothing was acked, the messages are redelivered.
        Assert.That(await KeysAsync("crash/"), Is.Empty);
        Assert.That(await ReadObjectAsync("crash/dt=1/part.parquet"), Is.Null);
        var pending = Directory.EnumerateFiles(_s3.DataPath, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Where(f => f.Contains("uploads", StringComparison.Ordinal)).ToList();
        Assert.That(pending, Is.Not.Empty, "the first part really was uploaded before the kill (it waits in s3rver's pending uploads)");
    }

    [Test]
    public async Task FaultHost_NoFault_CommitsAThreePartObject()
    {
        using var host = FaultHostProcess.Start(
            ["s3-write", _s3.ServiceUrl, Bucket, "host/part.parquet", (11 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture), FiveMiB.ToString(System.Globalization.CultureInfo.InvariantCulture), "writer-a"]);

        var result = await host.WaitForResultAsync();

        Assert.That(result.Ok, Is.True, result.Message + result.Stderr);
        Assert.That(await ReadObjectAsync("host/part.parquet"), Is.EqualTo(LakeContent.Pattern(11 * 1024 * 1024)));
    }

    [Test]
    public async Task CommitAsync_MissingBucket_LakeWriteExceptionNamingTheFile()
    {
        var storage = Storage(bucket: "no-such-bucket");
        await using var file = await storage.CreateAsync("dt=1/part.parquet");
        await file.Stream.WriteAsync(new byte[] { 1, 2, 3 });

        // The sink must not ack: the commit threw.
        var error = await Assert.ThrowsAsync<LakeWriteException>(async () => await file.CommitAsync());

        Assert.That(error!.RelativePath, Is.EqualTo("dt=1/part.parquet"));
        Assert.That(error.Failure, Is.EqualTo(LakeWriteFailure.StorageError));
        Assert.That(error.Message, Does.Contain("dt=1/part.parquet").And.Contain("bucket").IgnoreCase);
    }

    [Test]
    public async Task Write_StoreUnreachable_UnavailableAndTheWriteFails()
    {
        // A port nobody listens on: the first full part cannot be uploaded.
        var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var offline = new AmazonS3Client(new Amazon.Runtime.BasicAWSCredentials("S3RVER", "S3RVER"), new AmazonS3Config
        {
            ServiceURL = $"http://127.0.0.1:{port}",
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
            MaxErrorRetry = 0,
        });
        var storage = Storage(client: offline);
        await using var file = await storage.CreateAsync("dt=1/part.parquet");

        var error = await Assert.ThrowsAsync<LakeWriteException>(async () => await file.Stream.WriteAsync(LakeContent.Pattern(FiveMiB + 1)));

        Assert.That(error!.Failure, Is.EqualTo(LakeWriteFailure.Unavailable), error.ToString());
        Assert.That(error.Message, Does.Contain("dt=1/part.parquet"));
        Assert.Throws<ObjectDisposedException>(() => file.Stream.WriteByte(1), "a failed file is finished");
    }

    [Test]
    public async Task Commit_StoreAcceptsButNeverAnswers_TimesOutAsUnavailableAndTheCommitFails()
    {
        // A server that takes the connection and never answers: the SDK's request timeout fires.
        var silent = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var accepted = new List<System.Net.Sockets.Socket>();
        var accepting = Task.Run(async () =>
        {
            while (true)
            {
                var socket = await silent.AcceptSocketAsync();
                lock (accepted)
                {
                    accepted.Add(socket);
                }
            }
        });
        try
        {
            using var client = new AmazonS3Client(new Amazon.Runtime.BasicAWSCredentials("S3RVER", "S3RVER"), new AmazonS3Config
            {
                ServiceURL = $"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}",
                ForcePathStyle = true,
                AuthenticationRegion = "us-east-1",
                MaxErrorRetry = 0,
                Timeout = TimeSpan.FromSeconds(1),
            });
            var storage = Storage(client: client);
            await using var file = await storage.CreateAsync("dt=1/part.parquet");
            await file.Stream.WriteAsync(new byte[100]);

            // The sink must not ack: the commit threw, and says the store is unreachable rather than "canceled".
            var error = await Assert.ThrowsAsync<LakeWriteException>(async () => await file.CommitAsync());

            Assert.That(error!.Failure, Is.EqualTo(LakeWriteFailure.Unavailable), error.ToString());
            Assert.That(error.Message, Does.Contain("dt=1/part.parquet").And.Contain("unreachable"));
        }
        finally
        {
            silent.Stop();
            lock (accepted)
            {
                accepted.ForEach(socket => socket.Dispose());
            }

            _ = await Task.WhenAny(accepting);
            _ = accepting.Exception; // the accept loop ends with the listener
        }
    }

    [Test]
    public async Task ListAsync_AndDeleteAsync_SeeOnlyCommittedObjectsUnderThePrefix()
    {
        var storage = Storage(prefix: "listing");
        foreach (var path in new[] { "dt=1/a.parquet", "dt=2/b.parquet" })
        {
            await using var file = await storage.CreateAsync(path);
            await file.Stream.WriteAsync(new byte[] { 1, 2, 3 });
            await file.CommitAsync();
        }
        await using var open = await storage.CreateAsync("dt=1/open.parquet");
        await open.Stream.WriteAsync(LakeContent.Pattern(FiveMiB + 1));

        var all = await LocalLakeStorageTests.ToListAsync(storage.ListAsync(""));
        var day1 = await LocalLakeStorageTests.ToListAsync(storage.ListAsync("dt=1/"));

        Assert.That(all.Select(f => f.RelativePath), Is.EquivalentTo(new[] { "dt=1/a.parquet", "dt=2/b.parquet" }));
        Assert.That(day1.Select(f => (f.RelativePath, f.Length)), Is.EqualTo(new[] { ("dt=1/a.parquet", 3L) }));
        Assert.That(await storage.DeleteAsync("dt=1/a.parquet"), Is.True);
        Assert.That(await storage.DeleteAsync("dt=1/a.parquet"), Is.False);
    }

    [Test]
    public async Task CleanupAsync_StoreWithoutListMultipartUploads_ReportsAFailureInsteadOfThrowing()
    {
        // s3rver 3.7 answers GET ?uploads with NotImplemented (see docs/lake.md); a store like that cannot be cleaned
        // by the writer, so cleanup reports it and the bucket's lifecycle rule has to remove stale uploads.
        var result = await Storage().CleanupAsync();

        Assert.That(result, Is.EqualTo(new LakeCleanupResult(Removed: 0, Failed: 1, Kept: 0)));
    }

    [Test]
    public void Constructor_InvalidOptions_ReportsEveryProblemByProperty()
    {
        var options = new S3LakeStorageOptions { BucketName = "", Prefix = "/abs", PartSize = 1024, MaxFileAge = TimeSpan.FromSeconds(-1), InstanceId = " " };

        var error = Assert.Throws<OptionsValidationException>(() => _ = new S3LakeStorage(_client, options));

        Assert.That(error!.Failures, Has.Exactly(5).Items);
        Assert.That(error.Message, Does.Contain("BucketName").And.Contain("Prefix").And.Contain("PartSize").And.Contain("MaxFileAge").And.Contain("InstanceId"));
    }
}
