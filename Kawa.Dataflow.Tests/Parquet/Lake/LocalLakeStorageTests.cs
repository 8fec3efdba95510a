using Kawa.Dataflow.Parquet.Lake;
using Microsoft.Extensions.Options;

namespace Kawa.Dataflow.Tests.Parquet.Lake;

public sealed class LocalLakeStorageTests
{
    private TempDirectory _root = null!;

    [SetUp]
    public void SetUp() => _root = new TempDirectory();

    [TearDown]
    public void TearDown() => _root.Dispose();

    private LocalLakeStorage Storage(string instance = "writer-a", FsyncMode fsync = FsyncMode.Full) =>
        new(new LocalLakeStorageOptions { RootPath = _root.Path, InstanceId = instance, Fsync = fsync });

    [Test]
    public async Task CreateAsync_OpenFiles_WriteBufferCountedUntilCommitAbortOrDispose()
    {
        var storage = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = _root.Path, InstanceId = "writer-a", Fsync = FsyncMode.None, BufferSize = 10_000 });
        var committed = await storage.CreateAsync("a.parquet");
        var aborted = await storage.CreateAsync("b.parquet");
        var disposed = await storage.CreateAsync("c.parquet");
        await committed.Stream.WriteAsync(new byte[] { 1 });

        var whileOpen = storage.Memory.Current;
        var perFile = ((IBufferingLakeFile)committed).BufferedBytes;
        await committed.CommitAsync();
        var afterCommit = storage.Memory.Current;
        await aborted.AbortAsync();
        var afterAbort = storage.Memory.Current;
        await disposed.DisposeAsync();
        await committed.DisposeAsync(); // a second release must not count twice

        Assert.That((whileOpen, perFile), Is.EqualTo((30_000L, 10_000L)));
        Assert.That((afterCommit, afterAbort), Is.EqualTo((20_000L, 10_000L)));
        Assert.That(storage.Memory.Current, Is.Zero);
        Assert.That(storage.Memory.Peak, Is.EqualTo(30_000));
        Assert.That(((IBufferingLakeFile)committed).BufferedBytes, Is.Zero);
    }

    [Test]
    public async Task CreateAsync_Unbuffered_HoldsNoMemory()
    {
        var storage = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = _root.Path, InstanceId = "writer-a", Fsync = FsyncMode.None, BufferSize = 0 });
        await using var file = await storage.CreateAsync("a.parquet");

        Assert.That(((IBufferingLakeFile)file).BufferedBytes, Is.Zero);
        Assert.That(storage.Memory.Current, Is.Zero);
    }

    [Test]
    public async Task CreateAsync_BeforeCommit_OnlyAHiddenTemporaryFileExists()
    {
        var storage = Storage();
        await using var file = await storage.CreateAsync("dt=2024-05-01/part-1.snappy.parquet");
        await file.Stream.WriteAsync(new byte[] { 1, 2, 3 });
        await file.Stream.FlushAsync();

        var files = _root.AllFiles();
        Assert.That(files, Has.Length.EqualTo(1));
        var name = Path.GetFileName(files[0]);
        Assert.Multiple(() =>
        {
            Assert.That(files[0], Does.StartWith("dt=2024-05-01/"), "the temp file lives in the target directory, so the rename is atomic");
            Assert.That(name, Does.StartWith("."), "readers (DuckDB, Spark) skip names starting with '.'");
            Assert.That(name, Does.Not.EndWith(".parquet"));
            Assert.That(name, Does.Contain("writer-a"), "cleanup recognizes its own leftovers by the instance id");
            Assert.That(File.ReadAllBytes(_root.Combine(files[0])), Is.EqualTo(new byte[] { 1, 2, 3 }));
        });
    }

    [TestCase(FsyncMode.Full)]
    [TestCase(FsyncMode.FileOnly)]
    [TestCase(FsyncMode.None)]
    public async Task CommitAsync_AnyFsyncMode_FileVisibleWithExactBytesAndNoTemporaryLeft(FsyncMode fsync)
    {
        var storage = Storage(fsync: fsync);
        var content = LakeContent.Pattern(300_000);
        await using var file = await storage.CreateAsync("a/b/c/part-1.parquet");
        await file.Stream.WriteAsync(content.AsMemory(0, 100_000));
        file.Stream.Write(content, 100_000, 200_000);

        await file.CommitAsync();

        Assert.Multiple(() =>
        {
            Assert.That(_root.AllFiles(), Is.EqualTo(new[] { "a/b/c/part-1.parquet" }));
            Assert.That(File.ReadAllBytes(_root.Combine("a", "b", "c", "part-1.parquet")), Is.EqualTo(content));
            Assert.That(file.BytesWritten, Is.EqualTo(content.Length));
        });
    }

    [Test]
    public async Task CommitAsync_TargetAlreadyExists_ThrowsAlreadyExistsKeepsTheOldFileAndRemovesTheTemporary()
    {
        var storage = Storage();
        await using (var first = await storage.CreateAsync("x/part.parquet"))
        {
            await first.Stream.WriteAsync(new byte[] { 1 });
            await first.CommitAsync();
        }
        await using var second = await storage.CreateAsync("x/part.parquet");
        await second.Stream.WriteAsync(new byte[] { 2, 2 });

        // The sink must not ack the messages of the second file: the commit threw.
        var error = await Assert.ThrowsAsync<LakeWriteException>(async () => await second.CommitAsync());

        Assert.Multiple(() =>
        {
            Assert.That(error!.Failure, Is.EqualTo(LakeWriteFailure.AlreadyExists));
            Assert.That(error.RelativePath, Is.EqualTo("x/part.parquet"));
            Assert.That(error.Message, Does.Contain("x/part.parquet").And.Contain("already exists"));
            Assert.That(_root.AllFiles(), Is.EqualTo(new[] { "x/part.parquet" }), "the temporary file is removed");
            Assert.That(File.ReadAllBytes(_root.Combine("x", "part.parquet")), Is.EqualTo(new byte[] { 1 }), "commits never overwrite");
        });
    }

    [Test]
    public async Task AbortAsync_AfterWrites_RemovesTheTemporaryFile()
    {
        var storage = Storage();
        var file = await storage.CreateAsync("p/part.parquet");
        await file.Stream.WriteAsync(new byte[1000]);

        await file.AbortAsync();

        Assert.That(_root.AllFiles(), Is.Empty);
        Assert.Throws<ObjectDisposedException>(() => file.Stream.WriteByte(1));
    }

    [Test]
    public async Task DisposeAsync_WithoutCommit_AbortsAndNothingIsVisible()
    {
        var storage = Storage();
        await using (var file = await storage.CreateAsync("p/part.parquet"))
        {
            await file.Stream.WriteAsync(new byte[10]);
        }

        Assert.That(_root.AllFiles(), Is.Empty);
    }

    [Test]
    public async Task CommitAsync_Twice_SecondThrowsObjectDisposedAndTheFileStays()
    {
        var storage = Storage();
        await using var file = await storage.CreateAsync("part.parquet");
        await file.CommitAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await file.CommitAsync());
        await file.AbortAsync();
        Assert.That(_root.AllFiles(), Is.EqualTo(new[] { "part.parquet" }), "abort after commit does nothing");
    }

    [Test]
    public async Task CommitAsync_Canceled_NothingVisibleAndTemporaryRemoved()
    {
        var storage = Storage();
        await using var file = await storage.CreateAsync("p/part.parquet");
        await file.Stream.WriteAsync(new byte[10]);
        using var canceled = new CancellationTokenSource();
        await canceled.CancelAsync();

        var error = await Assert.ThrowsAsync<LakeWriteException>(async () => await file.CommitAsync(canceled.Token));

        Assert.That(error!.InnerException, Is.InstanceOf<OperationCanceledException>());
        Assert.That(_root.AllFiles(), Is.Empty);
    }

    [TestCase("../escape.parquet")]
    [TestCase("a/../../escape.parquet")]
    [TestCase("a/./b.parquet")]
    [TestCase("/etc/passwd")]
    [TestCase("a\\..\\..\\b.parquet")]
    [TestCase("a//b.parquet")]
    [TestCase("a/")]
    [TestCase(".hidden/part.parquet")]
    [TestCase("dt=1/.part.parquet")]
    [TestCase("a/b\0c.parquet")]
    [TestCase("a/b\nc.parquet")]
    public async Task CreateAsync_PathThatIsNotAPlainRelativePath_ThrowsArgumentExceptionNamingIt(string path)
    {
        var storage = Storage();

        var error = await Assert.ThrowsAsync<ArgumentException>(async () => await storage.CreateAsync(path));

        Assert.That(error!.Message, Does.Contain("invalid").Or.Contain("outside"));
        Assert.That(Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(_root.Path)!, "escape.parquet"), Is.Empty);
        Assert.That(_root.AllFiles(), Is.Empty);
    }

    [Test]
    public async Task ListAsync_MixedFiles_ListsOnlyCommittedFilesUnderThePrefix()
    {
        var storage = Storage();
        foreach (var path in new[] { "dt=1/a.parquet", "dt=1/h=2/b.parquet", "dt=2/c.parquet" })
        {
            await using var file = await storage.CreateAsync(path);
            await file.Stream.WriteAsync(new byte[] { 1, 2 });
            await file.CommitAsync();
        }
        await using var open = await storage.CreateAsync("dt=1/open.parquet");
        await open.Stream.WriteAsync(new byte[] { 9 });
        await open.Stream.FlushAsync();

        var all = await ToListAsync(storage.ListAsync(""));
        var day1 = await ToListAsync(storage.ListAsync("dt=1/"));
        var partial = await ToListAsync(storage.ListAsync("dt="));

        Assert.Multiple(() =>
        {
            Assert.That(all.Select(f => f.RelativePath).Order(), Is.EqualTo(new[] { "dt=1/a.parquet", "dt=1/h=2/b.parquet", "dt=2/c.parquet" }));
            Assert.That(day1.Select(f => f.RelativePath).Order(), Is.EqualTo(new[] { "dt=1/a.parquet", "dt=1/h=2/b.parquet" }));
            Assert.That(partial, Has.Count.EqualTo(3));
            Assert.That(all.Select(f => f.Length), Is.All.EqualTo(2));
        });
        Assert.That(await ToListAsync(storage.ListAsync("nothing/")), Is.Empty);
    }

    [Test]
    public async Task DeleteAsync_ExistingThenMissing_TrueThenFalse()
    {
        var storage = Storage();
        await using (var file = await storage.CreateAsync("d/part.parquet"))
        {
            await file.CommitAsync();
        }

        Assert.That(await storage.DeleteAsync("d/part.parquet"), Is.True);
        Assert.That(await storage.DeleteAsync("d/part.parquet"), Is.False);
        Assert.That(_root.AllFiles(), Is.Empty);
    }

    [Test]
    public void Constructor_InvalidOptions_ReportsEveryProblemByProperty()
    {
        var options = new LocalLakeStorageOptions { RootPath = " ", InstanceId = "", MaxFileAge = TimeSpan.Zero, BufferSize = -1, Fsync = (FsyncMode)42 };

        var error = Assert.Throws<OptionsValidationException>(() => _ = new LocalLakeStorage(options));

        Assert.That(error!.Failures, Has.Exactly(5).Items);
        Assert.That(error.Message, Does.Contain("RootPath").And.Contain("InstanceId").And.Contain("MaxFileAge").And.Contain("BufferSize").And.Contain("Fsync"));
    }

    [Test]
    public void Constructor_NoInstanceId_UsesAStableDefaultForTheSameRoot()
    {
        var a = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = _root.Path });
        var b = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = _root.Path + "/" });
        using var other = new TempDirectory();
        var c = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = other.Path });

        Assert.That(a.InstanceId, Is.EqualTo(b.InstanceId), "a restart of the same daemon must find its own leftovers");
        Assert.That(a.InstanceId, Is.Not.EqualTo(c.InstanceId));
        Assert.That(a.InstanceId, Does.Match("^[A-Za-z0-9_-]+$"));
    }

    [Test]
    public void Constructor_InstanceIdWithUnsafeCharacters_IsSanitized()
    {
        var storage = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = _root.Path, InstanceId = "host.a/../b c" });

        Assert.That(storage.InstanceId, Is.EqualTo("host_a____b_c"));
    }

    internal static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items)
        {
            list.Add(item);
        }
        return list;
    }
}
