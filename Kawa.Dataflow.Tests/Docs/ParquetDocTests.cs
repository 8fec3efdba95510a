using System.Globalization;
using Kawa.Dataflow.Parquet.Format;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Docs;

/// <summary>docs/parquet.md's stated defaults and limits against the writer's options and constants.</summary>
public class ParquetDocTests
{
    private static string Size(long bytes) => bytes % (1024 * 1024) == 0
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024 * 1024)} MiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024} KiB");

    [Test]
    public void WriterDefaults_AreTheOnesTheDocStates()
    {
        var docs = DocText.Flat("parquet.md");
        var o = new ParquetWriterOptions();

        Assert.That(docs, Does.Contain($"`DictionaryMaxBytes` (default {Size(o.DictionaryMaxBytes)})"));
        Assert.That(docs, Does.Contain($"`PageSize` (default {Size(o.PageSize)})"));
        Assert.That(docs, Does.Contain(string.Format(CultureInfo.InvariantCulture, "`RowGroupMaxRows` rows (default **{0:N0}**", o.RowGroupMaxRows)));
        Assert.That(docs, Does.Contain($"`RowGroupMaxBytes` (default {Size(o.RowGroupMaxBytes)})"));
        Assert.That(docs, Does.Contain($"`StatisticsMaxBytes` ({o.StatisticsMaxBytes})"));
        Assert.That(o.MaxDegreeOfParallelism, Is.EqualTo(Environment.ProcessorCount));
        Assert.That(docs, Does.Contain("`MaxDegreeOfParallelism` threads (default `Environment.ProcessorCount`"));
        Assert.That(o.Compression, Is.EqualTo(ParquetCompression.Snappy));
        Assert.That(docs, Does.Contain("| SNAPPY (default) |"));
        Assert.That(o.DataPageVersion, Is.EqualTo(ParquetDataPageVersion.V1));
        Assert.That(docs, Does.Contain("Data pages v1 by default"));
    }

    [Test]
    public void InternalLimits_AreTheOnesTheDocStates()
    {
        var docs = DocText.Flat("parquet.md");

        Assert.That(docs, Does.Contain($"arrays under {Size(Pooled.LargeArrayBytes)} come from `ArrayPool<T>.Shared`"));
        Assert.That(docs, Does.Contain($"keeps at most {Pooled.LargeArraysPerSize} idle arrays per power-of-two"));
        Assert.That(docs, Does.Contain($"after {DictionaryRule.ProbeValues} values, more than half distinct means PLAIN"));
        Assert.That(docs, Does.Contain($"Row groups under {Size(ParquetFileWriter.ParallelMinBytes)} of buffered values are encoded on the calling thread"));
        Assert.That(docs, Does.Contain($"`created_by` = `{ParquetFileWriter.CreatedBy.Split(" version ")[0]} version <assembly version>`"));
    }
}
