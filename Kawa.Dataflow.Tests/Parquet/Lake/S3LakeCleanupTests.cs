using Amazon.S3;
using Amazon.S3.Model;
using Kawa.Dataflow.Parquet.Lake;
using NSubstitute;

namespace Kawa.Dataflow.Tests.Parquet.Lake;

/// <summary>
/// The S3 cleanup and overwrite rules, against a substitute client: s3rver implements neither ListMultipartUploads nor
/// conditional writes (docs/lake.md), so these request shapes are checked here (cleanup against s3rver only shows that
/// the failed listing is reported, see S3LakeStorageTests).
/// </summary>
public sealed class S3LakeCleanupTests
{
    private static readonly DateTimeOffset Now = new(2024, 5, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan MaxFileAge = TimeSpan.FromMinutes(10);

    private static S3LakeStorage Storage(IAmazonS3 client, string instance = "writer-a") =>
        new(client, new S3LakeStorageOptions { BucketName = "lake", Prefix = "events", InstanceId = instance, MaxFileAge = MaxFileAge, PartSize = S3LakeStorageOptions.MinimumPartSize },
            timeProvider: new ManualTimeProvider(Now));

    private static string Name(string instance) => new LakeFileNamer(instance, new ManualTimeProvider(Now)).Next("snappy");

    private static string Name(string instance, TimeSpan maxFileAge) => new LakeFileNamer(instance, maxFileAge, new ManualTimeProvider(Now)).Next("snappy");

    private static IAmazonS3 ClientListing(params MultipartUpload[] uploads)
    {
        var client = Substitute.For<IAmazonS3>();
        client.ListMultipartUploadsAsync(Arg.Any<ListMultipartUploadsRequest>(), Arg.Any<CancellationToken>())
            .Returns(new ListMultipartUploadsResponse { MultipartUploads = [.. uploads], IsTruncated = false });
        return client;
    }

    [Test]
    public async Task CleanupAsync_AnotherInstancesUploadDeclaringALongerAge_KeptPastTwiceTheCleanersAge()
    {
        // A writer with a 2 h MaxFileAge started this upload 40 min ago; the cleaner's own age is 10 min.
        var longAge = TimeSpan.FromHours(2);
        var slow = new MultipartUpload { Key = "events/dt=1/" + Name("writer-b", longAge), UploadId = "slow", Initiated = (Now - 4 * MaxFileAge).UtcDateTime };
        var client = ClientListing(slow);

        var result = await Storage(client).CleanupAsync();

        Assert.That(result, Is.EqualTo(new LakeCleanupResult(Removed: 0, Failed: 0, Kept: 1)));
        await client.DidNotReceive().AbortMultipartUploadAsync(Arg.Any<string>(), Arg.Any<string>(), Arg.Any<string>(), Arg.Any<CancellationToken>());
    }

    [Test]
    public async Task CleanupAsync_AnotherInstancesUploadDeclaringALongerAge_AbortedOnceOlderThanTwiceThatAge()
    {
        var longAge = TimeSpan.FromHours(2);
        var young = new MultipartUpload { Key = "events/dt=1/" + Name("writer-b", longAge), UploadId = "young", Initiated = (Now - 2 * longAge + TimeSpan.FromSeconds(1)).UtcDateTime };
        var stale = new MultipartUpload { Key = "events/dt=1/" + Name("writer-b", longAge), UploadId = "stale", Initiated = (Now - 2 * longAge - TimeSpan.FromSeconds(1)).UtcDateTime };
        var client = ClientListing(young, stale);

        var result = await Storage(client).CleanupAsync();

        Assert.That(result, Is.EqualTo(new LakeCleanupResult(Removed: 1, Failed: 0, Kept: 1)));
        await client.Received(1).AbortMultipartUploadAsync("lake", stale.Key, "stale", Arg.Any<CancellationToken>());
        await client.DidNotReceive().AbortMultipartUploadAsync(Arg.Any<string>(), Arg.Any<string>(), "young", Arg.Any<CancellationToken>());
    }

    [Test]
    public async Task CleanupAsync_UploadsOfTheEarlierNameFormat_FollowTheCleanersAge()
    {
        // Names without a declared age (the format before it, or a namer without one): the cleaner's own age applies.
        var young = new MultipartUpload { Key = "events/dt=1/" + Name("writer-b"), UploadId = "young", Initiated = (Now - 2 * MaxFileAge + TimeSpan.FromSeconds(1)).UtcDateTime };
        var stale = new MultipartUpload { Key = "events/dt=1/" + Name("writer-b"), UploadId = "stale", Initiated = (Now - 2 * MaxFileAge - TimeSpan.FromSeconds(1)).UtcDateTime };
        var malformed = new MultipartUpload
        {
            Key = "events/dt=1/part-20240501T120000000Z-writer-b-000001-0badf00d.a099999999.snappy.parquet",
            UploadId = "malformed",
            Initiated = (Now - 2 * MaxFileAge - TimeSpan.FromSeconds(1)).UtcDateTime,
        };
        var client = ClientListing(young, stale, malformed);

        var result = await Storage(client).CleanupAsync();

        Assert.That(result, Is.EqualTo(new LakeCleanupResult(Removed: 2, Failed: 0, Kept: 1)));
        await client.Received(1).AbortMultipartUploadAsync("lake", stale.Key, "stale", Arg.Any<CancellationToken>());
        await client.Received(1).AbortMultipartUploadAsync("lake", malformed.Key, "malformed", Arg.Any<CancellationToken>());
    }

    [Test]
    public async Task CleanupAsync_PendingUploads_AbortsOwnAndStaleKeepsYoungForeign()
    {
        var client = Substitute.For<IAmazonS3>();
        var own = new MultipartUpload { Key = "events/dt=1/" + Name("writer-a"), UploadId = "own", Initiated = Now.UtcDateTime.AddSeconds(-5) };
        var young = new MultipartUpload { Key = "events/dt=1/" + Name("writer-b"), UploadId = "young", Initiated = (Now - MaxFileAge).UtcDateTime };
        var stale = new MultipartUpload { Key = "events/dt=1/" + Name("writer-b"), UploadId = "stale", Initiated = (Now - 2 * MaxFileAge - TimeSpan.FromSeconds(1)).UtcDateTime };
        var foreignName = new MultipartUpload { Key = "events/other-tool.bin", UploadId = "foreign", Initiated = Now.UtcDateTime };
        client.ListMultipartUploadsAsync(Arg.Is<ListMultipartUploadsRequest>(r => r.KeyMarker == null), Arg.Any<CancellationToken>())
            .Returns(new ListMultipartUploadsResponse { MultipartUploads = [own, young], IsTruncated = true, NextKeyMarker = "k", NextUploadIdMarker = "u" });
        client.ListMultipartUploadsAsync(Arg.Is<ListMultipartUploadsRequest>(r => r.KeyMarker == "k"), Arg.Any<CancellationToken>())
            .Returns(new ListMultipartUploadsResponse { MultipartUploads = [stale, foreignName], IsTruncated = false });

        var result = await Storage(client).CleanupAsync();

        Assert.That(result, Is.EqualTo(new LakeCleanupResult(Removed: 2, Failed: 0, Kept: 2)));
        await client.Received(1).AbortMultipartUploadAsync("lake", own.Key, "own", Arg.Any<CancellationToken>());
        await client.Received(1).AbortMultipartUploadAsync("lake", stale.Key, "stale", Arg.Any<CancellationToken>());
        await client.DidNotReceive().AbortMultipartUploadAsync(Arg.Any<string>(), Arg.Any<string>(), "young", Arg.Any<CancellationToken>());
        await client.DidNotReceive().AbortMultipartUploadAsync(Arg.Any<string>(), Arg.Any<string>(), "foreign", Arg.Any<CancellationToken>());
        await client.Received().ListMultipartUploadsAsync(Arg.Is<ListMultipartUploadsRequest>(r => r.Prefix == "events/" && r.BucketName == "lake"), Arg.Any<CancellationToken>());
    }

    [Test]
    public async Task CleanupAsync_OwnUploadThisStorageHasOpen_KeptUntilTheFileIsFinished()
    {
        // A second sink on the same storage (same instance id) cleans up while the first one is uploading a file.
        var client = Substitute.For<IAmazonS3>();
        client.InitiateMultipartUploadAsync(Arg.Any<InitiateMultipartUploadRequest>(), Arg.Any<CancellationToken>()).Returns(new InitiateMultipartUploadResponse { UploadId = "live" });
        client.UploadPartAsync(Arg.Any<UploadPartRequest>(), Arg.Any<CancellationToken>()).Returns(new UploadPartResponse { ETag = "\"e1\"" });
        var storage = Storage(client);
        var path = "dt=1/" + Name("writer-a");
        await using var file = await storage.CreateAsync(path);
        await file.Stream.WriteAsync(new byte[S3LakeStorageOptions.MinimumPartSize + 1]); // a full part, then more: the upload starts
        var live = new MultipartUpload { Key = "events/" + path, UploadId = "live", Initiated = Now.UtcDateTime };
        var dead = new MultipartUpload { Key = "events/dt=1/" + Name("writer-a"), UploadId = "dead", Initiated = Now.UtcDateTime };
        client.ListMultipartUploadsAsync(Arg.Any<ListMultipartUploadsRequest>(), Arg.Any<CancellationToken>())
            .Returns(new ListMultipartUploadsResponse { MultipartUploads = [live, dead], IsTruncated = false });

        var fromAnotherStorageObject = await Storage(client).CleanupAsync();
        var whileOpen = await storage.CleanupAsync();

        Assert.That(fromAnotherStorageObject.Kept, Is.EqualTo(1), "another storage object in this process (same instance id) spares it too");

        Assert.That(whileOpen, Is.EqualTo(new LakeCleanupResult(Removed: 1, Failed: 0, Kept: 1)));
        await client.DidNotReceive().AbortMultipartUploadAsync(Arg.Any<string>(), Arg.Any<string>(), "live", Arg.Any<CancellationToken>());
        await file.AbortAsync();
        var afterwards = await storage.CleanupAsync();
        Assert.That(afterwards.Kept, Is.Zero, "once the file is finished its upload is nobody's");
    }

    [Test]
    public async Task CleanupAsync_AbortRefused_CountedAsFailedAndTheRestContinues()
    {
        var client = Substitute.For<IAmazonS3>();
        var first = new MultipartUpload { Key = "events/" + Name("writer-a"), UploadId = "1", Initiated = Now.UtcDateTime };
        var second = new MultipartUpload { Key = "events/" + Name("writer-a"), UploadId = "2", Initiated = Now.UtcDateTime };
        client.ListMultipartUploadsAsync(Arg.Any<ListMultipartUploadsRequest>(), Arg.Any<CancellationToken>())
            .Returns(new ListMultipartUploadsResponse { MultipartUploads = [first, second], IsTruncated = false });
        client.AbortMultipartUploadAsync("lake", first.Key, "1", Arg.Any<CancellationToken>())
            .Returns<AbortMultipartUploadResponse>(_ => throw new AmazonS3Exception("Access Denied") { StatusCode = System.Net.HttpStatusCode.Forbidden });

        var result = await Storage(client).CleanupAsync();

        Assert.That(result, Is.EqualTo(new LakeCleanupResult(Removed: 1, Failed: 1, Kept: 0)));
    }

    [Test]
    public async Task CommitAsync_SmallFileWithPreventOverwrite_PutCarriesIfNoneMatchAndPreconditionFailedIsAlreadyExists()
    {
        var client = Substitute.For<IAmazonS3>();
        client.PutObjectAsync(Arg.Any<PutObjectRequest>(), Arg.Any<CancellationToken>())
            .Returns<PutObjectResponse>(_ => throw new AmazonS3Exception("At least one of the pre-conditions you specified did not hold") { StatusCode = System.Net.HttpStatusCode.PreconditionFailed });
        var storage = Storage(client);
        await using var file = await storage.CreateAsync("dt=1/part.parquet");
        await file.Stream.WriteAsync(new byte[] { 1 });

        // The sink must not ack: another writer's object already has this name.
        var error = await Assert.ThrowsAsync<LakeWriteException>(async () => await file.CommitAsync());

        Assert.That(error!.Failure, Is.EqualTo(LakeWriteFailure.AlreadyExists));
        Assert.That(error.Message, Does.Contain("dt=1/part.parquet"));
        await client.Received(1).PutObjectAsync(Arg.Is<PutObjectRequest>(r => r.IfNoneMatch == "*" && r.Key == "events/dt=1/part.parquet"), Arg.Any<CancellationToken>());
    }

    [Test]
    public async Task CommitAsync_MultipartWithPreventOverwrite_CompleteCarriesIfNoneMatchAndEveryPartInOrder()
    {
        var client = Substitute.For<IAmazonS3>();
        client.InitiateMultipartUploadAsync(Arg.Any<InitiateMultipartUploadRequest>(), Arg.Any<CancellationToken>())
            .Returns(new InitiateMultipartUploadResponse { UploadId = "u1" });
        client.UploadPartAsync(Arg.Any<UploadPartRequest>(), Arg.Any<CancellationToken>())
            .Returns(call => new UploadPartResponse { ETag = "etag-" + call.Arg<UploadPartRequest>().PartNumber });
        CompleteMultipartUploadRequest? completed = null;
        client.CompleteMultipartUploadAsync(Arg.Do<CompleteMultipartUploadRequest>(r => completed = r), Arg.Any<CancellationToken>())
            .Returns(new CompleteMultipartUploadResponse());
        var storage = Storage(client);
        await using var file = await storage.CreateAsync("dt=1/part.parquet");
        await file.Stream.WriteAsync(LakeContent.Pattern(2 * S3LakeStorageOptions.MinimumPartSize + 7));

        await file.CommitAsync();

        Assert.That(completed, Is.Not.Null);
        Assert.That(completed!.IfNoneMatch, Is.EqualTo("*"));
        Assert.That(completed.UploadId, Is.EqualTo("u1"));
        Assert.That(completed.PartETags.Select(p => (p.PartNumber, p.ETag)), Is.EqualTo(new[] { ((int?)1, "etag-1"), (2, "etag-2"), (3, "etag-3") }));
        await client.Received(2).UploadPartAsync(Arg.Is<UploadPartRequest>(r => r.PartSize == S3LakeStorageOptions.MinimumPartSize), Arg.Any<CancellationToken>());
        await client.Received(1).UploadPartAsync(Arg.Is<UploadPartRequest>(r => r.PartSize == 7 && r.PartNumber == 3), Arg.Any<CancellationToken>());
        await client.DidNotReceive().AbortMultipartUploadAsync(Arg.Any<string>(), Arg.Any<string>(), Arg.Any<string>(), Arg.Any<CancellationToken>());
    }

    [Test]
    public async Task CommitAsync_CompleteFails_UploadAbortedAndLakeWriteExceptionThrown()
    {
        var client = Substitute.For<IAmazonS3>();
        client.InitiateMultipartUploadAsync(Arg.Any<InitiateMultipartUploadRequest>(), Arg.Any<CancellationToken>())
            .Returns(new InitiateMultipartUploadResponse { UploadId = "u1" });
        client.UploadPartAsync(Arg.Any<UploadPartRequest>(), Arg.Any<CancellationToken>()).Returns(new UploadPartResponse { ETag = "e" });
        client.CompleteMultipartUploadAsync(Arg.Any<CompleteMultipartUploadRequest>(), Arg.Any<CancellationToken>())
            .Returns<CompleteMultipartUploadResponse>(_ => throw new AmazonS3Exception("Internal error") { StatusCode = System.Net.HttpStatusCode.InternalServerError });
        var storage = Storage(client);
        await using var file = await storage.CreateAsync("dt=1/part.parquet");
        await file.Stream.WriteAsync(LakeContent.Pattern(S3LakeStorageOptions.MinimumPartSize + 1));

        var error = await Assert.ThrowsAsync<LakeWriteException>(async () => await file.CommitAsync());

        Assert.That(error!.Failure, Is.EqualTo(LakeWriteFailure.StorageError));
        await client.Received(1).AbortMultipartUploadAsync("lake", "events/dt=1/part.parquet", "u1", Arg.Any<CancellationToken>());
    }
}
