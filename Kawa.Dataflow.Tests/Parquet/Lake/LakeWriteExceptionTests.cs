using Kawa.Dataflow.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Parquet.Lake;

public sealed class LakeWriteExceptionTests
{
    // On Unix .NET puts the errno into IOException.HResult. The child-process tests produce EACCES, EFBIG, ENOSPC and
    // EEXIST for real; this pins the mapping of each errno, EDQUOT included, independent of the environment.
    [TestCase(28, LakeWriteFailure.DiskFull)]
    [TestCase(122, LakeWriteFailure.DiskFull)]
    [TestCase(27, LakeWriteFailure.FileTooLarge)]
    [TestCase(13, LakeWriteFailure.PermissionDenied)]
    [TestCase(17, LakeWriteFailure.AlreadyExists)]
    [TestCase(5, LakeWriteFailure.Other)]
    public void From_IOExceptionWithErrno_ClassifiedAndNamedInTheMessage(int errno, LakeWriteFailure expected)
    {
        var error = LakeWriteException.From("dt=1/part.parquet", "written", new IOException("os says no", errno));

        Assert.That(error.Failure, Is.EqualTo(expected));
        Assert.That(error.RelativePath, Is.EqualTo("dt=1/part.parquet"));
        Assert.That(error.Message, Does.StartWith("Lake file 'dt=1/part.parquet' could not be written: ").And.EndWith("os says no"));
        Assert.That(error.InnerException, Is.InstanceOf<IOException>());
    }

    [Test]
    public void From_UnauthorizedAccess_PermissionDenied()
    {
        var error = LakeWriteException.From("a.parquet", "created", new UnauthorizedAccessException("denied"));

        Assert.That(error.Failure, Is.EqualTo(LakeWriteFailure.PermissionDenied));
        Assert.That(error.Message, Does.Contain("permission denied"));
    }
}

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PosixFileSystemTests
{
    [Test]
    public void Fsync_ExistingDirectory_Succeeds()
    {
        using var directory = new TempDirectory();

        Assert.That(() => PosixFileSystem.FsyncDirectory(directory.Path), Throws.Nothing);
    }

    [Test]
    public void Fsync_MissingDirectory_ThrowsIOExceptionWithTheErrnoAndPath()
    {
        using var directory = new TempDirectory();
        var missing = directory.Combine("missing");

        var error = Assert.Throws<IOException>(() => PosixFileSystem.FsyncDirectory(missing));

        Assert.That(error!.HResult, Is.EqualTo(2), "ENOENT");
        Assert.That(error.Message, Does.Contain(missing));
    }

    [Test]
    public void MoveNoReplace_DestinationExists_ThrowsEExistAndLeavesBothFiles()
    {
        using var directory = new TempDirectory();
        File.WriteAllText(directory.Combine("from"), "new");
        File.WriteAllText(directory.Combine("to"), "old");

        var error = Assert.Throws<IOException>(() => PosixFileSystem.MoveNoReplace(directory.Combine("from"), directory.Combine("to")));

        Assert.That(error!.HResult, Is.EqualTo(17), "EEXIST");
        Assert.That(File.ReadAllText(directory.Combine("to")), Is.EqualTo("old"));
        Assert.That(File.ReadAllText(directory.Combine("from")), Is.EqualTo("new"));
    }

    [Test]
    public void MoveNoReplace_FreeDestination_Renamed()
    {
        using var directory = new TempDirectory();
        File.WriteAllText(directory.Combine("from"), "x");

        PosixFileSystem.MoveNoReplace(directory.Combine("from"), directory.Combine("to"));

        Assert.That(directory.AllFiles(), Is.EqualTo(new[] { "to" }));
    }

    [Test]
    public void Fsync_RegularFile_RefusedBecauseOfODirectory()
    {
        using var directory = new TempDirectory();
        var file = directory.Combine("f");
        File.WriteAllText(file, "x");

        var error = Assert.Throws<IOException>(() => PosixFileSystem.FsyncDirectory(file));

        Assert.That(error!.HResult, Is.EqualTo(20), "ENOTDIR: the O_DIRECTORY flag value is right for this architecture");
    }
}
