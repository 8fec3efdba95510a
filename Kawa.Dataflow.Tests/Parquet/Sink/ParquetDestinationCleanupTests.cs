using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Sink;
using Kawa.Dataflow.Tests.Infrastructure;
using Kawa.Dataflow.Tests.Parquet.Lake;
using static Kawa.Dataflow.Tests.Parquet.Sink.SinkTestSupport;

namespace Kawa.Dataflow.Tests.Parquet.Sink;

/// <summary>
/// The sink's startup cleanup (<see cref="ParquetDestinationOptions{T}.CleanupAtStart"/>) and the rule that makes it
/// safe: a file is never open longer than the storage's MaxFileAge, so another writer's live temporary file is never
/// older than twice that.
/// </summary>
public sealed class ParquetDestinationCleanupTests
{
    private static readonly TimeSpan MaxFileAge = TimeSpan.FromMinutes(10);
    private TempDirectory _root = null!;

    [SetUp]
    public void SetUp() => _root = new TempDirectory();

    [TearDown]
    public void TearDown() => _root.Dispose();

    private LocalLakeStorage Lake(string instance) =>
        new(new LocalLakeStorageOptions { RootPath = _root.Path, InstanceId = instance, Fsync = FsyncMode.None, MaxFileAge = MaxFileAge });

    private static ParquetDestinationOptions<SinkEvent> Options(ILakeStorage storage) => new()
    {
        Storage = storage,
        Partitioning = PartitionPath<SinkEvent>.Parse("host={key}"),
        FileMaxAge = TimeSpan.FromMinutes(5),
        KeepAliveInterval = Timeout.InfiniteTimeSpan,
        Batching = new BatchingOptions<SinkEvent> { MaxBatchSize = 1, MaxBatchAge = Timeout.InfiniteTimeSpan, MaxRetries = 0, FlushTimeout = Timeout.InfiniteTimeSpan },
    };

    /// <summary>Leaves a temporary file as a writer of <paramref name="instance"/> does (not committed, not aborted).</summary>
    private async Task<string> LeaveTemporaryAsync(string instance, string relativePath, TimeSpan? age = null)
    {
        var file = await Lake(instance).CreateAsync(relativePath);
        await file.Stream.WriteAsync(new byte[] { 1, 2, 3 });
        await file.Stream.FlushAsync();
        var temp = ((LocalLakeFile)file).TemporaryPath;
        LocalLakeStorage.Release(temp); // its "process" died: nothing in this one has it open
        if (age is { } a)
        {
            File.SetLastWriteTimeUtc(temp, DateTime.UtcNow - a);
        }

        return temp;
    }

    private string[] Temporaries() => _root.AllFiles().Where(f => Path.GetFileName(f).StartsWith('.')).ToArray();

    [Test]
    public void Constructor_FileMaxAgeInfinite_RefusedNamingBothAges()
    {
        var options = Options(Lake("writer-a"));
        options.FileMaxAge = Timeout.InfiniteTimeSpan;

        var error = Assert.Throws<ArgumentException>(() => _ = new ParquetDestination<SinkEvent>(options))!;

        Assert.That(error.Message, Does.Contain("ParquetDestinationOptions.FileMaxAge (infinite)")
            .And.Contain("below the storage's MaxFileAge (00:10:00)"));
    }

    [TestCase("00:10:00")]
    [TestCase("01:00:00")]
    public void Constructor_FileMaxAgeNotBelowStorageMaxFileAge_RefusedNamingBothAges(string fileMaxAge)
    {
        var options = Options(Lake("writer-a"));
        options.FileMaxAge = TimeSpan.Parse(fileMaxAge, System.Globalization.CultureInfo.InvariantCulture);

        var error = Assert.Throws<ArgumentException>(() => _ = new ParquetDestination<SinkEvent>(options))!;

        Assert.That(error.Message, Does.Contain($"ParquetDestinationOptions.FileMaxAge ({fileMaxAge})")
            .And.Contain("below the storage's MaxFileAge (00:10:00)"));
    }

    [Test]
    public void Constructor_FileMaxAgeBelowStorageMaxFileAge_Accepted()
    {
        var options = Options(Lake("writer-a"));
        options.FileMaxAge = MaxFileAge - TimeSpan.FromSeconds(1);

        Assert.That(options.Validate(), Is.Empty);
    }

    [Test]
    public async Task FirstFile_AnotherLiveSinksOpenFile_SurvivesAndCommitsLater()
    {
        // Sink A holds a row in an open file; sink B (another instance) starts on the same lake and cleans up.
        var probeA = new AckProbe();
        await using var sinkA = new ParquetDestination<SinkEvent>(Options(Lake("writer-a")));
        await sinkA.SendAsync(probeA, Event(1, "a"));
        var liveTemp = await WaitForAsync(() => Temporaries().SingleOrDefault());

        var probeB = new AckProbe();
        await using (var sinkB = new ParquetDestination<SinkEvent>(Options(Lake("writer-b"))))
        {
            await sinkB.SendAsync(probeB, Event(2, "b"));
            await sinkB.FlushAsync();
        }

        Assert.That(await probeB.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        Assert.That(Temporaries(), Is.EqualTo(new[] { liveTemp }), "B's startup cleanup kept A's open file");
        await sinkA.FlushAsync();
        Assert.That(await probeA.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        Assert.That((await ReadAllAsync(_root)).Select(r => r.Id).Order(), Is.EqualTo(new long[] { 1, 2 }));
    }

    [Test]
    public async Task FirstFile_AnotherInstancesTemporaryOlderThanTwiceMaxFileAge_Removed()
    {
        var stale = await LeaveTemporaryAsync("writer-b", "host=x/part-stale.parquet", age: 2 * MaxFileAge + TimeSpan.FromMinutes(1));
        var young = await LeaveTemporaryAsync("writer-b", "host=x/part-young.parquet", age: 2 * MaxFileAge - TimeSpan.FromMinutes(1));

        await using (var sink = new ParquetDestination<SinkEvent>(Options(Lake("writer-a"))))
        {
            await sink.SendAsync(AckToken.None(), Event(1, "a"));
            await sink.FlushAsync();
        }

        Assert.That(File.Exists(stale), Is.False, "older than twice MaxFileAge: no live writer keeps a file that long");
        Assert.That(File.Exists(young), Is.True);
    }

    [Test]
    public async Task SendAsync_FileNames_DeclareTheStoragesMaxFileAge()
    {
        // An S3 upload's key is its final name: another instance's cleanup reads the writer's age from it.
        await using (var sink = new ParquetDestination<SinkEvent>(Options(Lake("writer-a"))))
        {
            await sink.SendAsync(AckToken.None(), Event(1, "a"));
            await sink.FlushAsync();
        }

        var name = Path.GetFileName(_root.AllFiles().Single(f => f.EndsWith(".parquet", StringComparison.Ordinal)));
        Assert.That(LakeFileNamer.DeclaredAgeOf(name), Is.EqualTo(MaxFileAge));
    }

    [Test]
    public async Task FirstFile_OwnLeftoversOfAPreviousRun_Removed()
    {
        // A crashed run of the same instance id left a fresh temporary file behind.
        var leftover = await LeaveTemporaryAsync("writer-a", "host=x/part-crashed.parquet");

        var probe = new AckProbe();
        await using (var sink = new ParquetDestination<SinkEvent>(Options(Lake("writer-a"))))
        {
            await sink.SendAsync(probe, Event(1, "a"));
            await sink.FlushAsync();
        }

        Assert.That(File.Exists(leftover), Is.False);
        Assert.That(Temporaries(), Is.Empty);
        Assert.That(await probe.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task FirstFile_CleanupAtStartOff_LeftoversStay()
    {
        var leftover = await LeaveTemporaryAsync("writer-a", "host=x/part-crashed.parquet");
        var options = Options(Lake("writer-a"));
        options.CleanupAtStart = false;

        await using (var sink = new ParquetDestination<SinkEvent>(options))
        {
            await sink.SendAsync(AckToken.None(), Event(1, "a"));
            await sink.FlushAsync();
        }

        Assert.That(File.Exists(leftover), Is.True);
    }

    [Test]
    public async Task FirstFile_SecondSinkOnTheSameStorage_KeepsTheFirstSinksOpenFile()
    {
        // Both sinks share one storage object, so one instance id: the second's startup cleanup must not take the
        // first sink's open file for a dead run's leftover.
        var storage = Lake("writer-a");
        var first = new AckProbe();
        await using var sinkA = new ParquetDestination<SinkEvent>(Options(storage));
        await sinkA.SendAsync(first, Event(1, "a"));
        var liveTemp = await WaitForAsync(() => Temporaries().SingleOrDefault());

        await using (var sinkB = new ParquetDestination<SinkEvent>(Options(storage)))
        {
            await sinkB.SendAsync(AckToken.None(), Event(2, "b"));
            await sinkB.FlushAsync();
        }

        Assert.That(File.Exists(_root.Combine(liveTemp.Split('/'))), Is.True);
        await sinkA.FlushAsync();
        Assert.That(await first.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        Assert.That((await ReadAllAsync(_root)).Select(r => r.Id).Order(), Is.EqualTo(new long[] { 1, 2 }));
    }

    [Test]
    public async Task FirstFile_SecondSinkOnAnotherStorageObjectOfTheSameLake_KeepsTheFirstSinksOpenFile()
    {
        // Two storage objects on one root in one process get the same default instance id (a main and a dead-letter
        // sink, say): the second's startup cleanup must still spare the first's open file.
        var first = new AckProbe();
        await using var sinkA = new ParquetDestination<SinkEvent>(Options(Lake("writer-a")));
        await sinkA.SendAsync(first, Event(1, "a"));
        var liveTemp = await WaitForAsync(() => Temporaries().SingleOrDefault());

        await using (var sinkB = new ParquetDestination<SinkEvent>(Options(Lake("writer-a"))))
        {
            await sinkB.SendAsync(AckToken.None(), Event(2, "b"));
            await sinkB.FlushAsync();
        }

        Assert.That(File.Exists(_root.Combine(liveTemp.Split('/'))), Is.True);
        await sinkA.FlushAsync();
        Assert.That(await first.WaitAsync(), Is.EqualTo(AckOutcome.Acked));
        Assert.That((await ReadAllAsync(_root)).Select(r => r.Id).Order(), Is.EqualTo(new long[] { 1, 2 }));
    }

    private static async Task<string> WaitForAsync(Func<string?> probe)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var found = probe();
        while (found is null)
        {
            await Task.Delay(10, timeout.Token);
            found = probe();
        }

        return found;
    }
}
