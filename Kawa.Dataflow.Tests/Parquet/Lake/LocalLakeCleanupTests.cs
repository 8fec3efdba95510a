using Kawa.Dataflow.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Parquet.Lake;

public sealed class LocalLakeCleanupTests
{
    private static readonly DateTimeOffset Now = new(2024, 5, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan MaxFileAge = TimeSpan.FromMinutes(10);
    private TempDirectory _root = null!;
    private ManualTimeProvider _time = null!;

    [SetUp]
    public void SetUp()
    {
        _root = new TempDirectory();
        _time = new ManualTimeProvider(Now);
    }

    [TearDown]
    public void TearDown() => _root.Dispose();

    private LocalLakeStorage Storage(string instance) =>
        new(new LocalLakeStorageOptions { RootPath = _root.Path, InstanceId = instance, MaxFileAge = MaxFileAge }, timeProvider: _time);

    /// <summary>Leaves a temporary file as a crashed writer would, last written at <paramref name="lastWrite"/>.</summary>
    private async Task<string> LeaveTemporaryAsync(string instance, string relativePath, DateTimeOffset lastWrite)
    {
        var file = await Storage(instance).CreateAsync(relativePath);
        await file.Stream.WriteAsync(new byte[] { 7 });
        await file.Stream.FlushAsync();
        var temp = ((LocalLakeFile)file).TemporaryPath;
        File.SetLastWriteTimeUtc(temp, lastWrite.UtcDateTime);
        LocalLakeStorage.Release(temp); // not aborted: the "process" died, and its open files with it
        return temp;
    }

    [Test]
    public async Task CleanupAsync_OwnLeftoversOfAnyAge_Removed()
    {
        var recent = await LeaveTemporaryAsync("writer-a", "dt=1/part-1.parquet", Now - TimeSpan.FromSeconds(1));
        var old = await LeaveTemporaryAsync("writer-a", "dt=2/h=3/part-2.parquet", Now - TimeSpan.FromDays(3));

        var result = await Storage("writer-a").CleanupAsync();

        Assert.That(result, Is.EqualTo(new LakeCleanupResult(Removed: 2, Failed: 0, Kept: 0)));
        Assert.That(File.Exists(recent) || File.Exists(old), Is.False);
    }

    [Test]
    public async Task CleanupAsync_AnotherInstancesYoungTemporary_KeptBecauseItsWriterMayBeAlive()
    {
        var live = await LeaveTemporaryAsync("writer-b", "dt=1/part.parquet", Now - MaxFileAge);

        var result = await Storage("writer-a").CleanupAsync();

        Assert.That(result, Is.EqualTo(new LakeCleanupResult(Removed: 0, Failed: 0, Kept: 1)));
        Assert.That(File.Exists(live), Is.True);
    }

    [Test]
    public async Task CleanupAsync_AnotherInstancesTemporaryOlderThanTwiceMaxFileAge_Removed()
    {
        var justYoungEnough = await LeaveTemporaryAsync("writer-b", "dt=1/a.parquet", Now - 2 * MaxFileAge + TimeSpan.FromSeconds(1));
        var stale = await LeaveTemporaryAsync("writer-b", "dt=1/b.parquet", Now - 2 * MaxFileAge - TimeSpan.FromSeconds(1));

        var result = await Storage("writer-a").CleanupAsync();

        Assert.That(result, Is.EqualTo(new LakeCleanupResult(Removed: 1, Failed: 0, Kept: 1)));
        Assert.That(File.Exists(justYoungEnough), Is.True);
        Assert.That(File.Exists(stale), Is.False);
    }

    [Test]
    public async Task CleanupAsync_CommittedAndForeignFiles_NeverTouched()
    {
        var storage = Storage("writer-a");
        await using (var file = await storage.CreateAsync("dt=1/part.parquet"))
        {
            await file.CommitAsync();
        }
        File.WriteAllText(_root.Combine("dt=1", ".foreign-hidden"), "x");
        File.WriteAllText(_root.Combine("dt=1", "_SUCCESS"), "");
        foreach (var f in Directory.EnumerateFiles(_root.Path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            File.SetLastWriteTimeUtc(f, (Now - TimeSpan.FromDays(30)).UtcDateTime);
        }

        var result = await storage.CleanupAsync();

        Assert.That(result.Removed, Is.Zero);
        Assert.That(_root.AllFiles(), Is.EqualTo(new[] { "dt=1/.foreign-hidden", "dt=1/_SUCCESS", "dt=1/part.parquet" }));
    }

    [Test]
    public async Task CleanupAsync_TwoLiveInstances_StartupOfOneNeverBreaksTheOthersOpenFile()
    {
        var a = Storage("writer-a");
        await using var open = await a.CreateAsync("dt=1/part-a.parquet");
        await open.Stream.WriteAsync(LakeContent.Pattern(1000));
        await open.Stream.FlushAsync();

        var result = await Storage("writer-b").CleanupAsync();
        await open.CommitAsync();

        Assert.That(result.Kept, Is.EqualTo(1));
        Assert.That(File.ReadAllBytes(_root.Combine("dt=1", "part-a.parquet")), Is.EqualTo(LakeContent.Pattern(1000)));
    }
}
