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

    private LocalLakeStorage Storage(string instance, TimeSpan? maxFileAge = null) =>
        new(new LocalLakeStorageOptions { RootPath = _root.Path, InstanceId = instance, MaxFileAge = maxFileAge ?? MaxFileAge }, timeProvider: _time);

    /// <summary>Leaves a temporary file as a crashed writer would, last written at <paramref name="lastWrite"/>.</summary>
    private async Task<string> LeaveTemporaryAsync(string instance, string relativePath, DateTimeOffset lastWrite, TimeSpan? maxFileAge = null)
    {
        var file = await Storage(instance, maxFileAge).CreateAsync(relativePath);
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

    [Test]
    public async Task CleanupAsync_AnotherInstanceDeclaringALongerAge_KeptPastTwiceTheCleanersAge()
    {
        // A slow partition of a writer with a 2 h MaxFileAge, not written for 40 min: alive as far as anyone can tell.
        var longAge = TimeSpan.FromHours(2);
        var slow = await LeaveTemporaryAsync("writer-b", "dt=1/part.parquet", Now - 4 * MaxFileAge, maxFileAge: longAge);

        var result = await Storage("writer-a").CleanupAsync();

        Assert.That(result, Is.EqualTo(new LakeCleanupResult(Removed: 0, Failed: 0, Kept: 1)));
        Assert.That(File.Exists(slow), Is.True, "older than twice the cleaner's age, but not twice the age its writer declared");
    }

    [Test]
    public async Task CleanupAsync_AnotherInstanceDeclaringALongerAge_RemovedOnceOlderThanTwiceThatAge()
    {
        var longAge = TimeSpan.FromHours(2);
        var justYoungEnough = await LeaveTemporaryAsync("writer-b", "dt=1/a.parquet", Now - 2 * longAge + TimeSpan.FromSeconds(1), maxFileAge: longAge);
        var stale = await LeaveTemporaryAsync("writer-b", "dt=1/b.parquet", Now - 2 * longAge - TimeSpan.FromSeconds(1), maxFileAge: longAge);

        var result = await Storage("writer-a").CleanupAsync();

        Assert.That(result, Is.EqualTo(new LakeCleanupResult(Removed: 1, Failed: 0, Kept: 1)));
        Assert.That(File.Exists(justYoungEnough), Is.True);
        Assert.That(File.Exists(stale), Is.False);
    }

    [Test]
    public async Task CleanupAsync_AnotherInstanceDeclaringAShorterAge_TheCleanersLongerAgeApplies()
    {
        // The larger of the two ages wins, whichever side declares it.
        var shortAge = TimeSpan.FromMinutes(1);
        var young = await LeaveTemporaryAsync("writer-b", "dt=1/part.parquet", Now - 2 * MaxFileAge + TimeSpan.FromSeconds(1), maxFileAge: shortAge);

        var result = await Storage("writer-a").CleanupAsync();

        Assert.That(result.Kept, Is.EqualTo(1));
        Assert.That(File.Exists(young), Is.True);
    }

    [Test]
    public async Task CleanupAsync_LeftoversOfTheEarlierNameFormat_FollowTheCleanersAge()
    {
        // Written by a version whose temporary names declared no age: the cleaner's own MaxFileAge applies, as before.
        Directory.CreateDirectory(_root.Combine("dt=1"));
        var young = _root.Combine("dt=1", ".a.parquet.tmp-writer-b-0badf00d");
        var stale = _root.Combine("dt=1", ".b.parquet.tmp-writer-b-12345678");
        var own = _root.Combine("dt=1", ".c.parquet.tmp-writer-a-deadbeef");
        foreach (var (path, lastWrite) in new[] { (young, Now - 2 * MaxFileAge + TimeSpan.FromSeconds(1)), (stale, Now - 2 * MaxFileAge - TimeSpan.FromSeconds(1)), (own, Now) })
        {
            File.WriteAllBytes(path, [7]);
            File.SetLastWriteTimeUtc(path, lastWrite.UtcDateTime);
        }

        var result = await Storage("writer-a").CleanupAsync();

        Assert.That(result, Is.EqualTo(new LakeCleanupResult(Removed: 2, Failed: 0, Kept: 1)));
        Assert.That(File.Exists(young), Is.True);
        Assert.That(File.Exists(stale) || File.Exists(own), Is.False);
    }

    [Test]
    public async Task CleanupAsync_MalformedAgeToken_FollowsTheCleanersAge()
    {
        // A leading zero makes the token malformed (a lenient parser would read 1157 days): the leftover declares no age.
        Directory.CreateDirectory(_root.Combine("dt=1"));
        var stale = _root.Combine("dt=1", ".b.parquet.tmp-writer-b-12345678.a099999999");
        File.WriteAllBytes(stale, [7]);
        File.SetLastWriteTimeUtc(stale, (Now - 2 * MaxFileAge - TimeSpan.FromSeconds(1)).UtcDateTime);

        var result = await Storage("writer-a").CleanupAsync();

        Assert.That(result.Removed, Is.EqualTo(1));
        Assert.That(File.Exists(stale), Is.False);
    }
}
