using System.Globalization;
using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Sink;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Docs;

/// <summary>docs/parquet-sink.md's options table against <see cref="ParquetDestinationOptions{T}"/>.</summary>
public class ParquetSinkDocTests
{
    private static string Size(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024 * 1024)} MiB");

    [Test]
    public void OptionsTable_Defaults_AreTheOptionsDefaults()
    {
        var o = new ParquetDestinationOptions<object>();
        var table = DocText.Table("parquet-sink.md", "## Options");
        var code = new Dictionary<string, string>
        {
            ["Partitioning"] = ReferenceEquals(o.Partitioning, PartitionPath<object>.None) ? "`PartitionPath<T>.None`" : "?",
            ["Compression"] = $"`{o.Compression}`",
            ["RowGroupMaxRows"] = string.Format(CultureInfo.InvariantCulture, "{0:N0}", o.RowGroupMaxRows),
            ["RowGroupMaxBytes"] = Size(o.RowGroupMaxBytes),
            ["FileMaxRows"] = string.Format(CultureInfo.InvariantCulture, "{0:N0}", o.FileMaxRows),
            ["FileMaxBytes"] = Size(o.FileMaxBytes),
            ["FileMaxAge"] = string.Create(CultureInfo.InvariantCulture, $"{o.FileMaxAge.TotalMinutes} min"),
            ["MaxOpenFiles"] = o.MaxOpenFiles.ToString(CultureInfo.InvariantCulture),
            ["MemoryBudgetBytes"] = Size(o.MemoryBudgetBytes),
            ["AckWait"] = string.Create(CultureInfo.InvariantCulture, $"{o.AckWait.TotalSeconds} s"),
            ["KeepAliveInterval"] = o.KeepAliveInterval is null && o.EffectiveKeepAlive == o.AckWait / 3 ? "`AckWait / 3`" : "?",
            ["KeyValueMetadata"] = o.KeyValueMetadata.Count == 0 ? "empty" : "?",
            ["CleanupAtStart"] = o.CleanupAtStart ? "`true`" : "`false`",
        };

        foreach (var (option, value) in code)
        {
            Assert.That(table.TryGetValue(option, out var cell), Is.True, $"parquet-sink.md documents {option}");
            Assert.That(cell!.Split(" | ")[0], Is.EqualTo(value), option);
        }

        Assert.That(table["RowGroupMaxRows"], Does.Contain(string.Format(CultureInfo.InvariantCulture, "{0:N0}", new ParquetWriterOptions().RowGroupMaxRows)), "the writer's own default is named as the contrast");
        Assert.That(o.Storage, Is.Null);
        Assert.That(table["Storage"], Does.StartWith("required"));
        Assert.That(o.Batching.FlushParallelism, Is.EqualTo(1));
        Assert.That(DocText.Flat("parquet-sink.md"), Does.Contain(string.Create(CultureInfo.InvariantCulture, $"`Batching.FlushTimeout` (default {o.Batching.FlushTimeout.TotalSeconds} s)")));
    }
}
