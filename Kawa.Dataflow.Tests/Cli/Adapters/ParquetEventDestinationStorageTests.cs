using Kawa.Dataflow.Cli.Adapters;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Parquet.Lake;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kawa.Dataflow.Tests.Cli.Adapters;

/// <summary>
/// The lake kawa builds for a <c>parquet</c> destination: its MaxFileAge follows <c>rollAge</c>, so another kawa's
/// startup cleanup never removes a file this one still writes, and the sink accepts any valid <c>rollAge</c>.
/// </summary>
public class ParquetEventDestinationStorageTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-lake-age-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [TestCase("00:00:01", "00:05:01")]
    [TestCase("00:01:00", "00:06:00")]
    [TestCase("00:10:00", "00:20:00")]
    [TestCase("03:00:00", "06:00:00")]
    [TestCase("7.00:00:00", "14.00:00:00")]
    public void CreateStorage_RollAge_SetsLocalAndS3MaxFileAge(string rollAge, string expected)
    {
        var roll = TimeSpan.Parse(rollAge, System.Globalization.CultureInfo.InvariantCulture);
        var want = TimeSpan.Parse(expected, System.Globalization.CultureInfo.InvariantCulture);

        var local = ParquetEventDestination.CreateStorage(
            new ParquetDestinationOptions { Type = "parquet", Path = Path.Combine(_dir, "lake"), RollAge = roll }, TimeProvider.System, NullLoggerFactory.Instance, out _);
        var s3 = ParquetEventDestination.CreateStorage(
            new ParquetDestinationOptions { Type = "parquet", Path = "s3://bucket/prefix", RollAge = roll, S3 = new S3Options { Endpoint = "http://127.0.0.1:9", AccessKey = "k", SecretKey = "s" } },
            TimeProvider.System, NullLoggerFactory.Instance, out var client);
        client!.Dispose();

        Assert.That(local, Is.TypeOf<LocalLakeStorage>());
        Assert.That(local.MaxFileAge, Is.EqualTo(want));
        Assert.That(s3, Is.TypeOf<S3LakeStorage>());
        Assert.That(s3.MaxFileAge, Is.EqualTo(want));
    }

    [Test]
    public void CreateAsync_RollAgeAboveTheStorageDefault_BuildsTheSink()
    {
        // Three hours is beyond the storages' default MaxFileAge (1 hour), which the sink refuses as its FileMaxAge.
        var options = new ParquetDestinationOptions { Type = "parquet", Path = Path.Combine(_dir, "lake"), RollAge = TimeSpan.FromHours(3), Fsync = false };

        Assert.That(async () =>
        {
            var destination = await ParquetEventDestination.CreateAsync(options, deadLetter: false, TimeProvider.System, NullLoggerFactory.Instance, CancellationToken.None);
            await ((IAsyncDisposable)destination).DisposeAsync();
        }, Throws.Nothing);
    }
}
